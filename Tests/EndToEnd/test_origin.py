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


def test_refused_upgrade_lines_name_the_client_behind_a_trusted_proxy(gateway_factory):
    """Behind a trusted proxy the log line of a refusal names the client the proxy reported (as
    session lines do), and the proxy itself as the peer; without a proxy, the peer is the client."""
    gw = gateway_factory(CONFIG + 'limits:\n  trusted_proxies: ["127.0.0.1/32"]\n')
    h, port = gw.address()
    request = ("GET /app HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n"
               "X-Forwarded-For: 203.0.113.9\r\n\r\n" % port)
    assert status_of(raw_http(h, port, request.encode(), read_timeout=1)) == 403
    line = gw.wait_for_log(r'msg="upgrade refused"', 10)
    assert "client=203.0.113.9" in line and "peer=127.0.0.1:" in line, line
    assert upgrade(gw, "/app", "https://evil.example") == 403
    lines = [l for l in gw.lines if 'msg="upgrade refused"' in l]
    assert len(lines) == 2 and "client=127.0.0.1" in lines[1] and "peer=" not in lines[1], lines
