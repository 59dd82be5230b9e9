"""Topic history and resume (docs/hub-protocol.md, Resume): clients that lose their connection
reconnect, subscribe with the position they last saw, and get every publication exactly once
and in order, through a restart of the gateway (file storage) and through connections cut
without a close. A resume the history cannot serve says so (`recovered: false`)."""
import asyncio
import json
import os
import random
import re
import signal
import socket
import tempfile
import time
import threading

import pytest

import websockets

from conftest import Gateway, free_port, insecure_context, run


CONTEXT = insecure_context()


def history_config(port=0, storage="memory", directory="", size=10000, extra=""):
    return """
log:
  level: info
listeners:
  main:
    address: "127.0.0.1:%d"
    tls:
      self_signed: true
routes:
  feed:
    path: /feed
    kind: hub
    hub:
      subscribe: ["feed.*"]
      publish: ["feed.*"]
      history:
        size: %d
        topics: ["feed.*"]
        storage: %s
%s%s""" % (port, size, storage, ("        directory: %s\n" % directory) if directory else "", extra)


async def request(ws, **fields):
    await ws.send(json.dumps(fields))
    while True:
        answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if answer.get("op") != "message":
            return answer


class Resumer:
    """A subscriber that reconnects and resumes from the last position it saw, and records
    every publication it receives (the test fails on any gap or duplicate)."""

    def __init__(self, url, topic, delay=0.0):
        self.url = url
        self.delay = delay
        self.topic = topic
        self.position = None
        self.received = []
        self.connections = 0
        self.recoveries = []
        self.ws = None

    async def run(self, stop):
        # Two hundred TLS handshakes at once take the Python side longer than a connect's
        # timeout on a small machine: the first connects and every reconnect are spread.
        await asyncio.sleep(self.delay)
        while not stop.is_set():
            try:
                async with websockets.connect(self.url(), ssl=CONTEXT, open_timeout=30,
                                              close_timeout=1, ping_interval=None) as ws:
                    self.ws = ws
                    self.connections += 1
                    subscribe = {"op": "subscribe", "topic": self.topic, "id": 1}
                    if self.position:
                        subscribe["since"] = self.position
                    await ws.send(json.dumps(subscribe))
                    async for raw in ws:
                        event = json.loads(raw)
                        if event["op"] == "ack":
                            if "recovered" in event:
                                self.recoveries.append(event["recovered"])
                            if not event.get("recovered"):
                                self.position = event["position"]
                        elif event["op"] == "message":
                            self.received.append(event["data"])
                            assert event["offset"] == self.position["offset"] + 1, (event, self.position)
                            self.position = {"offset": event["offset"], "epoch": self.position["epoch"]}
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                pass
            finally:
                self.ws = None
            await asyncio.sleep(random.uniform(0.1, 2.0))


class Publisher:
    """Publishes 1, 2, 3, … exactly once each: a publish whose ack was lost with the
    connection is looked up in the history (a resume from the last acked position) before it
    is sent again."""

    def __init__(self, url, topic, rate=40):
        self.url = url
        self.topic = topic
        self.interval = 1.0 / rate
        self.next = 1
        self.acked = None

    async def run(self, stop, until=None):
        while not stop.is_set():
            try:
                async with websockets.connect(self.url(), ssl=CONTEXT, open_timeout=30,
                                              close_timeout=1, ping_interval=None) as ws:
                    if self.acked:
                        answer = await request(ws, op="subscribe", topic=self.topic, since=self.acked, id="check")
                        assert answer["recovered"] is True, answer
                        recorded = [json.loads(await asyncio.wait_for(ws.recv(), 10))["data"] for _ in range(answer["missed"])]
                        assert recorded in ([], [self.next]), recorded
                        if recorded:
                            self.next += 1
                        await request(ws, op="unsubscribe", topic=self.topic, id="done")
                    while not stop.is_set() and (until is None or self.next <= until):
                        answer = await request(ws, op="publish", topic=self.topic, data=self.next, id=self.next)
                        assert answer["op"] == "ack", answer
                        self.acked = answer["position"]
                        self.next += 1
                        await asyncio.sleep(self.interval)
                    if until is not None and self.next > until:
                        return
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                await asyncio.sleep(0.2)

    @property
    def published(self):
        return self.next - 1


def assert_exactly_once(subscribers, count):
    expected = list(range(1, count + 1))
    for index, subscriber in enumerate(subscribers):
        assert subscriber.received == expected, "subscriber %d: %d received, first difference at %s" % (
            index, len(subscriber.received),
            next((i for i, (a, b) in enumerate(zip(subscriber.received, expected)) if a != b), len(subscriber.received)))


async def wait_until(predicate, timeout):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def start_subscribers(url_for, topic, stop, count=200):
    """`count` resuming subscribers, their first connections spread; returns once every one has
    a position. `url_for(n)` gives subscriber n's URL function."""
    subscribers = [Resumer(url_for(n), topic, delay=n * 0.02) for n in range(count)]
    tasks = [asyncio.create_task(s.run(stop)) for s in subscribers]
    await wait_until(lambda: all(s.position for s in subscribers), 60)
    return subscribers, tasks


async def finish(subscribers, tasks, stop, count):
    """Waits until every subscriber has `count` publications, then ends them."""
    await wait_until(lambda: all(len(s.received) >= count for s in subscribers), 90)
    stop.set()
    for s in subscribers:
        if s.ws is not None:
            await s.ws.close()
    await asyncio.gather(*tasks, return_exceptions=True)


def test_resume_gets_what_was_missed_then_live_ones(gateway_factory):
    gw = gateway_factory(history_config())

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/feed"), ssl=ctx) as writer:
            async with websockets.connect(gw.url("/feed"), ssl=ctx) as reader:
                ack = await request(reader, op="subscribe", topic="feed.a", id=1)
                assert ack["position"]["offset"] == 0 and len(ack["position"]["epoch"]) == 16
                published = await request(writer, op="publish", topic="feed.a", data="one", id=2)
                assert published["position"] == {"offset": 1, "epoch": ack["position"]["epoch"]}
                event = json.loads(await asyncio.wait_for(reader.recv(), 10))
                assert event == {"op": "message", "topic": "feed.a", "data": "one", "offset": 1}
                seen = {"offset": 1, "epoch": ack["position"]["epoch"]}
            for data in ["two", {"three": [3]}, "four"]:
                await request(writer, op="publish", topic="feed.a", data=data)
            async with websockets.connect(gw.url("/feed"), ssl=ctx) as reader:
                ack = await request(reader, op="subscribe", topic="feed.a", since=seen, id=3)
                assert ack["recovered"] is True and ack["missed"] == 3
                assert ack["position"]["offset"] == 4
                missed = [json.loads(await asyncio.wait_for(reader.recv(), 10)) for _ in range(3)]
                assert [(m["offset"], m["data"]) for m in missed] == [(2, "two"), (3, {"three": [3]}), (4, "four")]
                await request(writer, op="publish", topic="feed.a", data="five")
                live = json.loads(await asyncio.wait_for(reader.recv(), 10))
                assert (live["offset"], live["data"]) == (5, "five")

    run(scenario())


def test_a_resume_the_history_cannot_serve_says_so(gateway_factory):
    gw = gateway_factory(history_config(size=3))

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/feed"), ssl=ctx) as ws:
            epoch = (await request(ws, op="subscribe", topic="feed.b", id=1))["position"]["epoch"]
            await request(ws, op="unsubscribe", topic="feed.b", id=2)
            for n in range(10):
                await request(ws, op="publish", topic="feed.b", data=n)
            # Only the last 3 are kept: a resume from offset 1 would miss 2..7.
            old = await request(ws, op="subscribe", topic="feed.b", since={"offset": 1, "epoch": epoch}, id=3)
            assert old["recovered"] is False and old["position"] == {"offset": 10, "epoch": epoch} and "missed" not in old
            await request(ws, op="unsubscribe", topic="feed.b", id=4)
            # Another epoch (a restart with memory storage, another gateway): never a silent gap.
            stale = await request(ws, op="subscribe", topic="feed.b", since={"offset": 9, "epoch": "0123456789abcdef"}, id=5)
            assert stale["recovered"] is False and stale["position"]["offset"] == 10
            await request(ws, op="unsubscribe", topic="feed.b", id=6)
            # From the future: also refused.
            future = await request(ws, op="subscribe", topic="feed.b", since={"offset": 11, "epoch": epoch}, id=7)
            assert future["recovered"] is False
            await request(ws, op="unsubscribe", topic="feed.b", id=8)
            # Within reach: recovered.
            near = await request(ws, op="subscribe", topic="feed.b", since={"offset": 7, "epoch": epoch}, id=9)
            assert near["recovered"] is True and near["missed"] == 3
            assert [json.loads(await ws.recv())["data"] for _ in range(3)] == [7, 8, 9]
            # A topic without history and a pattern cannot resume.
            assert (await request(ws, op="subscribe", topic="feed.*", since={"offset": 1, "epoch": epoch}))["op"] == "error"

    run(scenario())


def test_every_subscriber_gets_everything_once_through_a_restart(tmp_path):
    """Acceptance 1(a): 200 subscribers, a publisher at a steady rate; the gateway (file
    storage) is stopped with SIGTERM and started again on the same port. Everyone resumes."""
    port = free_port()
    directory = tempfile.mkdtemp(prefix="wgh")
    config = history_config(port=port, storage="file", directory=directory)
    gateways = []

    def start():
        gw = Gateway([], config_text=config)
        gateways.append(gw)
        gw.wait_ready()
        return gw

    gw = start()
    url = lambda: "wss://127.0.0.1:%d/feed" % port  # noqa: E731

    async def scenario():
        stop = asyncio.Event()
        subscribers, tasks = await start_subscribers(lambda n: url, "feed.restart", stop)
        publisher = Publisher(url, "feed.restart")
        publishing = asyncio.create_task(publisher.run(stop, until=150))
        await wait_until(lambda: publisher.published >= 50, 60)
        await asyncio.to_thread(gw.stop, signal.SIGTERM)
        await asyncio.to_thread(start)
        await publishing
        await finish(subscribers, tasks, stop, 150)
        assert all(s.connections >= 2 for s in subscribers)
        assert all(s.recoveries and all(s.recoveries) for s in subscribers), "a resume was not recovered"
        assert_exactly_once(subscribers, 150)

    try:
        run(scenario(), timeout=240)
        assert os.path.getsize(os.path.join(directory, "feed.history")) > 0
    finally:
        for g in gateways:
            g.stop()
    assert gateways[0].proc.returncode == 0


class Cutter:
    """A TCP relay in front of the gateway that can cut every connection at once with a reset
    (SO_LINGER 0): the clients see an error, not a close."""

    def __init__(self, target_port):
        self.target = target_port
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(512)
        self.port = self.server.getsockname()[1]
        self.pairs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            pair = {"sockets": (client, upstream), "cut": False}
            with self.lock:
                self.pairs.append(pair)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b, pair), daemon=True).start()

    @staticmethod
    def _pump(source, sink, pair):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        if pair["cut"]:
            # Closed once no thread is inside a call on them: with SO_LINGER 0, a reset.
            source.close()
            sink.close()
            return
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        """Resets every connection in both directions; returns how many there were."""
        import struct
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair["cut"] = True
            for s in pair["sockets"]:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RD)  # wakes the pump threads, sends nothing
                except OSError:
                    pass
        return len(pairs)

    def close(self):
        self.server.close()
        self.cut()


def test_every_subscriber_gets_everything_once_when_connections_are_cut(gateway_factory):
    """Acceptance 1(c): every client's TCP connection is cut without a close, twice, while a
    publisher goes on; everyone reconnects and resumes."""
    gw = gateway_factory(history_config())
    _, port = gw.address()
    cutter = Cutter(port)
    url = lambda: "wss://127.0.0.1:%d/feed" % cutter.port  # noqa: E731
    direct = lambda: gw.url("/feed")  # noqa: E731

    async def scenario():
        stop = asyncio.Event()
        subscribers, tasks = await start_subscribers(lambda n: url, "feed.cut", stop)
        publisher = Publisher(direct, "feed.cut")
        publishing = asyncio.create_task(publisher.run(stop, until=150))
        for round, mark in enumerate((40, 90), start=1):
            await wait_until(lambda: publisher.published >= mark, 60)
            await wait_until(lambda: all(s.ws is not None and s.connections == round for s in subscribers), 90)
            assert cutter.cut() >= 200
        await publishing
        await finish(subscribers, tasks, stop, 150)
        assert all(s.connections >= 3 for s in subscribers)
        assert all(s.recoveries and all(s.recoveries) for s in subscribers)
        assert_exactly_once(subscribers, 150)

    try:
        run(scenario(), timeout=240)
    finally:
        cutter.close()


def test_the_admin_api_publishes_with_positions_and_reads_the_history(gateway_factory):
    from test_admin import Admin
    socket_path = os.path.join(tempfile.mkdtemp(prefix="wga"), "admin.sock")
    gw = gateway_factory(history_config(size=2, extra='admin:\n  address: "unix:%s"\n' % socket_path))
    gw.wait_for_log(r"msg=\"admin API listening\"")
    admin = Admin(unix=socket_path)
    template = "/v1/topics/{topic}/history"
    status, first, _ = admin.call("POST", "/v1/publish", "/v1/publish", body={"topic": "feed.x", "data": {"n": 1}})
    assert status == 200 and first["position"]["offset"] == 1
    epoch = first["position"]["epoch"]
    admin.call("POST", "/v1/publish", "/v1/publish", body={"topic": "feed.x", "text": "plain"})
    admin.call("POST", "/v1/publish", "/v1/publish", body={"topic": "feed.x", "binary": "AAE="})
    status, _, _ = admin.call("POST", "/v1/publish", "/v1/publish", body={"topic": "other", "text": "no history"})
    status, body, _ = admin.call("GET", "/v1/topics/feed.x/history", template)
    assert status == 200 and body["recovered"] is None
    assert body["position"] == {"offset": 3, "epoch": epoch}
    assert body["publications"] == [
        {"op": "message", "topic": "feed.x", "data": "plain", "offset": 2},
        {"op": "message", "topic": "feed.x", "data": "AAE=", "encoding": "base64", "offset": 3},
    ]
    status, body, _ = admin.call("GET", "/v1/topics/feed.x/history?since=2&epoch=%s" % epoch, template)
    assert body["recovered"] is True and [p["offset"] for p in body["publications"]] == [3]
    status, body, _ = admin.call("GET", "/v1/topics/feed.x/history?since=0&epoch=%s" % epoch, template)
    assert body["recovered"] is False and body["publications"] == []
    status, body, _ = admin.call("GET", "/v1/topics/other/history", template)
    assert status == 404 and "history" in body["error"]["message"]
    for target, field in [("?since=1", "epoch"), ("?epoch=e", "since"), ("?since=x&epoch=e", "since"), ("?limit=1", "limit")]:
        status, body, _ = admin.call("GET", "/v1/topics/feed.x/history" + target, template)
        assert status == 400 and body["error"]["field"] == field, (target, body)
    status, _, _ = admin.call("GET", "/v1/topics/feed.*/history", template)
    assert status == 400
    status, _, _ = admin.call("POST", "/v1/topics/feed.x/history", template)
    assert status == 405


def test_every_subscriber_gets_everything_once_when_a_cluster_node_is_killed(gateway_factory):
    """Acceptance 1(b): three gateways share the history through Redis; 200 subscribers spread
    over them and a publisher at a steady rate; one node is killed with SIGKILL, and its clients
    reconnect to the others and resume there."""
    from test_cluster import Redis
    redis = Redis()
    nodes = []
    try:
        for name in ("a", "b", "c"):
            nodes.append(gateway_factory(history_config(extra="""cluster:
  redis: "unix:%s"
  node: %s
""" % (redis.socket, name))))
        for gw in nodes:
            gw.wait_for_log(r'msg="cluster link up"', timeout=20)
        killed = set()
        urls = [gw.url("/feed") for gw in nodes]

        def pick(index=None):
            def url():
                live = [u for i, u in enumerate(urls) if i not in killed]
                return live[index % len(live)] if index is not None and (index % len(urls)) not in killed else random.choice(live)
            return url

        async def scenario():
            stop = asyncio.Event()
            subscribers, tasks = await start_subscribers(pick, "feed.cluster", stop)
            epochs = {s.position["epoch"] for s in subscribers}
            assert len(epochs) == 1, "one epoch across the cluster"
            publisher = Publisher(pick(), "feed.cluster")
            publishing = asyncio.create_task(publisher.run(stop, until=150))
            await wait_until(lambda: publisher.published >= 50, 60)
            killed.add(0)
            nodes[0].proc.kill()
            await publishing
            await finish(subscribers, tasks, stop, 150)
            moved = [s for n, s in enumerate(subscribers) if n % 3 == 0]
            assert all(s.connections >= 2 and s.recoveries and all(s.recoveries) for s in moved)
            assert_exactly_once(subscribers, 150)

        run(scenario(), timeout=240)
    finally:
        redis.kill()


def test_without_redis_a_clustered_history_refuses_rather_than_lose_positions(gateway_factory):
    """In a cluster the history is in Redis: while it is unreachable a publish on a topic with
    history is refused (hub error, admin 503) and a resume gets an error, never a silent gap;
    topics without history go on locally."""
    from test_admin import Admin
    from test_cluster import Redis
    redis = Redis()
    socket_path = os.path.join(tempfile.mkdtemp(prefix="wga"), "admin.sock")
    try:
        gw = gateway_factory(history_config(extra="""cluster:
  redis: "unix:%s"
  node: solo
admin:
  address: "unix:%s"
""" % (redis.socket, socket_path)).replace('subscribe: ["feed.*"]', 'subscribe: ["feed.*", "live.*"]')
            .replace('publish: ["feed.*"]', 'publish: ["feed.*", "live.*"]'))
        gw.wait_for_log(r'msg="cluster link up"', timeout=20)
        admin = Admin(unix=socket_path)
        status, body, _ = admin.call("POST", "/v1/publish", "/v1/publish", body={"topic": "feed.r", "text": "kept"})
        assert status == 200 and body["position"]["offset"] == 1
        epoch = body["position"]["epoch"]
        redis.kill()
        gw.wait_for_log(r'msg="cluster link down"', timeout=20)

        async def scenario():
            async with websockets.connect(gw.url("/feed"), ssl=CONTEXT) as ws:
                refused = await request(ws, op="publish", topic="feed.r", data="x", id=1)
                assert refused["op"] == "error" and "not published" in refused["error"]
                resume = await request(ws, op="subscribe", topic="feed.r", since={"offset": 1, "epoch": epoch}, id=2)
                assert resume["op"] == "error" and "history is unavailable" in resume["error"]
                assert (await request(ws, op="subscribe", topic="live.x", id=3))["op"] == "ack"
                assert (await request(ws, op="publish", topic="live.x", data="local", id=4))["data"] == 1

        run(scenario())
        status, body, _ = admin.call("POST", "/v1/publish", "/v1/publish", body={"topic": "feed.r", "text": "no"})
        assert status == 503 and body["error"]["code"] == "cluster_link_down"
        status, body, _ = admin.call("GET", "/v1/topics/feed.r/history", "/v1/topics/{topic}/history")
        assert status == 503
    finally:
        redis.kill()


def test_a_worker_resumes_its_clients_and_records_with_positions(gateway_factory):
    """The worker protocol's `resume` and `record` (docs/worker-protocol.md): a worker route's
    client that comes back with the position it last saw gets what it missed, then live
    publications; the worker hears where the stream stands; a worker's `record` returns the
    publication's position."""
    import sys
    from test_workers import wait_linked, worker_route
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "history_worker.py")
    gw = gateway_factory(history_config() + worker_route("w", "/w", sys.executable, [worker]))
    wait_linked(gw, 1)

    async def scenario():
        async with websockets.connect(gw.url("/feed"), ssl=CONTEXT) as hub:
            async with websockets.connect(gw.url("/w"), ssl=CONTEXT) as client:
                first = json.loads(await asyncio.wait_for(client.recv(), 10))
                assert first["subscribed"] == "not-recovered" and first["missed"] == 0
                epoch = first["position"]["epoch"]
                await request(hub, op="publish", topic="feed.w", data="one")
                event = json.loads(await asyncio.wait_for(client.recv(), 10))
                assert (event["data"], event["offset"]) == ("one", 1)
                await client.send("record:from the worker")
                # The worker's publish reaches the client as it was published (raw text), and
                # its position the worker.
                got = sorted([await asyncio.wait_for(client.recv(), 10) for _ in range(2)], key=lambda m: m.startswith("{"))
                assert got[0] == "from the worker"
                assert json.loads(got[1]) == {"recorded": "recorded", "position": {"offset": 2, "epoch": epoch}}
            for data in ("three", "four"):
                await request(hub, op="publish", topic="feed.w", data=data)
            async with websockets.connect(gw.url("/w?since=2&epoch=%s" % epoch), ssl=CONTEXT) as client:
                got = [json.loads(await asyncio.wait_for(client.recv(), 10)) for _ in range(3)]
                missed = [g for g in got if "offset" in g]
                answer = [g for g in got if "subscribed" in g]
                assert [(m["offset"], m["data"]) for m in missed] == [(3, "three"), (4, "four")]
                assert answer == [{"subscribed": "recovered", "topic": "feed.w", "position": {"offset": 4, "epoch": epoch}, "missed": 2}]
                await request(hub, op="publish", topic="feed.w", data="five")
                live = json.loads(await asyncio.wait_for(client.recv(), 10))
                assert (live["offset"], live["data"]) == (5, "five")
            async with websockets.connect(gw.url("/w?since=1&epoch=stale"), ssl=CONTEXT) as client:
                answer = json.loads(await asyncio.wait_for(client.recv(), 10))
                assert answer["subscribed"] == "not-recovered" and answer["position"] == {"offset": 5, "epoch": epoch}
            async with websockets.connect(gw.url("/w?topic=other"), ssl=CONTEXT) as client:
                answer = json.loads(await asyncio.wait_for(client.recv(), 10))
                assert answer == {"subscribed": "no-history", "topic": "other", "position": None, "missed": 0}

    run(scenario())


def test_the_browser_client_is_served_where_a_hub_route_asks_for_it(gateway_factory):
    from conftest import ROOT, raw_http
    with open(os.path.join(ROOT, "rootfs", "usr", "share", "wssgate", "www", "wssgate.js"), "rb") as f:
        shipped = f.read()
    served = gateway_factory(history_config().replace("    hub:\n      subscribe", "    hub:\n      client_script: true\n      subscribe"))
    host, port = served.address()
    response = raw_http(host, port, b"GET /wssgate.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, body = response.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"text/javascript" in head.lower()
    assert body == shipped
    response = raw_http(host, port, b"POST /wssgate.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 405")
    plain = gateway_factory(history_config())
    host, port = plain.address()
    assert raw_http(host, port, b"GET /wssgate.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 404")


def test_a_node_whose_redis_link_breaks_reads_back_what_it_missed(gateway_factory):
    """Redis pub/sub keeps nothing: publications recorded while a node's link is being replaced
    never reach it on the channel. The node reads them back from the history, so its subscribers
    — who stay connected, and do not resume — still get every publication once and in order."""
    import subprocess
    from test_cluster import Redis
    redis = Redis()
    try:
        nodes = [gateway_factory(history_config(extra="""cluster:
  redis: "unix:%s"
  node: %s
""" % (redis.socket, name))) for name in ("a", "b")]
        for gw in nodes:
            gw.wait_for_log(r'msg="cluster link up"', timeout=20)

        def cut_node_a():
            listing = subprocess.run(["redis-cli", "-s", redis.socket, "CLIENT", "LIST"], capture_output=True,
                                     text=True, check=True).stdout
            for line in listing.splitlines():
                if "name=wssgate-a " in line:
                    client = re.search(r"\bid=(\d+)", line).group(1)
                    subprocess.run(["redis-cli", "-s", redis.socket, "CLIENT", "KILL", "ID", client],
                                   capture_output=True, check=True)

        async def scenario():
            stop = asyncio.Event()
            subscribers, tasks = await start_subscribers(lambda n: (lambda: nodes[0].url("/feed")), "feed.cut", stop,
                                                         count=20)
            publisher = Publisher(lambda: nodes[1].url("/feed"), "feed.cut", rate=100)
            publishing = asyncio.create_task(publisher.run(stop, until=300))
            for _ in range(6):
                await wait_until(lambda: publisher.published >= 20, 30)
                await asyncio.to_thread(cut_node_a)
                await asyncio.sleep(0.3)
            await publishing
            await finish(subscribers, tasks, stop, 300)
            assert all(s.connections == 1 for s in subscribers), [s.connections for s in subscribers]
            assert_exactly_once(subscribers, 300)

        run(scenario(), timeout=120)
        assert len([line for line in nodes[0].lines if 'msg="cluster link up"' in line]) >= 3
    finally:
        redis.kill()


def test_a_publish_redis_does_not_answer_in_time_is_undecided_not_refused(gateway_factory):
    """A publish sent to Redis that gets no answer within request_timeout may still be recorded
    (Redis runs it when it comes back): the publisher hears the outcome is unknown — 504 from
    the admin API — never "not published", which would make it publish twice."""
    import signal
    from test_cluster import Admin, Redis
    redis = Redis()
    try:
        socket_path = os.path.join(tempfile.mkdtemp(prefix="wgh"), "admin.sock")
        gw = gateway_factory(history_config(extra="""cluster:
  redis: "unix:%s"
  node: a
  request_timeout: 1s
admin:
  address: "unix:%s"
""" % (redis.socket, socket_path)))
        gw.wait_for_log(r'msg="cluster link up"', timeout=20)
        admin = Admin(unix=socket_path)
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            async def scenario():
                async with websockets.connect(gw.url("/feed"), ssl=CONTEXT) as ws:
                    # Both go out before the link's timeout: the admin's and the hub client's.
                    admin_call = asyncio.create_task(asyncio.to_thread(
                        admin.call, "POST", "/v1/publish", "/v1/publish", {"topic": "feed.u", "text": "maybe too"}))
                    answer = await request(ws, op="publish", topic="feed.u", data="maybe", id=1)
                    assert answer["op"] == "error" and "outcome unknown" in answer["error"], answer
                    return await admin_call

            status, body, _ = run(scenario())
            assert status == 504 and "may have been recorded" in body["error"]["message"], (status, body)
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        gw.wait_for_log(r'msg="cluster link up"', timeout=20)

        def kept():
            status, body, _ = admin.call("GET", "/v1/topics/feed.u/history", "/v1/topics/{topic}/history")
            return status == 200 and [e["data"] for e in body["publications"]]

        deadline = time.time() + 10
        while sorted(kept() or []) != ["maybe", "maybe too"] and time.time() < deadline:
            time.sleep(0.1)
        assert sorted(kept() or []) == ["maybe", "maybe too"], kept()  # both were recorded after all
    finally:
        redis.kill()
