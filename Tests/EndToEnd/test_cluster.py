"""Several gateways sharing topics and connections through a real redis-server (docs/cluster.md):
fan-out across three nodes, admin commands for a connection another node holds, Redis killed
and restarted mid-run, and a gateway killed outright."""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import websockets

from conftest import gateway_config, insecure_context, run, raw_http, status_of
from test_admin import Admin

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    """redis-server on a Unix socket under a short temporary directory, stopped by its PID."""

    def __init__(self):
        if not os.path.exists(REDIS):
            pytest.fail("redis-server is not installed (make test installs it with apt)")
        self.directory = tempfile.mkdtemp(prefix="wgr")
        self.socket = os.path.join(self.directory, "redis.sock")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", self.directory, "--logfile", os.path.join(self.directory, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not os.path.exists(self.socket):
            assert time.time() < deadline and self.proc.poll() is None, "redis-server did not start"
            time.sleep(0.02)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if os.path.exists(self.socket):
            os.unlink(self.socket)


@pytest.fixture
def redis():
    server = Redis()
    yield server
    server.kill()


def node_config(redis, name, admin_socket, ttl="15s", extra=""):
    return gateway_config(routes="""  hub:
    path: /hub
    kind: hub
    compression: { enabled: false }
    hub:
      subscribe: ["*"]
      publish: ["*"]
""", extra="""admin:
  address: "unix:%s"
cluster:
  redis: "unix:%s"
  node: %s
  presence_ttl: %s
%s""" % (admin_socket, redis.socket, name, ttl, extra))


def start_nodes(gateway_factory, redis, names, ttl="15s", extra=""):
    nodes = {}
    for name in names:
        socket_path = os.path.join(tempfile.mkdtemp(prefix="wgc"), "admin.sock")
        gw = gateway_factory(node_config(redis, name, socket_path, ttl, extra))
        nodes[name] = (gw, Admin(unix=socket_path))
    for name, (gw, _) in nodes.items():
        gw.wait_for_log(r'msg="cluster link up"', timeout=20)
    # Every node sees every other as live before traffic starts.
    for name, (gw, admin) in nodes.items():
        wait_until(lambda: len(admin.call("GET", "/v1/cluster", "/v1/cluster")[1]["nodes"]) == len(names), "nodes registered")
    return nodes


def wait_until(condition, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def readyz(gw):
    host, port = gw.address()
    response = raw_http(host, port, b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return status_of(response), response.split(b"\r\n\r\n", 1)[1].decode()


async def subscribe(url, topic):
    ws = await websockets.connect(url, ssl=insecure_context(), max_queue=None)
    await ws.send(json.dumps({"op": "subscribe", "topic": topic, "id": 1}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "ack"
    return ws


async def collect(ws, count, timeout=20):
    got = []
    while len(got) < count:
        got.append(json.loads(await asyncio.wait_for(ws.recv(), timeout))["data"])
    return got


def test_every_message_reaches_every_node_once_in_order_per_publisher(gateway_factory, redis):
    nodes = start_nodes(gateway_factory, redis, ["a", "b", "c"])
    per_publisher = 100

    async def scenario():
        subscribers = []
        for name, (gw, _) in nodes.items():
            for _ in range(3):
                subscribers.append(await subscribe(gw.url("/hub"), "prices"))
        publishers = [await websockets.connect(gw.url("/hub"), ssl=insecure_context()) for gw, _ in nodes.values()]

        async def publish(name, ws):
            for index in range(per_publisher):
                await ws.send(json.dumps({"op": "publish", "topic": "prices", "data": {"from": name, "n": index}}))
        await asyncio.gather(*(publish(name, ws) for name, ws in zip(nodes, publishers)))
        received = await asyncio.gather(*(collect(ws, per_publisher * len(nodes)) for ws in subscribers))
        for got in received:
            for name in nodes:
                sequence = [m["n"] for m in got if m["from"] == name]
                assert sequence == list(range(per_publisher)), "from %s: %s" % (name, sequence[:20])
        # Exactly once: nothing more arrives.
        for ws in subscribers:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.5)
        for ws in subscribers + publishers:
            await ws.close()

    run(scenario(), timeout=90)
    # The other nodes' copies crossed Redis; each node counted its own publishes as sent.
    for name, (gw, _) in nodes.items():
        assert readyz(gw) == (200, "ready\n")


def test_admin_on_one_node_sends_to_and_closes_a_connection_on_another(gateway_factory, redis):
    # A request timeout no answer here may come near: a 404 for a node nobody holds must be
    # answered at once, and is told from a timed-out one by being far quicker than it.
    nodes = start_nodes(gateway_factory, redis, ["a", "b", "c"], extra="  request_timeout: 60s\n")
    gw_a, admin_a = nodes["a"]
    gw_c, admin_c = nodes["c"]

    async def scenario():
        ws = await websockets.connect(gw_c.url("/echo"), ssl=insecure_context())
        await ws.send("hello")
        assert await ws.recv() == "hello"
        status, page, _ = await asyncio.to_thread(admin_a.call, "GET", "/v1/connections?scope=cluster", "/v1/connections")
        assert status == 200
        on_c = [c for c in page["connections"] if c["node"] == "c"]
        assert len(on_c) == 1 and on_c[0]["route"] == "echo"
        connection_id = on_c[0]["id"]
        # The node's own listing has it too; A's node-scope listing does not.
        assert [c["id"] for c in (await asyncio.to_thread(admin_c.call, "GET", "/v1/connections", "/v1/connections"))[1]["connections"]] == [connection_id]
        assert (await asyncio.to_thread(admin_a.call, "GET", "/v1/connections", "/v1/connections"))[1]["connections"] == []
        status, detail, _ = await asyncio.to_thread(admin_a.call, "GET", "/v1/connections/%d" % connection_id, "/v1/connections/{id}")
        assert status == 200 and detail["node"] == "c" and detail["state"] == "open"
        status, body, _ = await asyncio.to_thread(admin_a.call, "POST", "/v1/connections/%d/send" % connection_id, "/v1/connections/{id}/send", {"text": "from a"})
        assert (status, body) == (202, {"id": connection_id, "queued": True})
        assert await asyncio.wait_for(ws.recv(), 5) == "from a"
        status, body, _ = await asyncio.to_thread(admin_a.call, "DELETE", "/v1/connections/%d?code=4001&reason=moved" % connection_id, "/v1/connections/{id}")
        assert (status, body) == (202, {"id": connection_id, "code": 4001, "closing": True})
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001 and ws.close_reason == "moved"
        # Gone now: the owner says 404, through A.
        status, body, _ = await asyncio.to_thread(admin_a.call, "GET", "/v1/connections/%d" % connection_id, "/v1/connections/{id}")
        assert status == 404
        # An id of a node number nobody holds: 404 from A, without waiting for a timeout.
        nobody = (1023 if all(n != 1023 for n in [c["number"] for c in admin_a.call("GET", "/v1/cluster", "/v1/cluster")[1]["nodes"]]) else 1022)
        started = time.time()
        status, body, _ = await asyncio.to_thread(admin_a.call, "GET", "/v1/connections/%d" % ((nobody << 42) | 1), "/v1/connections/{id}")
        assert status == 404 and time.time() - started < 30, (status, body)

    run(scenario())


def test_a_worker_on_one_node_sends_to_and_closes_a_connection_on_another(gateway_factory, redis):
    import sys
    relay = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay_worker.py")
    route = """  relay:
    path: /relay
    kind: worker
    worker:
      command: "%s"
      args: ["%s"]
""" % (sys.executable, relay)
    nodes = {}
    for name in ("a", "c"):
        socket_path = os.path.join(tempfile.mkdtemp(prefix="wgc"), "admin.sock")
        config = node_config(redis, name, socket_path).replace("  hub:\n", route + "  hub:\n", 1)
        nodes[name] = (gateway_factory(config), Admin(unix=socket_path))
    for gw, _ in nodes.values():
        gw.wait_for_log(r'msg="cluster link up"', timeout=20)
    gw_a, _ = nodes["a"]
    gw_c, admin_c = nodes["c"]
    gw_a.wait_for_log(r'msg="worker linked"', timeout=20)

    async def scenario():
        target = await websockets.connect(gw_c.url("/echo"), ssl=insecure_context())
        witness = await websockets.connect(gw_c.url("/echo"), ssl=insecure_context())
        status, page, _ = await asyncio.to_thread(admin_c.call, "GET", "/v1/connections", "/v1/connections")
        target_id = page["connections"][0]["id"]
        async with websockets.connect(gw_a.url("/relay"), ssl=insecure_context()) as worker_client:
            await worker_client.send(json.dumps({"to": target_id, "text": "from a worker on a"}))
            assert await asyncio.wait_for(worker_client.recv(), 10) == "done"
            assert await asyncio.wait_for(target.recv(), 10) == "from a worker on a"
            await worker_client.send(json.dumps({"close": target_id, "code": 4002, "reason": "bye"}))
            assert await asyncio.wait_for(worker_client.recv(), 10) == "done"
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                await asyncio.wait_for(target.recv(), 10)
            assert target.close_code == 4002 and target.close_reason == "bye"
        # The other connection on c was not touched.
        await witness.send("still here")
        assert await witness.recv() == "still here"
        await witness.close()

    run(scenario())


def test_redis_killed_mid_run_local_delivery_goes_on_and_the_cluster_heals(gateway_factory, redis):
    nodes = start_nodes(gateway_factory, redis, ["a", "b"])
    gw_a, admin_a = nodes["a"]
    gw_b, admin_b = nodes["b"]

    def rss_kib(gw):
        with open("/proc/%d/status" % gw.proc.pid) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

    async def scenario():
        local = await subscribe(gw_a.url("/hub"), "t")
        remote = await subscribe(gw_b.url("/hub"), "t")
        publisher = await websockets.connect(gw_a.url("/hub"), ssl=insecure_context())
        await publisher.send(json.dumps({"op": "publish", "topic": "t", "data": "before"}))
        assert await collect(local, 1) == ["before"]
        assert await collect(remote, 1) == ["before"]

        redis.kill()
        await asyncio.to_thread(gw_a.wait_for_log, r'msg="cluster link down"', 15)
        status, body = await asyncio.to_thread(readyz, gw_a)
        # Public listeners say only "degraded"; the admin API says what is missing.
        assert (status, body) == (200, "degraded\n"), body
        _, detail, _ = admin_a.call("GET", "/v1/status", "/v1/status")
        assert detail["readiness"] == "degraded" and detail["degraded"].startswith("cluster link down"), detail
        assert "redis" not in body.lower()
        # Local delivery goes on; nothing piles up for the other node.
        before = rss_kib(gw_a)
        payload = "x" * 1024
        for index in range(3000):
            await publisher.send(json.dumps({"op": "publish", "topic": "t", "data": {"n": index, "pad": payload}}))
        got = await collect(local, 3000, timeout=30)
        assert [m["n"] for m in got] == list(range(3000))
        grown = rss_kib(gw_a) - before
        assert grown < 32 * 1024, "grew %d KiB while Redis was down" % grown
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(remote.recv(), 0.5)
        status, body, _ = await asyncio.to_thread(admin_a.call, "GET", "/v1/connections?scope=cluster", "/v1/connections")
        assert status == 503 and body["error"]["code"] == "cluster_link_down"

        redis.start()
        for gw in (gw_a, gw_b):
            await asyncio.to_thread(wait_until, lambda gw=gw: readyz(gw) == (200, "ready\n"), "the cluster link back", 20)
        await asyncio.to_thread(wait_until, lambda: len(admin_a.call("GET", "/v1/cluster", "/v1/cluster")[1]["nodes"]) == 2, "both nodes registered again")
        await publisher.send(json.dumps({"op": "publish", "topic": "t", "data": "after"}))
        assert await collect(local, 1) == ["after"]
        assert await collect(remote, 1) == ["after"]
        for ws in (local, remote, publisher):
            await ws.close()

    run(scenario(), timeout=120)
    a, b = metrics(admin_a), metrics(admin_b)
    assert a[("wssgate_cluster_link_up", ())] == 1
    assert a[("wssgate_cluster_connects_total", ())] == 2
    assert a[("wssgate_cluster_messages_lost_total", (("reason", "link_down"),))] == 3000
    assert a[("wssgate_cluster_messages_sent_total", ())] == 2
    assert b[("wssgate_cluster_messages_received_total", ())] == 2


def metrics(admin):
    """The node's /metrics (admin API), parsed: (name, sorted labels) → value."""
    from prometheus_client.parser import text_string_to_metric_families
    from test_admin import UnixHTTPConnection
    conn = UnixHTTPConnection(admin.unix)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_unready_policy_answers_503_while_redis_is_down(gateway_factory, redis):
    nodes = start_nodes(gateway_factory, redis, ["solo"], extra="  degraded_readiness: unready\n")
    gw, admin = nodes["solo"]
    assert readyz(gw) == (200, "ready\n")
    redis.kill()
    wait_until(lambda: readyz(gw)[0] == 503, "503 from /readyz")
    status, body = readyz(gw)
    assert body == "degraded\n", body
    _, detail, _ = admin.call("GET", "/v1/status", "/v1/status")
    assert detail["degraded"].startswith("cluster link down"), detail
    # Waiting to reconnect does not hold up a stop.
    started = time.time()
    assert gw.stop() == 0
    assert time.time() - started < 4


def test_presence_of_a_killed_gateway_expires(gateway_factory, redis):
    nodes = start_nodes(gateway_factory, redis, ["a", "b", "c"], ttl="2s")
    gw_a, admin_a = nodes["a"]
    gw_c, _ = nodes["c"]

    async def scenario():
        on_a = await subscribe(gw_a.url("/hub"), "room.1")
        on_c = await subscribe(gw_c.url("/hub"), "room.1")

        def presence():
            return admin_a.call("GET", "/v1/topics/room.1/presence", "/v1/topics/{topic}/presence")[1]["subscribers"]
        await asyncio.to_thread(wait_until, lambda: sorted(s["node"] for s in presence()) == ["a", "c"], "presence on a and c")
        gw_c.proc.send_signal(signal.SIGKILL)
        gw_c.proc.wait()
        killed = time.time()
        await asyncio.to_thread(wait_until, lambda: [s["node"] for s in presence()] == ["a"], "c's presence to expire", 10)
        assert time.time() - killed <= 2.0 + 1.0, "gone within the TTL (2 s) and a refresh"
        status, body, _ = await asyncio.to_thread(admin_a.call, "GET", "/v1/cluster", "/v1/cluster")
        assert sorted(n["name"] for n in body["nodes"]) == ["a", "b"]
        await on_a.close()

    run(scenario(), timeout=60)


def test_bad_cluster_settings_are_refused_naming_the_key(gateway_factory):
    for section, key in [
        ('cluster:\n  redis: "http://x"\n', "cluster.redis"),
        ('cluster:\n  redis: "unix:/tmp/r.sock"\n  node: "no spaces"\n', "cluster.node"),
        ('cluster:\n  redis: "unix:/tmp/r.sock"\n  node_number: 0\n', "cluster.node_number"),
        ('cluster:\n  node: a\n', "cluster.redis"),
        ('cluster:\n  redis: "unix:/tmp/r.sock"\n  degraded_readiness: maybe\n', "cluster.degraded_readiness"),
    ]:
        gw = gateway_factory(gateway_config(extra=section), listeners=0)
        assert gw.proc.wait(timeout=20) == 2
        assert any(key in line for line in gw.lines), (key, gw.lines)


def test_check_config_prints_the_cluster_without_its_password():
    from conftest import BINARY
    directory = tempfile.mkdtemp(prefix="wgc")
    path = os.path.join(directory, "wssgate.yaml")
    with open(path, "w") as f:
        f.write(gateway_config(extra='cluster:\n  redis: "redis://user:s3cret-pw@127.0.0.1:6390/2"\n  node: n1\n'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSSGATE_")}
    result = subprocess.run([BINARY, "check-config", path], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    assert 'redis: "redis://user:***@127.0.0.1:6390/2"' in result.stdout
    assert 'node: "n1"' in result.stdout and "node_number: " in result.stdout and "presence_ttl: 15s" in result.stdout
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_two_live_nodes_cannot_share_a_node_number(gateway_factory, redis):
    nodes = start_nodes(gateway_factory, redis, ["first"], extra="  node_number: 77\n")
    socket_path = os.path.join(tempfile.mkdtemp(prefix="wgc"), "admin.sock")
    second = gateway_factory(node_config(redis, "second", socket_path, extra="  node_number: 77\n"))
    second.wait_for_log(r"node number 77 is taken by node 'first'", timeout=20)
    status, body, _ = Admin(unix=socket_path).call("GET", "/v1/cluster", "/v1/cluster")
    assert status == 200 and body["linked"] is False and body["nodes"] == []
    status, text = readyz(second)
    assert (status, text) == (200, "degraded\n")
    _, detail, _ = Admin(unix=socket_path).call("GET", "/v1/status", "/v1/status")
    assert "cluster link down" in detail["degraded"], detail
    # The first node is undisturbed.
    assert readyz(nodes["first"][0]) == (200, "ready\n")


def test_a_node_that_does_not_answer_gets_504_and_bad_scopes_400(gateway_factory, redis):
    import socket
    nodes = start_nodes(gateway_factory, redis, ["a"], extra="  request_timeout: 1s\n")
    _, admin = nodes["a"]
    # Something listens on node 777's channel but never answers.
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.connect(redis.socket)
    mute.sendall(b"SUBSCRIBE wssgate:node:777\r\n")
    assert b"subscribe" in mute.recv(4096)
    started = time.time()
    status, body, _ = admin.call("GET", "/v1/connections/%d" % ((777 << 42) | 5), "/v1/connections/{id}")
    assert status == 504 and body["error"]["code"] == "node_timeout"
    assert 0.9 < time.time() - started < 3
    mute.close()
    status, body, _ = admin.call("GET", "/v1/connections?scope=everywhere", "/v1/connections")
    assert status == 400 and body["error"]["field"] == "scope"


def test_publishes_redis_does_not_take_are_dropped_past_16_mib(gateway_factory, redis):
    # The link must outlive the publishes (24 MiB through the admin API take seconds on a busy
    # machine): were it to time out first, later publishes would be lost as link_down instead.
    nodes = start_nodes(gateway_factory, redis, ["a"], extra="  request_timeout: 60s\n")
    gw, admin = nodes["a"]
    redis.proc.send_signal(signal.SIGSTOP)  # reachable, but answers nothing
    try:
        payload = "y" * (1 << 20)
        for index in range(24):
            status, body, _ = admin.call("POST", "/v1/publish", "/v1/publish", {"topic": "big", "text": payload})
            assert status == 200
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    values = metrics(admin)
    assert values[("wssgate_cluster_messages_lost_total", (("reason", "backlog"),))] >= 7
    assert values.get(("wssgate_cluster_messages_lost_total", (("reason", "link_down"),)), 0) == 0
    # Redis answers again: the node is ready again.
    wait_until(lambda: readyz(gw) == (200, "ready\n"), "ready again", 20)


def test_a_node_stops_on_sigterm_with_its_link_up_and_leaves_the_cluster(gateway_factory, redis):
    """SIGTERM with the Redis link up: the node drains, says goodbye (the others stop listing
    it at once, not after the presence TTL) and exits 0 well within its drain timeout — the
    wait between heartbeats must hear the shutdown."""
    nodes = start_nodes(gateway_factory, redis, ["a", "b"], ttl="60s")
    gw_b, _ = nodes["b"]
    _, admin_a = nodes["a"]
    started = time.time()
    assert gw_b.stop(signal.SIGTERM, timeout=20) == 0, "exited 0 (not killed after hanging)"
    assert time.time() - started < 15
    wait_until(lambda: [n["name"] for n in admin_a.call("GET", "/v1/cluster", "/v1/cluster")[1]["nodes"]] == ["a"],
               "b gone from a's view", 5)
