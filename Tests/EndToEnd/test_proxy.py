"""The proxy route: the nginx-in-front-of-a-WebSocket-server setup without nginx. A real Python
websockets server is the upstream."""
import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
import websockets

from conftest import insecure_context, run, with_witness


class Upstream:
    """A websockets echo server on a loopback port, in a thread of its own. It first sends the
    forwarding headers it saw; /deny answers 403; /flood sends FLOOD numbered messages of 64 KiB
    as fast as the connection takes them, counting them in `flooded`."""

    FLOOD = 2000

    def __init__(self, port=0):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = port or None
        self.wanted_port = port
        self.flooded = 0
        threading.Thread(target=self._run, daemon=True).start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def handler(ws):
            if ws.request.path.startswith("/flood"):
                for number in range(self.FLOOD):
                    await ws.send(number.to_bytes(4, "big") * 16384)
                    self.flooded = number + 1
                await ws.wait_closed()
                return
            seen = {k: ws.request.headers.get(k) for k in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "Host")}
            seen["path"] = ws.request.path
            await ws.send(json.dumps(seen))
            async for message in ws:
                await ws.send(message)

        def process_request(connection, request):
            if request.path.startswith("/deny"):
                return connection.respond(403, "no\n")

        async def main():
            self.server = await websockets.serve(handler, "127.0.0.1", self.wanted_port, process_request=process_request)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.server.wait_closed()

        self.loop.run_until_complete(main())

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)


def silent_port():
    """Accepts TCP connections and never says anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(16)], daemon=True).start()
    return server.getsockname()[1], server


def config(upstream_port, silent):
    return """
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
routes:
  echo:
    path: /echo
    kind: echo
  app:
    path: /app
    kind: proxy
    proxy:
      upstream: ws://127.0.0.1:%d/ws
  flood:
    path: /flood
    kind: proxy
    proxy:
      upstream: ws://127.0.0.1:%d/flood
  deny:
    path: /deny
    kind: proxy
    proxy:
      upstream: ws://127.0.0.1:%d/deny
  slow:
    path: /slow
    kind: proxy
    proxy:
      upstream: ws://127.0.0.1:%d/
      handshake_timeout: 1s
""" % (upstream_port, upstream_port, upstream_port, silent)


def status_of_upgrade(url):
    async def attempt():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(url, ssl=insecure_context(), open_timeout=10)
        return refused.value.response.status_code
    return asyncio.run(attempt())


def test_proxy_passes_through_with_forwarding_headers(gateway_factory):
    upstream = Upstream()
    port, _silent = silent_port()
    gw = gateway_factory(config(upstream.port, port))

    async def scenario():
        async with websockets.connect(gw.url("/app?room=1"), ssl=insecure_context()) as ws:
            seen = json.loads(await ws.recv())
            assert seen["X-Forwarded-For"] == "127.0.0.1"
            assert seen["X-Forwarded-Proto"] == "https"
            assert seen["X-Forwarded-Host"] == "%s:%d" % gw.address()
            assert seen["Forwarded"].startswith("for=127.0.0.1;proto=https;host=")
            assert seen["path"] == "/ws?room=1"
            for message in ("text through", b"\x00\x01binary" * 5000):
                await ws.send(message)
                assert await ws.recv() == message
            # permessage-deflate was negotiated with the upstream, end to end.
            assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")

    run(scenario())


def test_a_client_that_does_not_read_stops_the_upstream(gateway_factory):
    """Back-pressure through the pass-through: while the client reads nothing, the gateway stops
    reading the upstream once the client's socket is full, so the upstream's sends stall instead
    of the gateway buffering 128 MB. When the client reads again, every message arrives, in
    order, and other sessions carried on meanwhile."""
    upstream = Upstream()
    port, _silent = silent_port()
    gw = gateway_factory(config(upstream.port, port))

    async def scenario():
        # max_queue=1: the client library stops reading its socket after one message. No
        # compression, or the repetitive messages would shrink to nothing on the wire.
        async with websockets.connect(gw.url("/flood"), ssl=insecure_context(), max_queue=1, max_size=1 << 20, compression=None) as ws:
            await asyncio.sleep(3)
            stalled_at = upstream.flooded
            # Socket buffers on the way hold a few MB; without back-pressure all 2000
            # messages (128 MB) are gone in well under a second.
            assert stalled_at < 600, "the upstream sent %d of 64 KiB to a client that reads nothing" % stalled_at
            await asyncio.sleep(1)
            assert upstream.flooded - stalled_at < 16, "still flowing to a client that reads nothing"
            for number in range(Upstream.FLOOD):
                message = await ws.recv()
                assert message == number.to_bytes(4, "big") * 16384
            return stalled_at

    stalled_at = run(with_witness(gw, lambda: asyncio.run(scenario())), timeout=90)
    print("upstream stalled after %d messages" % stalled_at)


def test_upstream_statuses_reach_the_client(gateway_factory):
    upstream = Upstream()
    port, _silent = silent_port()
    gw = gateway_factory(config(upstream.port, port))
    assert run(with_witness(gw, lambda: status_of_upgrade(gw.url("/deny")))) == 403
    started = time.time()
    assert run(with_witness(gw, lambda: status_of_upgrade(gw.url("/slow")))) == 504
    assert 0.9 < time.time() - started < 5
    upstream.stop()
    time.sleep(0.3)
    assert run(with_witness(gw, lambda: status_of_upgrade(gw.url("/app")))) == 502


def test_an_unreachable_upstream_degrades_the_gateway_and_says_where(gateway_factory, tmp_path):
    """One proxy route whose upstream is down must not take the whole gateway out of a load
    balancer: /readyz stays 200 and says `degraded`, /v1/status names the route and the
    upstream, the log says it when it happens and when it is back; the other routes serve."""
    from test_admin import Admin
    upstream = Upstream()
    port, _silent = silent_port()
    socket_path = str(tmp_path / "admin.sock")
    gw = gateway_factory(config(upstream.port, port) + 'admin:\n  address: "unix:%s"\n' % socket_path)
    admin = Admin(unix=socket_path)

    def readyz():
        try:
            response = urllib.request.urlopen(gw.url("/readyz", scheme="https"), context=insecure_context(), timeout=5)
            return response.status, response.read().decode().strip()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode().strip()

    def status():
        return admin.call("GET", "/v1/status", "/v1/status")[1]

    # The silent route's upstream accepts connections (it only never answers): all is ready.
    deadline = time.time() + 10
    while readyz() != (200, "ready"):
        assert time.time() < deadline, readyz()
        time.sleep(0.1)
    upstream.stop()
    gw.wait_for_log(r'level=warning.*msg="upstream unreachable.*route=app.*upstream=ws://127.0.0.1:%d/ws' % upstream.port)
    assert readyz() == (200, "degraded")
    now = status()
    assert now["readiness"] == "degraded"
    assert "routes.app: its upstream ws://127.0.0.1:%d/ws does not accept connections" % upstream.port in now["degraded"]
    assert run(with_witness(gw, lambda: status_of_upgrade(gw.url("/app")))) == 502
    Upstream(port=upstream.port)
    gw.wait_for_log(r'msg="upstream reachable".*route=app', timeout=15)
    deadline = time.time() + 10
    while readyz() != (200, "ready"):
        assert time.time() < deadline, readyz()
        time.sleep(0.1)
    assert status() == {"readiness": "ready", "degraded": None}
