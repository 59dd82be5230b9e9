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


# Item: probe and log lines say what went wrong in words; probe trusts a private CA; JSON log
# lines keep numbers numbers.

def test_probe_trusts_a_private_ca_and_says_errors_in_words(gateway_factory, tmp_path):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=private CA")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
            "-out", "leaf.csr", "-subj", "/CN=localhost")
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "2", "-extfile", "ext.cnf")
    gw = gateway_factory(gateway_config().replace(
        "      self_signed: true\n",
        "      certificate: %s\n      key: %s\n" % (tmp_path / "leaf.pem", tmp_path / "leaf.key")))
    _, port = gw.address()
    url = "https://localhost:%d/readyz" % port
    trusted = subprocess.run([BINARY, "probe", url, "--ca", str(tmp_path / "ca.pem")], capture_output=True, text=True)
    assert trusted.returncode == 0 and trusted.stdout.strip() == "200", trusted
    untrusted = subprocess.run([BINARY, "probe", url], capture_output=True, text=True)
    assert untrusted.returncode == 1
    assert untrusted.stderr.strip() == "wssgate probe: localhost:%d: TLS handshake failed: certificate verify failed" % port
    refused = subprocess.run([BINARY, "probe", "https://127.0.0.1:1/readyz"], capture_output=True, text=True)
    assert refused.stderr.strip() == "wssgate probe: cannot connect to 127.0.0.1:1: connection refused", refused.stderr


def test_json_log_lines_keep_numbers_and_flags(gateway_factory):
    gw = gateway_factory(gateway_config(
        routes="  chat:\n    path: /chat\n    kind: worker\n    worker:\n      command: \"%s\"\n      args: [worker, echo]\n" % BINARY,
        log="  format: json\n"))
    line = json.loads(gw.wait_for_log(r'"msg":"worker started"'))
    assert isinstance(line["pid"], int), line
    listening = json.loads(gw.wait_for_log(r'"msg":"listening"'))
    assert listening["tls"] is True, listening


# Item: the README's first commands work on a machine with nothing but the gateway.

def test_the_readmes_tour_runs_as_written(gateway_factory):
    import re
    text = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"<!-- tour -->\s*```sh\n(.*?)```", text, re.S).group(1)
    steps = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:].split("  #")[0].strip(), []))
        elif steps:
            steps[-1][1].append(line)
    assert steps, "the README's tour has no commands"
    gw = gateway_factory(env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0"})
    gw.wait_for_log(r'msg="worker linked"')
    _, port = gw.address()
    for command, expected in steps:
        assert command.startswith(".build/release/wssgate "), "the tour runs only the gateway's own binary: " + command
        shell = command.replace(".build/release/wssgate", BINARY).replace(":8443", ":%d" % port)
        result = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, timeout=30,
                                env=dict(os.environ, WSSGATE_ADMIN_ADDRESS="off"))
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.splitlines() == expected, (command, result.stdout)


# Item: the reload log says what changed, log settings and a worker's environment included.

def test_the_reload_line_names_log_changes_and_what_of_a_worker_changed(gateway_factory):
    import signal
    route = """  chat:
    path: /chat
    kind: worker
    worker:
      command: "%s"
      args: [worker, echo]
      env: ["MOOD=%s"]
      on_change: move
"""
    gw = gateway_factory(gateway_config(routes=route % (BINARY, "calm"), level="info"))
    gw.wait_for_log(r'msg="worker linked"')
    with open(gw.config_path, "w") as f:
        f.write(gateway_config(routes=route % (BINARY, "bright"), level="debug"))
    gw.proc.send_signal(signal.SIGHUP)
    line = gw.wait_for_log(r'msg=reloaded changes=', timeout=20)
    assert "log.level info → debug" in line, line
    assert "routes.chat.worker env changed: rolling deploy" in line, line
    assert "command changed" not in line, line


# Item: `since` on a pattern says why it is refused.

def test_since_on_a_pattern_says_a_pattern_has_no_position(gateway_factory, tmp_path):
    gw = gateway_factory(hub_config(str(tmp_path / "admin.sock")))

    async def scenario():
        async with websockets.connect(gw.url("/hub"), ssl=insecure_context()) as ws:
            await ws.send(json.dumps({"op": "subscribe", "topic": "news.*", "id": 1, "since": {"offset": 1, "epoch": "x"}}))
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert answer["op"] == "error"
            assert answer["error"] == "since needs an exact topic: a pattern has no position to resume from"

    run(scenario())


# Item: YAML errors name a tab, and an open quote where it opens.

def test_yaml_errors_name_tabs_and_where_a_quote_opens(tmp_path):
    tab = tmp_path / "tab.yaml"
    tab.write_text("routes:\n\techo:\n    path: /x\n")
    quote = tmp_path / "quote.yaml"
    quote.write_text('routes:\n  echo:\n    path: "/x\n    kind: echo\n\nlog:\n  level: info\n')
    result = subprocess.run([BINARY, "check-config", str(tab)], capture_output=True, text=True)
    assert result.returncode == 2 and "a tab character: YAML indents with spaces only at line 2, column 1" in result.stderr
    result = subprocess.run([BINARY, "check-config", str(quote)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "a quoted value is never closed: its quote opens here at line 3, column 11" in result.stderr, result.stderr


# Item: the console asks for a token it was not given (rather than calling it refused), its
# charts have a time axis, and the API's document says /console needs no token.

def test_the_console_asks_for_a_missing_token_and_its_charts_have_a_time_axis(gateway_factory):
    import re
    import yaml
    from test_browser import CHROMIUM, Browser, Page
    document = yaml.safe_load(open(os.path.join(ROOT, "docs", "admin-api.yaml")))
    assert document["paths"]["/console"]["get"]["security"] == []
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make test installs it)")
    token = "console-token-" + "x" * 20
    gw = gateway_factory(env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0", "WSSGATE_ADMIN_ADDRESS": "127.0.0.1:0",
                              "WSSGATE_ADMIN_TOKEN": token})
    host, port = re.search(r"address=([\d.]+):(\d+)", gw.wait_for_log(r"admin API listening")).groups()
    browser = Browser()
    try:
        async def scenario():
            async with Page(browser.open("http://%s:%s/console" % (host, port))) as page:
                await page.wait_for("document.body?.dataset.state === 'login'")
                await page.wait_for("document.getElementById('error').textContent !== ''")
                assert await page.evaluate("document.getElementById('error').textContent") == "the admin API needs its token"
                await page.evaluate("document.getElementById('token').value = '%s'; "
                                    "document.getElementById('login').requestSubmit()" % token)
                await page.wait_for("document.body.dataset.state === 'live'")
                await page.wait_for("document.getElementById('chart-connections').dataset.axis?.startsWith('now')")
                await page.evaluate("sessionStorage.setItem('wssgate-token', 'wrong'); token = 'wrong'")
                await page.wait_for("document.getElementById('error').textContent === 'the token was refused'")

        run(scenario(), timeout=60)
    finally:
        browser.close()


# Item: the admin API's document refuses the bodies the gateway refuses.

def test_the_admin_schema_refuses_the_bodies_the_gateway_refuses(gateway_factory, tmp_path):
    import jsonschema
    import yaml
    document = yaml.safe_load(open(os.path.join(ROOT, "docs", "admin-api.yaml")))

    def resolved(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return resolved(document["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
            return {key: resolved(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolved(item) for item in node]
        return node

    def schema(path):
        return resolved(document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"])

    socket_path = str(tmp_path / "admin.sock")
    gw = gateway_factory(hub_config(socket_path))
    admin = Admin(unix=socket_path)

    async def scenario():
        async with websockets.connect(gw.url("/hub"), ssl=insecure_context()):
            _, page, _ = await asyncio.to_thread(admin.call, "GET", "/v1/connections?route=hub", "/v1/connections")
            target = "/v1/connections/%d/send" % page["connections"][0]["id"]
            cases = [
                ("/v1/connections/{id}/send", target, {}, False),
                ("/v1/connections/{id}/send", target, {"text": "a", "binary": "AA=="}, False),
                ("/v1/connections/{id}/send", target, {"text": "a"}, True),
                ("/v1/users/{user}/send", "/v1/users/alice/send", {}, False),
                ("/v1/users/{user}/send", "/v1/users/alice/send", {"binary": "AA=="}, True),
                ("/v1/tags/{tag}/send", "/v1/tags/room/send", {"text": "a", "binary": "AA=="}, False),
                ("/v1/publish", "/v1/publish", {"topic": "news.a"}, False),
                ("/v1/publish", "/v1/publish", {"topic": "news.a", "data": 1, "text": "a"}, False),
                ("/v1/publish", "/v1/publish", {"topic": "news.a", "data": {"n": 1}}, True),
            ]
            for template, path, body, valid in cases:
                try:
                    jsonschema.validate(body, schema(template))
                    schema_says = True
                except jsonschema.ValidationError:
                    schema_says = False
                status, _, _ = await asyncio.to_thread(admin.call, "POST", path, template, body)
                assert schema_says == valid, (template, body, "the document")
                assert (status < 400) == valid, (template, body, status)

    run(scenario())


def test_an_open_answer_over_max_response_bytes_is_refused_at_once_with_502(gateway_factory):
    from conftest import raw_http
    from test_http_backend import Recorder
    app = Recorder(lambda request: (200, "application/json", b"[" + b" " * 2000 + b"]"))
    try:
        gw = gateway_factory(gateway_config(
            routes="  app:\n    path: /app\n    kind: http\n    http:\n      url: http://127.0.0.1:%d/\n"
                   "      max_response_bytes: 1KiB\n" % app.port))
        host, port = gw.address()
        answer = raw_http(host, port, b"GET /app HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 502"), answer
        assert len(app.events("open")) == 1, "asked again"
    finally:
        app.close()


# A listener that cannot bind says which, where and why.

def test_a_listener_that_cannot_bind_names_itself_the_address_and_the_way_out(gateway_factory):
    import socket
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        result = subprocess.run(
            [BINARY, "run", "--set", "listeners.main.address=127.0.0.1:%d" % port, "--set", "admin.address=off"],
            capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        assert ("listener main: cannot bind 127.0.0.1:%d: address already in use (another process listens there"
                % port) in result.stderr, result.stderr
        assert "errno" not in result.stderr and "bind(descriptor" not in result.stderr
    finally:
        holder.close()
