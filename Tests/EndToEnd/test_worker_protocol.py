"""The worker protocol as docs/worker-protocol.md states it, checked with a worker written from
the document alone (doc_worker.py): one test for each place the gateway once did otherwise."""
import asyncio
import json
import os
import struct
import tempfile
import time

import websockets

from conftest import BINARY, ECHO_CONFIG, insecure_context, run
from doc_worker import PUBLISH, SEND, DocWorker, frame, str16
from test_metrics import scrape, value

BASE = ECHO_CONFIG.replace("level: debug", "level: info")


def doc_route(worker, extra=""):
    return BASE + """  doc:
    path: /doc
    kind: worker
    worker:
      socket: %s
%s""" % (worker.path, extra)


def linked(gw, timeout=20):
    gw.wait_for_log(r'msg="worker linked"', timeout)


def test_closed_carries_the_reason_of_the_client_the_worker_and_the_gateway(gateway_factory):
    worker = DocWorker(max_frame=1024)
    gw = gateway_factory(doc_route(worker))
    linked(gw)

    async def scenario():
        # The client's code and reason.
        async with websockets.connect(gw.url("/doc"), ssl=insecure_context()) as ws:
            client = worker.opened()
            await ws.close(4001, "bye from the client")
        worker.wait_for(lambda e: e[0] == "closed" and e[1] == client)
        # The worker's own close: the client sees it, and the worker's `closed` repeats it.
        async with websockets.connect(gw.url("/doc"), ssl=insecure_context()) as ws:
            closed_by_worker = worker.wait_for(lambda e: e[0] == "open" and e[1] != client)[-1][1]
            worker.close(closed_by_worker, 4002, "closed by the worker")
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            assert (ws.close_code, ws.close_reason) == (4002, "closed by the worker")
        worker.wait_for(lambda e: e[0] == "closed" and e[1] == closed_by_worker)
        # The gateway's own close (a message over the worker's frame limit): 1009, with why.
        async with websockets.connect(gw.url("/doc"), ssl=insecure_context()) as ws:
            by_gateway = worker.wait_for(lambda e: e[0] == "open" and e[1] not in (client, closed_by_worker))[-1][1]
            await ws.send("x" * 2010)
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            assert ws.close_code == 1009
        worker.wait_for(lambda e: e[0] == "closed" and e[1] == by_gateway)
        return client, closed_by_worker, by_gateway

    client, closed_by_worker, by_gateway = run(scenario())
    closed = {event[1]: (event[2], event[3]) for event in worker.of_kind("closed")}
    assert closed[client] == (4001, "bye from the client")
    assert closed[closed_by_worker] == (4002, "closed by the worker")
    assert closed[by_gateway][0] == 1009 and "at most 1014 bytes" in closed[by_gateway][1], closed[by_gateway]


def test_the_gateway_never_sends_past_the_window(gateway_factory):
    worker = DocWorker(credit=8192, return_credit=False)
    gw = gateway_factory(doc_route(worker))
    linked(gw)

    async def scenario():
        async with websockets.connect(gw.url("/doc"), ssl=insecure_context()) as ws:
            connection = worker.opened()
            for index in range(9):
                await ws.send(b"%d" % index + b"." * 999)
            await asyncio.sleep(1.0)
            got = [e for e in worker.of_kind("message") if e[1] == connection]
            # 8 × 1000 B fit in 8192 B; the 9th waits for credit.
            assert len(got) == 8, len(got)
            assert sum(len(e[3]) for e in got) <= 8192
            worker.credit_frame(connection, 8, 8000)
            worker.wait_for(lambda e: e[0] == "message" and e[1] == connection and e[3].startswith(b"8"))
            # A message larger than the whole window can never be sent: the client hears why.
            await ws.send(b"y" * 20000)
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            assert ws.close_code == 1009 and "8192" in ws.close_reason, (ws.close_code, ws.close_reason)
            got = [e for e in worker.of_kind("message") if e[1] == connection]
            assert len(got) == 9 and all(len(e[3]) == 1000 for e in got)

    run(scenario())
    assert worker.violations == []


def test_the_workers_frame_limit_holds(gateway_factory):
    worker = DocWorker(max_frame=1024)
    gw = gateway_factory(doc_route(worker))
    linked(gw)

    async def scenario():
        async with websockets.connect(gw.url("/doc"), ssl=insecure_context()) as ws:
            connection = worker.opened()
            await ws.send(b"a" * 1014)  # frame length 1024: exactly the limit
            worker.wait_for(lambda e: e[0] == "message" and e[1] == connection)
            await ws.send(b"b" * 1015)
            try:
                await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed:
                pass
            assert ws.close_code == 1009

    run(scenario())
    assert worker.largest_frame == 1024
    assert worker.violations == []
    assert [len(e[3]) for e in worker.of_kind("message")] == [1014]


def test_a_worker_text_that_is_not_utf8_ends_its_link_not_the_client(gateway_factory):
    worker = DocWorker()
    gw = gateway_factory(doc_route(worker))
    linked(gw)

    async def scenario():
        async with websockets.connect(gw.url("/doc"), ssl=insecure_context()) as ws:
            connection = worker.opened()
            worker.send(connection, b"caf\xc3", kind=1)
            # The link is refused, the client stays: it is opened again (resumed) on a new link.
            resumed = worker.wait_for(lambda e: e[0] == "open" and e[1] == connection and e[2] & 1)
            assert resumed
            worker.send(connection, "still here".encode())
            assert await asyncio.wait_for(ws.recv(), 10) == "still here"

    run(scenario())
    assert worker.links_ended >= 1
    gw.wait_for_log(r"not UTF-8", 5)


def test_topics_follow_the_hubs_rules(gateway_factory):
    """An empty topic, one with a space and one of 300 bytes are refused alike: each ends the
    link (the hub's own clients get an error for the same topics)."""
    for topic in (b"", b"has space", b"t" * 300):
        worker = DocWorker(after_hello=frame(PUBLISH, struct.pack("!B", 1) + str16(topic) + b"{}"))
        gw = gateway_factory(doc_route(worker))
        deadline = time.time() + 10
        while time.time() < deadline and worker.links_ended == 0:
            time.sleep(0.05)
        assert worker.links_ended >= 1, topic
        gw.stop()


def test_a_worker_that_keeps_breaking_the_protocol_is_retried_less_and_less(gateway_factory):
    # Every link: hello_ack, then a send of a kind that does not exist.
    worker = DocWorker(after_hello=frame(SEND, struct.pack("!QB", 1, 9) + b"x"))
    gateway_factory(doc_route(worker))
    time.sleep(4.0)
    links = len(worker.link_times)
    # With the backoff growing from 50 ms to 5 s (full jitter), two event loops' links make
    # about eight attempts each in 4 s; a backoff that never grew made a hundred.
    assert 2 <= links <= 30, links
    gaps = [b - a for a, b in zip(worker.link_times, worker.link_times[1:])]
    assert max(gaps) > 0.3, gaps


def test_the_socket_directory_made_for_supervised_workers_is_removed_on_stop(gateway_factory):
    temporary = tempfile.mkdtemp(prefix="wgt")
    gw = gateway_factory(BASE + """  work:
    path: /work
    kind: worker
    worker:
      command: "%s"
      args: [worker, echo]
      instances: 2
""" % BINARY, env={"TMPDIR": temporary})
    linked(gw)
    # One directory, with a socket per instance: the second may bind a moment after the first
    # links, so look until both are there.
    deadline = time.monotonic() + 20
    while True:
        made = [name for name in os.listdir(temporary) if name.startswith("wssgate-")]
        sockets = os.listdir(os.path.join(temporary, made[0])) if len(made) == 1 else []
        if len(sockets) == 2:
            break
        assert time.monotonic() < deadline, (made, sockets)
        time.sleep(0.05)
    assert gw.stop() == 0
    assert os.listdir(temporary) == []


def test_lost_messages_are_a_metric(gateway_factory):
    """A message the instance never returned credit for, when its link goes: counted."""
    worker = DocWorker(return_credit=False)
    admin = os.path.join(tempfile.mkdtemp(prefix="wga"), "admin.sock")
    gw = gateway_factory(doc_route(worker) + """admin:
  address: "unix:%s"
""" % admin)
    linked(gw)

    async def scenario():
        async with websockets.connect(gw.url("/doc"), ssl=insecure_context()) as ws:
            connection = worker.opened()
            await ws.send("unanswered")
            worker.wait_for(lambda e: e[0] == "message" and e[1] == connection)
            worker.send(connection, b"\xff", kind=1)  # ends the link: the message is lost
            worker.wait_for(lambda e: e[0] == "open" and e[1] == connection and e[2] & 1)

    run(scenario())
    assert value(scrape(admin), "wssgate_worker_messages_lost_total", route="doc") == 1


def test_a_workers_publish_reaches_hub_clients_as_a_message_event(gateway_factory):
    worker = DocWorker()
    gw = gateway_factory(doc_route(worker) + """  hub:
    path: /hub
    kind: hub
""")
    linked(gw)

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/hub"), ssl=ctx) as hub_client, \
                websockets.connect(gw.url("/doc"), ssl=ctx) as worker_client:
            connection = worker.opened()
            worker.subscribe(connection, "news.x")
            await hub_client.send(json.dumps({"op": "subscribe", "topic": "news.*"}))
            assert json.loads(await hub_client.recv())["op"] == "ack"
            await asyncio.sleep(0.2)  # the worker's subscribe is in
            worker.publish("news.x", b'{"a": [1, 2]}')
            worker.publish("news.x", b"plain words")
            worker.publish("news.x", b"\x00\xff", kind=2)
            events = [json.loads(await asyncio.wait_for(hub_client.recv(), 10)) for _ in range(3)]
            assert events == [
                {"op": "message", "topic": "news.x", "data": {"a": [1, 2]}},
                {"op": "message", "topic": "news.x", "data": "plain words"},
                {"op": "message", "topic": "news.x", "data": "AP8=", "encoding": "base64"},
            ]
            # A worker-route connection gets what the worker published, as it was.
            raw = [await asyncio.wait_for(worker_client.recv(), 10) for _ in range(3)]
            assert raw == ['{"a": [1, 2]}', "plain words", b"\x00\xff"]

    run(scenario())
