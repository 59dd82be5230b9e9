"""Echo through the real binary with a real client (Python websockets), over wss."""
import asyncio
import ssl

import websockets

from conftest import ECHO_CONFIG, insecure_context, run


async def echo_roundtrip(url, ctx, compression="deflate"):
    async with websockets.connect(url, ssl=ctx, compression=compression, max_size=None) as ws:
        await ws.send("hello, wssgate ✓")
        assert await ws.recv() == "hello, wssgate ✓"
        await ws.send(b"\x00\x01\x02binary\xff")
        assert await ws.recv() == b"\x00\x01\x02binary\xff"
        big = "x" * 200_000
        await ws.send(big)
        assert await ws.recv() == big
        # A fragmented message comes back whole, with its type.
        await ws.send(["frag", "mented"])
        assert await ws.recv() == "fragmented"
        return ws.response.headers.get("Sec-WebSocket-Extensions")


def test_embedded_default_echoes_text_and_binary_and_is_ready(gateway_factory):
    # What `make run` starts, moved to a free loopback port through the environment.
    gw = gateway_factory(env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0"})
    line = gw.wait_for_log(r"msg=certificate .*sha256=([0-9A-F]{2}:){31}[0-9A-F]{2}")
    assert "CN=localhost" in line
    extensions = run(echo_roundtrip(gw.url("/echo"), insecure_context()))
    assert extensions.startswith("permessage-deflate")

    import json
    import time
    import urllib.request
    # Ready once the supervised chat worker is linked.
    deadline = time.time() + 20
    while True:
        try:
            resp = urllib.request.urlopen(gw.url("/readyz", scheme="https"), context=insecure_context(), timeout=5)
            break
        except urllib.error.HTTPError as error:
            assert error.code == 503 and time.time() < deadline
            time.sleep(0.1)
    assert resp.status == 200 and resp.read() == b"ready\n"

    async def chat():
        async with websockets.connect(gw.url("/chat?name=me"), ssl=insecure_context()) as ws:
            assert json.loads(await ws.recv()) == {"type": "join", "name": "me"}
            await ws.send("hello room")
            assert json.loads(await ws.recv()) == {"type": "message", "name": "me", "text": "hello room"}

    run(chat())


def test_self_signed_certificate_verifies_for_localhost(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    host, port = gw.address()
    pem = ssl.get_server_certificate((host, port))
    ctx = ssl.create_default_context(cadata=pem)  # trust exactly this certificate
    ctx.check_hostname = True
    url = "wss://localhost:%d/echo" % port
    assert run(echo_roundtrip(url, ctx)) is not None


def test_echo_without_compression(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    assert run(echo_roundtrip(gw.url("/echo"), insecure_context(), compression=None)) is None


def test_access_log_line_has_peer_route_counts_and_close_code(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    async def session():
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context()) as ws:
            await ws.send("abc")
            await ws.recv()
            await ws.send(b"12345")
            await ws.recv()

    run(session())
    line = gw.wait_for_log(r'msg="websocket closed"')
    for field in ("peer=127.0.0.1:", "route=echo", "messages_in=2", "messages_out=2", "bytes_in=8", "bytes_out=8",
                  "close_code=1000", "closed_by=client", "duration_ms="):
        assert field in line, (field, line)


def test_many_concurrent_sessions(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    async def one(i):
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context()) as ws:
            for j in range(20):
                await ws.send("%d-%d" % (i, j))
                assert await ws.recv() == "%d-%d" % (i, j)

    async def all_of_them():
        await asyncio.gather(*(one(i) for i in range(50)))

    run(all_of_them(), timeout=60)
