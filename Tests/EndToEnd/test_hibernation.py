"""Worker routes that hibernate (`worker.min_instances: 0`): the gateway holds every socket,
answers auto-responses itself, starts an instance on the first message that needs one, hands
each connection's attachment to whichever instance takes it, and stops idle instances while
their clients stay connected — checked by the processes that exist, not by the gateway's word."""
import asyncio
import os
import sys

import websockets

from conftest import ROOT, gateway_config, insecure_context, run
from test_metrics import scrape, value
from test_workers import worker_route

PYTHON = sys.executable
TALLY = os.path.join(ROOT, "Tests", "EndToEnd", "tally_worker.py")


def children(pid, zombies=False):
    """The live child processes of `pid` (with `zombies`, unreaped ones too), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if (zombies or fields[0] != "Z") and int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


async def wait_for(check, timeout, what):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep(0.05)


def hibernating_config(admin_socket, extra=""):
    route = worker_route("tally", "/tally", PYTHON, [TALLY], instances=1, extra="""      min_instances: 0
      idle_stop: 2s
      auto_response:
        requests: ['{"type":"ping"}']
        responses: ['{"type":"pong"}']
""" + extra)
    return gateway_config(level="info", routes=route, extra='admin:\n  address: "unix:%s"\n' % admin_socket)


def test_hundred_clients_on_a_sleeping_route_wake_one_instance_that_goes_back_to_sleep(gateway_factory, tmp_path):
    admin = str(tmp_path / "admin.sock")
    gw = gateway_factory(hibernating_config(admin))
    gw.wait_for_log("listening")
    gateway_pid = gw.proc.pid
    assert children(gateway_pid) == [], "no worker runs before there is work"

    async def scenario():
        ctx = insecure_context()
        clients = [await websockets.connect(gw.url("/tally"), ssl=ctx) for _ in range(100)]
        # Auto-responses come from the gateway: still no worker process.
        for ws in clients:
            await ws.send('{"type":"ping"}')
        for ws in clients:
            assert await asyncio.wait_for(ws.recv(), 10) == '{"type":"pong"}'
        await asyncio.sleep(0.5)
        assert children(gateway_pid) == [], "an auto-response woke a worker"
        assert value(scrape(admin), "wssgate_worker_auto_responses_total", route="tally") == 100
        assert value(scrape(admin), "wssgate_worker_wakes_total", route="tally") == 0

        # The first message that needs the worker starts one; every message is answered in order.
        async def talk(i, ws, first, last):
            for j in range(first, last):
                await ws.send("c%d-%d" % (i, j))
            answers = [await asyncio.wait_for(ws.recv(), 30) for _ in range(first, last)]
            return [a.split(" ", 2) for a in answers]

        results = await asyncio.gather(*(talk(i, ws, 0, 5) for i, ws in enumerate(clients)))
        first_pids = set()
        for i, answers in enumerate(results):
            assert [(count, text) for _, count, text in answers] == [(str(j + 1), "c%d-%d" % (i, j)) for j in range(5)]
            first_pids.update(int(pid) for pid, _, _ in answers)
        assert len(first_pids) == 1
        assert children(gateway_pid) == sorted(first_pids)
        assert value(scrape(admin), "wssgate_worker_wakes_total", route="tally") == 1

        # Two seconds without traffic: the instance is stopped, every client stays connected.
        await wait_for(lambda: children(gateway_pid) == [], 15, "the idle instance to stop")
        gw.wait_for_log(r'msg="worker instance asleep"', timeout=5)
        assert value(scrape(admin), "wssgate_worker_idle_stops_total", route="tally") == 1
        await asyncio.sleep(0.3)
        for ws in clients:
            assert ws.close_code is None, "a client was closed: %s" % ws.close_code

        # A ping while asleep is still answered without a worker.
        await clients[0].send('{"type":"ping"}')
        assert await asyncio.wait_for(clients[0].recv(), 10) == '{"type":"pong"}'
        assert children(gateway_pid) == []

        # The next messages wake a new process; each connection's count went on (its
        # attachment came back in the resumed open).
        results = await asyncio.gather(*(talk(i, ws, 5, 7) for i, ws in enumerate(clients)))
        second_pids = set()
        for i, answers in enumerate(results):
            assert [(count, text) for _, count, text in answers] == [(str(j + 1), "c%d-%d" % (i, j)) for j in range(5, 7)]
            second_pids.update(int(pid) for pid, _, _ in answers)
        assert len(second_pids) == 1 and second_pids.isdisjoint(first_pids)
        assert not any("resumed without an attachment" in line for line in gw.lines)
        for ws in clients:
            await ws.close()

    run(scenario(), timeout=120)
    assert not any("messages lost" in line for line in gw.lines)


def test_the_swift_chat_worker_sleeps_and_wakes_while_the_room_stays(gateway_factory, tmp_path):
    """The bundled Swift chat worker (WSSGateWorker) on a hibernating route: its instance goes
    to sleep with two members in a room, the gateway keeps their subscriptions, and the next
    message wakes a new process that serves both."""
    from conftest import BINARY
    admin = str(tmp_path / "admin.sock")
    route = worker_route("chat", "/chat", BINARY, ["worker", "chat"], instances=2,
                         extra="      min_instances: 0\n      idle_stop: 1s\n")
    gw = gateway_factory(gateway_config(level="info", routes=route, extra='admin:\n  address: "unix:%s"\n' % admin))
    pid = gw.proc.pid
    assert children(pid) == []

    async def scenario():
        import json
        ctx = insecure_context()
        alice = await websockets.connect(gw.url("/chat?room=r&name=alice"), ssl=ctx)
        bob = await websockets.connect(gw.url("/chat?room=r&name=bob"), ssl=ctx)

        async def said(ws, text):
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if event["type"] == "message" and event["text"] == text:
                    return event["name"]

        await alice.send("hello")  # wakes one instance (of two): alice joins and speaks
        assert await said(alice, "hello") == "alice"
        await bob.send("hi")
        assert await said(alice, "hi") == "bob"
        assert await said(bob, "hi") == "bob"
        first = children(pid)
        assert len(first) == 1, "one instance woke for both"
        await wait_for(lambda: children(pid) == [], 15, "the chat instance to sleep")
        await alice.send("still here?")
        assert await said(bob, "still here?") == "alice"
        second = children(pid)
        assert len(second) == 1 and second != first
        assert alice.close_code is None and bob.close_code is None
        await alice.close()
        await bob.close()

    run(scenario(), timeout=90)
