"""WebSockets over HTTP/2 (RFC 8441) on a listener with `tls.http2: true`: ALPN offers h2, the
gateway announces SETTINGS_ENABLE_CONNECT_PROTOCOL, an extended CONNECT stream becomes a session
on the same routes (echo, hub, worker, both proxy modes), plain requests work on h2 too. The
clients are real: the `h2` library (h2_client.py, which writes WebSocket frames byte by byte) and
headless Chromium. A listener without the option offers neither h2 nor the setting."""
import asyncio
import json
import os
import signal
import socket
import ssl
import struct
import time

import pytest
import websockets

from conftest import BINARY, insecure_context, run
from h2_client import H2Client, StreamReset
from test_browser import CHROMIUM, Browser, Page
from test_metrics import scrape, value
from test_proxy_frames import upstream  # noqa: F401 (fixture)


def config(tmp_path, routes="", extra="", limits=""):
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "index.html").write_text("<!doctype html><title>h2</title><p>served over h2</p>")
    return """
log:
  level: debug
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
      http2: true
  classic:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
http:
  idle_timeout: 3s
  header_timeout: 2s
routes:
  echo:
    path: /echo
    kind: echo
    max_message_bytes: 64KiB
  hub:
    path: /hub
    kind: hub
    hub:
      subscribe: ["news"]
      publish: ["news"]
  work:
    path: /work
    kind: worker
    worker:
      command: "%s"
      args: ["worker", "echo"]
      instances: 1
%s  site:
    path: /
    kind: static
    static:
      root: %s
admin:
  address: "unix:%s"
%s%s""" % (BINARY, routes, site, tmp_path / "admin.sock", limits, extra)


def client(gw, name="main", **kwargs):
    host, port = gw.address(name)
    return H2Client(host, port, **kwargs)


def test_only_the_listener_that_enables_it_offers_h2_and_extended_connect(gateway_factory, tmp_path):
    gw = gateway_factory(config(tmp_path), listeners=2)
    gw.wait_for_log(r'msg="worker linked"')
    h2c = client(gw)
    try:
        assert h2c.negotiated == "h2"
        assert h2c.connect_protocol_enabled
        assert h2c.conn.remote_settings.max_concurrent_streams == 100
        # Plain requests on h2: health, a static file, a refusal.
        status, headers, body = h2c.request("/livez")
        assert (status, body) == (200, b"ok\n")
        status, headers, body = h2c.request("/readyz")
        assert (status, body) == (200, b"ready\n")
        status, headers, body = h2c.request("/")
        assert status == 200 and b"served over h2" in body and headers["content-type"].startswith("text/html")
        assert "etag" in headers and "connection" not in headers
        status, _, _ = h2c.request("/index.html", method="HEAD")
        assert status == 200
        status, _, body = h2c.request("/livez", method="POST")
        assert status == 405
        # A plain GET on a WebSocket path says how to connect.
        status, _, _ = h2c.request("/echo")
        assert status == 426
    finally:
        h2c.close()
    # A client that never completes its TLS handshake is closed after http.header_timeout (2 s).
    silent = socket.create_connection(gw.address("main"), timeout=10)
    started = time.time()
    assert silent.recv(1) == b"" and 1.5 < time.time() - started < 8
    silent.close()
    # The other listener: ALPN picks http/1.1 even for a client that prefers h2.
    classic = client(gw, "classic", alpn=("h2", "http/1.1"))
    try:
        assert classic.negotiated == "http/1.1"
    finally:
        classic.close()
    # And the h2 listener still serves HTTP/1.1 clients, WebSockets included.
    async def over_http1():
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context()) as ws:
            await ws.send("h1")
            assert await ws.recv() == "h1"
    run(over_http1())


def test_sessions_on_streams_echo_and_follow_rfc6455_framing(gateway_factory, tmp_path):
    gw = gateway_factory(config(tmp_path), listeners=2)
    gw.wait_for_log(r'msg="worker linked"')
    c = client(gw)
    try:
        # Echo on three route kinds, interleaved on one connection.
        echo, status, headers = c.open_websocket("/echo")
        assert status == 200 and "sec-websocket-accept" not in headers
        work, status, _ = c.open_websocket("/work")
        assert status == 200
        hub, status, _ = c.open_websocket("/hub")
        assert status == 200
        c.send_frame(echo, 0x1, "héllo".encode())
        c.send_frame(work, 0x1, b"to the worker")
        c.send_frame(echo, 0x2, bytes(range(256)) * 100)
        assert c.recv_message(echo) == (0x1, "héllo".encode())
        assert c.recv_message(echo) == (0x2, bytes(range(256)) * 100)
        assert c.recv_message(work) == (0x1, b"to the worker")
        c.send_frame(hub, 0x1, json.dumps({"op": "subscribe", "topic": "news", "id": 1}).encode())
        assert json.loads(c.recv_message(hub)[1]) == {"op": "ack", "id": 1, "topic": "news"}
        c.send_frame(hub, 0x1, json.dumps({"op": "publish", "topic": "news", "data": "fresh"}).encode())
        assert json.loads(c.recv_message(hub)[1]) == {"op": "message", "topic": "news", "data": "fresh"}
        # A fragmented message with a ping between its fragments.
        c.send_frame(echo, 0x1, b"frag", fin=False)
        c.send_frame(echo, 0x9, b"ping-payload")
        c.send_frame(echo, 0x0, b"men", fin=False)
        c.send_frame(echo, 0x0, b"ts", fin=True)
        assert c.recv_frame(echo)[0::3] == (0xA, b"ping-payload")
        assert c.recv_message(echo) == (0x1, b"fragments")
        # Closing handshake: the gateway answers and ends the stream (END_STREAM, no reset).
        c.send_frame(echo, 0x8, struct.pack("!H", 1000) + b"done")
        opcode, _, _, payload = c.recv_frame(echo)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1000
        c.end_stream(echo)
        assert c.wait_stream_closed(echo) == "ended"

        # Protocol errors close their own stream with the right code; the others carry on.
        cases = [
            (dict(opcode=0x1, payload=b"not masked", mask=False), 1002),
            (dict(opcode=0x1, payload=b"rsv", rsv1=True), 1002),
            (dict(opcode=0x3, payload=b""), 1002),
            (dict(opcode=0x1, payload=b"\xff\xfe"), 1007),
            (dict(opcode=0x9, payload=b"p" * 126), 1002),
            (dict(opcode=0x2, payload=b"x" * (64 * 1024 + 1)), 1009),
        ]
        for frame, code in cases:
            stream, status, _ = c.open_websocket("/echo")
            assert status == 200
            c.send_frame(stream, **frame)
            c.expect_close(stream, code)
            assert c.wait_stream_closed(stream) in ("ended", 8)
            c.send_frame(work, 0x1, b"still here")
            assert c.recv_message(work) == (0x1, b"still here")
        # A continuation with nothing to continue.
        stream, _, _ = c.open_websocket("/echo")
        c.send_frame(stream, 0x0, b"orphan")
        c.expect_close(stream, 1002)
    finally:
        c.close()
    # Every session logged its line with http=h2.
    closed = [line for line in gw.lines if 'msg="websocket closed"' in line]
    assert closed and all("http=h2" in line for line in closed), closed


def test_upgrade_refusals_and_limits_on_streams(gateway_factory, tmp_path):
    gw = gateway_factory(config(tmp_path, limits="limits:\n  max_connections_per_ip: 2\n"), listeners=2)
    c = client(gw)
    try:
        # No route, a version other than 13, a :protocol other than websocket.
        stream, status, _ = c.open_websocket("/nowhere")
        assert status == 404
        stream_id = c.conn.get_next_available_stream_id()
        c.conn.send_headers(stream_id, [(":method", "CONNECT"), (":protocol", "websocket"), (":path", "/echo"),
                                        (":scheme", "https"), (":authority", c.authority),
                                        ("sec-websocket-version", "8")])
        c._flush()
        while c._state(stream_id)["headers"] is None:
            c._pump()
        assert c._state(stream_id)["headers"][":status"] == "426"
        _, status, _ = c.open_websocket("/echo", protocol="webtransport")
        assert status == 405
        # A request that never ends (the slowloris of a stream) gets 408 after http.header_timeout.
        slow = c.conn.get_next_available_stream_id()
        c.conn.send_headers(slow, [(":method", "POST"), (":path", "/livez"), (":scheme", "https"),
                                   (":authority", c.authority)])
        c._flush()
        started = time.time()
        while c._state(slow)["headers"] is None:
            c._pump()
        assert c._state(slow)["headers"][":status"] == "408" and 1.5 < time.time() - started < 6
        # The per-address limit counts sessions, whichever connection or stream carries them.
        first, status, _ = c.open_websocket("/echo")
        assert status == 200
        second, status, _ = c.open_websocket("/echo")
        assert status == 200
        third, status, headers = c.open_websocket("/echo")
        assert status == 503 and headers.get("retry-after") == "5"
        c.send_frame(first, 0x1, b"unharmed")
        assert c.recv_message(first) == (0x1, b"unharmed")
        # A session that ends gives its slot back.
        c.send_frame(second, 0x8, struct.pack("!H", 1000))
        c.recv_frame(second)
        c.end_stream(second)
        c.wait_stream_closed(second)
        deadline = time.time() + 5
        while True:
            again, status, _ = c.open_websocket("/echo")
            if status == 200 or time.time() > deadline:
                break
            time.sleep(0.1)
        assert status == 200
    finally:
        c.close()
    assert gw.wait_for_log(r'msg="upgrade refused".*status=503')


def test_counted_in_metrics_and_an_idle_connection_goes_away(gateway_factory, tmp_path):
    gw = gateway_factory(config(tmp_path), listeners=2)
    admin = str(tmp_path / "admin.sock")
    c = client(gw)
    try:
        stream, _, _ = c.open_websocket("/echo")
        c.send_frame(stream, 0x1, b"count me")
        assert c.recv_message(stream) == (0x1, b"count me")
        samples = scrape(admin)
        assert value(samples, "wssgate_upgrades_total", protocol="h2") == 1
        assert value(samples, "wssgate_http2_connections_total", listener="main") == 1
        assert value(samples, "wssgate_connections_active", route="echo") == 1
        c.send_frame(stream, 0x8, struct.pack("!H", 1000))
        c.recv_frame(stream)
        c.end_stream(stream)
        assert c.wait_stream_closed(stream) == "ended"
        # No stream left: after http.idle_timeout (3 s) the gateway sends GOAWAY and closes.
        started = time.time()
        with pytest.raises(EOFError):
            while True:
                c._pump()
        assert c.goaway is not None and 2 <= time.time() - started < 12
    finally:
        c.close()

    async def h1():
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context()) as ws:
            await ws.send("x")
            await ws.recv()
    run(h1())
    samples = scrape(admin)
    assert value(samples, "wssgate_upgrades_total", protocol="http/1.1") == 1
    assert value(samples, "wssgate_upgrades_total", protocol="h2") == 1


def test_sessions_on_streams_drain_with_1001_and_the_connection_gets_goaway(gateway_factory, tmp_path):
    gw = gateway_factory(config(tmp_path, extra="server:\n  drain_spread: 0s\n"), listeners=2)
    c = client(gw)
    try:
        streams = [c.open_websocket("/echo")[0] for _ in range(5)]
        for stream in streams:
            c.send_frame(stream, 0x1, b"before")
            assert c.recv_message(stream) == (0x1, b"before")
        gw.proc.send_signal(signal.SIGTERM)
        for stream in streams:
            assert c.expect_close(stream, 1001) == "restart"
            c.end_stream(stream)
        with pytest.raises(EOFError):
            while True:
                c._pump()
        assert c.goaway is not None
    finally:
        c.close()
    assert gw.proc.wait(30) == 0


def test_both_proxy_modes_carry_h2_sessions_to_an_http1_upstream(gateway_factory, tmp_path, upstream):
    routes = """  bytes:
    path: /bytes
    kind: proxy
    proxy:
      upstream: "ws://127.0.0.1:%d/"
  frames:
    path: /frames
    kind: proxy
    proxy:
      upstream: "ws://127.0.0.1:%d/"
      mode: frames
""" % (upstream.port, upstream.port)
    gw = gateway_factory(config(tmp_path, routes=routes), listeners=2)
    c = client(gw)
    try:
        for path in ("/bytes", "/frames"):
            stream, status, headers = c.open_websocket(path, headers=[("sec-websocket-protocol", "chat")])
            assert status == 200, (path, status)
            # The upstream's greeting: what it saw of the handshake.
            seen = json.loads(c.recv_message(stream)[1])
            assert seen["X-Forwarded-For"] == "127.0.0.1" and seen["X-Forwarded-Proto"] == "https", seen
            c.send_frame(stream, 0x1, b"through " + path.encode())
            assert c.recv_message(stream) == (0x1, b"through " + path.encode())
            c.send_frame(stream, 0x1, b"close:4000:bye")
            assert c.expect_close(stream, 4000) == "bye"
            c.end_stream(stream)
            assert c.wait_stream_closed(stream) in ("ended", 8)
    finally:
        c.close()
    deadline = time.time() + 10
    while len([line for line in upstream.lines if line.startswith("closed 4000")]) < 2:
        assert time.time() < deadline, upstream.lines
        time.sleep(0.05)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_chromium_loads_a_page_over_h2_and_opens_wss_on_the_same_connection(gateway_factory, tmp_path):
    gw = gateway_factory(config(tmp_path), listeners=2)
    admin = str(tmp_path / "admin.sock")
    browser = Browser()
    try:
        url = gw.url("/", scheme="https")
        target = browser.open(url)

        async def scenario():
            async with Page(target) as page:
                await page.wait_for("location.protocol === 'https:' && document.readyState === 'complete'")
                protocol = await page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
                assert protocol == "h2", protocol
                await page.evaluate("""new Promise((resolve, reject) => {
                    const ws = new WebSocket(location.origin.replace('https:', 'wss:') + '/echo');
                    window.echoed = [];
                    ws.onmessage = (event) => { window.echoed.push(event.data); if (window.echoed.length === 2) ws.close(1000, 'done'); };
                    ws.onopen = () => { ws.send('first over h2'); ws.send('second over h2'); };
                    ws.onclose = (event) => { window.closeCode = event.code; resolve(); };
                    ws.onerror = () => reject(new Error('websocket error'));
                })""")
                assert await page.evaluate("window.echoed") == ["first over h2", "second over h2"]
                assert await page.evaluate("window.closeCode") == 1000

        run(scenario(), timeout=60)
    finally:
        browser.close()
    line = gw.wait_for_log(r'msg="websocket closed".*route=echo')
    assert "http=h2" in line and "messages_in=2" in line and "close_code=1000" in line, line
    samples = scrape(admin)
    assert value(samples, "wssgate_upgrades_total", protocol="h2") == 1
    assert value(samples, "wssgate_upgrades_total", protocol="http/1.1") == 0
