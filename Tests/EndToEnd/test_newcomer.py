"""What a newcomer meets first, each found once by trying the gateway as the docs describe it:
a send to a hub client is a hub event, wssgate.js settles a subscribe made before its socket
opens, a restart keeps the embedded default's history, a dead upstream or app degrades the
gateway and says so, an `http` route's refusal keeps the app's address to itself, a SIGTERM
posts every `close` event, errors and values read as they are, and the reload log and console
say what happened."""
import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import jwt
import pytest
import websockets

from conftest import BINARY, ROOT, gateway_config, insecure_context, run
from test_admin import Admin
from test_cluster import redis  # noqa: F401 (the fixture)

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "a-newcomer-secret-of-at-least-32-bytes!"


def hub_config(socket_path, extra_route=""):
    return gateway_config(routes="""  hub:
    path: /hub
    kind: hub
    hub:
      subscribe: ["*"]
      publish: ["news.*"]
  members:
    path: /members
    kind: hub
    auth:
      hs256_secret: "%s"
      token_from: [query]
%s""" % (SECRET, extra_route), extra='admin:\n  address: "unix:%s"\n' % socket_path)


# Item: a send by connection, user or tag reaches a hub client as a hub event.

def test_a_send_to_a_hub_client_is_a_direct_event_by_connection_and_by_user(gateway_factory, tmp_path):
    socket_path = str(tmp_path / "admin.sock")
    gw = gateway_factory(hub_config(socket_path))
    admin = Admin(unix=socket_path)
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/hub"), ssl=ctx) as plain, \
                websockets.connect(gw.url("/members?access_token=" + token), ssl=ctx) as member:
            status, page, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?route=hub", "/v1/connections")
            (connection,) = page["connections"]
            target = "/v1/connections/%d/send" % connection["id"]
            for body, data, encoding in (({"text": "hi there"}, "hi there", None),
                                         ({"text": '{"n": 1}'}, {"n": 1}, None),
                                         ({"binary": base64.b64encode(b"\x00\x01").decode()}, "AAE=", "base64")):
                status, _, _ = await asyncio.to_thread(admin.call, "POST", target, "/v1/connections/{id}/send", body)
                assert status == 202
                event = json.loads(await asyncio.wait_for(plain.recv(), 5))
                expected = {"op": "direct", "data": data}
                if encoding:
                    expected["encoding"] = encoding
                assert event == expected
            status, _, _ = await asyncio.to_thread(admin.call, "POST", "/v1/users/alice/send", "/v1/users/{user}/send",
                                                   {"text": "to alice"})
            assert status == 202
            assert json.loads(await asyncio.wait_for(member.recv(), 5)) == {"op": "direct", "data": "to alice"}

    run(scenario())


def node(*args):
    env = dict(os.environ, NODE_TLS_REJECT_UNAUTHORIZED="0", NODE_NO_WARNINGS="1")
    return subprocess.Popen(["node", "--experimental-websocket", os.path.join(HERE, "wssgate_js.mjs"), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def next_line(process, timeout=10):
    """The next JSON line a Node scenario printed."""
    import select
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the Node client said nothing; stderr: %s" % (process.stderr.read() if process.poll() is not None else "")
    line = process.stdout.readline()
    assert line, "the Node client ended: %s" % process.stderr.read()
    return json.loads(line)


def test_wssgate_js_hands_direct_messages_to_on_message(gateway_factory, tmp_path):
    socket_path = str(tmp_path / "admin.sock")
    gw = gateway_factory(hub_config(socket_path))
    admin = Admin(unix=socket_path)
    client = node("direct", gw.url("/hub"))
    try:
        assert next_line(client) == {"open": True}
        status, page, _ = admin.call("GET", "/v1/connections?route=hub", "/v1/connections")
        (connection,) = page["connections"]
        admin.call("POST", "/v1/connections/%d/send" % connection["id"], "/v1/connections/{id}/send", {"text": '["a", 2]'})
        assert next_line(client) == {"direct": ["a", 2], "encoding": None}
        admin.call("POST", "/v1/connections/%d/send" % connection["id"], "/v1/connections/{id}/send", {"text": "plain"})
        assert next_line(client) == {"direct": "plain", "encoding": None}
    finally:
        client.kill()
        client.wait()


# Item: wssgate.js settles a subscribe (and what follows it) made before the socket opens.

def test_wssgate_js_subscribe_before_the_socket_opens_settles(gateway_factory, tmp_path):
    gw = gateway_factory(hub_config(str(tmp_path / "admin.sock")))
    client = node("subscribe-before-open", gw.url("/hub"))
    try:
        assert next_line(client) == {"subscribed": "ack"}
        lines = [next_line(client), next_line(client)]
        assert {"published": "ack"} in lines and {"message": {"n": 1}} in lines, lines
    finally:
        client.kill()
        client.wait()


# Item: an http route whose app is down says so at start and in /v1/status, and its refusal
# keeps the app's address and the network error to the operator.

def test_an_http_route_to_a_dead_app_degrades_and_refuses_without_internals(gateway_factory, tmp_path):
    import socket
    from conftest import raw_http
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    socket_path = str(tmp_path / "admin.sock")
    gw = gateway_factory(gateway_config(
        routes="  app:\n    path: /app\n    kind: http\n    http:\n      url: http://127.0.0.1:%d/events\n      retries: 1\n"
        % dead_port,
        extra='admin:\n  address: "unix:%s"\n' % socket_path))
    admin = Admin(unix=socket_path)
    gw.wait_for_log(r'level=warning.*msg="app unreachable.*error="connection refused".*route=app.*url=http://127.0.0.1:%d/events'
                    % dead_port)
    status = admin.call("GET", "/v1/status", "/v1/status")[1]
    assert status == {"readiness": "degraded",
                      "degraded": "routes.app: its app at http://127.0.0.1:%d/events does not accept connections" % dead_port}
    host, port = gw.address()
    answer = raw_http(host, port, b"GET /app HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", read_timeout=15)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 503"), head
    assert b"127.0.0.1" not in answer and str(dead_port).encode() not in answer and b"refused" not in answer, answer
    assert b"the application is unavailable" in body


# Item: on SIGTERM every http-route connection's close event reaches the app, also when it
# needs a new connection to the app to get there.

def test_sigterm_posts_every_close_event_even_on_a_new_connection(gateway_factory):
    from test_http_backend import Recorder

    def answer(request):
        # Every answer ends its connection: each event needs a new one.
        return 204, None, b"", {"Connection": "close"}

    app = Recorder(answer)
    try:
        gw = gateway_factory(gateway_config(
            routes="  app:\n    path: /app\n    kind: http\n    http:\n      url: http://127.0.0.1:%d/\n      connections: 2\n"
            % app.port,
            extra="server:\n  drain_spread: 0s\n"))
        count = 20

        async def scenario():
            clients = [await websockets.connect(gw.url("/app"), ssl=insecure_context()) for _ in range(count)]
            assert len(app.events("open")) == count
            gw.proc.send_signal(__import__("signal").SIGTERM)
            for client in clients:
                with pytest.raises(websockets.exceptions.ConnectionClosed):
                    await asyncio.wait_for(client.recv(), 30)

        run(scenario(), timeout=60)
        assert gw.proc.wait(timeout=40) == 0
        closes = app.events("close")
        assert len(closes) == count, "%d close events of %d" % (len(closes), count)
    finally:
        app.close()


# Item: every metric of what is configured is in the first scrape, each with its # HELP line.

def test_every_configured_metric_is_there_from_the_first_scrape_with_help(gateway_factory, tmp_path, redis):
    from test_http_backend import Recorder
    from prometheus_client.parser import text_string_to_metric_families
    catalog = {}
    for line in open(os.path.join(ROOT, "docs", "metrics.md")):
        if line.startswith("| `wssgate_"):
            catalog[line.split("`")[1]] = line
    app = Recorder(lambda request: (204, None, b""))
    socket_path = str(tmp_path / "admin.sock")
    try:
        gw = gateway_factory(gateway_config(
            routes="""  chat:
    path: /chat
    kind: worker
    worker:
      command: "%s"
      args: [worker, echo]
  app:
    path: /app
    kind: http
    http:
      url: http://127.0.0.1:%d/
  hub:
    path: /hub
    kind: hub
""" % (BINARY, app.port),
            extra='admin:\n  address: "unix:%s"\ncluster:\n  redis: "unix:%s"\n' % (socket_path, redis.socket)
        ).replace("      self_signed: true\n", "      self_signed: true\n      http2: true\n", 1))
        gw.wait_for_log(r'msg="cluster link up"', timeout=20)
        conn = __import__("test_admin").UnixHTTPConnection(socket_path)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        families = {family.name: family for family in text_string_to_metric_families(text)}
        helped = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
        # ACME's appear with a tls.acme listener (test_acme.py): none here.
        expected = {name for name in catalog if "acme" not in name and "certificate_expiry" not in name}
        exported = {name for name in expected
                    if name in families or name.removesuffix("_total") in families}
        assert exported == expected, "missing: %s" % sorted(expected - exported)
        assert expected <= helped, "without # HELP: %s" % sorted(expected - helped)
    finally:
        app.close()
