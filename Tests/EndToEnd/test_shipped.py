"""The configuration the project ships (rootfs/etc/wssgate/wssgate.yaml), run as a user runs it:
under systemd-socket-activate, with only its paths and ports substituted and a proxy route added,
clients on both listeners and every route kind. SIGTERM must drain every listener: each client
gets 1001 within drain_spread, no listener accepts afterwards, the exit status is 0, and standard
error holds nothing but JSON log lines (the file's log.format)."""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import websockets

from conftest import BINARY, ROOT, check_round_trip, free_ports, insecure_context, run, wait_until_listening
from test_proxy import Upstream
from test_systemd import NotifySocket

pytestmark = pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd tools not installed")

SHIPPED = os.path.join(ROOT, "rootfs", "etc", "wssgate", "wssgate.yaml")
# The shipped file leaves server.drain_spread at its default.
DRAIN_SPREAD = 2.0


def make_certificate(folder):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(folder, "privkey.pem"), "-out", os.path.join(folder, "fullchain.pem"),
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)


def shipped_config(folder, local_port, upstream_port, order, unix_path=None, public_address=None):
    """The shipped file with paths and ports substituted, a proxy route added, and its two
    listener blocks in the order asked for (plus a Unix-socket listener when `unix_path`)."""
    text = open(SHIPPED).read()
    text = (text.replace("/etc/letsencrypt/live/example.com/", folder + "/")
                .replace("/run/wssgate/workers", os.path.join(folder, "workers"))
                .replace("unix:/run/wssgate/admin.sock", "unix:" + os.path.join(folder, "admin.sock"))
                .replace("127.0.0.1:8080", "127.0.0.1:%d" % local_port)
                .replace("command: wssgate\n", "command: %s\n" % BINARY))
    if public_address:
        text = text.replace('address: "fd:https"', 'address: "%s"' % public_address)
    head, rest = text.split("listeners:\n", 1)
    listeners, tail = rest.split("admin:\n", 1)
    public, local = listeners.split("  local:\n", 1)
    blocks = {"public": public, "local": "  local:\n" + local}
    if unix_path:
        blocks["unix"] = '  unix:\n    address: "unix:%s"\n' % unix_path
    ordered = "".join(blocks[name] for name in order)
    proxy = ("  proxied:\n    path: /proxied\n    kind: proxy\n    proxy:\n      upstream: \"ws://127.0.0.1:%d/\"\n" % upstream_port)
    return head + "listeners:\n" + ordered + "admin:\n" + tail + proxy


async def client(connect, path, label, results, opened):
    """Connects, checks the route answers, then waits for the gateway's close."""
    ws = await connect(path)
    if path.startswith("/echo"):
        await ws.send("hello " + label)
        assert await ws.recv() == "hello " + label
    elif path.startswith("/proxied"):
        json.loads(await ws.recv())  # the upstream's forwarding report
        await ws.send("via proxy " + label)
        assert await ws.recv() == "via proxy " + label
    opened.append(label)
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass
    results[label] = (ws.close_code, time.monotonic())


def refuses_new_connections(connect, path):
    async def attempt():
        try:
            ws = await asyncio.wait_for(connect(path), 2)
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake, websockets.InvalidStatus, EOFError):
            return True
        await ws.close()
        return False
    return attempt()


VARIANTS = {
    # name: (listener order, socket-activated public listener, a Unix-socket listener)
    "shipped_order_tls_first": (["public", "local"], True, False),
    "plain_first": (["local", "public"], True, False),
    "unix_socket_first": (["unix", "public", "local"], True, True),
    "tcp_tls_without_passed_socket": (["public", "local"], False, False),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_shipped_configuration_drains_every_listener_and_route(variant):
    order, activated, with_unix = VARIANTS[variant]
    folder = tempfile.mkdtemp(prefix="wgs")
    make_certificate(folder)
    upstream = Upstream()
    local_port, public_port = free_ports(2)
    unix_path = os.path.join(folder, "ws.sock") if with_unix else None
    config = os.path.join(folder, "wssgate.yaml")
    with open(config, "w") as f:
        f.write(shipped_config(folder, local_port, upstream.port, order, unix_path,
                               public_address=None if activated else "127.0.0.1:%d" % public_port))
    assert check_round_trip(config), "the shipped configuration does not load"
    notify = NotifySocket()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSSGATE_")}
    if activated:
        command = ["systemd-socket-activate", "-l", "127.0.0.1:%d" % public_port, "--fdname=https",
                   "-E", "NOTIFY_SOCKET=" + notify.path, BINARY, "run", "--config", config]
    else:
        env["NOTIFY_SOCKET"] = notify.path
        command = [BINARY, "run", "--config", config]
    # Standard error goes to a file, not a pipe nobody reads until the end: a failure shows it.
    log_path = os.path.join(folder, "gateway.log")
    log_file = open(log_path, "w")
    gateway = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file, text=True, env=env)
    try:
        def public(path):
            return websockets.connect("wss://127.0.0.1:%d%s" % (public_port, path), ssl=insecure_context(), open_timeout=5)

        def local(path):
            return websockets.connect("ws://127.0.0.1:%d%s" % (local_port, path), open_timeout=5)

        def over_unix(path):
            return websockets.unix_connect(unix_path, "ws://localhost" + path, open_timeout=5)

        sides = {"public": public, "local": local}
        if with_unix:
            sides["unix"] = over_unix

        async def scenario():
            if activated:
                # systemd-socket-activate starts the gateway on the first connection, so that
                # one must come after its bind (a refused one would leave the gateway unstarted).
                await asyncio.to_thread(wait_until_listening, public_port)
            else:
                for _ in range(200):
                    try:
                        socket.create_connection(("127.0.0.1", public_port), timeout=1).close()
                        break
                    except OSError:
                        await asyncio.sleep(0.05)
            results, opened, tasks = {}, [], []
            first = asyncio.create_task(client(public, "/echo", "public-echo", results, opened))
            await asyncio.to_thread(notify.wait_for, "READY=1")
            tasks.append(first)
            for side, connect in sides.items():
                for path in ("/echo", "/chat?room=lobby&name=" + side, "/proxied"):
                    label = "%s-%s" % (side, path.split("?")[0].strip("/"))
                    if label != "public-echo":
                        tasks.append(asyncio.create_task(client(connect, path, label, results, opened)))
            deadline = time.monotonic() + 20
            while len(opened) < len(tasks) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert sorted(opened) == sorted("%s-%s" % (s, r) for s in sides for r in ("echo", "chat", "proxied")), opened
            signalled = time.monotonic()
            gateway.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # No listener takes a connection once the drain has begun.
            for side, connect in sides.items():
                assert await refuses_new_connections(connect, "/echo"), "%s accepted a connection after SIGTERM" % side
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
            return signalled, results

        try:
            signalled, results = run(scenario(), timeout=60)
            assert gateway.wait(timeout=30) == 0
        except BaseException as error:
            if gateway.poll() is None:
                gateway.kill()
                gateway.wait()
            raise AssertionError("%r; exit status %s, notifications %r; the gateway's standard error:\n%s"
                                 % (error, gateway.returncode, notify.messages, open(log_path).read()[-8000:])) from error
        for label, (code, closed_at) in sorted(results.items()):
            assert code == 1001, "%s closed with %s" % (label, code)
            assert closed_at - signalled <= DRAIN_SPREAD + 0.75, "%s closed %.2f s after SIGTERM" % (label, closed_at - signalled)
        lines = open(log_path).read().splitlines()
        if activated:
            # systemd-socket-activate's own lines, before it execs the gateway.
            own = [r"Listening on 127\.0\.0\.1:\d+ as 3\.", r"Communication attempt on fd 3\.", r"Execing .*"]
            while lines and any(re.fullmatch(pattern, lines[0]) for pattern in own):
                lines = lines[1:]
        assert lines
        for line in lines:
            event = json.loads(line)  # raises on anything that is not a JSON log line
            assert {"ts", "level", "msg"} <= set(event), line
        messages = [json.loads(line)["msg"] for line in lines]
        assert "draining" in messages and "stopped" in messages
        assert not any(json.loads(line)["level"] in ("error", "critical") for line in lines), lines
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()
        log_file.close()
        upstream.stop()
