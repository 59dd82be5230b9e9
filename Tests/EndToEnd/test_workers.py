"""Worker routes through the real gateway with real worker processes (the Swift library's and
the dependency-free Python one's), over wss://."""
import asyncio
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

import pytest
import websockets

from conftest import BINARY, ECHO_CONFIG, ROOT, insecure_context, run, with_witness
from fake_worker import FakeWorker

PYTHON = sys.executable
# The bundled workers: subcommands of the gateway's own binary.
SWIFT_CHAT = (BINARY, ["worker", "chat"])
SWIFT_ECHO = (BINARY, ["worker", "echo"])
PY_CHAT = os.path.join(ROOT, "examples", "python", "chat.py")
PY_ECHO = os.path.join(ROOT, "examples", "python", "echo.py")

BASE = ECHO_CONFIG.replace("level: debug", "level: info")


def worker_route(name, path, command, args=(), instances=1, extra=""):
    args_yaml = "[%s]" % ", ".join('"%s"' % a for a in args)
    return """  %s:
    path: %s
    kind: worker
    worker:
      command: "%s"
      args: %s
      instances: %d
%s""" % (name, path, command, args_yaml, instances, extra)


def wait_linked(gw, count, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sum(1 for line in gw.lines if 'msg="worker linked"' in line or '"msg":"worker linked"' in line) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("workers not linked:\n" + "\n".join(gw.lines[-30:]))


CHAT_WORKERS = {
    "swift": SWIFT_CHAT,
    "python": (PYTHON, [PY_CHAT]),
}


@pytest.mark.parametrize("language", ["swift", "python"])
def test_hundred_clients_in_a_chat_room_receive_everything_in_order(gateway_factory, language):
    command, args = CHAT_WORKERS[language]
    gw = gateway_factory(BASE + worker_route("chat", "/chat", command, args, instances=2))
    wait_linked(gw, 2)
    clients, per_client = 100, 10

    async def scenario():
        ctx = insecure_context()
        sockets = []
        for i in range(clients):
            sockets.append(await websockets.connect(gw.url("/chat?room=r1&name=c%d" % i), ssl=ctx, max_queue=None))
        # Everyone is subscribed once the first client has seen every join.
        joined = 0
        while joined < clients:
            event = json.loads(await asyncio.wait_for(sockets[0].recv(), 20))
            joined += event["type"] == "join"

        async def talk(i, ws):
            for j in range(per_client):
                await ws.send("%d:%d" % (i, j))

        async def listen(i, ws):
            seen = {}
            total = 0
            while total < clients * per_client:
                event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if event["type"] != "message":
                    continue
                sender, number = map(int, event["text"].split(":"))
                assert number == seen.get(sender, -1) + 1, "client %d: out of order from %d" % (i, sender)
                seen[sender] = number
                total += 1
            return seen

        results = await asyncio.gather(*(listen(i, ws) for i, ws in enumerate(sockets)), *(talk(i, ws) for i, ws in enumerate(sockets)))
        for seen in results[:clients]:
            assert seen == {i: per_client - 1 for i in range(clients)}
        for ws in sockets:
            await ws.close()

    run(scenario(), timeout=120)


def worker_pids(gw, instance_prefix):
    pids = {}
    for line in gw.lines:
        m = re.search(r'msg="worker started" instance=(\S+) pid=(\d+)', line)
        if m and m.group(1).startswith(instance_prefix):
            pids[m.group(1)] = int(m.group(2))
    return pids


@pytest.mark.parametrize("language", ["swift", "python"])
def test_kill_9_of_an_instance_under_load_disconnects_nobody(gateway_factory, language):
    command, args = {"swift": SWIFT_ECHO, "python": (PYTHON, [PY_ECHO])}[language]
    gw = gateway_factory(BASE + worker_route("work", "/work", command, args, instances=2, extra="      resume_timeout: 20s\n"))
    wait_linked(gw, 2)

    async def scenario():
        ctx = insecure_context()
        sockets = [await websockets.connect(gw.url("/work"), ssl=ctx) for _ in range(100)]

        async def echo(ws, text, patience=15):
            # A message in flight to the dying instance may be lost (at-most-once): resend.
            deadline = time.time() + patience
            while time.time() < deadline:
                await ws.send(text)
                try:
                    while True:
                        reply = await asyncio.wait_for(ws.recv(), 2)
                        if reply == text:
                            return True
                except asyncio.TimeoutError:
                    continue
            return False

        assert all(await asyncio.gather(*(echo(ws, "before %d" % i) for i, ws in enumerate(sockets))))

        async def load():
            for round_ in range(20):
                await asyncio.gather(*(ws.send("load %d %d" % (i, round_)) for i, ws in enumerate(sockets)))
                await asyncio.sleep(0.01)

        loader = asyncio.ensure_future(load())
        await asyncio.sleep(0.05)
        victim = worker_pids(gw, "work-")["work-0"]
        os.kill(victim, signal.SIGKILL)
        await loader
        results = await asyncio.gather(*(echo(ws, "after %d" % i) for i, ws in enumerate(sockets)))
        assert all(results), "%d clients got no echo after the kill" % results.count(False)
        assert all(ws.close_code is None for ws in sockets), "a client was disconnected"
        for ws in sockets:
            await ws.close()

    run(scenario(), timeout=120)
    assert any('msg="worker link lost"' in line for line in gw.lines)
    if language == "python":  # its start-up line, forwarded with the instance name
        gw.wait_for_log(r'msg="worker output" instance=work-0 line="wssgate worker python-echo listening')
    gw.wait_for_log(r'msg="worker exited; restarting".*status="signal 9"')


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_worker_that_stops_reading_bounds_the_gateway(gateway_factory):
    stalled = FakeWorker("stall", credit=65536)
    gw = gateway_factory(BASE + """  stuck:
    path: /stuck
    kind: worker
    worker:
      socket: %s
""" % stalled.path)
    wait_linked(gw, 1)

    async def scenario():
        ctx = insecure_context()
        # Uncompressed and incompressible: every byte sent is a byte the gateway must hold or refuse.
        async with websockets.connect(gw.url("/stuck"), ssl=ctx, write_limit=65536, compression=None) as ws:
            before = rss_kib(gw.proc.pid)
            sent = 0
            chunk = os.urandom(65536)

            async def flood():
                nonlocal sent
                for _ in range(1024):  # 64 MiB if nothing pushed back
                    await ws.send(chunk)
                    sent += len(chunk)

            task = asyncio.ensure_future(flood())
            await asyncio.sleep(4)
            blocked = not task.done()
            task.cancel()
            grown = rss_kib(gw.proc.pid) - before
            # Meanwhile another route works as usual.
            async with websockets.connect(gw.url("/echo"), ssl=ctx) as other:
                await other.send("still here")
                assert await asyncio.wait_for(other.recv(), 5) == "still here"
            return blocked, sent, grown

    blocked, sent, grown = run(scenario(), timeout=60)
    assert blocked, "the client could send everything: nothing pushed back"
    # What the client gets out before blocking: the kernel's socket buffers (autotuned to a few
    # MiB each way), the worker's 64 KiB credit, and one read's worth of frames in the gateway.
    print("stalled worker: the client got %.1f MiB out before blocking" % (sent / 1048576))
    assert sent < 32 << 20, sent
    assert grown < 24 * 1024, "gateway RSS grew by %d KiB" % grown


def frame(frame_type, body):
    return struct.pack("!IB", 1 + len(body), frame_type) + body


BROKEN = [
    ("frame-too-large", struct.pack("!IB", 1 << 30, 0x22)),
    ("unknown-frame-type", frame(0x7F, b"")),
    ("truncated-frame", struct.pack("!IB", 20, 0x22) + b"\x00\x01"),  # then the link closes mid-frame
    ("trailing-bytes", frame(0x20, struct.pack("!Q", 1) + b"extra")),
    ("invalid-value", frame(0x22, struct.pack("!QB", 1, 9) + b"bad kind")),
    ("frame-too-large", b"GET / HTTP/1.1\r\n\r\n"),  # garbage
]


def test_broken_frames_end_only_that_link(gateway_factory):
    broken = FakeWorker([bytes_ for _, bytes_ in BROKEN])
    gw = gateway_factory(BASE + """  broken:
    path: /broken
    kind: worker
    worker:
      socket: %s
""" % broken.path + worker_route("good", "/good", PYTHON, [PY_ECHO]))
    deadline = time.time() + 30
    while time.time() < deadline and broken.links < len(BROKEN):
        time.sleep(0.1)
    time.sleep(0.5)
    log = "\n".join(gw.lines)
    for code, _ in BROKEN:
        assert "[%s]" % code in log, code
    assert 'msg="worker broke the protocol; closing its link"' in log

    async def good():
        async with websockets.connect(gw.url("/good"), ssl=insecure_context()) as ws:
            await ws.send("fine")
            assert await asyncio.wait_for(ws.recv(), 10) == "fine"

    run(good())
    assert gw.proc.poll() is None


def test_worker_authorization_statuses(gateway_factory):
    silent = FakeWorker("silent")
    gw = gateway_factory(BASE + worker_route("chat", "/chat", PYTHON, [PY_CHAT], extra="""      authorize: true
      env: ["WORKER_AUTH_TOKEN=s3cret"]
""") + """  mute:
    path: /mute
    kind: worker
    worker:
      socket: %s
      authorize: true
      authorize_timeout: 1s
""" % silent.path)
    wait_linked(gw, 2)

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/chat?token=s3cret&name=ok"), ssl=ctx) as ws:
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert event == {"type": "join", "name": "ok"}
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(gw.url("/chat?token=wrong"), ssl=ctx)
        assert refused.value.response.status_code == 403
        started = time.time()
        with pytest.raises(websockets.exceptions.InvalidStatus) as timed_out:
            await websockets.connect(gw.url("/mute"), ssl=ctx, open_timeout=10)
        assert timed_out.value.response.status_code == 503
        assert 0.9 < time.time() - started < 5

    run(scenario())
    assert silent.opens >= 1


def test_sends_right_behind_the_accept_reach_the_client_in_order(gateway_factory):
    """A worker that accepts and sends at once (one write, one read on the gateway): the sends
    wait for the upgrade they follow, and arrive in order."""
    eager = FakeWorker("accept-and-send")
    gw = gateway_factory(BASE + """  eager:
    path: /eager
    kind: worker
    worker:
      socket: %s
      authorize: true
""" % eager.path)
    wait_linked(gw, 1)

    async def scenario():
        for _ in range(20):
            async with websockets.connect(gw.url("/eager"), ssl=insecure_context()) as ws:
                assert await asyncio.wait_for(ws.recv(), 10) == "first"
                assert await asyncio.wait_for(ws.recv(), 10) == "second"

    run(scenario(), timeout=60)
    assert eager.opens == 20


def test_what_a_worker_sends_before_its_accept_reaches_the_client(gateway_factory):
    """A worker that subscribes the connection, publishes to its topic and sends to it before
    the accept (the chat example does the first two right after accepting, over another link
    than the accept: a CI run lost its join that way): all of it reaches the client after the
    101, in order, then what follows the accept."""
    early = FakeWorker("send-then-accept")
    gw = gateway_factory(BASE + """  early:
    path: /early
    kind: worker
    worker:
      socket: %s
      authorize: true
""" % early.path)
    wait_linked(gw, 1)

    async def scenario():
        async with websockets.connect(gw.url("/early"), ssl=insecure_context()) as ws:
            received = [await asyncio.wait_for(ws.recv(), 10) for _ in range(3)]
            assert received == ["published", "sent", "after"]

    run(scenario(), timeout=30)
    assert early.opens == 1


def test_a_socket_owned_by_another_user_is_not_trusted(gateway_factory):
    import tempfile
    if os.getuid() != 0 or not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs root (to start a worker as another user) and the system python3")
    directory = tempfile.mkdtemp(prefix="wgu")
    os.chmod(directory, 0o777)
    path = os.path.join(directory, "other.sock")
    # The Python echo worker, started as nobody (65534), with the system interpreter (the
    # test venv may live where nobody cannot read).
    other = subprocess.Popen(
        ["/usr/bin/python3", "-c", "import os, sys, runpy; os.setgid(65534); os.setuid(65534); sys.argv=['echo.py']; runpy.run_path(%r, run_name='__main__')" % PY_ECHO],
        env={**os.environ, "WSSGATE_WORKER_SOCKET": path}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 10
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.05)
        os.chmod(path, 0o666)  # let the gateway connect at all: the uid check must stop it
        gw = gateway_factory(BASE + """  other:
    path: /other
    kind: worker
    worker:
      socket: %s
      authorize_timeout: 1s
      resume_timeout: 1s
""" % path)
        gw.wait_for_log(r'msg="worker socket owned by a user that is not allowed".*uid=65534')
        assert not any('msg="worker linked"' in line for line in gw.lines)

        async def refused():
            async with websockets.connect(gw.url("/other"), ssl=insecure_context()) as ws:
                await ws.wait_closed()
                return ws.close_code

        assert run(refused()) == 1013  # no trusted instance came within resume_timeout
    finally:
        other.kill()
        other.wait()


def socket_inodes(pid):
    """The sockets a process holds, by inode."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            continue
        if m:
            inodes.add(int(m.group(1)))
    return inodes


def tcp_inodes(port):
    """The TCP sockets on a local port (a listener and the connections it accepted), by inode."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(int(fields[9]))
    return inodes


def test_a_worker_restarted_under_connections_holds_none_of_them(gateway_factory):
    """NIO opens its sockets without close-on-exec. A worker started while clients are connected
    (here: restarted after a kill) must still get none of the gateway's descriptors: holding the
    listener and every client socket, it would keep open a connection the gateway closed."""
    gw = gateway_factory(BASE + worker_route("work", "/work", SWIFT_ECHO[0], SWIFT_ECHO[1], instances=1))
    wait_linked(gw, 1)
    host, port = gw.address()

    async def scenario():
        ctx = insecure_context()
        clients = [await websockets.connect(gw.url(path), ssl=ctx) for path in ("/echo", "/echo", "/work")]
        first = worker_pids(gw, "work-")["work-0"]
        os.kill(first, signal.SIGKILL)
        wait_linked(gw, 2)
        second = worker_pids(gw, "work-")["work-0"]
        assert second != first
        gateway_sockets = tcp_inodes(port)
        # The check can fail: the gateway itself holds the listener and the three connections.
        assert len(gateway_sockets & socket_inodes(gw.proc.pid)) >= 4
        leaked = gateway_sockets & socket_inodes(second)
        assert not leaked, "the restarted worker holds %d of the gateway's sockets" % len(leaked)
        # A connection the gateway closes ends for its client.
        await clients[0].send("x" * 2_000_000)  # over the route's max_message_bytes: closed with 1009
        await asyncio.wait_for(clients[0].wait_closed(), 10)
        assert clients[0].close_code == 1009
        await clients[2].send("still here")
        assert await asyncio.wait_for(clients[2].recv(), 10) == "still here"
        for ws in clients[1:]:
            await ws.close()

    run(scenario(), timeout=60)


@pytest.mark.parametrize("language", ["swift", "python"])
def test_workers_exit_when_the_gateway_is_killed(gateway_factory, language):
    """A gateway killed outright cannot stop its workers: they notice and exit by themselves."""
    command, args = {"swift": SWIFT_ECHO, "python": (PYTHON, [PY_ECHO])}[language]
    gw = gateway_factory(BASE + worker_route("work", "/work", command, args, instances=2))
    wait_linked(gw, 2)
    pids = list(worker_pids(gw, "work").values())
    assert len(pids) == 2
    gw.stop(signal.SIGKILL)
    deadline = time.time() + 10
    alive = pids
    while alive and time.time() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if os.path.exists("/proc/%d" % pid) and open("/proc/%d/stat" % pid).read().split(")")[1].split()[0] != "Z"]
    assert not alive, "workers still running after the gateway died: %s" % alive


def test_a_worker_that_breaks_every_link_after_its_hello_does_not_hold_clients(gateway_factory):
    """An instance that takes a connection and dies at once does not buy it another
    resume_timeout: a worker that breaks every link right after its hello gets its clients
    closed with 1013 once resume_timeout has passed since their first loss."""
    import websockets
    flapping = FakeWorker("flap")
    gw = gateway_factory(BASE + """  flap:
    path: /flap
    kind: worker
    worker:
      socket: %s
      resume_timeout: 3s
""" % flapping.path)
    gw.wait_for_log(r'msg="worker linked"')

    async def held():
        async with websockets.connect(gw.url("/flap"), ssl=insecure_context()) as ws:
            started = time.time()
            await asyncio.wait_for(ws.wait_closed(), 30)
            return ws.close_code, time.time() - started

    code, seconds = run(held(), timeout=60)
    assert code == 1013, code
    assert flapping.opens >= 2, flapping.opens  # it was taken again, more than once
    assert seconds < 3 + 2, seconds

