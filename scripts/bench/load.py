"""The benchmark's load generator (one process; the orchestrator starts several): picows on
uvloop, the fastest client measured on these machines.

  load.py rtt URL CONNECTIONS SIZE SECONDS   echo round trips, one message in flight per
                                             connection; prints {"count", "seconds",
                                             "cpu_seconds" (its own), "latencies_us"}
  load.py idle URL CONNECTIONS HOLD_FILE [deflate|subscribe]
                                             opens connections, writes "ready", holds them
                                             until HOLD_FILE disappears; deflate: each offers
                                             permessage-deflate (and checks it was accepted);
                                             subscribe: each subscribes to a topic of its own
                                             on the hub route (and waits for the ack)
  load.py sub URL CONNECTIONS TOPIC COUNT    hub subscribers; prints when each got COUNT
  load.py pub URL TOPIC COUNT SIZE           one hub publisher
"""
import asyncio
import json
import os
import random
import resource
import ssl
import sys
import time

import uvloop
from picows import WSListener, WSMsgType, ws_connect


_contexts = {}


def context(url):
    """One TLS client context per process: making one loads the system CA bundle, which would
    cost more than the handshake itself if done per connection."""
    if not url.startswith("wss"):
        return None
    if "tls" not in _contexts:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _contexts["tls"] = ctx
    return _contexts["tls"]


class RoundTrips(WSListener):
    def __init__(self, payload, stop_at, samples):
        self.payload, self.stop_at, self.samples = payload, stop_at, samples
        self.count = 0
        self.sent_at = 0.0
        self.done = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport):
        self.transport = transport

    def start(self):
        self.sent_at = time.perf_counter()
        self.transport.send(WSMsgType.BINARY, self.payload)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type != WSMsgType.BINARY:
            return
        now = time.perf_counter()
        self.count += 1
        # Every 16th latency is kept: enough for percentiles, cheap to keep.
        if self.count & 15 == 0:
            self.samples.append(int((now - self.sent_at) * 1e6))
        if now >= self.stop_at:
            if not self.done.done():
                self.done.set_result(None)
            return
        self.sent_at = now
        transport.send(WSMsgType.BINARY, self.payload)

    def on_ws_disconnected(self, transport):
        if not self.done.done():
            self.done.set_result(None)


async def rtt(url, connections, size, seconds):
    payload = os.urandom(size)
    samples = []
    warmup = 1.0
    stop_at = time.perf_counter() + 3600
    clients = []
    for _ in range(connections):
        _, client = await ws_connect(lambda: RoundTrips(payload, stop_at, samples), url, ssl_context=context(url), max_frame_size=1 << 20)
        clients.append(client)
    for client in clients:
        client.start()
    await asyncio.sleep(warmup)
    before = sum(c.count for c in clients)
    samples.clear()
    cpu_started = time.process_time()
    started = time.perf_counter()
    for client in clients:
        client.stop_at = started + seconds
    await asyncio.gather(*(c.done for c in clients))
    elapsed = time.perf_counter() - started
    # The generator's own CPU (user + system) over the measured interval.
    cpu = time.process_time() - cpu_started
    count = sum(c.count for c in clients) - before
    for client in clients:
        client.transport.send_close()
    print(json.dumps({"count": count, "seconds": elapsed, "cpu_seconds": cpu, "latencies_us": samples}))


class Idle(WSListener):
    def __init__(self, topic=None):
        self.topic = topic
        self.acked = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport):
        if self.topic:
            transport.send(WSMsgType.TEXT, json.dumps({"op": "subscribe", "topic": self.topic}).encode())
        elif not self.acked.done():
            self.acked.set_result(None)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif frame.msg_type == WSMsgType.TEXT and b'"op":"ack"' in frame.get_payload_as_bytes() and not self.acked.done():
            self.acked.set_result(None)


async def idle(url, connections, hold_file, variant=""):
    transports = []
    semaphore = asyncio.Semaphore(64)
    offer = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"} if variant == "deflate" else None
    base = "%d-%d" % (os.getpid(), int(time.time()))

    async def one(index):
        async with semaphore:
            topic = "idle.%s.%d" % (base, index) if variant == "subscribe" else None
            transport, listener = await ws_connect(lambda: Idle(topic), url, ssl_context=context(url), websocket_handshake_timeout=60,
                                                   extra_headers=offer)
            if offer:
                accepted = transport.response.headers.get("sec-websocket-extensions", "")
                assert accepted.startswith("permessage-deflate"), "permessage-deflate not accepted: %r" % accepted
            await asyncio.wait_for(listener.acked, 60)
            transports.append(transport)

    await asyncio.gather(*(one(index) for index in range(connections)))
    print("ready", len(transports), flush=True)
    while os.path.exists(hold_file):
        await asyncio.sleep(0.2)
    for transport in transports:
        transport.disconnect()


class Subscriber(WSListener):
    def __init__(self, topic, count):
        self.topic, self.count, self.received = topic, count, 0
        self.first = self.last = None
        self.done = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport):
        transport.send(WSMsgType.TEXT, json.dumps({"op": "subscribe", "topic": self.topic}).encode())

    def on_ws_frame(self, transport, frame):
        if frame.msg_type != WSMsgType.TEXT:
            return
        if b'"op":"message"' not in frame.get_payload_as_bytes():
            return
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now
        self.received += 1
        if self.received == self.count and not self.done.done():
            self.done.set_result(None)


async def sub(url, connections, topic, count, ready_file):
    clients = []
    for _ in range(connections):
        _, client = await ws_connect(lambda: Subscriber(topic, count), url, ssl_context=context(url))
        clients.append(client)
    await asyncio.sleep(1.0)  # every subscribe acknowledged
    open(ready_file, "w").close()
    await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), 300)
    # Wall-clock bounds so several processes can be combined.
    offset = time.time() - time.perf_counter()
    print(json.dumps({"received": sum(c.received for c in clients), "first": min(c.first for c in clients) + offset,
                      "last": max(c.last for c in clients) + offset}))


class Publisher(WSListener):
    def __init__(self):
        self.acks = 0
        self.done = None

    def on_ws_connected(self, transport):
        self.transport = transport

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT and b'"op":"ack"' in frame.get_payload_as_bytes():
            self.acks += 1
            if self.done and self.acks >= self.target and not self.done.done():
                self.done.set_result(None)


async def pub(url, topic, count, size):
    _, client = await ws_connect(Publisher, url, ssl_context=context(url))
    client.target = count
    client.done = asyncio.get_running_loop().create_future()
    pad = "x" * size
    # A window of 64 publishes in flight: the gateway's own pace, not the publisher's.
    for n in range(count):
        client.transport.send(WSMsgType.TEXT, json.dumps({"op": "publish", "topic": topic, "data": {"n": n, "pad": pad}}).encode())
        while n - client.acks > 64:
            await asyncio.sleep(0)
    await asyncio.wait_for(client.done, 300)


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.install()
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "rtt":
        asyncio.run(rtt(args[0], int(args[1]), int(args[2]), float(args[3])))
    elif mode == "idle":
        asyncio.run(idle(args[0], int(args[1]), args[2], args[3] if len(args) > 3 else ""))
    elif mode == "sub":
        asyncio.run(sub(args[0], int(args[1]), args[2], int(args[3]), args[4]))
    elif mode == "pub":
        asyncio.run(pub(args[0], args[1], int(args[2]), int(args[3])))
