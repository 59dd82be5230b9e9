"""The hub route: clients subscribe and publish over the JSON protocol of docs/hub-protocol.md,
within the route's rules; every subscriber gets every message once, in order."""
import asyncio
import json

import websockets

from conftest import ECHO_CONFIG, insecure_context, run

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
            await writer.send("not json")
            assert json.loads(await writer.recv())["op"] == "error"
            await writer.send(b"\x00binary")
            assert "text" in json.loads(await writer.recv())["error"]
            # Unsubscribed: nothing more arrives.
            assert (await request(reader, op="unsubscribe", topic="news.*", id=6))["op"] == "ack"
            assert (await request(writer, op="publish", topic="news.sport", id=7))["data"] == 0

    run(scenario())


def test_two_hundred_subscribers_get_every_message_in_order(gateway_factory):
    gw = gateway_factory(HUB)

    async def scenario():
        ctx = insecure_context()
        subscribers = [await websockets.connect(gw.url("/hub"), ssl=ctx) for _ in range(200)]
        for ws in subscribers:
            assert (await request(ws, op="subscribe", topic="news.*"))["op"] == "ack"
        async with websockets.connect(gw.url("/hub"), ssl=ctx) as publisher:
            for n in range(50):
                await publisher.send(json.dumps({"op": "publish", "topic": "news.feed", "data": n}))
            for n in range(50):
                assert json.loads(await publisher.recv())["data"] == 200

        async def receive_all(ws):
            return [json.loads(await asyncio.wait_for(ws.recv(), 20))["data"] for _ in range(50)]

        results = await asyncio.gather(*(receive_all(ws) for ws in subscribers))
        assert all(result == list(range(50)) for result in results)
        for ws in subscribers:
            await ws.close()

    run(scenario(), timeout=120)
