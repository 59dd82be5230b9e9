"""Rolling deploys of a worker route under steady traffic: new instances start, every connection
moves to them with its attachment (a resumed open), the old processes stop — and no client sees a
close, a lost answer or a duplicate. Driven by the admin API (`POST /v1/routes/{name}/deploy`) and
by a reload that changes the route's command with `worker.on_change: move`; checked by the answers
(which process, which tag, which count) and by the processes that exist."""
import asyncio
import signal
import time

import websockets

from conftest import gateway_config, insecure_context, run
from test_admin import Admin
from test_hibernation import PYTHON, TALLY, children
from test_workers import worker_route

CLIENTS = 100
MESSAGES = 40


def tally_config(admin_socket, tag, extra=""):
    route = worker_route("tally", "/tally", PYTHON, [TALLY], instances=2,
                         extra='      env: ["TALLY_TAG=%s"]\n' % tag + extra)
    return gateway_config(level="info", routes=route, extra='admin:\n  address: "unix:%s"\n' % admin_socket)


async def steady_clients(gw, deploy, new_tag):
    """100 clients each send MESSAGES messages, one every 50 ms, reading answers as they come;
    `deploy` runs once every client has had its first answer. Checks each client's answers: one
    per message, in order, counts 1..MESSAGES without a gap (the attachment moved with the
    connection), the old tag then only the new one. Answers the PIDs seen before and after."""
    ctx = insecure_context()
    clients = [await websockets.connect(gw.url("/tally"), ssl=ctx) for _ in range(CLIENTS)]
    first_answers = asyncio.Event()
    answered = [0]

    async def client(i, ws):
        async def send():
            for j in range(MESSAGES):
                await ws.send("c%d-%d" % (i, j))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(send())
        answers = []
        for _ in range(MESSAGES):
            answers.append((await asyncio.wait_for(ws.recv(), 30)).split(" "))
            if len(answers) == 1:
                answered[0] += 1
                if answered[0] == CLIENTS:
                    first_answers.set()
        await sender
        # Nothing more may come: each message was answered exactly once.
        try:
            extra = await asyncio.wait_for(ws.recv(), 0.5)
            raise AssertionError("client %d got an answer twice: %r" % (i, extra))
        except asyncio.TimeoutError:
            pass
        assert ws.close_code is None, "client %d was closed with %s" % (i, ws.close_code)
        return answers

    tasks = [asyncio.create_task(client(i, ws)) for i, ws in enumerate(clients)]
    await first_answers.wait()
    await deploy()
    results = await asyncio.gather(*tasks)
    before, after = set(), set()
    for i, answers in enumerate(results):
        assert [(count, text) for _, count, text, _ in answers] == [
            (str(j + 1), "c%d-%d" % (i, j)) for j in range(MESSAGES)
        ], "client %d: answers out of order, missing or recounted" % i
        tags = [tag for _, _, _, tag in answers]
        switched = tags.index(new_tag) if new_tag in tags else len(tags)
        assert 0 < switched < MESSAGES, "client %d was not moved during its traffic: %s" % (i, tags)
        assert set(tags[switched:]) == {new_tag}, "client %d went back to an old instance" % i
        before.update(int(pid) for pid, _, _, _ in answers[:switched])
        after.update(int(pid) for pid, _, _, _ in answers[switched:])
    for ws in clients:
        await ws.close()
    return before, after


def wait_for_deploy(admin, number, timeout=30):
    deadline = time.time() + timeout
    while True:
        status, route, _ = admin.call("GET", "/v1/routes/tally", "/v1/routes/{name}")
        assert status == 200
        deployment = route["deployment"]
        if deployment and deployment["number"] == number and deployment["phase"] in ("done", "failed"):
            return route
        assert time.time() < deadline, "deploy %d did not finish: %s" % (number, route)
        time.sleep(0.1)


def test_a_deploy_through_the_admin_api_moves_every_client_unnoticed(gateway_factory, tmp_path):
    socket_path = str(tmp_path / "admin.sock")
    gw = gateway_factory(tally_config(socket_path, "v1"))
    gw.wait_for_log(r'msg="worker linked"')
    admin = Admin(unix=socket_path)
    old_pids = children(gw.proc.pid)
    assert len(old_pids) == 2
    status, route, _ = admin.call("GET", "/v1/routes", "/v1/routes")
    assert status == 200 and [r["route"] for r in route["routes"]] == ["tally"]
    assert route["routes"][0]["deployment"] is None
    assert sorted(i["pid"] for i in route["routes"][0]["instances"]) == old_pids

    finished = {}

    async def deploy():
        status, body, _ = await asyncio.to_thread(
            admin.call, "POST", "/v1/routes/tally/deploy", "/v1/routes/{name}/deploy",
            {"command": PYTHON, "args": [TALLY], "env": ["TALLY_TAG=v2"]})
        assert status == 202, body
        assert body["deployment"]["phase"] == "starting" and body["deployment"]["number"] == 1
        # A second deploy while the first runs is refused.
        status, body, _ = await asyncio.to_thread(
            admin.call, "POST", "/v1/routes/tally/deploy", "/v1/routes/{name}/deploy")
        assert status == 409 and body["error"]["code"] == "deploy_conflict"
        finished.update(await asyncio.to_thread(wait_for_deploy, admin, 1))

    before, after = run(steady_clients(gw, deploy, "v2"), timeout=120)
    assert before == set(old_pids)
    new_pids = children(gw.proc.pid)
    assert len(new_pids) == 2 and set(new_pids).isdisjoint(old_pids), "the old processes are gone"
    assert after == set(new_pids)
    deployment = finished["deployment"]
    assert deployment["phase"] == "done" and deployment["error"] is None
    assert deployment["moving"] == CLIENTS and deployment["forced"] == 0 and deployment["remaining"] == 0
    assert deployment["from"] == ["tally-0", "tally-1"] and deployment["to"] == ["tally-2", "tally-3"]
    assert sorted(i["pid"] for i in finished["instances"]) == new_pids
    assert all(i["state"] == "running" for i in finished["instances"])
    gw.wait_for_log(r'msg="deploy done".*moved=100', timeout=5)
    assert not any("resumed without an attachment" in line for line in gw.lines)
    assert not any("messages lost" in line for line in gw.lines)

    # Bad requests name the field; an unknown route is 404.
    status, body, _ = admin.call("POST", "/v1/routes/tally/deploy", "/v1/routes/{name}/deploy", {"args": ["x"]})
    assert status == 400 and body["error"]["field"] == "command"
    status, body, _ = admin.call("POST", "/v1/routes/tally/deploy", "/v1/routes/{name}/deploy",
                                 {"command": "x", "env": ["NOEQUALS"]})
    assert status == 400 and body["error"]["field"] == "env"
    status, body, _ = admin.call("POST", "/v1/routes/nope/deploy", "/v1/routes/{name}/deploy")
    assert status == 404
    status, body, _ = admin.call("GET", "/v1/routes/nope", "/v1/routes/{name}")
    assert status == 404
    status, body, _ = admin.call("GET", "/v1/routes/tally/deploy", "/v1/routes/{name}/deploy")
    assert status == 405


def test_a_reload_with_on_change_move_deploys_the_new_command(gateway_factory, tmp_path):
    socket_path = str(tmp_path / "admin.sock")
    gw = gateway_factory(tally_config(socket_path, "v1", extra="      on_change: move\n"))
    gw.wait_for_log(r'msg="worker linked"')
    admin = Admin(unix=socket_path)
    old_pids = children(gw.proc.pid)

    async def deploy():
        with open(gw.config_path) as f:
            text = f.read()
        with open(gw.config_path, "w") as f:
            f.write(text.replace("TALLY_TAG=v1", "TALLY_TAG=v3"))
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded", 10)
        route = await asyncio.to_thread(wait_for_deploy, admin, 1)
        assert route["deployment"]["phase"] == "done" and route["deployment"]["forced"] == 0

    before, after = run(steady_clients(gw, deploy, "v3"), timeout=120)
    new_pids = children(gw.proc.pid)
    assert before == set(old_pids) and after == set(new_pids) and set(new_pids).isdisjoint(old_pids)
    assert any("rolling deploy (on_change: move)" in line for line in gw.lines)


def test_a_sleeping_route_deploys_without_starting_anything(gateway_factory, tmp_path):
    """A hibernated route (min_instances 0, nothing running) moves no connection: the deploy puts
    the new command in force at once, and the next message wakes it with the connection's count."""
    socket_path = str(tmp_path / "admin.sock")
    gw = gateway_factory(tally_config(socket_path, "v1", extra="      min_instances: 0\n"))
    gw.wait_for_log("listening")
    admin = Admin(unix=socket_path)

    async def scenario():
        ws = await websockets.connect(gw.url("/tally"), ssl=insecure_context())
        assert children(gw.proc.pid) == []
        status, body, _ = await asyncio.to_thread(
            admin.call, "POST", "/v1/routes/tally/deploy", "/v1/routes/{name}/deploy",
            {"command": PYTHON, "args": [TALLY], "env": ["TALLY_TAG=v2"]})
        assert status == 202
        route = await asyncio.to_thread(wait_for_deploy, admin, 1)
        assert route["deployment"]["moving"] == 0 and children(gw.proc.pid) == []
        await ws.send("hello")
        pid, count, text, tag = (await asyncio.wait_for(ws.recv(), 20)).split(" ")
        assert (count, text, tag) == ("1", "hello", "v2") and [int(pid)] == children(gw.proc.pid)
        await ws.close()

    run(scenario(), timeout=60)


def test_a_deploy_whose_instances_never_link_fails_and_the_old_ones_serve_on(gateway_factory, tmp_path):
    """A new command that cannot serve (it exits at once): the deploy fails after resume_timeout,
    its instances are stopped, and the running ones go on answering the same connections. An
    external worker cannot be deployed from here (409)."""
    socket_path = str(tmp_path / "admin.sock")
    external = """  outside:
    path: /outside
    kind: worker
    worker:
      socket: "%s"
""" % str(tmp_path / "nobody.sock")
    route = worker_route("tally", "/tally", PYTHON, [TALLY], instances=2,
                         extra='      env: ["TALLY_TAG=v1"]\n      resume_timeout: 2s\n')
    config = gateway_config(level="info", routes=route + external, extra='admin:\n  address: "unix:%s"\n' % socket_path)
    gw = gateway_factory(config)
    gw.wait_for_log(r'msg="worker linked"')
    admin = Admin(unix=socket_path)
    old_pids = children(gw.proc.pid)

    async def scenario():
        ws = await websockets.connect(gw.url("/tally"), ssl=insecure_context())
        await ws.send("before")
        pid, count, _, tag = (await asyncio.wait_for(ws.recv(), 10)).split(" ")
        assert (count, tag) == ("1", "v1")
        status, body, _ = await asyncio.to_thread(
            admin.call, "POST", "/v1/routes/tally/deploy", "/v1/routes/{name}/deploy", {"command": "/bin/false"})
        assert status == 202
        route = await asyncio.to_thread(wait_for_deploy, admin, 1)
        deployment = route["deployment"]
        assert deployment["phase"] == "failed" and "did not link" in deployment["error"], deployment
        assert route["command"] == PYTHON, "the running command stays in force"
        assert sorted(i["pid"] for i in route["instances"]) == old_pids
        await ws.send("after")
        pid2, count, _, tag = (await asyncio.wait_for(ws.recv(), 10)).split(" ")
        assert (count, tag) == ("2", "v1") and int(pid2) in old_pids
        assert ws.close_code is None
        await ws.close()

    run(scenario(), timeout=60)
    assert children(gw.proc.pid) == old_pids, "the failed deploy's processes are gone"
    gw.wait_for_log(r'msg="deploy failed; the running instances serve on"', timeout=5)

    status, body, _ = admin.call("POST", "/v1/routes/outside/deploy", "/v1/routes/{name}/deploy")
    assert status == 409 and "external worker" in body["error"]["message"]
    status, body, _ = admin.call("POST", "/v1/routes/tally/deploy", "/v1/routes/{name}/deploy",
                                 {"command": "x", "nope": 1})
    assert status == 400 and body["error"]["field"] == "nope"
