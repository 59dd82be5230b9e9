"""Listeners of every kind, and a graceful stop."""
import asyncio
import os
import signal
import tempfile
import time

import websockets

from conftest import ECHO_CONFIG, insecure_context, run


def test_ipv6_and_unix_listeners_and_plain_ws(gateway_factory):
    socket_path = os.path.join(tempfile.mkdtemp(prefix="wgs"), "gw.sock")
    gw = gateway_factory("""
listeners:
  v6:
    address: "[::1]:0"
    tls:
      self_signed: true
  local:
    address: "unix:%s"
  plain:
    address: "127.0.0.1:0"
routes:
  echo:
    path: /echo
    kind: echo
""" % socket_path, listeners=3)

    async def echo_all():
        async with websockets.connect(gw.url("/echo", name="v6"), ssl=insecure_context()) as ws:
            await ws.send("v6")
            assert await ws.recv() == "v6"
        async with websockets.unix_connect(socket_path, "ws://localhost/echo") as ws:
            await ws.send("unix")
            assert await ws.recv() == "unix"
        async with websockets.connect(gw.url("/echo", name="plain", scheme="ws")) as ws:
            await ws.send("plain")
            assert await ws.recv() == "plain"

    run(echo_all())


def test_sigterm_closes_every_session_with_1001_and_exits_0(gateway_factory):
    gw = gateway_factory("server:\n  drain_timeout: 10s\n" + ECHO_CONFIG)

    async def drained():
        sessions = [await websockets.connect(gw.url("/echo"), ssl=insecure_context()) for _ in range(20)]
        for ws in sessions:
            await ws.send("x")
            await ws.recv()
        started = time.time()
        gw.proc.send_signal(signal.SIGTERM)
        codes = []
        for ws in sessions:
            await ws.wait_closed()
            codes.append((ws.close_code, ws.close_reason))
        return codes, time.time() - started

    codes, elapsed = run(drained())
    # The reason says what a client should do: connect again (here or elsewhere).
    assert codes == [(1001, "restart")] * 20
    assert gw.proc.wait(timeout=15) == 0
    assert elapsed < 10
    gw.wait_for_log("msg=stopped")


def test_sigint_stops_an_idle_gateway(gateway_factory):
    gw = gateway_factory(env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0"})
    gw.proc.send_signal(signal.SIGINT)
    assert gw.proc.wait(timeout=15) == 0


def test_serves_as_an_unprivileged_user(gateway_factory):
    """As in the image (USER 65532): nothing in the connection path may need privileges (a
    socket option that only root may set once dropped every connection)."""
    import shutil
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        import pytest
        pytest.skip("needs root and setpriv to drop to another user")
    gw = gateway_factory(ECHO_CONFIG, wrapper=["setpriv", "--reuid", "65532", "--regid", "65532", "--clear-groups"])

    async def echo():
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context()) as ws:
            await ws.send("unprivileged")
            assert await ws.recv() == "unprivileged"

    run(echo())
