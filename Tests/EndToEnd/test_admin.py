"""The admin API over its Unix socket and over TCP with a bearer token. Every answer — errors
included — is checked against docs/admin-api.yaml: its status must be listed for the path and
method, its body must match the schema, and its documented headers must be present."""
import asyncio
import base64
import http.client
import json
import os
import socket
import signal
import tempfile

import pytest
import websockets
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conftest import ROOT, RawWebSocket, gateway_config, insecure_context, run, secret
from test_proxy import Upstream

SPEC_PATH = os.path.join(ROOT, "docs", "admin-api.yaml")
with open(SPEC_PATH) as f:
    SPEC = yaml.safe_load(f)
SPEC_URI = "urn:wssgate-admin-api"
REGISTRY = Registry().with_resource(SPEC_URI, Resource(contents=SPEC, specification=DRAFT202012))
TOKEN = secret("t0ken-for-the-admin-api-tests")


def pointer(*parts):
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_against_spec(method, template, status, headers, body):
    """Fails unless the document lists `status` for the operation and the body and headers match.
    A method the path does not take must get the shared MethodNotAllowed answer, and a path the
    document does not have (template None) the shared NotFound one."""
    if template is None:
        assert status == 404, status
        response = {"$ref": "#/components/responses/NotFound"}
        location = None
    elif method.lower() not in SPEC["paths"][template]:
        assert status == 405, status
        response = {"$ref": "#/components/responses/MethodNotAllowed"}
    else:
        operation = SPEC["paths"][template][method.lower()]
        response = operation["responses"].get(str(status))
        assert response is not None, "%s %s answered %d, which docs/admin-api.yaml does not list" % (method, template, status)
        location = pointer("paths", template, method.lower(), "responses", str(status))
    if "$ref" in response:
        location = response["$ref"][1:]
        response = SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    for name in response.get("headers", {}):
        assert name.lower() in headers, "%s %s %d lacks the documented %s header" % (method, template, status, name)
    assert headers.get("content-type") == "application/json"
    schema_location = location + pointer("content", "application/json", "schema")
    validator = Draft202012Validator({"$ref": SPEC_URI + "#" + schema_location}, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, "%s %s %d does not match the document: %s\n%s" % (method, template, status, errors[0].message, json.dumps(body))


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.socket_path)


class Admin:
    """An admin API client that checks every answer against the document."""

    def __init__(self, unix=None, tcp=None, token=None):
        self.unix, self.tcp, self.token = unix, tcp, token
        self.seen = set()

    def connection(self):
        if self.unix:
            return UnixHTTPConnection(self.unix)
        return http.client.HTTPConnection(*self.tcp, timeout=10)

    def call(self, method, target, template, body=None, raw=None, headers=None, token=True):
        conn = self.connection()
        sent = dict(headers or {})
        if token and self.token:
            sent.setdefault("Authorization", "Bearer " + self.token)
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if payload is not None and not any(k.lower() == "content-type" for k in sent):
            sent["Content-Type"] = "application/json"
        conn.request(method, target, body=payload, headers=sent)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
        parsed = json.loads(data)
        check_against_spec(method, template, response.status, answer_headers, parsed)
        self.seen.add((method, template, response.status))
        return response.status, parsed, answer_headers


def admin_config(socket_path, extra=""):
    return gateway_config(routes="""  hub:
    path: /hub
    kind: hub
    subprotocols: [hub.v1]
    hub:
      subscribe: ["*"]
      publish: ["news.*"]
""", extra="""admin:
  address: "unix:%s"
%s""" % (socket_path, extra))


@pytest.fixture
def admin_gateway(gateway_factory):
    directory = tempfile.mkdtemp(prefix="wga")
    socket_path = os.path.join(directory, "admin.sock")
    upstream = Upstream()
    extra = """  proxied:
    path: /proxied
    kind: proxy
    proxy:
      upstream: "ws://127.0.0.1:%d/"
  framed:
    path: /framed
    kind: proxy
    proxy:
      upstream: "ws://127.0.0.1:%d/"
      mode: frames
""" % (upstream.port, upstream.port)
    config = admin_config(socket_path).replace("admin:\n", extra + "admin:\n")
    gw = gateway_factory(config)
    gw.wait_for_log(r"msg=\"admin API listening\" address=unix:")
    yield gw, Admin(unix=socket_path)
    upstream.stop()


def test_the_document_is_valid_openapi():
    validate_openapi(SPEC)
    # Every operation documents its errors with the shared Error schema.
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert "400" in operation["responses"], (path, method)
            # Only an operation open to all (`security: []`, the console's page) has no 401.
            assert "401" in operation["responses"] or operation.get("security") == [], (path, method)


def test_socket_is_owner_and_group_only(admin_gateway):
    gw, admin = admin_gateway
    assert oct(os.stat(admin.unix).st_mode & 0o777) == "0o660"


def test_publish_connections_topics_send_and_close(admin_gateway):
    gw, admin = admin_gateway

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/hub"), ssl=ctx, subprotocols=["hub.v1"]) as sport, \
                websockets.connect(gw.url("/hub"), ssl=ctx) as everything, \
                websockets.connect(gw.url("/echo"), ssl=ctx) as echo:
            await sport.send(json.dumps({"op": "subscribe", "topic": "news.sport"}))
            assert json.loads(await sport.recv())["op"] == "ack"
            await everything.send(json.dumps({"op": "subscribe", "topic": "news.*"}))
            assert json.loads(await everything.recv())["op"] == "ack"

            # Publish: data as a hub event, text as it is, binary from base64.
            status, body, _ = await asyncio.to_thread(admin.call, "POST", "/v1/publish", "/v1/publish", {"topic": "news.sport", "data": {"goal": 1}})
            assert (status, body) == (200, {"topic": "news.sport", "delivered": 2, "position": None})
            for ws in (sport, everything):
                assert json.loads(await ws.recv()) == {"op": "message", "topic": "news.sport", "data": {"goal": 1}}
            status, body, _ = await asyncio.to_thread(admin.call, "POST", "/v1/publish", "/v1/publish", {"topic": "news.tech", "text": "plain"})
            assert (status, body["delivered"]) == (200, 1)
            # A hub client speaks the hub protocol: text and binary come as message events.
            assert json.loads(await everything.recv()) == {"op": "message", "topic": "news.tech", "data": "plain"}
            status, body, _ = await asyncio.to_thread(admin.call, "POST", "/v1/publish", "/v1/publish", {"topic": "news.tech", "binary": base64.b64encode(b"\x00\xff").decode()})
            assert status == 200
            assert json.loads(await everything.recv()) == {
                "op": "message", "topic": "news.tech", "data": "AP8=", "encoding": "base64"}
            status, body, _ = await asyncio.to_thread(admin.call, "POST", "/v1/publish", "/v1/publish", {"topic": "nobody.listens", "text": "x"})
            assert (status, body["delivered"]) == (200, 0)

            # Topics, with patterns as subscribed.
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/topics", "/v1/topics")
            assert body == {"topics": [{"topic": "news.*", "subscribers": 1}, {"topic": "news.sport", "subscribers": 1}]}

            # Connections: all, by route, by topic (patterns count), paged.
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections", "/v1/connections")
            assert status == 200 and body["next"] is None
            by_route = {}
            for c in body["connections"]:
                by_route.setdefault(c["route"], []).append(c)
            assert len(by_route["hub"]) == 2 and len(by_route["echo"]) == 1
            sport_id = next(c["id"] for c in by_route["hub"] if c["topics"] == ["news.sport"])
            everything_id = next(c["id"] for c in by_route["hub"] if c["topics"] == ["news.*"])
            echo_id = by_route["echo"][0]["id"]
            assert next(c for c in by_route["hub"] if c["id"] == sport_id)["subprotocol"] == "hub.v1"
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?route=echo", "/v1/connections")
            assert [c["id"] for c in body["connections"]] == [echo_id]
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?topic=news.sport", "/v1/connections")
            assert sorted(c["id"] for c in body["connections"]) == sorted([sport_id, everything_id])
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?topic=news.tech", "/v1/connections")
            assert [c["id"] for c in body["connections"]] == [everything_id]
            ids = []
            after = 0
            while True:
                status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?limit=1&after=%d" % after, "/v1/connections")
                assert status == 200 and len(body["connections"]) == 1
                ids.append(body["connections"][0]["id"])
                if body["next"] is None:
                    break
                after = body["next"]
            assert ids == sorted([sport_id, everything_id, echo_id])

            # One connection, with counters.
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections/%d" % everything_id, "/v1/connections/{id}")
            assert status == 200 and body["state"] == "open" and body["statistics"]["messages_out"] == 4

            # Send to one connection, then close another with a code and reason.
            status, body, _ = await asyncio.to_thread(admin.call, "POST", "/v1/connections/%d/send" % echo_id, "/v1/connections/{id}/send", {"text": "just for you"})
            assert (status, body) == (202, {"id": echo_id, "queued": True})
            assert await echo.recv() == "just for you"
            status, body, _ = await asyncio.to_thread(admin.call, "DELETE", "/v1/connections/%d?code=4001&reason=kicked+out" % sport_id, "/v1/connections/{id}")
            assert (status, body) == (202, {"id": sport_id, "code": 4001, "closing": True})
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(sport.recv(), 10)
            assert closed.value.rcvd.code == 4001 and closed.value.rcvd.reason == "kicked out"
            # Gone from the list once closed; the others carry on.
            for _ in range(50):
                status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections/%d" % sport_id, "/v1/connections/{id}")
                if status == 404:
                    break
                await asyncio.sleep(0.1)
            assert status == 404 and body["error"]["code"] == "not_found"
            await echo.send("still here")
            assert await echo.recv() == "still here"

    run(scenario())


def test_proxied_connections_are_listed_closed_but_not_sent_to(admin_gateway):
    gw, admin = admin_gateway

    async def scenario():
        async with websockets.connect(gw.url("/proxied"), ssl=insecure_context()) as ws:
            await ws.recv()  # the upstream's greeting
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?route=proxied", "/v1/connections")
            [proxied] = body["connections"]
            assert proxied["kind"] == "proxy"
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections/%d" % proxied["id"], "/v1/connections/{id}")
            assert status == 200 and body["statistics"] is None
            status, body, _ = await asyncio.to_thread(admin.call, "POST", "/v1/connections/%d/send" % proxied["id"], "/v1/connections/{id}/send", {"text": "no"})
            assert status == 409 and body["error"]["code"] == "proxied"
            status, body, _ = await asyncio.to_thread(admin.call, "DELETE", "/v1/connections/%d" % proxied["id"], "/v1/connections/{id}")
            assert status == 202
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)

    run(scenario())


def test_frames_proxied_connections_are_sent_to_and_closed(admin_gateway):
    """In `frames` mode a proxied connection is a session like any other: the admin API sends
    to it beside the upstream's messages, and closes it with a code of its choosing."""
    gw, admin = admin_gateway

    async def scenario():
        async with websockets.connect(gw.url("/framed"), ssl=insecure_context()) as ws:
            await ws.recv()  # the upstream's greeting
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?route=framed", "/v1/connections")
            [framed] = body["connections"]
            status, body, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections/%d" % framed["id"], "/v1/connections/{id}")
            assert status == 200 and body["statistics"]["messages_out"] == 1
            status, body, _ = await asyncio.to_thread(admin.call, "POST", "/v1/connections/%d/send" % framed["id"], "/v1/connections/{id}/send", {"text": "from the operator"})
            assert status == 202, body
            assert await ws.recv() == "from the operator"
            await ws.send("and the upstream still echoes")
            assert await ws.recv() == "and the upstream still echoes"
            status, body, _ = await asyncio.to_thread(admin.call, "DELETE", "/v1/connections/%d?code=4002&reason=moved" % framed["id"], "/v1/connections/{id}")
            assert status == 202
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert (ws.close_code, ws.close_reason) == (4002, "moved")

    run(scenario())


def test_send_to_a_connection_that_does_not_read_overflows_with_409(gateway_factory):
    directory = tempfile.mkdtemp(prefix="wga")
    socket_path = os.path.join(directory, "admin.sock")
    config = admin_config(socket_path).replace("    kind: echo\n", "    kind: echo\n    send_queue_bytes: 64KiB\n", 1)
    gw = gateway_factory(config)
    gw.wait_for_log(r"admin API listening")
    admin = Admin(unix=socket_path)
    host, port = gw.address()
    stalled = RawWebSocket(host, port, "/echo", rcvbuf=4096)
    status, body, _ = admin.call("GET", "/v1/connections?route=echo", "/v1/connections")
    stalled_id = body["connections"][0]["id"]
    chunk = base64.b64encode(os.urandom(60000)).decode()
    outcome = None
    for _ in range(2000):
        status, body, _ = admin.call("POST", "/v1/connections/%d/send" % stalled_id, "/v1/connections/{id}/send", {"binary": chunk})
        if status != 202:
            outcome = body["error"]["code"]
            break
    assert outcome in ("send_queue_full", "connection_closing"), (outcome, status, body)
    stalled.close()


def test_every_error_is_json_naming_the_field(admin_gateway):
    gw, admin = admin_gateway
    cases = [
        ("POST", "/v1/publish", "/v1/publish", {"text": "no topic"}, 400, "topic"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": 7, "text": "x"}, 400, "topic"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": "a b", "text": "x"}, 400, "topic"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": "news.*", "text": "x"}, 400, "topic"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": "t"}, 400, "text"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": "t", "text": "x", "binary": "eA=="}, 400, "binary"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": "t", "binary": "not base64!"}, 400, "binary"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": "t", "text": 5}, 400, "text"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": "t", "text": "x", "colour": "red"}, 400, "colour"),
        ("POST", "/v1/publish", "/v1/publish", {"topic": "t", "data": 1, "text": "x"}, 400, "text"),
        ("GET", "/v1/connections?limit=0", "/v1/connections", None, 400, "limit"),
        ("GET", "/v1/connections?limit=1001", "/v1/connections", None, 400, "limit"),
        ("GET", "/v1/connections?after=-1", "/v1/connections", None, 400, "after"),
        ("GET", "/v1/connections?topic=a*", "/v1/connections", None, 400, "topic"),
        ("GET", "/v1/connections?sort=id", "/v1/connections", None, 400, "sort"),
        ("GET", "/v1/topics?x=1", "/v1/topics", None, 400, "x"),
        ("GET", "/v1/connections/abc", "/v1/connections/{id}", None, 400, "id"),
        ("GET", "/v1/connections/0", "/v1/connections/{id}", None, 400, "id"),
        ("GET", "/v1/connections/999999", "/v1/connections/{id}", None, 404, None),
        ("DELETE", "/v1/connections/999999", "/v1/connections/{id}", None, 404, None),
        ("POST", "/v1/connections/999999/send", "/v1/connections/{id}/send", {"text": "x"}, 404, None),
        ("PUT", "/v1/publish", "/v1/publish", {"topic": "t"}, 405, None),
        ("DELETE", "/v1/topics", "/v1/topics", None, 405, None),
        ("POST", "/v1/connections", "/v1/connections", {}, 405, None),
    ]
    for method, target, template, body, status, field in cases:
        got, answer, headers = admin.call(method, target, template, body)
        assert got == status, (method, target, got, answer)
        assert answer["error"]["field"] == field, (method, target, answer)
        if status == 405:
            assert headers["allow"], headers

    async def with_a_connection():
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context()) as ws:
            _, page, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?route=echo", "/v1/connections")
            cid = page["connections"][0]["id"]
            for target, field in (("?code=1005", "code"), ("?code=999", "code"), ("?code=1010", "code"), ("?reason=" + "r" * 124, "reason"), ("?why=1", "why")):
                got, answer, _ = await asyncio.to_thread(admin.call, "DELETE", "/v1/connections/%d%s" % (cid, target), "/v1/connections/{id}")
                assert (got, answer["error"]["field"]) == (400, field), (target, answer)
            got, answer, _ = await asyncio.to_thread(admin.call, "POST", "/v1/connections/%d/send" % cid, "/v1/connections/{id}/send", {"topic": "x", "text": "y"})
            assert (got, answer["error"]["field"]) == (400, "topic")
            await ws.send("unharmed")
            assert await ws.recv() == "unharmed"

    run(with_a_connection())

    # Bodies that are not JSON objects, the wrong media type, one too large.
    for raw, code in ((b"{not json", "invalid_json"), (b"[1, 2]", "invalid_json"), (b"", "invalid_json")):
        got, answer, _ = admin.call("POST", "/v1/publish", "/v1/publish", raw=raw)
        assert (got, answer["error"]["code"]) == (400, code), raw
    got, answer, _ = admin.call("POST", "/v1/publish", "/v1/publish", raw=b"topic=t", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (got, answer["error"]["code"]) == (415, "unsupported_media_type")
    got, answer, _ = admin.call("POST", "/v1/publish", "/v1/publish", raw=b"x" * (4 * 1024 * 1024 + 1))
    assert (got, answer["error"]["code"]) == (413, "body_too_large")
    # An unknown endpoint: the shared NotFound answer.
    got, answer, headers = admin.call("GET", "/v2/anything", None)
    assert got == 404 and answer["error"]["code"] == "not_found"
    # The gateway still serves.
    status, _, _ = admin.call("GET", "/v1/topics", "/v1/topics")
    assert status == 200


def test_tcp_needs_the_bearer_token(gateway_factory):
    config = admin_config("/unused").replace('address: "unix:/unused"', 'address: "127.0.0.1:0"\n  token: "%s"' % TOKEN)
    gw = gateway_factory(config)
    line = gw.wait_for_log(r"admin API listening")
    import re
    host, port = re.search(r"address=([\d.]+):(\d+)", line).groups()
    admin = Admin(tcp=(host, int(port)), token=TOKEN)
    status, body, headers = admin.call("GET", "/v1/topics", "/v1/topics", token=False)
    assert status == 401 and body["error"]["code"] == "unauthorized" and headers["www-authenticate"].startswith("Bearer")
    status, body, _ = admin.call("GET", "/v1/topics", "/v1/topics", headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"})
    assert status == 401 and "wrong" in body["error"]["message"]
    status, body, _ = admin.call("POST", "/v1/publish", "/v1/publish", {"topic": "t", "text": "x"}, headers={"Authorization": "Basic " + TOKEN})
    assert status == 401
    status, body, _ = admin.call("GET", "/v1/topics", "/v1/topics")
    assert (status, body) == (200, {"topics": []})


@pytest.mark.parametrize("admin_section,key", [
    ('  address: "127.0.0.1:0"\n', "admin.token"),
    ('  address: "127.0.0.1:0"\n  token: "short"\n', "admin.token"),
    ('  address: "fd:admin"\n', "admin.address"),
    ('  address: "unix:/x"\n  token: "%s"\n  token_file: /etc/hostname\n' % TOKEN, "admin.token_file"),
    ('  address: "unix:/x"\n  token_file: /nonexistent/token\n', "admin.token_file"),
    ('  address: "127.0.0.1:0"\n  colour: blue\n', "admin.colour"),
])
def test_bad_admin_configuration_is_refused_naming_the_key(admin_section, key):
    import subprocess
    from conftest import BINARY
    directory = tempfile.mkdtemp(prefix="wga")
    path = os.path.join(directory, "wssgate.yaml")
    with open(path, "w") as f:
        f.write(admin_config("/x").split("admin:\n")[0] + "admin:\n" + admin_section)
    result = subprocess.run([BINARY, "check-config", path], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result
    assert key in result.stderr + result.stdout, result.stderr


def test_an_admin_socket_that_cannot_be_made_stops_the_gateway_when_asked_for(gateway_factory):
    config = admin_config("/proc/wssgate-cannot/admin.sock")
    gw = gateway_factory(config, listeners=0)
    assert gw.proc.wait(timeout=30) == 1
    assert any("admin API" in line for line in gw.lines), gw.lines


def test_token_file_works_like_token(gateway_factory):
    directory = tempfile.mkdtemp(prefix="wga")
    token_path = os.path.join(directory, "token")
    with open(token_path, "w") as f:
        f.write(TOKEN + "\n")
    config = admin_config("/unused").replace('address: "unix:/unused"', 'address: "127.0.0.1:0"\n  token_file: "%s"' % token_path)
    gw = gateway_factory(config)
    line = gw.wait_for_log(r"admin API listening")
    import re
    host, port = re.search(r"address=([\d.]+):(\d+)", line).groups()
    status, _, _ = Admin(tcp=(host, int(port)), token=TOKEN).call("GET", "/v1/topics", "/v1/topics")
    assert status == 200


def test_a_socket_another_gateway_answers_on_is_not_taken(gateway_factory):
    directory = tempfile.mkdtemp(prefix="wga")
    socket_path = os.path.join(directory, "admin.sock")
    first = gateway_factory(admin_config(socket_path))
    first.wait_for_log(r"admin API listening")
    second = gateway_factory(admin_config(socket_path), listeners=0)
    assert second.proc.wait(timeout=30) == 1
    assert any("in use by another process" in line for line in second.lines), second.lines
    status, _, _ = Admin(unix=socket_path).call("GET", "/v1/topics", "/v1/topics")
    assert status == 200
    # A socket file left behind by a gateway that died is replaced.
    first.stop(signal.SIGKILL)
    assert os.path.exists(socket_path)
    third = gateway_factory(admin_config(socket_path))
    third.wait_for_log(r"admin API listening")
    status, _, _ = Admin(unix=socket_path).call("GET", "/v1/topics", "/v1/topics")
    assert status == 200


def test_the_default_socket_unavailable_is_only_a_warning(gateway_factory):
    """Run by hand as a user who cannot make /run/wssgate: the gateway serves without the API."""
    import shutil
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to another user")
    gw = gateway_factory(admin_config("/x").split("admin:\n")[0], env={"WSSGATE_ADMIN_ADDRESS": None},
                         wrapper=["setpriv", "--reuid", "65532", "--regid", "65532", "--clear-groups"])
    gw.wait_for_log(r"admin API not started")

    async def echo():
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context()) as ws:
            await ws.send("served")
            assert await ws.recv() == "served"

    run(echo())


def test_status_gives_readiness_with_the_detail_public_listeners_leave_out(admin_gateway):
    gw, admin = admin_gateway
    status, body, _ = admin.call("GET", "/v1/status", "/v1/status")
    assert status == 200 and body == {"readiness": "ready", "degraded": None}
    status, _, _ = admin.call("POST", "/v1/status", "/v1/status")
    assert status == 405
