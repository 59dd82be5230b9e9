"""Users and tags (docs/http-backend.md, docs/admin-api.yaml): a connection's user id and tags,
set by an `http` route's app or a token's `sub`; send, close and presence by user and tag
across a three-node cluster through a real redis-server."""
import asyncio
import json
import os
import tempfile
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import websockets

from conftest import gateway_config, insecure_context, run
from test_admin import Admin
from test_cluster import redis, wait_until  # noqa: F401 (the fixture)
from test_http_backend import Recorder, json_answer


def identify_from_query(request):
    """The test app: the open answer names the user and tags the URL asks for; a message
    `to:<user>:<text>` or `kick-tag:<tag>` is carried out by commands."""
    if request["event"] == "open":
        query = parse_qs(urlsplit(request["headers"]["WSSGate-Path"]).query)
        return json_answer([{"op": "identify", "user": query["user"][0], "tags": query.get("tag", [])}])
    if request["event"] == "message":
        text = request["body"].decode()
        if text.startswith("to:"):
            _, user, rest = text.split(":", 2)
            return json_answer([{"op": "send", "user": user, "text": rest}])
        if text.startswith("kick-tag:"):
            return json_answer([{"op": "close", "tag": text.split(":", 1)[1], "code": 4002, "reason": "kicked"}])
    return 204, None, b""


def start_cluster(gateway_factory, redis, app_port, names=("a", "b", "c")):
    nodes = {}
    for name in names:
        socket_path = os.path.join(tempfile.mkdtemp(prefix="wgu"), "admin.sock")
        config = gateway_config(
            routes="  chat:\n    path: /chat\n    kind: http\n    http:\n      url: http://127.0.0.1:%d/\n" % app_port
            + "  hub:\n    path: /hub\n    kind: hub\n    hub:\n      presence: true\n",
            extra='admin:\n  address: "unix:%s"\ncluster:\n  redis: "unix:%s"\n  node: %s\n' % (socket_path, redis.socket, name))
        nodes[name] = (gateway_factory(config), Admin(unix=socket_path))
    for gw, admin in nodes.values():
        gw.wait_for_log(r'msg="cluster link up"', timeout=20)
        wait_until(lambda: len(admin.call("GET", "/v1/cluster", "/v1/cluster")[1]["nodes"]) == len(names), "nodes registered")
    return nodes


async def quiet(ws, within=0.3):
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ws.recv(), within)


def test_send_close_and_presence_by_user_and_tag_across_three_nodes(gateway_factory, redis):
    app = Recorder(identify_from_query)
    try:
        nodes = start_cluster(gateway_factory, redis, app.port)
        (a, admin_a), (b, admin_b), (c, admin_c) = nodes["a"], nodes["b"], nodes["c"]

        async def scenario():
            ctx = insecure_context()
            alice_a = await websockets.connect(a.url("/chat?user=alice&tag=room1"), ssl=ctx)
            alice_b = await websockets.connect(b.url("/chat?user=alice"), ssl=ctx)
            bob_c = await websockets.connect(c.url("/chat?user=bob&tag=room1&tag=vip"), ssl=ctx)
            await asyncio.sleep(0.3)  # the open answers' commands are carried out

            # Presence per user, from any node.
            for admin in (admin_a, admin_c):
                status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/users/alice", "/v1/users/{user}")
                assert status == 200 and body["online"] and body["count"] == 2
                assert sorted(c["node"] for c in body["connections"]) == ["a", "b"]
            status, body, _ = await asyncio.to_thread(admin_a.call, "GET", "/v1/tags/vip", "/v1/tags/{tag}")
            assert body["count"] == 1 and body["connections"][0]["node"] == "c"
            status, body, _ = await asyncio.to_thread(admin_b.call, "GET", "/v1/users/nobody", "/v1/users/{user}")
            assert status == 200 and body == {"user": "nobody", "online": False, "count": 0, "connections": []}

            # The listing shows user and tags, and filters by them, cluster-wide.
            status, page, _ = await asyncio.to_thread(
                admin_a.call, "GET", "/v1/connections?scope=cluster&tag=room1", "/v1/connections")
            assert sorted((c["user"], c["node"]) for c in page["connections"]) == [("alice", "a"), ("bob", "c")]
            assert [c["tags"] for c in page["connections"] if c["user"] == "bob"] == [["room1", "vip"]]
            assert all(not any(t.startswith("$") for t in c["topics"]) for c in page["connections"])

            # Send by user from a node that holds none of the user's connections.
            status, body, _ = await asyncio.to_thread(
                admin_c.call, "POST", "/v1/users/alice/send", "/v1/users/{user}/send", {"text": "hi alice"})
            assert status == 202 and body == {"user": "alice", "action": "send", "here": 0}
            assert await asyncio.wait_for(alice_a.recv(), 5) == "hi alice"
            assert await asyncio.wait_for(alice_b.recv(), 5) == "hi alice"
            await quiet(bob_c)

            # Send by tag.
            status, body, _ = await asyncio.to_thread(
                admin_b.call, "POST", "/v1/tags/room1/send", "/v1/tags/{tag}/send", {"binary": "AAE="})
            assert status == 202 and body["here"] == 0
            assert await asyncio.wait_for(alice_a.recv(), 5) == b"\x00\x01"
            assert await asyncio.wait_for(bob_c.recv(), 5) == b"\x00\x01"
            await quiet(alice_b)

            # The app addresses a user from another node's event.
            await bob_c.send("to:alice:from bob")
            assert await asyncio.wait_for(alice_a.recv(), 5) == "from bob"
            assert await asyncio.wait_for(alice_b.recv(), 5) == "from bob"

            # A hub client on the third node asks the same, through the hub protocol.
            hub_client = await websockets.connect(c.url("/hub"), ssl=ctx)
            await hub_client.send(json.dumps({"op": "presence", "user": "alice", "id": 7}))
            assert json.loads(await asyncio.wait_for(hub_client.recv(), 5)) == {
                "op": "presence", "id": 7, "user": "alice", "online": True, "count": 2}

            # A tab closes: presence follows within a second.
            await alice_b.close()
            closed_at = time.monotonic()
            while True:
                status, body, _ = await asyncio.to_thread(admin_c.call, "GET", "/v1/users/alice", "/v1/users/{user}")
                if body["count"] == 1:
                    break
                assert time.monotonic() - closed_at < 1.0, "presence still counts the closed tab after 1 s"
                await asyncio.sleep(0.02)
            assert [c["node"] for c in body["connections"]] == ["a"]
            await hub_client.send(json.dumps({"op": "presence", "user": "alice", "id": 8}))
            assert json.loads(await asyncio.wait_for(hub_client.recv(), 5))["count"] == 1
            await hub_client.close()

            # Close by user from another node: alice's last tab gets the code; bob stays.
            status, body, _ = await asyncio.to_thread(
                admin_c.call, "POST", "/v1/users/alice/close", "/v1/users/{user}/close", {"code": 4001, "reason": "bye"})
            assert status == 202
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(alice_a.recv(), 5)
            assert (alice_a.close_code, alice_a.close_reason) == (4001, "bye")
            await bob_c.send("to:bob:still here")
            assert await asyncio.wait_for(bob_c.recv(), 5) == "still here"

            # Close by tag, asked by the app.
            carol_a = await websockets.connect(a.url("/chat?user=carol&tag=vip"), ssl=ctx)
            await asyncio.sleep(0.3)
            await bob_c.send("kick-tag:vip")
            for ws in (carol_a, bob_c):
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 4002
            status, body, _ = await asyncio.to_thread(admin_b.call, "GET", "/v1/tags/vip", "/v1/tags/{tag}")
            deadline = time.time() + 2
            while body["count"] and time.time() < deadline:
                await asyncio.sleep(0.05)
                status, body, _ = await asyncio.to_thread(admin_b.call, "GET", "/v1/tags/vip", "/v1/tags/{tag}")
            assert body["count"] == 0

        run(scenario(), timeout=90)
    finally:
        app.close()


def test_bad_user_and_tag_requests_are_refused_by_field(gateway_factory):
    socket_path = os.path.join(tempfile.mkdtemp(prefix="wgu"), "admin.sock")
    gateway_factory(gateway_config(extra='admin:\n  address: "unix:%s"\n' % socket_path))
    admin = Admin(unix=socket_path)
    assert admin.call("GET", "/v1/users/%01", "/v1/users/{user}")[0] == 400
    status, body, _ = admin.call("POST", "/v1/users/x/close", "/v1/users/{user}/close", {"code": 1005})
    assert status == 400 and body["error"]["field"] == "code"
    status, body, _ = admin.call("POST", "/v1/tags/x/close", "/v1/tags/{tag}/close", {"why": 1})
    assert status == 400 and body["error"]["field"] == "why"
    status, body, _ = admin.call("POST", "/v1/tags/x/send", "/v1/tags/{tag}/send", {"text": "a", "binary": "AA=="})
    assert status == 400
    assert admin.call("GET", "/v1/users/x/send", "/v1/users/{user}/send")[0] == 405
    # Nobody is there: sent to none, closed none.
    status, body, _ = admin.call("POST", "/v1/users/x/send", "/v1/users/{user}/send", {"text": "a"})
    assert status == 202 and body["here"] == 0


def test_a_tokens_sub_is_the_connections_user_on_any_route(gateway_factory):
    """An echo route with `auth`: the token's `sub` makes the connection alice's; the admin API
    finds, addresses and closes her by it, and presence drops when she leaves."""
    import jwt
    from test_auth import HS_SECRET, claims
    socket_path = os.path.join(tempfile.mkdtemp(prefix="wgu"), "admin.sock")
    gateway = gateway_factory(gateway_config(routes="""  private:
    path: /private
    kind: echo
    auth:
      hs256_secret: "%s"
      issuer: "https://issuer.test"
      audience: ["wssgate"]
""" % HS_SECRET, extra='admin:\n  address: "unix:%s"\n' % socket_path))
    admin = Admin(unix=socket_path)

    async def scenario():
        token = jwt.encode(claims(sub="alice"), HS_SECRET, algorithm="HS256")
        headers = {"Authorization": "Bearer " + token}
        async with websockets.connect(gateway.url("/private"), ssl=insecure_context(), additional_headers=headers) as one, \
                websockets.connect(gateway.url("/private"), ssl=insecure_context(), additional_headers=headers) as two:
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/users/alice", "/v1/users/{user}")
            assert body["count"] == 2 and body["connections"][0]["node"] is None
            status, page, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?user=alice", "/v1/connections")
            assert [c["user"] for c in page["connections"]] == ["alice", "alice"]
            await asyncio.to_thread(admin.call, "POST", "/v1/users/alice/send", "/v1/users/{user}/send", {"text": "hey"})
            assert await asyncio.wait_for(one.recv(), 5) == "hey" and await asyncio.wait_for(two.recv(), 5) == "hey"
            # The echo route goes on echoing.
            await one.send("echo")
            assert await asyncio.wait_for(one.recv(), 5) == "echo"
            await two.close()
            await asyncio.sleep(0.2)
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/users/alice", "/v1/users/{user}")
            assert body["count"] == 1
            await asyncio.to_thread(admin.call, "POST", "/v1/users/alice/close", "/v1/users/{user}/close")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(one.recv(), 5)
            assert one.close_code == 1000
        status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/users/alice", "/v1/users/{user}")
        assert body["online"] is False

    run(scenario(), timeout=30)


def test_a_worker_names_users_and_tags_and_addresses_them(gateway_factory):
    """The worker's `identify` before its `accept`: the connection is the user's from its first
    frame; `send-to` and `close-to` by user and tag reach connections of any route."""
    import sys
    socket_path = os.path.join(tempfile.mkdtemp(prefix="wgu"), "admin.sock")
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "users_worker.py")
    gateway = gateway_factory(gateway_config(routes="""  app:
    path: /app
    kind: worker
    worker:
      command: "%s"
      args: ["%s"]
      instances: 1
      authorize: true
""" % (sys.executable, worker), extra='admin:\n  address: "unix:%s"\n' % socket_path))
    gateway.wait_for_log(r'msg="worker linked"')
    admin = Admin(unix=socket_path)

    async def scenario():
        ctx = insecure_context()
        alice = await websockets.connect(gateway.url("/app?user=alice&tag=a"), ssl=ctx)
        bob = await websockets.connect(gateway.url("/app?user=bob&tag=a"), ssl=ctx)
        # Named before the 101: listed with user and tags at once.
        status, page, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?tag=a", "/v1/connections")
        assert sorted((c["user"], tuple(c["tags"])) for c in page["connections"]) == [("alice", ("a",)), ("bob", ("a",))]
        await bob.send("to-user:alice:hello alice")
        assert await asyncio.wait_for(alice.recv(), 5) == "hello alice"
        await alice.send("to-tag:a:hello a")
        assert await asyncio.wait_for(alice.recv(), 5) == "hello a"
        assert await asyncio.wait_for(bob.recv(), 5) == "hello a"
        await alice.send("untag:a")
        assert await asyncio.wait_for(alice.recv(), 5) == "untagged"
        status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/tags/a", "/v1/tags/{tag}")
        assert body["count"] == 1
        await alice.send("close-user:bob")
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(bob.recv(), 5)
        assert (bob.close_code, bob.close_reason) == (4003, "by the worker")
        await alice.send("to-user:alice:still open")
        assert await asyncio.wait_for(alice.recv(), 5) == "still open"
        await alice.close()

    run(scenario(), timeout=30)


def test_a_proxied_connection_counts_in_its_users_presence_and_closes_with_them(gateway_factory):
    """A `bytes` proxy route with `auth`: the gateway does not speak on the connection, but its
    token's `sub` lists it as the user's, and a close by user ends it."""
    import jwt
    from test_auth import HS_SECRET, claims
    from test_proxy import Upstream
    upstream = Upstream()
    socket_path = os.path.join(tempfile.mkdtemp(prefix="wgu"), "admin.sock")
    try:
        gateway = gateway_factory(gateway_config(routes="""  passthrough:
    path: /passthrough
    kind: proxy
    proxy:
      upstream: "ws://127.0.0.1:%d/"
    auth:
      hs256_secret: "%s"
      issuer: "https://issuer.test"
      audience: ["wssgate"]
""" % (upstream.port, HS_SECRET), extra='admin:\n  address: "unix:%s"\n' % socket_path))
        admin = Admin(unix=socket_path)

        async def scenario():
            token = jwt.encode(claims(sub="erin"), HS_SECRET, algorithm="HS256")
            async with websockets.connect(gateway.url("/passthrough"), ssl=insecure_context(),
                                          additional_headers={"Authorization": "Bearer " + token}) as ws:
                assert "Forwarded" in json.loads(await asyncio.wait_for(ws.recv(), 5))  # the upstream's hello
                await ws.send("through")
                assert await asyncio.wait_for(ws.recv(), 5) == "through"
                status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/users/erin", "/v1/users/{user}")
                assert body["count"] == 1
                await asyncio.to_thread(admin.call, "POST", "/v1/users/erin/close", "/v1/users/{user}/close")
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
            await asyncio.sleep(0.2)
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/users/erin", "/v1/users/{user}")
            assert body["count"] == 0

        run(scenario(), timeout=30)
    finally:
        upstream.stop()
