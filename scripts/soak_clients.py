"""The soak's clients: resuming subscribers and exactly-once publishers on history topics,
request/answer clients on every other route kind (HTTP/1.1 and HTTP/2), connection churn, slow
consumers and the latency probes. Each records what it saw in `Record`; none asserts on the
spot — the soak checks the records at the end and draws them over time."""
import asyncio
import json
import random
import ssl
import threading
import time

import websockets
import websockets.exceptions

CONTEXT = ssl.create_default_context()
CONTEXT.check_hostname = False
CONTEXT.verify_mode = ssl.CERT_NONE
ERRORS = (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException, json.JSONDecodeError)
#: Close codes a route documents for a client it cannot serve for a while (going away on a
#: drain, service restart, try again later): the client reconnects, and what it had not got an
#: answer for counts as a documented loss.
DOCUMENTED_CLOSES = {1001, 1012, 1013}


HOMES = iter(range(1 << 30))


def next_home():
    """Clients spread over the gateways in turn, each with a home it goes back to."""
    return next(HOMES)


def connect(urls, home, **options):
    """Connects to the client's home gateway, or, while that one is away, to the next one that
    answers: after a drain the clients come home again when they next reconnect."""
    return _Connect(urls, home, options)


class _Connect:
    def __init__(self, urls, home, options):
        self.urls, self.home, self.options = urls, home, options
        self.ws = None

    async def __aenter__(self):
        last = None
        for step in range(len(self.urls)):
            try:
                self.ws = await websockets.connect(self.urls[(self.home + step) % len(self.urls)], ssl=CONTEXT,
                                                   open_timeout=10, **self.options)
                return self.ws
            except ERRORS as error:
                last = error
        raise last

    async def __aexit__(self, *exc):
        await self.ws.close()
        return False


class Record:
    """What every client saw, with times: the soak's checks and plots read it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []  # (time, seconds) of the probes' round trips
        self.errors = []  # (time, kind, detail): anything a promise does not allow
        self.events = []  # (time, kind): reconnects, documented closes, losses
        self.answered = {}  # route -> answered requests
        self.lost = {}  # route -> requests unanswered because of a documented close
        self.unanswered = {}  # route -> requests unanswered on a connection that stayed open

    def latency(self, seconds):
        with self.lock:
            self.latencies.append((time.time(), seconds))

    def error(self, kind, detail):
        with self.lock:
            self.errors.append((time.time(), kind, str(detail)[:300]))

    def event(self, kind):
        with self.lock:
            self.events.append((time.time(), kind))

    def count(self, table, route, amount=1):
        with self.lock:
            table[route] = table.get(route, 0) + amount


async def request(ws, timeout=10, **fields):
    """Sends a hub request; returns its answer (messages meanwhile are handed to `on_message`)."""
    await ws.send(json.dumps(fields))
    while True:
        answer = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if answer.get("op") != "message":
            return answer


class Publisher:
    """Publishes 1, 2, 3, … on a history topic, each exactly once: after a lost ack it reads the
    history from its last acked position before it publishes again."""

    def __init__(self, urls, topic, record, rate):
        self.urls, self.topic, self.record = urls, topic, record
        self.home = next_home()
        self.interval = 1.0 / rate
        self.next = 1
        self.acked = None

    async def run(self, stop):
        while not stop.is_set():
            try:
                async with connect(self.urls(), self.home, close_timeout=1) as ws:
                    if self.acked:
                        answer = await request(ws, op="subscribe", topic=self.topic, since=self.acked, id="check")
                        if answer.get("op") != "ack" or not answer.get("recovered"):
                            raise OSError("cannot check the history: %s" % answer)
                        for _ in range(answer["missed"]):
                            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                            if event["data"] == self.next:
                                self.next += 1
                        await request(ws, op="unsubscribe", topic=self.topic, id="done")
                    while not stop.is_set():
                        answer = await request(ws, op="publish", topic=self.topic, data=self.next, id=self.next)
                        if answer.get("op") != "ack":
                            # No Redis (a cut or a restart): refused, or after a timeout perhaps
                            # recorded: read the history before publishing again.
                            self.record.event("publish refused")
                            raise OSError(answer.get("error"))
                        self.acked = answer["position"]
                        self.next += 1
                        await asyncio.sleep(self.interval)
            except ERRORS:
                self.record.event("publisher reconnect")
                await asyncio.sleep(0.3)

    @property
    def published(self):
        return self.next - 1


class Subscriber:
    """Subscribes to a history topic and resumes from the last position it saw after every
    reconnect; records a gap, a duplicate or a failed resume as an error."""

    def __init__(self, urls, topic, record, slow=False):
        self.urls, self.topic, self.record = urls, topic, record
        self.home = next_home()
        self.position = None
        self.last = 0
        self.received = 0
        self.ws = None

    async def run(self, stop):
        await asyncio.sleep(random.uniform(0, 2))
        while not stop.is_set():
            try:
                async with connect(self.urls(), self.home, close_timeout=1, max_queue=None) as ws:
                    self.ws = ws
                    subscribe = {"op": "subscribe", "topic": self.topic, "id": 1}
                    if self.position:
                        subscribe["since"] = self.position
                    await ws.send(json.dumps(subscribe))
                    # Clients come and go: each connection lives a while, then resumes anew.
                    leave = time.time() + random.uniform(20, 60)
                    async for raw in ws:
                        self.take(json.loads(raw))
                        if time.time() > leave and not stop.is_set():
                            break
            except ERRORS:
                pass
            finally:
                self.ws = None
            if not stop.is_set():
                self.record.event("subscriber reconnect")
                await asyncio.sleep(random.uniform(0.1, 1.0))

    def take(self, event):
        if event["op"] == "ack":
            if event.get("recovered") is False:
                self.record.error("history", "%s: resume not recovered: %s" % (self.topic, event))
            if self.position is None or event.get("recovered") is False:
                self.position = event["position"]
        elif event["op"] == "message":
            offset, data = event["offset"], event["data"]
            if offset != self.position["offset"] + 1 or data != self.last + 1:
                kind = "duplicated" if data <= self.last else "lost" if data > self.last + 1 else "reordered"
                self.record.error("history", "%s %s: got %s at offset %s after %s" % (
                    self.topic, kind, data, offset, self.last))
            self.last = max(self.last, data)
            self.received += 1
            self.position = {"offset": offset, "epoch": self.position["epoch"]}
        elif event["op"] == "error":
            self.record.event("subscribe error")
            raise OSError(event.get("error"))


class Requester:
    """Sends numbered text messages on a route that answers each one (worker, http, proxy,
    echo) and waits for its answer; a message whose connection then closes with a documented
    code is a documented loss, one that gets no answer on an open connection an error."""

    def __init__(self, urls, route, record, interval=0.2, timeout=15):
        self.urls, self.route, self.record = urls, route, record
        self.home = next_home()
        self.interval, self.timeout = interval, timeout
        self.sequence = 0

    async def run(self, stop):
        await asyncio.sleep(random.uniform(0, 2))
        while not stop.is_set():
            ws = None
            try:
                async with connect(self.urls(), self.home, close_timeout=1) as ws:
                    leave = time.time() + random.uniform(20, 60)
                    while not stop.is_set() and time.time() < leave:
                        self.sequence += 1
                        text = "%s-%d" % (self.route, self.sequence)
                        await ws.send(text)
                        answer = await asyncio.wait_for(self.answer(ws, text), self.timeout)
                        if answer != text:
                            self.record.error(self.route, "answered %r to %r" % (answer, text))
                        self.record.count(self.record.answered, self.route)
                        await asyncio.sleep(self.interval)
            except asyncio.TimeoutError:
                self.record.count(self.record.unanswered, self.route)
                self.record.error(self.route, "no answer within %d s on an open connection" % self.timeout)
            except websockets.exceptions.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                if code in DOCUMENTED_CLOSES or code is None:
                    # Closed as documented (or cut by a network fault): what was in flight is lost.
                    self.record.count(self.record.lost, self.route)
                    self.record.event("%s closed %s" % (self.route, code))
                else:
                    self.record.error(self.route, "closed with %s %s" % (code, closed.rcvd.reason if closed.rcvd else ""))
            except ERRORS:
                self.record.event("%s connect failed" % self.route)
            await asyncio.sleep(random.uniform(0.1, 0.5))

    async def answer(self, ws, text):
        while True:
            answer = await ws.recv()
            if answer == text or not answer.startswith(self.route + "-"):
                return answer
            # An answer to a message sent before a reconnect cannot come on a new connection.


class Churner:
    """Connects, makes one round trip and leaves, again and again: connection churn."""

    def __init__(self, urls, record, per_second):
        self.urls, self.record, self.interval = urls, record, 1.0 / per_second
        self.home = next_home()

    async def run(self, stop):
        while not stop.is_set():
            try:
                async with connect(self.urls(), self.home, close_timeout=1) as ws:
                    await ws.send("churn")
                    await asyncio.wait_for(ws.recv(), 10)
            except ERRORS:
                self.record.event("churn failed")
            await asyncio.sleep(self.interval)


class SlowConsumer:
    """Subscribes to the busy live topic and reads one message a second: the gateway closes it
    (1013, its send queue full) rather than hold its backlog; it comes back."""

    def __init__(self, urls, topic, record):
        self.urls, self.topic, self.record = urls, topic, record
        self.home = next_home()

    async def run(self, stop):
        while not stop.is_set():
            try:
                async with connect(self.urls(), self.home, close_timeout=1, max_queue=1) as ws:
                    await ws.send(json.dumps({"op": "subscribe", "topic": self.topic, "id": 1}))
                    while not stop.is_set():
                        await ws.recv()
                        await asyncio.sleep(1)
            except websockets.exceptions.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                self.record.event("slow consumer closed %s" % code)
            except ERRORS:
                pass
            await asyncio.sleep(1)


class Firehose:
    """Publishes to the busy live topic (no history) as fast as its acks come back."""

    def __init__(self, urls, topic, record, rate):
        self.urls, self.topic, self.record, self.interval = urls, topic, record, 1.0 / rate
        self.home = next_home()

    async def run(self, stop):
        payload = "x" * 2048
        while not stop.is_set():
            try:
                async with connect(self.urls(), self.home, close_timeout=1) as ws:
                    while not stop.is_set():
                        await request(ws, op="publish", topic=self.topic, data=payload, id=1)
                        await asyncio.sleep(self.interval)
            except ERRORS:
                await asyncio.sleep(0.3)


class H2Requester:
    """An echo client over HTTP/2 (RFC 8441), several streams on one connection, in a thread
    (the `h2` client is blocking)."""

    def __init__(self, port_of, record, streams=4):
        self.port_of, self.record, self.streams = port_of, record, streams

    def run(self, stop):
        from h2_client import H2Client
        sequence = 0
        while not stop.is_set():
            client = None
            try:
                client = H2Client("127.0.0.1", self.port_of(), timeout=15)
                ids = []
                for _ in range(self.streams):
                    stream, status, _ = client.open_websocket("/echo")
                    if status != 200:
                        raise OSError("extended CONNECT answered %d" % status)
                    ids.append(stream)
                while not stop.is_set():
                    for stream in ids:
                        sequence += 1
                        text = ("h2-%d" % sequence).encode()
                        client.send_frame(stream, 0x1, text)
                        opcode, payload = client.recv_message(stream)
                        while opcode in (0x9, 0xA):  # the gateway's keepalive
                            if opcode == 0x9:
                                client.send_frame(stream, 0xA, payload)
                            opcode, payload = client.recv_message(stream)
                        if opcode == 0x8:
                            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                            raise ConnectionResetError("closed %s" % code)
                        if payload != text:
                            self.record.error("h2", "answered %r to %r" % (payload, text))
                        self.record.count(self.record.answered, "h2")
                    time.sleep(0.2)
            except Exception as error:  # the h2 library raises its own kinds too
                self.record.count(self.record.lost, "h2")
                self.record.event("h2 %s" % type(error).__name__)
            finally:
                if client is not None:
                    try:
                        client.close()
                    except Exception:
                        pass
            time.sleep(0.5)


class Probe:
    """One round trip on /echo every 100 ms on a gateway that stays up: the latency figure."""

    def __init__(self, url, record):
        self.url, self.record = url, record

    async def run(self, stop):
        while not stop.is_set():
            try:
                async with websockets.connect(self.url, ssl=CONTEXT, open_timeout=10, close_timeout=1) as ws:
                    while not stop.is_set():
                        started = time.time()
                        await ws.send("probe")
                        await asyncio.wait_for(ws.recv(), 10)
                        self.record.latency(time.time() - started)
                        await asyncio.sleep(0.1)
            except ERRORS as error:
                self.record.error("probe", "the probe of a gateway that stays up failed: %r" % error)
                await asyncio.sleep(1)
