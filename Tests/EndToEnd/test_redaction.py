"""Secrets never reach the log: tokens in query strings, Authorization and Cookie headers, JWTs,
and whatever a careless worker prints about them, in logfmt and in JSON."""
import asyncio
import base64
import json
import os
import sys

import pytest
import websockets

from conftest import ROOT, gateway_config, insecure_context, raw_http, run, secret
from test_workers import wait_linked

QUERY_TOKEN = secret("qtok-5f1e2d3c4b5a")
BEARER = secret("bearer-9a8b7c6d5e4f")
COOKIE = secret("cookie-0a1b2c3d4e5f")
API_KEY = secret("apikey-77aa88bb99cc")
JWT = secret(".".join(base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
                      for part in ({"alg": "HS256", "typ": "JWT"}, {"sub": "someone", "n": 42}, {"s": "sig-1234"})))

CONFIG = gateway_config(log="""  format: %s
  redact_parameters: ["token", "api_key", "jwt"]
""", routes="""  leaky:
    path: /leaky
    kind: worker
    worker:
      command: "%s"
      args: ["%s"]
      instances: 1
""")


@pytest.mark.parametrize("fmt", ["logfmt", "json"])
def test_no_secret_reaches_the_log(gateway_factory, fmt):
    worker = os.path.join(ROOT, "Tests", "EndToEnd", "leaky_worker.py")
    gw = gateway_factory(CONFIG % (fmt, sys.executable, worker))
    wait_linked(gw, 1)
    host, port = gw.address()
    headers = {"Authorization": "Bearer " + BEARER, "Cookie": "session=" + COOKIE + "; theme=dark"}
    query = "?token=%s&api_key=%s&jwt=%s&room=lobby" % (QUERY_TOKEN, API_KEY, JWT)

    async def scenario():
        ctx = insecure_context()
        for path in ("/echo", "/leaky"):
            async with websockets.connect(gw.url(path + query), ssl=ctx, additional_headers=headers) as ws:
                await ws.send("hello")
                assert await ws.recv() == "hello"
        # Refused upgrades are logged with their target, too.
        for path in ("/nowhere", "/echo"):
            raw_http(host, port, ("GET %s%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Authorization: Bearer %s\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
                                  % (path, query, BEARER)).encode(), read_timeout=1)

    run(scenario())
    # What the log must still say: the route, the target's path, the worker's (redacted) lines.
    gw.wait_for_log(r"websocket closed.*target")
    gw.wait_for_log(r"open field cookie")
    gw.wait_for_log(r"upgrade refused")
    text = "\n".join(gw.lines)
    for value in (QUERY_TOKEN, BEARER, COOKIE, API_KEY, JWT):
        assert value not in text, "%s leaked:\n%s" % (value, "\n".join(l for l in gw.lines if value in l))
    assert "room=lobby" in text, "only the named parameters are redacted"
    assert "[redacted]" in text
    if fmt == "json":
        for line in gw.lines:
            json.loads(line)
