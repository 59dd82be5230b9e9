"""The demo page in a real browser: headless Chromium, driven over the DevTools protocol.
Two tabs join the chat over wss:// and see each other's messages; a page on https://gw.test
that tries ws://gw.test is blocked by the browser, and the page explains why."""
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import pytest
import websockets

from conftest import run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")


class Browser:
    def __init__(self, host_rules=None):
        self.home = tempfile.mkdtemp(prefix="wgb")
        profile = os.path.join(self.home, "profile")
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                "--user-data-dir=" + profile, "--ignore-certificate-errors", "--no-first-run", "--window-size=1280,900",
                "about:blank"]
        if host_rules:
            args.append("--host-resolver-rules=" + host_rules)
        self.proc = subprocess.Popen(args, env={**os.environ, "HOME": self.home}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            assert time.time() < deadline and self.proc.poll() is None, "chromium did not start"
            time.sleep(0.1)
        self.port = int(open(port_file).read().split()[0])

    def open(self, url):
        # A fragment would end the DevTools request's own URL: it travels encoded.
        request = urllib.request.Request("http://127.0.0.1:%d/json/new?%s" % (self.port, url.replace("#", "%23")), method="PUT")
        return json.load(urllib.request.urlopen(request, timeout=10))["webSocketDebuggerUrl"]

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


class Page:
    def __init__(self, debugger_url):
        self.url = debugger_url
        self.next_id = 0

    async def __aenter__(self):
        self.ws = await websockets.connect(self.url, max_size=None)
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()

    async def call(self, method, params=None):
        """One DevTools command; its result."""
        self.next_id += 1
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return reply["result"]

    async def evaluate(self, expression):
        result = await self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True})
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if await self.evaluate(expression):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("never true in the page: " + expression)


async def publish_to_playground(port, *items):
    """Publishes to the demo page's playground topic, as another tab would."""
    from conftest import insecure_context
    async with websockets.connect("wss://127.0.0.1:%d/hub" % port, ssl=insecure_context()) as ws:
        for item in items:
            await ws.send(json.dumps({"op": "publish", "topic": "playground.demo", "data": item, "id": item}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["op"] == "ack"


def test_two_tabs_chat_over_wss(gateway_factory):
    gw = gateway_factory(env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0"})
    gw.wait_for_log(r'msg="worker linked"')
    browser = Browser()
    try:
        url = gw.url("/", scheme="https")
        first, second = browser.open(url), browser.open(url)

        async def scenario():
            async with Page(first) as a, Page(second) as b:
                for page, name in ((a, "alice"), (b, "bob")):
                    await page.wait_for("typeof getWebSocketUrl === 'function' && document.readyState === 'complete'")
                    assert await page.evaluate("getWebSocketUrl('/chat')") == url.replace("https:", "wss:").rstrip("/") + "/chat"
                    await page.evaluate("document.getElementById('chat-name').value = '%s'; document.getElementById('chat-join').click()" % name)
                    await page.wait_for("document.body.dataset.chat === 'joined'")
                await a.wait_for("(window.chatEvents || []).some(e => e.type === 'join' && e.name === 'bob')")
                for page, text in ((a, "hello from alice"), (b, "hello from bob")):
                    await page.evaluate("document.getElementById('chat-text').value = '%s'; document.getElementById('chat-send').click()" % text)
                for page in (a, b):
                    await page.wait_for("(window.chatEvents || []).some(e => e.text === 'hello from alice')")
                    await page.wait_for("(window.chatEvents || []).some(e => e.text === 'hello from bob')")

        run(scenario(), timeout=90)
    finally:
        browser.close()


def test_ws_from_an_https_page_is_blocked_and_explained(gateway_factory):
    gw = gateway_factory(env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0"})
    _, port = gw.address()
    # Chromium trusts ws://localhost and ws://127.0.0.1 from https pages: use a real-looking name.
    browser = Browser(host_rules="MAP gw.test 127.0.0.1")
    try:
        page_url = "https://gw.test:%d/" % port

        async def scenario():
            async with Page(browser.open(page_url)) as page:
                await page.wait_for("typeof getWebSocketUrl === 'function' && document.readyState === 'complete'")
                assert await page.evaluate("location.protocol") == "https:"
                await page.evaluate("document.getElementById('mixed-try').click()")
                await page.wait_for("document.body.dataset.mixedContent === 'explained'")
                text = await page.evaluate("document.getElementById('mixed').textContent")
                assert "mixed content" in text and "wss://gw.test" in text
                # Refused by the browser itself, before any connection: the constructor threw.
                assert await page.evaluate("document.body.dataset.blockedByBrowser") == "true"

        run(scenario(), timeout=60)
    finally:
        browser.close()


def test_the_hub_playground_resumes_through_a_restart(tmp_path):
    """wssgate.js in the demo page subscribes; the gateway restarts (its hub history in a file);
    what is published before the page is back arrives when it is, as recovered messages."""
    from conftest import Gateway, free_port
    port = free_port()
    args = ["--set", "listeners.main.address=127.0.0.1:%d" % port,
            "--set", "routes.hub.hub.history.storage=file",
            "--set", "routes.hub.hub.history.directory=%s" % tmp_path]
    gateways = [Gateway(args).wait_ready()]
    browser = Browser()
    url = "https://127.0.0.1:%d/" % port

    try:
        async def scenario():
            async with Page(browser.open(url)) as page:
                await page.wait_for("typeof WssGate === 'object' && document.readyState === 'complete'")
                await page.wait_for("document.body.dataset.hubStatus === 'open'")
                await page.evaluate("document.getElementById('hub-subscribe').click()")
                await page.wait_for("document.body.dataset.hubSubscribed === 'playground.demo'")
                await publish_to_playground(port, "before")
                await page.wait_for("window.hubMessages.length === 1")
                # Hold the page off until the test lets it reconnect: "while it was away" for sure.
                await page.evaluate("hub.options.minDelay = 600000; hub.options.maxDelay = 600000")
                await asyncio.to_thread(gateways[0].stop)
                await page.wait_for("document.body.dataset.hubStatus === 'reconnecting'")
                gateways.append(await asyncio.to_thread(lambda: Gateway(args).wait_ready()))
                await publish_to_playground(port, "away 1", "away 2")
                await page.evaluate("clearTimeout(hub.timer); hub._open()")
                await page.wait_for("window.hubMessages.length === 3")
                assert await page.evaluate("window.hubMessages") == ["before", "away 1", "away 2"]
                assert await page.evaluate("window.hubRecovered") == 2
                assert "recovered 2 messages" in await page.evaluate("document.getElementById('hub-log').textContent")
                # Live again.
                await publish_to_playground(port, "after")
                await page.wait_for("window.hubMessages.length === 4")

        run(scenario(), timeout=120)
    finally:
        browser.close()
        for gw in gateways:
            gw.stop()
    assert gateways[0].proc.returncode == 0


def test_the_demo_page_comes_back_after_a_restart_of_the_embedded_default(tmp_path):
    """`make run`, the demo page open, Ctrl-C, `make run` again: the embedded default keeps the
    playground's history in its state folder, so the hub section recovers what was published
    meanwhile; the echo and chat sections reconnect by themselves and Send works again."""
    from conftest import Gateway, free_port
    port = free_port()
    env = {"STATE_DIRECTORY": str(tmp_path)}
    args = ["--set", "listeners.main.address=127.0.0.1:%d" % port]
    gateways = [Gateway(args, env=env).wait_ready()]
    gateways[0].wait_for_log(r'msg="topic history".*storage=file')
    browser = Browser()

    try:
        async def scenario():
            async with Page(browser.open("https://127.0.0.1:%d/" % port)) as page:
                await page.wait_for("typeof WssGate === 'object' && document.readyState === 'complete'")
                await page.wait_for("document.body.dataset.hubStatus === 'open' && document.body.dataset.echo === 'open'")
                await page.evaluate("document.getElementById('chat-join').click()")
                await page.wait_for("document.body.dataset.chat === 'joined'")
                await page.evaluate("document.getElementById('hub-subscribe').click()")
                await page.wait_for("document.body.dataset.hubSubscribed === 'playground.demo'")
                await publish_to_playground(port, "before")
                await page.wait_for("window.hubMessages.length === 1")
                await page.evaluate("hub.options.minDelay = 600000; hub.options.maxDelay = 600000")
                await page.evaluate("delete document.body.dataset.echo; delete document.body.dataset.chat")
                await asyncio.to_thread(gateways[0].stop)
                await page.wait_for("document.body.dataset.hubStatus === 'reconnecting'")
                gateways.append(await asyncio.to_thread(lambda: Gateway(args, env=env).wait_ready()))
                await publish_to_playground(port, "away")
                await page.evaluate("clearTimeout(hub.timer); hub._open()")
                await page.wait_for("window.hubMessages.length === 2", timeout=30)
                assert await page.evaluate("window.hubRecovered") == 1
                assert "lost its history" not in await page.evaluate("document.getElementById('hub-log').textContent")
                # Echo and chat came back by themselves; Send works on the new connections.
                await page.wait_for("document.body.dataset.echo === 'open' && document.body.dataset.chat === 'joined'", timeout=40)
                await page.evaluate("document.getElementById('echo-text').value = 'again'; document.getElementById('echo-send').click()")
                await page.wait_for("(window.echoAnswers || []).includes('again')")
                await page.evaluate("document.getElementById('chat-text').value = 'back'; document.getElementById('chat-send').click()")
                await page.wait_for("(window.chatEvents || []).some(e => e.text === 'back')")

        run(scenario(), timeout=150)
    finally:
        browser.close()
        for gw in gateways:
            gw.stop()
