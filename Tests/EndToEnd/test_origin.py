"""Origin checks on upgrade: by default only pages from the gateway's own host; a route's
`origins` list allows exact origins and wildcard subdomains; anything else gets 403, and other
clients carry on."""
from conftest import ECHO_CONFIG, raw_http, run, status_of, with_witness

CONFIG = ECHO_CONFIG + """  app:
    path: /app
    kind: echo
    origins: ["https://app.example.com", "https://*.example.org"]
"""


def upgrade(gw, path, origin=None, host=None):
    h, port = gw.address()
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % (host or "127.0.0.1:%d" % port), "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    if origin:
        lines.append("Origin: %s" % origin)
    return status_of(raw_http(h, port, ("\r\n".join(lines) + "\r\n\r\n").encode(), read_timeout=1))


def test_origins(gateway_factory):
    gw = gateway_factory(CONFIG)
    _, port = gw.address()

    def crossing():
        # Default: the gateway's own host only; no Origin (not a browser) is fine.
        assert upgrade(gw, "/echo", "https://127.0.0.1:%d" % port) == 101
        assert upgrade(gw, "/echo", "https://localhost:%d" % port, host="localhost:%d" % port) == 101
        assert upgrade(gw, "/echo", "https://evil.example") == 403
        assert upgrade(gw, "/echo", "https://127.0.0.1:1") == 403
        assert upgrade(gw, "/echo") == 101
        # A route's list: exact and wildcard entries.
        assert upgrade(gw, "/app", "https://app.example.com") == 101
        assert upgrade(gw, "/app", "https://eu.shop.example.org") == 101
        assert upgrade(gw, "/app", "https://example.org") == 403
        assert upgrade(gw, "/app", "http://app.example.com") == 403
        assert upgrade(gw, "/app", "https://127.0.0.1:%d" % port) == 403

    run(with_witness(gw, crossing))
