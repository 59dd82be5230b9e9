"""`http` routes: a connection's events as HTTP requests to an app (docs/http-backend.md).
The examples (PHP under `php -S`, a wsgiref app) run as they ship, restarted mid-chat; test
apps in this process cross each limit: an app that refuses, answers slowly, never answers,
is down, or answers nonsense."""
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import websockets

from conftest import free_port, gateway_config, insecure_context, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHP = shutil.which("php")


def http_route(url, extra=""):
    return "  chat:\n    path: /chat\n    kind: http\n    http:\n      url: %s\n%s" % (url, extra)


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError("nothing listens on %d" % port)


class App:
    """An example app as a child process, restartable on the same port."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = None

    def start(self, port):
        self.port = port
        self.proc = subprocess.Popen([a.replace("{port}", str(port)) for a in self.argv], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self):
        self.stop()
        return self.start(self.port)


EXAMPLES = {
    "php": ["php", "-S", "127.0.0.1:{port}", "examples/php/chat.php"],
    "wsgiref": ["python3", "examples/python/wsgi_chat.py", "{port}"],
}


async def lines(ws, count, timeout=10):
    got = []
    for _ in range(count):
        got.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return got


@pytest.mark.parametrize("example", ["php", "wsgiref"])
def test_the_example_chats_and_survives_a_restart_of_the_app(gateway_factory, example):
    if example == "php" and PHP is None:
        pytest.skip("php-cli is not installed (make test installs it)")
    port = free_port()
    app = App(EXAMPLES[example]).start(port)
    try:
        gw = gateway_factory(gateway_config(routes=http_route("http://127.0.0.1:%d/" % port)))

        async def scenario():
            ctx = insecure_context()
            async with websockets.connect(gw.url("/chat?name=alice"), ssl=ctx) as alice, \
                    websockets.connect(gw.url("/chat?name=bob"), ssl=ctx) as bob:
                joined = await lines(alice, 2)
                assert [(l["type"], l["name"]) for l in joined] == [("join", "alice"), ("join", "bob")]
                await lines(bob, 1)
                await alice.send("hello bob")
                for ws in (alice, bob):
                    line = (await lines(ws, 1))[0]
                    assert line == {"type": "message", "name": "alice", "text": "hello bob", "pid": line["pid"]}
                first_pid = line["pid"]
                # The app goes away and comes back: nobody is disconnected, nothing is lost.
                await asyncio.to_thread(app.stop)
                await bob.send("are you there?")
                await asyncio.sleep(0.3)
                await asyncio.to_thread(app.start, port)
                for ws in (alice, bob):
                    line = (await lines(ws, 1))[0]
                    assert (line["name"], line["text"]) == ("bob", "are you there?")
                    assert line["pid"] != first_pid
                await alice.send("yes")
                for ws in (alice, bob):
                    assert (await lines(ws, 1))[0]["text"] == "yes"
            # Their closes reach the app as events: a third client sees both leave.
        run(scenario(), timeout=60)
    finally:
        app.stop()


class Recorder:
    """A test app in this process: records every request, answers as `answer(request)` says."""

    def __init__(self, answer, unix_path=None):
        self.requests = []
        self.clients = set()
        self.answer = answer
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = {"event": self.headers.get("WSSGate-Event"), "headers": self.headers, "body": body,
                           "path": self.path}
                recorder.requests.append(request)
                recorder.clients.add(self.client_address)
                status, content_type, payload, *extra = recorder.answer(request)
                if status is None:
                    return  # never answers (the gateway's deadline ends it)
                self.send_response(status)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        if unix_path:
            import socketserver

            class UnixServer(socketserver.ThreadingUnixStreamServer):
                daemon_threads = True
            self.server = UnixServer(unix_path, Handler)
            self.port = None
        else:
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self.server.daemon_threads = True
            self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, kind=None):
        return [r for r in self.requests if kind is None or r["event"] == kind]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def json_answer(commands):
    return 200, "application/json", json.dumps(commands).encode()


def test_events_carry_the_connection_and_answers_carry_commands(gateway_factory):
    def answer(request):
        if request["event"] == "open":
            return json_answer([{"op": "send", "text": "welcome"}, {"op": "identify", "user": "u1", "tags": ["a", "b"]}])
        if request["event"] == "message" and request["body"] == b"plain":
            return 200, "text/plain; charset=utf-8", b"echo: plain"
        if request["event"] == "message" and request["body"] == b"\x00\x01":
            return 200, "application/octet-stream", b"\x02\x03"
        if request["event"] == "message" and request["body"] == b"binary-form":
            # op 1 (send), target 0 (this connection), type 1 (text), 32-bit length, the bytes
            payload = b"compact"
            return 200, "application/vnd.wssgate.commands", (
                b"\x01\x00\x01" + len(payload).to_bytes(4, "big") + payload)
        return 204, None, b""

    app = Recorder(answer)
    try:
        gw = gateway_factory(gateway_config(routes=http_route(
            "http://127.0.0.1:%d/ws?app=1" % app.port, "      forward_headers: [cookie, x-custom]\n")))

        async def scenario():
            async with websockets.connect(gw.url("/chat?room=9"), ssl=insecure_context(),
                                          additional_headers={"Cookie": "sid=42", "X-Custom": "yes"}) as ws:
                assert await asyncio.wait_for(ws.recv(), 5) == "welcome"
                await ws.send("plain")
                assert await asyncio.wait_for(ws.recv(), 5) == "echo: plain"
                await ws.send(b"\x00\x01")
                assert await asyncio.wait_for(ws.recv(), 5) == b"\x02\x03"
                await ws.send("binary-form")
                assert await asyncio.wait_for(ws.recv(), 5) == "compact"
            deadline = time.time() + 5
            while not app.events("close") and time.time() < deadline:
                await asyncio.sleep(0.05)

        run(scenario(), timeout=30)
        opened = app.events("open")[0]
        assert opened["path"] == "/ws?app=1"
        headers = opened["headers"]
        assert headers["WSSGate-Path"] == "/chat?room=9" and headers["WSSGate-Route"] == "chat"
        assert headers["Cookie"] == "sid=42" and headers["X-Custom"] == "yes"
        assert headers["WSSGate-Peer"].startswith("127.0.0.1:")
        connection = headers["WSSGate-Connection"]
        message = app.events("message")[0]
        assert message["headers"]["WSSGate-Connection"] == connection
        assert message["headers"]["WSSGate-Message-Type"] == "text"
        assert message["headers"]["WSSGate-User"] == "u1" and message["headers"]["WSSGate-Tags"] == "a,b"
        assert app.events("message")[1]["headers"]["WSSGate-Message-Type"] == "binary"
        closed = app.events("close")[0]["headers"]
        assert closed["WSSGate-Close-Code"] == "1000" and closed["WSSGate-User"] == "u1"
    finally:
        app.close()


def test_the_apps_status_decides_the_upgrade(gateway_factory):
    class Chosen:
        protocol = None

    def answer(request):
        if "deny" in request["headers"]["WSSGate-Path"]:
            return 403, "text/plain", b"not you"
        if request["event"] == "open" and Chosen.protocol:
            Chosen.offered = request["headers"]["WSSGate-Subprotocols"]
            return 200, None, b"", {"Sec-WebSocket-Protocol": Chosen.protocol}
        return 200, None, b""

    app = Recorder(answer)
    try:
        gw = gateway_factory(gateway_config(routes=http_route("http://127.0.0.1:%d/" % app.port)))

        async def scenario():
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(gw.url("/chat?deny=1"), ssl=insecure_context())
            assert refused.value.response.status_code == 403
            assert b"not you" in refused.value.response.body
            async with websockets.connect(gw.url("/chat"), ssl=insecure_context()) as ws:
                await ws.send("x")
                await asyncio.sleep(0.2)
            # The app's answer chooses the subprotocol among those offered.
            Chosen.protocol = "chat.v2"
            async with websockets.connect(gw.url("/chat"), ssl=insecure_context(), subprotocols=["chat.v1", "chat.v2"]) as ws:
                assert ws.subprotocol == "chat.v2"
            assert Chosen.offered == "chat.v1, chat.v2"
            Chosen.protocol = "chat.v9"
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(gw.url("/chat"), ssl=insecure_context(), subprotocols=["chat.v1"])
            assert refused.value.response.status_code == 502

        run(scenario(), timeout=20)
        assert app.events("message")
    finally:
        app.close()


def test_an_app_that_is_down_refuses_the_upgrade_with_503(gateway_factory):
    port = free_port()
    gw = gateway_factory(gateway_config(routes=http_route("http://127.0.0.1:%d/" % port, "      retries: 2\n")))

    async def scenario():
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(gw.url("/chat"), ssl=insecure_context())
        assert refused.value.response.status_code == 503
        # The gateway carries on.
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context()) as ws:
            await ws.send("still here")
            assert await ws.recv() == "still here"

    run(scenario(), timeout=30)


def test_a_slow_app_gets_the_waiting_messages_in_one_request(gateway_factory):
    gate = threading.Event()

    def answer(request):
        if request["event"] == "message":
            gate.wait(10)  # the first message holds the app until the others queued
        return 204, None, b""

    app = Recorder(answer)
    try:
        gw = gateway_factory(gateway_config(routes=http_route("http://127.0.0.1:%d/" % app.port)))

        async def scenario():
            async with websockets.connect(gw.url("/chat"), ssl=insecure_context()) as ws:
                for i in range(6):
                    await ws.send("m%d" % i)
                await ws.send(b"\xff")
                await asyncio.sleep(0.5)
                gate.set()
                deadline = time.time() + 5
                while len(app.events("messages")) < 1 and time.time() < deadline:
                    await asyncio.sleep(0.05)

        run(scenario(), timeout=30)
        assert app.events("message")[0]["body"] == b"m0"
        batch = app.events("messages")[0]
        assert batch["headers"]["WSSGate-Messages"] == "6"
        assert json.loads(batch["body"]) == [{"text": "m%d" % i} for i in range(1, 6)] + [{"binary": "/w=="}]
    finally:
        app.close()


def test_an_app_that_never_answers_closes_every_client_after_the_bounded_queue(gateway_factory):
    """200 clients, each sending far more than its queue holds to an app that never answers a
    message: each gets 1013 once its queue is full; the echo route is untouched; the gateway's
    memory grows by what the bounded queues hold, not by what the clients sent."""
    def answer(request):
        if request["event"] == "message":
            return None, None, b""
        return 204, None, b""

    app = Recorder(answer)
    try:
        gw = gateway_factory(gateway_config(routes=http_route(
            "http://127.0.0.1:%d/" % app.port, "      queue_messages: 16\n      timeout: 30s\n      connections: 4\n")))
        pid = gw.proc.pid

        def rss_kib():
            with open("/proc/%d/status" % pid) as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

        async def flood(ws):
            try:
                for _ in range(200):
                    await ws.send("x" * 4096)
                    await asyncio.sleep(0)
            except websockets.ConnectionClosed:
                pass
            await asyncio.wait_for(ws.wait_closed(), 15)
            return ws.close_code, ws.close_reason

        async def scenario():
            before = rss_kib()
            ctx = insecure_context()
            clients = await asyncio.gather(*[websockets.connect(gw.url("/chat"), ssl=ctx) for _ in range(200)])
            async with websockets.connect(gw.url("/echo"), ssl=ctx) as witness:
                results = await asyncio.gather(*[flood(ws) for ws in clients])
                await witness.send("fine")
                assert await witness.recv() == "fine"
            assert all(code == 1013 for code, _ in results), set(results)
            assert len(app.clients) <= 4, "http.connections is 4; the app saw %d" % len(app.clients)
            assert all(reason == "app unavailable" for _, reason in results)
            grown = rss_kib() - before
            # What the gateway holds is 200 TLS sessions and at most 16 × 4 KiB queued per client
            # (12.5 MiB in all); nothing waits for the app beyond that.
            print("rss grew by %d KiB" % grown)
            assert grown < 64 * 1024, grown

        run(scenario(), timeout=120)
    finally:
        app.close()


def test_an_invalid_answer_closes_the_client_with_1011(gateway_factory):
    def answer(request):
        if request["event"] == "message":
            return 200, "application/json", b'[{"op": "fly"}]'
        return 204, None, b""

    app = Recorder(answer)
    try:
        gw = gateway_factory(gateway_config(routes=http_route("http://127.0.0.1:%d/" % app.port)))

        async def scenario():
            async with websockets.connect(gw.url("/chat"), ssl=insecure_context()) as ws:
                await ws.send("x")
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
                assert ws.close_code == 1011

        run(scenario(), timeout=20)
        gw.wait_for_log(r"unknown-command")
    finally:
        app.close()


def test_two_chromium_tabs_chat_through_php_restarted_mid_chat(gateway_factory):
    """The PHP example as it ships (examples/php: chat.php under `php -S`, the page and the
    gateway's configuration): two tabs chat over wss://, PHP is restarted, both tabs stay on
    the same WebSocket and go on chatting."""
    from test_browser import CHROMIUM, Browser, Page
    if PHP is None or CHROMIUM is None:
        pytest.skip("php-cli and chromium are needed (make test installs them)")
    port = free_port()
    app = App(EXAMPLES["php"]).start(port)
    config = open(os.path.join(ROOT, "examples/php/wssgate.yaml")).read()
    config = config.replace("127.0.0.1:8443", "127.0.0.1:0").replace("http://127.0.0.1:9000/", "http://127.0.0.1:%d/" % port)
    browser = Browser()
    try:
        gw = gateway_factory(config, cwd=ROOT)
        url = gw.url("/", scheme="https")

        async def scenario():
            async with Page(browser.open(url)) as a, Page(browser.open(url)) as b:
                for page, name in ((a, "alice"), (b, "bob")):
                    await page.wait_for("document.getElementById('join') !== null && document.readyState === 'complete'")
                    await page.evaluate("document.getElementById('name').value = '%s'; document.getElementById('join').click()" % name)
                    await page.wait_for("document.body.dataset.chat === 'joined'")
                await a.wait_for("chatEvents.some(e => e.type === 'join' && e.name === 'bob')")

                async def say(page, text):
                    await page.evaluate("document.getElementById('text').value = %s; document.getElementById('send').click()" % json.dumps(text))
                    for p in (a, b):
                        await p.wait_for("chatEvents.some(e => e.type === 'message' && e.text === %s)" % json.dumps(text))

                await say(a, "hello from alice")
                await say(b, "hello from bob")
                before = await a.evaluate("chatEvents.find(e => e.text === 'hello from bob').pid")
                await asyncio.to_thread(app.restart)
                await say(b, "after the restart")
                await say(a, "still here")
                after = await a.evaluate("chatEvents.find(e => e.text === 'still here').pid")
                assert after != before, "PHP was not restarted"
                for page in (a, b):
                    assert await page.evaluate("window.opens") == 1
                    assert await page.evaluate("document.body.dataset.chat") == "joined"

        run(scenario(), timeout=90)
    finally:
        browser.close()
        app.stop()


def test_a_deadline_and_a_response_limit_are_crossed(gateway_factory):
    """`timeout: 1s`: a message the app holds longer closes its client with 1013 (it may have
    been seen, so it is not sent again); an answer over `max_response_bytes` closes with 1011;
    other clients carry on."""
    def answer(request):
        if request["event"] == "message" and request["body"] == b"hold":
            time.sleep(3)
        if request["event"] == "message" and request["body"] == b"big":
            return 200, "text/plain", b"x" * 2048
        if request["event"] == "message":
            return 200, "text/plain", request["body"]
        return 204, None, b""

    app = Recorder(answer)
    try:
        gw = gateway_factory(gateway_config(routes=http_route(
            "http://127.0.0.1:%d/" % app.port, "      timeout: 1s\n      max_response_bytes: 1KiB\n")))

        async def scenario():
            ctx = insecure_context()
            async with websockets.connect(gw.url("/chat"), ssl=ctx) as held, \
                    websockets.connect(gw.url("/chat"), ssl=ctx) as greedy, \
                    websockets.connect(gw.url("/chat"), ssl=ctx) as fine:
                started = time.monotonic()
                await held.send("hold")
                await greedy.send("big")
                for ws, code in ((held, 1013), (greedy, 1011)):
                    with pytest.raises(websockets.ConnectionClosed):
                        await asyncio.wait_for(ws.recv(), 10)
                    assert ws.close_code == code
                assert time.monotonic() - started < 3, "the deadline, not the app, ended it"
                await fine.send("still")
                assert await asyncio.wait_for(fine.recv(), 5) == "still"

        run(scenario(), timeout=30)
        assert len([r for r in app.events("message") if r["body"] == b"hold"]) == 1, "sent once"
    finally:
        app.close()


def test_an_app_that_stays_down_closes_its_clients_once_retries_are_spent(gateway_factory):
    port = free_port()
    app = App(EXAMPLES["wsgiref"]).start(port)
    gw = gateway_factory(gateway_config(routes=http_route("http://127.0.0.1:%d/" % port, "      retries: 2\n")))

    async def scenario():
        ctx = insecure_context()
        async with websockets.connect(gw.url("/chat"), ssl=ctx) as ws, websockets.connect(gw.url("/echo"), ssl=ctx) as witness:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "join"
            await asyncio.to_thread(app.stop)
            await ws.send("nobody home")
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            assert (ws.close_code, ws.close_reason) == (1013, "app unavailable")
            await witness.send("here")
            assert await witness.recv() == "here"

    try:
        run(scenario(), timeout=30)
    finally:
        app.stop()
    gw.wait_for_log(r"the app is unavailable")


def test_a_token_reaches_the_app_as_claims_and_its_sub_as_the_user(gateway_factory):
    import jwt
    from test_auth import HS_SECRET, claims
    app = Recorder(lambda request: (204, None, b""))
    try:
        gw = gateway_factory(gateway_config(routes=http_route("http://127.0.0.1:%d/" % app.port) + """    auth:
      hs256_secret: "%s"
      issuer: "https://issuer.test"
      audience: ["wssgate"]
""" % HS_SECRET))
        token = jwt.encode(claims(sub="dana"), HS_SECRET, algorithm="HS256")

        async def scenario():
            async with websockets.connect(gw.url("/chat"), ssl=insecure_context(),
                                          additional_headers={"Authorization": "Bearer " + token}) as ws:
                await ws.send("hello")
                await asyncio.sleep(0.3)

        run(scenario(), timeout=20)
        opened = app.events("open")[0]["headers"]
        assert json.loads(opened["WSSGate-Claims"])["sub"] == "dana"
        assert opened["WSSGate-User"] == "dana"
        assert opened.get("Authorization") == "Bearer " + token, "forwarded as configured (forward_headers)"
        assert app.events("message")[0]["headers"]["WSSGate-User"] == "dana"
    finally:
        app.close()


def test_an_app_on_a_unix_socket(gateway_factory):
    import tempfile
    path = os.path.join(tempfile.mkdtemp(prefix="wgh"), "app.sock")
    app = Recorder(lambda request: (200, "text/plain", b"via unix: " + request["body"]) if request["event"] == "message"
                   else (204, None, b""), unix_path=path)
    try:
        gw = gateway_factory(gateway_config(routes=http_route("unix:%s#/events?v=1" % path)))

        async def scenario():
            async with websockets.connect(gw.url("/chat"), ssl=insecure_context()) as ws:
                await ws.send("hi")
                assert await asyncio.wait_for(ws.recv(), 5) == "via unix: hi"

        run(scenario(), timeout=20)
        assert app.events("open")[0]["path"] == "/events?v=1"
    finally:
        app.close()


def test_a_reload_that_changes_the_route_keeps_its_clients_and_their_keep_alive(gateway_factory):
    """SIGHUP with new `http` settings: a new service for new clients; the old client goes on
    through the old one, still over kept-alive connections (not one per message)."""
    app = Recorder(lambda request: (200, "text/plain", request["body"]) if request["event"] == "message"
                   else (204, None, b""))
    try:
        config = gateway_config(routes=http_route("http://127.0.0.1:%d/" % app.port))
        gw = gateway_factory(config)

        async def scenario():
            ctx = insecure_context()
            async with websockets.connect(gw.url("/chat"), ssl=ctx) as old:
                await old.send("before")
                assert await asyncio.wait_for(old.recv(), 5) == "before"
                with open(gw.config_path, "w") as f:
                    f.write(gateway_config(routes=http_route("http://127.0.0.1:%d/" % app.port, "      timeout: 7s\n")))
                seen = set(app.clients)
                gw.proc.send_signal(signal.SIGHUP)
                await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded", 10)
                for i in range(20):
                    await old.send("after %d" % i)
                    assert await asyncio.wait_for(old.recv(), 5) == "after %d" % i
                assert len(app.clients - seen) <= 1, "the old route's pool is kept: %d new connections" % len(app.clients - seen)
                async with websockets.connect(gw.url("/chat"), ssl=ctx) as new:
                    await new.send("new")
                    assert await asyncio.wait_for(new.recv(), 5) == "new"

        run(scenario(), timeout=30)
    finally:
        app.close()
