"""SIGHUP reloads certificates and configuration without dropping anything; a broken new
certificate or configuration is refused and the running one stays; SIGTERM closes everyone with
1001 and exits 0. With 200 live wss:// connections throughout."""
import asyncio
import json
import hashlib
import os
import signal
import ssl
import subprocess
import tempfile
import time

import pytest
import websockets

from conftest import ECHO_CONFIG, ROOT, insecure_context, run
from test_proxy import Upstream

CONNECTIONS = 200


def make_certificate(directory, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(directory, name + ".key"), "-out", os.path.join(directory, name + ".pem"),
                    "-days", "2", "-subj", "/CN=%s" % name, "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)


def install(directory, name):
    for suffix, target in ((".pem", "fullchain.pem"), (".key", "privkey.pem")):
        with open(os.path.join(directory, name + suffix), "rb") as source, open(os.path.join(directory, target + ".tmp"), "wb") as out:
            out.write(source.read())
        os.replace(os.path.join(directory, target + ".tmp"), os.path.join(directory, target))


def presented(port):
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))
    return hashlib.sha256(der).hexdigest()


def fingerprint(path):
    with open(path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def test_sighup_and_sigterm_with_200_live_connections(gateway_factory):
    directory = tempfile.mkdtemp(prefix="wgr")
    for name in ("first", "second"):
        make_certificate(directory, name)
    install(directory, "first")
    config = """
server:
  drain_timeout: 20s
  drain_spread: 1s
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      certificate: %s/fullchain.pem
      key: %s/privkey.pem
routes:
  echo:
    path: /echo
    kind: echo
""" % (directory, directory)
    gw = gateway_factory(config)
    _, port = gw.address()
    assert presented(port) == fingerprint(os.path.join(directory, "first.pem"))

    async def scenario():
        ctx = insecure_context()
        sockets = []
        for _ in range(CONNECTIONS):
            sockets.append(await websockets.connect(gw.url("/echo"), ssl=ctx))

        async def all_echo(tag):
            async def one(i, ws):
                await ws.send("%s %d" % (tag, i))
                assert await asyncio.wait_for(ws.recv(), 10) == "%s %d" % (tag, i)
            await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))

        await all_echo("start")

        # A new certificate: nobody dropped, new handshakes present it.
        install(directory, "second")
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded", 10)
        await all_echo("after reload")
        assert await asyncio.to_thread(presented, port) == fingerprint(os.path.join(directory, "second.pem"))

        # A broken certificate: refused, the running one stays, nobody dropped.
        with open(os.path.join(directory, "fullchain.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"reload refused: a certificate does not load", 10)
        await all_echo("after broken reload")
        assert await asyncio.to_thread(presented, port) == fingerprint(os.path.join(directory, "second.pem"))

        # A change a running process cannot make (the number of event loops), next to one it
        # can (a new route): refused as a whole, the new route is not served.
        with open(gw.config_path) as f:
            text = f.read()
        with open(gw.config_path, "w") as f:
            f.write(text.replace("server:\n", "server:\n  threads: 3\n") + "  more:\n    path: /more\n    kind: echo\n")
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"reload refused: these changes need a restart.*server.threads", 10)
        await all_echo("after refused configuration")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(gw.url("/more"), ssl=ctx)
        assert refused.value.response.status_code == 404

        # SIGTERM: every client gets 1001, the process exits 0 within the drain timeout.
        started = time.time()
        gw.proc.send_signal(signal.SIGTERM)
        codes = []
        for ws in sockets:
            await asyncio.wait_for(ws.wait_closed(), 25)
            codes.append(ws.close_code)
        return codes, time.time() - started

    codes, elapsed = run(scenario(), timeout=120)
    assert codes == [1001] * CONNECTIONS
    assert gw.proc.wait(timeout=25) == 0
    assert elapsed < 20


def test_sighup_applies_route_limits_to_new_connections(gateway_factory):
    from conftest import ECHO_CONFIG
    gw = gateway_factory(ECHO_CONFIG + "    max_message_bytes: 1KiB\n")

    async def scenario():
        ctx = insecure_context()
        old = await websockets.connect(gw.url("/echo"), ssl=ctx)
        with open(gw.config_path) as f:
            text = f.read()
        with open(gw.config_path, "w") as f:
            f.write(text.replace("max_message_bytes: 1KiB", "max_message_bytes: 4KiB"))
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded", 10)
        new = await websockets.connect(gw.url("/echo"), ssl=ctx)
        await new.send("n" * 3000)  # allowed by the new limit
        assert len(await new.recv()) == 3000
        await old.send("o" * 3000)  # the old connection keeps the limit it started with
        await old.wait_closed()
        assert old.close_code == 1009
        await new.close()

    run(scenario())


# The bundled echo worker, `wssgate worker echo`, run from the gateway's binary.
from conftest import BINARY as ECHO_WORKER


def worker_processes(gateway_pid):
    """The gateway's child processes, reaped or not, as (pid, executable path)."""
    from test_hibernation import children
    found = []
    for pid in children(gateway_pid, zombies=True):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                found.append((pid, f.read().split(b"\0")[0].decode()))
        except OSError:
            pass
    return found


def test_sighup_adds_removes_and_replaces_routes_with_100_live_connections(gateway_factory):
    """Acceptance: a reload that adds a route, removes one, changes a worker route's command and a
    proxy's upstream drops nobody; the new route answers, the removed one is 404 for new upgrades,
    the changed worker route's connections keep echoing through the old pool until they close,
    and then the old pool's processes are gone."""
    folder = tempfile.mkdtemp(prefix="wgr")
    other_worker = os.path.join(folder, "echo-worker-b")
    subprocess.run(["cp", ECHO_WORKER, other_worker], check=True)
    first, second = Upstream(), Upstream()
    template = """
server:
  drain_spread: 1s
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
routes:
  echo:
    path: /echo
    kind: echo
  hub:
    path: /hub
    kind: hub
  work:
    path: /work
    kind: worker
    worker:
      command: "%(worker)s"
      args: ["worker", "echo"]
      instances: 2
      socket_dir: "%(folder)s/workers"
  proxied:
    path: /proxied
    kind: proxy
    proxy:
      upstream: "ws://127.0.0.1:%(upstream)d/"
%(extra)s"""
    before = template % {"worker": ECHO_WORKER, "folder": folder, "upstream": first.port,
                         "extra": "  gone:\n    path: /gone\n    kind: echo\n"}
    after = template % {"worker": other_worker, "folder": folder, "upstream": second.port,
                        "extra": "  added:\n    path: /added\n    kind: echo\n"}
    gw = gateway_factory(before)
    gw.wait_for_log(r"msg=.?worker linked|READY|listening", 10)

    async def scenario():
        ctx = insecure_context()
        routes = ["/echo", "/hub", "/work", "/proxied", "/gone"]
        clients = {route: [] for route in routes}
        for index in range(100):
            route = routes[index % len(routes)]
            for _ in range(100):
                try:
                    ws = await websockets.connect(gw.url(route), ssl=ctx)
                    break
                except websockets.InvalidStatus:
                    await asyncio.sleep(0.1)  # the worker pool is still linking
            if route == "/proxied":
                report = json.loads(await ws.recv())
                assert report["Host"] == "127.0.0.1:%d" % first.port
            clients[route].append(ws)

        async def all_alive(tag):
            async def one(route, index, ws):
                if route == "/hub":
                    await ws.send(json.dumps({"op": "subscribe", "topic": "t.%s.%d" % (tag, index), "id": index}))
                    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "ack"
                else:
                    await ws.send("%s %d" % (tag, index))
                    assert await asyncio.wait_for(ws.recv(), 10) == "%s %d" % (tag, index)
            await asyncio.gather(*(one(route, i, ws) for route, sockets in clients.items() for i, ws in enumerate(sockets)))

        await all_alive("before")
        old_pool = {pid for pid, path in worker_processes(gw.proc.pid) if path == ECHO_WORKER}
        assert len(old_pool) == 2

        with open(gw.config_path, "w") as f:
            f.write(after)
        gw.proc.send_signal(signal.SIGHUP)
        line = await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded|reload refused", 20)
        assert "msg=reloaded" in line, line
        for change in ("routes.added added", "routes.gone removed", "routes.work replaced", "routes.proxied replaced"):
            assert change in line, line
        # Nobody dropped: every connection, the removed route's too, goes on.
        await all_alive("after")
        assert all(ws.close_code is None for sockets in clients.values() for ws in sockets)

        # The new route answers; the removed one is 404 for new upgrades.
        async with websockets.connect(gw.url("/added"), ssl=ctx) as ws:
            await ws.send("new")
            assert await ws.recv() == "new"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(gw.url("/gone"), ssl=ctx)
        assert refused.value.response.status_code == 404
        # New proxied connections reach the new upstream; old ones stay with the first.
        async with websockets.connect(gw.url("/proxied"), ssl=ctx) as ws:
            assert json.loads(await ws.recv())["Host"] == "127.0.0.1:%d" % second.port
        # New worker connections are served by the new pool, old ones still by the old pool.
        new_pool = {pid for pid, path in worker_processes(gw.proc.pid) if path == other_worker}
        assert len(new_pool) == 2
        async with websockets.connect(gw.url("/work"), ssl=ctx) as ws:
            await ws.send("through the new pool")
            assert await ws.recv() == "through the new pool"
        assert old_pool <= {pid for pid, _ in worker_processes(gw.proc.pid)}

        # The old pool's last connections close: its processes are stopped.
        for ws in clients["/work"]:
            await ws.close()
        deadline = time.time() + 15
        while time.time() < deadline and old_pool & {pid for pid, _ in worker_processes(gw.proc.pid)}:
            await asyncio.sleep(0.1)
        assert not old_pool & {pid for pid, _ in worker_processes(gw.proc.pid)}
        assert new_pool <= {pid for pid, _ in worker_processes(gw.proc.pid)}
        for route in ("/echo", "/hub", "/proxied", "/gone"):
            for ws in clients[route]:
                await ws.close()

    try:
        run(scenario(), timeout=120)
    finally:
        first.stop()
        second.stop()
    assert gw.stop() == 0


def test_reload_that_cannot_bind_changes_nothing_and_listeners_come_and_go(gateway_factory):
    """Listeners are part of the reload: a new one is bound, a removed one drained with 1001; an
    address that cannot be bound refuses the whole reload (the new route in it too)."""
    import socket
    base = """
server:
  drain_spread: 500ms
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
%s
routes:
  echo:
    path: /echo
    kind: echo
%s"""
    gw = gateway_factory(base % ("  side:\n    address: \"127.0.0.1:0\"\n", ""), listeners=2)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    taken = blocker.getsockname()[1]

    async def scenario():
        ctx = insecure_context()
        side = await websockets.connect(gw.url("/echo", name="side", scheme="ws"))
        main = await websockets.connect(gw.url("/echo"), ssl=ctx)
        # An address in use: refused as a whole.
        with open(gw.config_path, "w") as f:
            f.write(base % ('  side:\n    address: "127.0.0.1:0"\n  extra:\n    address: "127.0.0.1:%d"\n' % taken,
                            "  more:\n    path: /more\n    kind: echo\n"))
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"reload refused: a listener cannot be bound", 10)
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(gw.url("/more"), ssl=ctx)
        # The side listener removed, another added: the side's client gets 1001, main's goes on.
        with open(gw.config_path, "w") as f:
            f.write(base % ('  third:\n    address: "127.0.0.1:0"\n', ""))
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded", 10)
        await asyncio.wait_for(side.wait_closed(), 10)
        assert (side.close_code, side.close_reason) == (1001, "drain")
        await asyncio.to_thread(gw.wait_for_log, r"msg=listening.*listener=third", 10)
        async with websockets.connect(gw.url("/echo", name="third", scheme="ws")) as third:
            await third.send("third")
            assert await third.recv() == "third"
        await main.send("still")
        assert await main.recv() == "still"
        host, port = gw.address("side")
        with pytest.raises(OSError):
            socket.create_connection((host, port), timeout=1).close()
        await main.close()

    try:
        run(scenario(), timeout=60)
    finally:
        blocker.close()


def test_reload_applies_log_level_and_format_at_once(gateway_factory):
    from conftest import ECHO_CONFIG
    from conftest import raw_http
    gw = gateway_factory(ECHO_CONFIG.replace("level: debug", "level: info"))
    raw_http(*gw.address(), b"GET / HTTP/1.1\r\n\r\n", tls=False, read_timeout=1)
    time.sleep(0.3)
    with open(gw.config_path) as f:
        text = f.read()
    with open(gw.config_path, "w") as f:
        f.write(text.replace("level: info", "level: debug\n  format: json"))
    gw.proc.send_signal(signal.SIGHUP)
    line = gw.wait_for_log(r'"msg":"reloaded"', 10)
    json.loads(line)

    assert not any("tls handshake failed" in line for line in gw.lines)
    # Plain text to the TLS listener: a failed handshake, logged at debug level — which now
    # shows, as JSON, from a logger made before the reload.
    raw_http(*gw.address(), b"GET / HTTP/1.1\r\n\r\n", tls=False, read_timeout=1)
    debug = gw.wait_for_log(r'"msg":"tls handshake failed"', 10)
    assert json.loads(debug)["level"] == "debug"


def test_a_removed_route_is_drained_after_its_grace(gateway_factory):
    """`server.removed_route_grace`: after a reload removes a route, its open connections go on
    for the grace, then get 1001 with the reason `drain` (within the drain spread); the other
    routes' connections go on."""
    base = "server:\n  removed_route_grace: 1s\n  drain_spread: 500ms\n" + ECHO_CONFIG
    gw = gateway_factory(base + "  gone:\n    path: /gone\n    kind: echo\n")

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/echo"), ssl=ctx) as kept, websockets.connect(gw.url("/gone"), ssl=ctx) as gone:
            with open(gw.config_path, "w") as f:
                f.write(base)
            started = time.time()
            gw.proc.send_signal(signal.SIGHUP)
            await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded", 10)
            await gone.send("within the grace")
            assert await gone.recv() == "within the grace"
            await asyncio.wait_for(gone.wait_closed(), 10)
            assert (gone.close_code, gone.close_reason) == (1001, "drain")
            assert 0.9 < time.time() - started < 5
            await kept.send("still here")
            assert await kept.recv() == "still here"

    run(scenario())

