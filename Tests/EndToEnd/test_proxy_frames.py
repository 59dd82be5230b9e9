"""The proxy route in `frames` mode: the gateway ends the WebSocket on both legs and relays
messages, so a route's limits, keepalive, compression, metrics and close codes apply to proxied
traffic. The upstream is a real Python websockets server in its own process (frames_upstream.py),
which a test can kill."""
import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tempfile

import pytest
import websockets

from conftest import insecure_context, run, with_witness
from test_metrics import scrape, value

HERE = os.path.dirname(os.path.abspath(__file__))


class UpstreamProcess:
    """frames_upstream.py, started and ended by its PID; its output lines are collected."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, os.path.join(HERE, "frames_upstream.py")],
                                        stdout=subprocess.PIPE, text=True)
        self.port = int(self.process.stdout.readline())
        self.lines = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, prefix, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [line for line in self.lines if line.startswith(prefix)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError("the upstream never printed %r; it printed %r" % (prefix, self.lines))

    def flooded(self):
        counts = [int(line.split()[1]) for line in self.lines if line.startswith("flooded")]
        return max(counts, default=0)

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def upstream():
    process = UpstreamProcess()
    yield process
    if process.process.poll() is None:
        process.kill()


def silent_upstream():
    """Completes WebSocket handshakes, then reads and never answers anything (pings included)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def answer(connection):
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk:
                return  # the route's readiness probe: connects and closes
            request += chunk
        key = re.search(rb"(?i)sec-websocket-key: *([^\r]+)", request).group(1)
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        while connection.recv(4096):
            pass

    def serve():
        while True:
            connection, _ = server.accept()
            held.append(connection)
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], server


def frames_config(port, silent_port=None, extra=""):
    text = """
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
routes:
  echo:
    path: /echo
    kind: echo
  framed:
    path: /framed
    kind: proxy
    max_message_bytes: 64KiB
    proxy:
      upstream: ws://127.0.0.1:%d/ws
      mode: frames
      lost_close_code: 1012
  flood:
    path: /flood
    kind: proxy
    proxy:
      upstream: ws://127.0.0.1:%d/flood
      mode: frames
""" % (port, port)
    if silent_port:
        text += """  silent:
    path: /silent
    kind: proxy
    ping_interval: 1s
    pong_timeout: 1s
    proxy:
      upstream: ws://127.0.0.1:%d/
      mode: frames
""" % silent_port
    return text + extra


def test_messages_cross_with_compression_ended_at_the_gateway(gateway_factory, upstream):
    admin_socket = os.path.join(tempfile.mkdtemp(prefix="wgf"), "admin.sock")
    gw = gateway_factory(frames_config(upstream.port, extra='admin:\n  address: "unix:%s"\n' % admin_socket))

    async def scenario():
        async with websockets.connect(gw.url("/framed?room=1"), ssl=insecure_context(),
                                      subprotocols=["chat.v1", "other"]) as ws:
            seen = json.loads(await ws.recv())
            # The client compresses with the gateway; the upstream leg is plain, its own handshake.
            assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")
            assert seen["Sec-WebSocket-Extensions"] is None
            # The client's offer went upstream, and the upstream's choice is the client's answer.
            assert seen["Sec-WebSocket-Protocol"] == "chat.v1, other"
            assert seen["subprotocol"] == "chat.v1" and ws.subprotocol == "chat.v1"
            assert seen["X-Forwarded-For"] == "127.0.0.1" and seen["X-Forwarded-Proto"] == "https"
            assert seen["path"] == "/ws?room=1"
            for message in ("text through", "é" * 3000, b"\x00\x01binary" * 4000, b""):
                await ws.send(message)
                assert await ws.recv() == message
            # A message the upstream sends in fragments reaches the client whole.
            await ws.send("fragments")
            assert await ws.recv() == "fragments"
            # A client's own fragments reach the upstream as one message.
            await ws.send(["a" * 10, "b" * 10])
            assert await ws.recv() == "a" * 10 + "b" * 10

    run(scenario())
    # Every message was counted per message on the route, as on any session.
    samples = scrape(admin_socket)
    assert value(samples, "wssgate_messages_received_total", route="framed") == 6
    assert value(samples, "wssgate_messages_sent_total", route="framed") == 7
    gw.wait_for_log(r'msg="websocket closed".*messages_in=6 messages_out=7 .*route=framed')


def test_close_codes_are_relayed_both_ways(gateway_factory, upstream):
    gw = gateway_factory(frames_config(upstream.port))

    async def scenario():
        async with websockets.connect(gw.url("/framed"), ssl=insecure_context()) as ws:
            await ws.recv()
            await ws.close(4000, "bye from the client")
        async with websockets.connect(gw.url("/framed"), ssl=insecure_context()) as ws:
            await ws.recv()
            await ws.send("close:4001:later, says the upstream")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 4001 and ws.close_reason == "later, says the upstream"

    run(scenario())
    upstream.wait_for("closed 4001")
    assert "closed 4000 bye from the client" in upstream.lines, upstream.lines


def test_a_message_over_the_limit_closes_the_client_1009_and_the_upstream_cleanly(gateway_factory, upstream):
    gw = gateway_factory(frames_config(upstream.port))

    async def scenario():
        async with websockets.connect(gw.url("/framed"), ssl=insecure_context()) as other, \
                websockets.connect(gw.url("/framed"), ssl=insecure_context(), compression=None) as ws:
            await other.recv()
            await ws.recv()
            await ws.send(b"x" * (64 * 1024 + 1))
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1009
            # The other connection carries on.
            await other.send("still here")
            assert await other.recv() == "still here"

    run(scenario())
    # The upstream had a closing handshake (1001, saying why), not a dropped connection.
    [line] = upstream.wait_for("closed 1001")
    assert "1009" in line, line


def test_an_upstream_killed_mid_session_gives_the_configured_code(gateway_factory, upstream):
    gw = gateway_factory(frames_config(upstream.port))

    async def scenario():
        clients = [await websockets.connect(gw.url("/framed"), ssl=insecure_context()) for _ in range(5)]
        for ws in clients:
            await ws.recv()
            await ws.send("before")
            assert await ws.recv() == "before"
        upstream.kill()
        for ws in clients:
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            # lost_close_code: 1012, with a close frame — never a bare TCP reset (1006).
            assert ws.close_code == 1012, ws.close_code
            assert ws.close_reason == "upstream connection lost"

    run(scenario())


def test_an_upstream_that_stops_answering_pings_is_lost(gateway_factory, upstream):
    silent_port, _server = silent_upstream()
    gw = gateway_factory(frames_config(upstream.port, silent_port))

    async def scenario():
        async with websockets.connect(gw.url("/silent"), ssl=insecure_context()) as ws:
            started = time.time()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 15)
            # One ping after 1 s of silence, no pong within 1 s: lost (the route's default 1011).
            assert ws.close_code == 1011 and ws.close_reason == "upstream not answering"
            assert 1.5 < time.time() - started < 8

    run(scenario())


def test_a_client_that_does_not_read_stops_the_upstream(gateway_factory, upstream):
    """Back-pressure, upstream to client: while the client reads nothing the gateway stops
    reading the upstream, whose sends stall, and nothing is lost when the client reads again."""
    gw = gateway_factory(frames_config(upstream.port).replace("    path: /flood\n", "    path: /flood\n    max_message_bytes: 1MiB\n"))

    async def scenario():
        async with websockets.connect(gw.url("/flood"), ssl=insecure_context(), max_queue=1, max_size=1 << 20, compression=None) as ws:
            await asyncio.sleep(3)
            stalled_at = upstream.flooded()
            assert stalled_at < 700, "the upstream sent %d of 64 KiB to a client that reads nothing" % stalled_at
            for number in range(2000):
                assert await ws.recv() == number.to_bytes(4, "big") * 16384
            return stalled_at

    stalled_at = run(with_witness(gw, lambda: asyncio.run(scenario())), timeout=90)
    print("upstream stalled after about %d messages" % stalled_at)


def test_a_stop_drains_proxied_sessions_with_1001(gateway_factory, upstream):
    gw = gateway_factory(frames_config(upstream.port))
    codes = []

    async def scenario():
        async with websockets.connect(gw.url("/framed"), ssl=insecure_context()) as ws:
            await ws.recv()
            gw.proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 15)
            codes.append((ws.close_code, ws.close_reason))

    run(scenario())
    assert codes == [(1001, "restart")]
    upstream.wait_for("closed 1001 restart")
    assert gw.proc.wait(30) == 0


def test_an_upstream_message_over_the_limit_fails_the_upstream_not_the_gateway(gateway_factory, upstream):
    """The route's limit holds for the upstream too: its 70,000-byte message (limit 64 KiB) gets
    it a 1009 and the client the route's lost_close_code with the reason."""
    gw = gateway_factory(frames_config(upstream.port))

    async def scenario():
        async with websockets.connect(gw.url("/framed"), ssl=insecure_context()) as ws:
            await ws.recv()
            await ws.send("big")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1012
            assert ws.close_reason == "upstream message larger than 65536 bytes"

    run(with_witness(gw, lambda: asyncio.run(scenario())))
    upstream.wait_for("closed 1009")
