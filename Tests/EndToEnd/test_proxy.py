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
    forwarding headers it saw; /deny answers 403."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = None
        threading.Thread(target=self._run, daemon=True).start()
        assert self.ready.wait(10)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def handler(ws):
            seen = {k: ws.request.headers.get(k) for k in ("X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "Host")}
            seen["path"] = ws.request.path
            await ws.send(json.dumps(seen))
            async for message in ws:
                await ws.send(message)

        def process_request(connection, request):
            if request.path.startswith("/deny"):
                return connection.respond(403, "no\n")

        async def main():
            self.server = await websockets.serve(handler, "127.0.0.1", 0, process_request=process_request)
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
""" % (upstream_port, upstream_port, silent)


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


def test_readiness_follows_the_upstream(gateway_factory):
    upstream = Upstream()
    port, _silent = silent_port()
    gw = gateway_factory(config(upstream.port, port))

    def readyz():
        try:
            return urllib.request.urlopen(gw.url("/readyz", scheme="https"), context=insecure_context(), timeout=5).status
        except urllib.error.HTTPError as error:
            return error.code

    deadline = time.time() + 10
    while readyz() != 200:
        assert time.time() < deadline
        time.sleep(0.2)
    upstream.stop()
    deadline = time.time() + 10
    while readyz() != 503:
        assert time.time() < deadline, "readyz stayed 200 with the upstream gone"
        time.sleep(0.2)
