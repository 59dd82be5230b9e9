"""Listeners behind a layer-4 load balancer: the PROXY protocol (v1 and v2) names the client, and
that address is the one the gateway uses for limits, logs, workers and `Forwarded`. The load
balancer is played by raw sockets from 127.0.0.1 (trusted); 127.0.0.2 (also this machine, but not
in the trusted list) plays a client that reaches the listener directly."""
import asyncio
import os
import socket
import struct
import sys

import pytest
import websockets

from conftest import insecure_context, run
from test_proxy_frames import UpstreamProcess


def config(upstream_port, limits=""):
    return """
log:
  level: debug
http:
  header_timeout: 2s
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
    proxy_protocol:
      trusted: ["127.0.0.1/32"]
  plain:
    address: "127.0.0.1:0"
    proxy_protocol:
      trusted: ["127.0.0.1/32", "::1/128"]
routes:
  echo:
    path: /echo
    kind: echo
  app:
    path: /app
    kind: proxy
    proxy:
      upstream: ws://127.0.0.1:%d/ws
      mode: frames
%s""" % (upstream_port, limits)


def v1(client, port=40000):
    family = "TCP6" if ":" in client else "TCP4"
    server = "::1" if ":" in client else "127.0.0.1"
    return ("PROXY %s %s %s %d 443\r\n" % (family, client, server, port)).encode()


def v2(client, port=40000, command=1, tlvs=b""):
    body = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + struct.pack(">HH", port, 443) + tlvs
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20 | command, 0x11]) + struct.pack(">H", len(body)) + body


def connected(gw, header, name="main", source="127.0.0.1"):
    """A socket to the listener from `source` that has sent `header` (nothing when None)."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(gw.address(name))
    if header:
        sock.sendall(header)
    return sock


def open_session(gw, header, path="/echo", name="main", source="127.0.0.1"):
    sock = connected(gw, header, name, source)
    scheme = "wss" if name == "main" else "ws"
    extra = {"ssl": insecure_context(), "server_hostname": "localhost"} if scheme == "wss" else {}
    return websockets.connect(gw.url(path, name=name, scheme=scheme), sock=sock, **extra)


def refused(gw, header, name="main", source="127.0.0.1", then=b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"):
    """The gateway closes the connection without a word: no HTTP answer, no TLS alert."""
    sock = connected(gw, header, name, source)
    sock.settimeout(10)
    try:
        sock.sendall(then)
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    finally:
        sock.close()


@pytest.fixture
def upstream():
    process = UpstreamProcess()
    yield process
    process.kill()


def test_v1_and_v2_name_the_client_for_logs_and_forwarded(gateway_factory, upstream):
    gw = gateway_factory(config(upstream.port), listeners=2)

    async def scenario():
        # v1 on the TLS listener: the header comes before the ClientHello.
        async with open_session(gw, v1("203.0.113.9", 41111)) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
        # v2 with TLVs on the plain listener, to a frames proxy: the upstream hears of the client.
        tlvs = b"\x02\x00\x0bexample.org" + b"\x04\x00\x02\x00\x00"
        async with open_session(gw, v2("198.51.100.20", 42222, tlvs=tlvs), path="/app", name="plain") as ws:
            import json
            seen = json.loads(await ws.recv())
            assert seen["X-Forwarded-For"] == "198.51.100.20"
            assert seen["Forwarded"].startswith("for=198.51.100.20;")
        # v1 naming an IPv6 client.
        async with open_session(gw, v1("2001:db8::5", 43333), name="plain") as ws:
            await ws.send("six")
            assert await ws.recv() == "six"

    run(scenario())
    gw.wait_for_log(r'msg="websocket closed".*peer=203\.0\.113\.9:41111 .*route=echo')
    gw.wait_for_log(r'msg="websocket closed".*peer=198\.51\.100\.20:42222 .*route=app')
    gw.wait_for_log(r'msg="websocket closed".*peer=\[2001:db8::5\]:43333 ')


def test_the_per_address_limit_counts_the_named_client(gateway_factory, upstream):
    gw = gateway_factory(config(upstream.port, "limits:\n  max_connections_per_ip: 2\n"), listeners=2)

    async def scenario():
        first = await open_session(gw, v2("203.0.113.9"))
        second = await open_session(gw, v1("203.0.113.9"), name="plain")
        # The same client behind the load balancer: over its limit, whatever the TCP peer.
        with pytest.raises(websockets.exceptions.InvalidStatus) as refusal:
            await open_session(gw, v1("203.0.113.9"))
        assert refusal.value.response.status_code == 503
        # Another client through the same load balancer is not held back.
        async with open_session(gw, v1("203.0.113.10")) as other:
            await other.send("x")
            assert await other.recv() == "x"
        await first.close()
        await second.close()

    run(scenario())
    gw.wait_for_log(r'msg="upgrade refused".*client=203\.0\.113\.9 .*status=503')


def test_refusals_for_untrusted_senders_missing_and_malformed_headers(gateway_factory, upstream):
    gw = gateway_factory(config(upstream.port), listeners=2)
    # A peer that is not a load balancer may not name a client.
    assert refused(gw, v1("203.0.113.9"), name="plain", source="127.0.0.2")
    assert refused(gw, v2("203.0.113.9"), source="127.0.0.2")
    # A load balancer must.
    assert refused(gw, None, name="plain")
    assert refused(gw, None)
    # Broken headers.
    assert refused(gw, b"PROXY TCP4 203.0.113.9 127.0.0.1 040000 443\r\n", name="plain")
    assert refused(gw, b"PROXY TCP4 203.0.113.9 127.0.0.1 1 2 3\r\n", name="plain")
    assert refused(gw, b"PROXY UNKNOWN " + b"x" * 120, name="plain", then=b"")
    assert refused(gw, v2("203.0.113.9", tlvs=b"\x03\x00\x04\x00\x00\x00\x01"), name="plain")  # a wrong CRC32C
    assert refused(gw, b"\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c" + bytes(12), name="plain")  # UDP
    assert refused(gw, b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff", name="plain", then=b"")  # 64 KiB announced
    # A header that never ends: closed after http.header_timeout (2 s here).
    assert refused(gw, b"PROXY TCP4 203.0.113.9 ", name="plain", then=b"")
    for code in ("timeout", "untrusted", "missing", "malformed_v1", "line_too_long", "checksum", "datagram", "too_long"):
        gw.wait_for_log(r'msg="proxy protocol refused" code=%s ' % code)

    async def scenario():
        # A client reaching the listener directly (no header, untrusted address) is served, as
        # itself; a LOCAL header (the load balancer's own health check) keeps the real peer.
        async with open_session(gw, None, name="plain", source="127.0.0.2") as ws:
            await ws.send("direct")
            assert await ws.recv() == "direct"
        async with open_session(gw, v2("0.0.0.0", command=0)) as ws:
            await ws.send("local")
            assert await ws.recv() == "local"
        # Refused connections disturbed nobody: a header-carrying session still works.
        async with open_session(gw, v1("203.0.113.9")) as ws:
            await ws.send("still")
            assert await ws.recv() == "still"

    run(scenario())
    gw.wait_for_log(r'msg="websocket closed".*peer=127\.0\.0\.2:\d+ ')
