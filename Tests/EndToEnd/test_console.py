"""The live console at /console on the admin listener, in headless Chromium: it takes the admin
API's token from its URL fragment, and its connection count follows connections the test opens
and closes. With WSSGATE_RECORD_SCREENSHOT=1 the test writes docs/console.png (the README's
picture); otherwise build/console.png."""
import asyncio
import base64
import json
import os
import re
import struct
import urllib.request

import pytest
import websockets

from conftest import ROOT, insecure_context, run, secret
from test_browser import CHROMIUM, Browser, Page

TOKEN = secret("console-token-for-the-browser-test")


def start(gateway_factory):
    # The embedded default (echo, the chat worker, the hub, the demo page) with a TCP admin API.
    gw = gateway_factory(env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0", "WSSGATE_ADMIN_ADDRESS": "127.0.0.1:0",
                              "WSSGATE_ADMIN_TOKEN": TOKEN})
    gw.wait_for_log(r'msg="worker linked"')
    host, port = re.search(r"address=([\d.]+):(\d+)", gw.wait_for_log(r"admin API listening")).groups()
    return gw, "http://%s:%s" % (host, port)


def test_the_page_holds_nothing_and_the_data_needs_the_token(gateway_factory):
    gw, admin = start(gateway_factory)
    with urllib.request.urlopen(admin + "/console", timeout=10) as response:
        page = response.read().decode()
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "wssgate console" in page and TOKEN not in page
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(admin + "/v1/overview", timeout=10)
    assert refused.value.code == 401
    request = urllib.request.Request(admin + "/v1/overview", headers={"Authorization": "Bearer " + TOKEN})
    overview = json.load(urllib.request.urlopen(request, timeout=10))
    assert [r["name"] for r in overview["routes"]] and overview["listeners"][0]["name"] == "main"
    assert overview["readiness"] == "ready" and overview["connections"] == 0


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_the_console_follows_connections_live(gateway_factory):
    gw, admin = start(gateway_factory)
    browser = Browser()
    try:
        async def scenario():
            async with Page(browser.open(admin + "/console#token=" + TOKEN)) as page:
                await page.wait_for("document.body?.dataset.state === 'live'")
                assert await page.evaluate("location.hash") == "", "the token stays out of the address bar"
                await page.wait_for("document.body.dataset.connections === '0'")
                ctx = insecure_context()
                clients, chat = [], []
                # Connections arrive over a few seconds, with traffic, so the charts have a shape.
                for i in range(8):
                    if i < 5:
                        clients.append(await websockets.connect(gw.url("/echo"), ssl=ctx))
                    else:
                        chat.append(await websockets.connect(gw.url("/chat?room=lobby&name=n%d" % i), ssl=ctx))
                    for _ in range(4):
                        for ws in clients:
                            await ws.send("x" * 512 * (i + 1))
                            await ws.recv()
                        await asyncio.sleep(0.1)
                await page.wait_for("document.body.dataset.connections === '8'")
                await page.wait_for("document.getElementById('now-messages').textContent !== '0'")
                await page.wait_for("document.querySelectorAll('#connections tr').length === 9")
                await page.wait_for("document.getElementById('workers').textContent.includes('running')")
                await page.wait_for("document.getElementById('routes').textContent.includes('/chat')")
                await page.evaluate("document.getElementById('presence-user').value = 'nobody'; document.getElementById('presence-form').requestSubmit()")
                await page.wait_for("document.getElementById('presence').textContent.includes('offline')")
                shot = await page.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
                for ws in clients[:4]:
                    await ws.close()
                await page.wait_for("document.body.dataset.connections === '4'")
                for ws in clients[4:] + chat:
                    await ws.close()
                await page.wait_for("document.body.dataset.connections === '0'")
                return base64.b64decode(shot["data"])

        png = run(scenario(), timeout=120)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width >= 800 and height >= 500, (width, height)
        target = os.path.join(ROOT, "docs", "console.png") if os.environ.get("WSSGATE_RECORD_SCREENSHOT") == "1" \
            else os.path.join(ROOT, "build", "console.png")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(png)
    finally:
        browser.close()
