"""The hub route: clients subscribe and publish over the JSON protocol of docs/hub-protocol.md,
within the route's rules; every subscriber gets every message once, in order."""
import asyncio
import base64
import json
import os
import resource
import socket
import struct
import tempfile

import pytest

import websockets

from conftest import ECHO_CONFIG, RawWebSocket, insecure_context, run
from test_admin import Admin

HUB = ECHO_CONFIG + """  hub:
    path: /hub
    kind: hub
    hub:
      subscribe: ["news.*", "chat.lobby"]
      publish: ["news.*"]
"""


async def request(ws, **fields):
    await ws.send(json.dumps(fields))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


def test_subscribe_publish_ack_and_rules(gateway_factory):
    gw = gateway_factory(HUB)

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/hub"), ssl=ctx) as reader, websockets.connect(gw.url("/hub"), ssl=ctx) as writer:
            assert await request(reader, op="subscribe", topic="news.*", id=1) == {"op": "ack", "id": 1, "topic": "news.*"}
            ack = await request(writer, op="publish", topic="news.sport", data={"score": [2, 1]}, id="p1")
            assert ack == {"op": "ack", "id": "p1", "topic": "news.sport", "data": 1}
            assert json.loads(await reader.recv()) == {"op": "message", "topic": "news.sport", "data": {"score": [2, 1]}}
            # Rules and bad requests get errors naming the problem; the connection stays.
            refused = await request(writer, op="subscribe", topic="secret.x", id=2)
            assert refused["op"] == "error" and "not allowed" in refused["error"] and refused["id"] == 2
            refused = await request(writer, op="publish", topic="chat.lobby", id=3)
            assert refused["op"] == "error" and "not allowed" in refused["error"]
            assert (await request(writer, op="publish", topic="news.*", id=4))["op"] == "error"
            assert "unknown op" in (await request(writer, op="shout", id=5))["error"]
            # Presence of users is off unless the route allows it (hub.presence), and no client
            # may name the gateway's own topics.
            assert "not allowed" in (await request(writer, op="presence", user="alice", id=7))["error"]
            assert (await request(writer, op="subscribe", topic="$user:alice", id=8))["op"] == "error"
            await writer.send("not json")
            assert json.loads(await writer.recv())["op"] == "error"
            await writer.send(b"\x00binary")
            assert "text" in json.loads(await writer.recv())["error"]
            # Unsubscribed: nothing more arrives.
            assert (await request(reader, op="unsubscribe", topic="news.*", id=6))["op"] == "ack"
            assert (await request(writer, op="publish", topic="news.sport", id=7))["data"] == 0

    run(scenario())


def fan_out_config(policy):
    """Plain ws:// on loopback (a thousand TLS handshakes would only slow the test down), a
    small send queue so that the stalled subscriber overflows soon, and an admin socket to
    watch it with. The close timeout and the keepalive outlast the scenario's own limit
    (240 s): the test finds the stalled subscriber still there after the scenario (closing, or
    open with messages dropped), and on a loaded machine the scenario took longer than the
    60 s that the close timeout, or an unanswered ping, gave it before."""
    directory = tempfile.mkdtemp(prefix="wgh")
    return """
log:
  level: info
listeners:
  main:
    address: "127.0.0.1:0"
routes:
  hub:
    path: /hub
    kind: hub
    send_queue_bytes: 64KiB
    send_queue_overflow: %s
    close_timeout: 300s
    ping_interval: 300s
    pong_timeout: 300s
    hub:
      subscribe: ["bench.*"]
      publish: ["bench.*"]
admin:
  address: "unix:%s/admin.sock"
""" % (policy, directory), os.path.join(directory, "admin.sock")


def stalled_subscriber(host, port):
    """Subscribes, reads its ack, then stops reading; its receive buffer is made small before
    connecting so the kernel does not soak up what the gateway sends."""
    raw = RawWebSocket(host, port, "/hub", tls=False, rcvbuf=4096)
    # The feed everyone gets, plus a bulk topic only it gets, to fill its queue sooner.
    raw.send_frame(0x1, json.dumps({"op": "subscribe", "topic": "bench.*"}).encode())
    opcode, _, _, payload = raw.recv_frame()
    assert json.loads(payload)["op"] == "ack"
    return raw


@pytest.mark.parametrize("policy", ["close", "drop-oldest"])
def test_thousand_subscribers_get_everything_in_order_while_a_stalled_one_is_handled(gateway_factory, policy):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2600:
        pytest.skip("needs 2,600 open files (hard limit %d)" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    config, admin_socket = fan_out_config(policy)
    gw = gateway_factory(config)
    host, port = gw.address()
    subscribers_count, messages = 1000, 300
    stalled = stalled_subscriber(host, port)

    async def scenario():
        # Half subscribe to the topic, half by pattern; all negotiate permessage-deflate.
        # No client keepalive: one Python loop inflating 300,000 messages for 1,000 clients
        # can take longer than websockets' 20 s ping timeout to read a pong on a slow CI
        # machine, and the client, not the gateway, then closes with 1011. Keepalive has
        # its own tests (test_websocket.py); this one is about fan-out.
        subscribers = []
        for i in range(subscribers_count - 1):
            ws = await websockets.connect(gw.url("/hub", scheme="ws"), max_queue=None, ping_interval=None)
            await ws.send(json.dumps({"op": "subscribe", "topic": "bench.feed.t" if i % 2 else "bench.feed.*"}))
            subscribers.append(ws)
        for ws in subscribers:
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["op"] == "ack"

        async def receive_all(ws):
            got = []
            while len(got) < messages:
                got.append(json.loads(await asyncio.wait_for(ws.recv(), 60))["data"]["seq"])
            return got

        readers = [asyncio.ensure_future(receive_all(ws)) for ws in subscribers]
        async with websockets.connect(gw.url("/hub", scheme="ws"), compression=None, ping_interval=None) as publisher:
            # Incompressible padding: the stalled subscriber's queue fills for real.
            for seq in range(messages):
                pad = base64.b64encode(os.urandom(600)).decode()
                await publisher.send(json.dumps({"op": "publish", "topic": "bench.feed.t", "data": {"seq": seq, "pad": pad}}))
                bulk = base64.b64encode(os.urandom(30000)).decode()
                await publisher.send(json.dumps({"op": "publish", "topic": "bench.bulk", "data": {"seq": seq, "pad": bulk}}))
            acks = [json.loads(await asyncio.wait_for(publisher.recv(), 60)) for _ in range(2 * messages)]
        assert all(ack["op"] == "ack" for ack in acks)
        # Every publish reached every subscriber the hub held at the time (the stalled one too,
        # until the close policy removed it).
        assert acks[0]["data"] == subscribers_count and acks[1]["data"] == 1
        results = await asyncio.gather(*readers)
        # The others were not held back: all of them have everything, in order, while the
        # stalled subscriber has still not read a byte.
        assert all(result == list(range(messages)) for result in results)
        for ws in subscribers:
            await ws.close()

    run(scenario(), timeout=240)

    admin = Admin(unix=admin_socket)
    _, page, _ = admin.call("GET", "/v1/connections?topic=bench.bulk", "/v1/connections")
    if policy == "close":
        # Closed for not reading: Close 1013 follows what was queued before it.
        # Closing: our Close is queued behind what it had not read, for it to find.
        [entry] = page["connections"]
        _, detail, _ = admin.call("GET", "/v1/connections/%d" % entry["id"], "/v1/connections/{id}")
        assert detail["state"] == "closing" and detail["statistics"]["messages_dropped"] >= 1, detail
        stalled.sock.settimeout(30)
        seqs = {"bench.feed.t": [], "bench.bulk": []}
        while True:
            opcode, _, _, payload = stalled.recv_frame()
            if opcode == 0x9:
                continue  # the gateway's keepalive, when the run outlasts ping_interval
            if opcode == 0x8:
                assert struct.unpack("!H", payload[:2])[0] == 1013, payload
                stalled.send_frame(0x8, payload[:2])
                break
            event = json.loads(payload)
            seqs[event["topic"]].append(event["data"]["seq"])
        for got in seqs.values():
            assert got == list(range(len(got))) and len(got) < messages
        gw.wait_for_log(r"websocket closed.*close_code=1013")
    else:
        # Still open, with the oldest messages dropped; what is left arrives in order and ends
        # with the newest.
        [entry] = page["connections"]
        _, detail, _ = admin.call("GET", "/v1/connections/%d" % entry["id"], "/v1/connections/{id}")
        dropped = detail["statistics"]["messages_dropped"]
        assert dropped > 0 and detail["state"] == "open", detail
        stalled.sock.settimeout(30)
        seqs = {"bench.feed.t": [], "bench.bulk": []}
        while seqs["bench.bulk"][-1:] != [messages - 1]:
            opcode, _, _, payload = stalled.recv_frame()
            if opcode == 0x9:
                continue  # the gateway's keepalive, when the run outlasts ping_interval
            assert opcode == 0x1, (opcode, payload)
            event = json.loads(payload)
            seqs[event["topic"]].append(event["data"]["seq"])
        # In order, none twice, the newest kept; exactly the dropped ones missing.
        for got in seqs.values():
            assert got == sorted(set(got))
        assert seqs["bench.feed.t"][-1] == messages - 1
        assert sum(len(got) for got in seqs.values()) + dropped == 2 * messages
    stalled.close()
