"""Client limits, each crossed: connections overall and per client address (503 with
Retry-After), new connections per second per address (429), messages per second per connection
(1008); the client address comes from X-Forwarded-For / Forwarded only through a trusted proxy.
A well-behaved client on the same gateway carries on every time."""
import asyncio
import os
import tempfile
import time

import pytest
import websockets

from conftest import RawWebSocket, insecure_context, raw_http, run, status_of, with_witness
from test_metrics import scrape, value

BASE = """
log:
  level: info
listeners:
  main:
    address: "127.0.0.1:0"
routes:
  echo:
    path: /echo
    kind: echo
%s
"""


def upgrade(gw, forwarded_for=None, header="X-Forwarded-For"):
    """A raw upgrade request; returns (status, headers text)."""
    host, port = gw.address()
    extra = "%s: %s\r\n" % (header, forwarded_for) if forwarded_for else ""
    answer = raw_http(host, port, ("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % extra).encode(),
                      tls=False, read_timeout=1)
    return status_of(answer), answer.decode(errors="replace")


class Held:
    """WebSocket connections kept open (raw sockets, with an optional X-Forwarded-For)."""

    def __init__(self, gw):
        self.gw = gw
        self.sockets = []

    def open(self, forwarded_for=None):
        host, port = self.gw.address()
        raw = RawWebSocket.__new__(RawWebSocket)
        import socket, base64
        sock = socket.create_connection((host, port), timeout=5)
        extra = "X-Forwarded-For: %s\r\n" % forwarded_for if forwarded_for else ""
        sock.sendall(("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (base64.b64encode(os.urandom(16)).decode(), extra)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        status = int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else None
        if status == 101:
            raw.sock, raw.buffer = sock, data.split(b"\r\n\r\n", 1)[1]
            self.sockets.append(raw)
        else:
            sock.close()
        return status, data.decode(errors="replace")

    def close_all(self):
        for raw in self.sockets:
            raw.close()
        self.sockets = []


def test_max_connections_overall_gives_503_with_retry_after(gateway_factory):
    gw = gateway_factory(BASE % "limits:\n  max_connections: 3\n")
    held = Held(gw)

    def crossing():
        assert held.open()[0] == 101
        assert held.open()[0] == 101  # with the witness: 3
        status, head = held.open()
        assert status == 503 and "Retry-After: 5" in head, head
        held.close_all()
        # Slots come back when connections close.
        deadline = time.time() + 5
        while time.time() < deadline:
            status, _ = held.open()
            if status == 101:
                break
            time.sleep(0.1)
        assert status == 101
        held.close_all()

    run(with_witness(gw, crossing, scheme="ws"))


def test_max_connections_per_ip_behind_a_trusted_proxy(gateway_factory):
    gw = gateway_factory(BASE % "limits:\n  max_connections_per_ip: 2\n  trusted_proxies: [\"127.0.0.1/32\"]\n")
    held = Held(gw)

    def crossing():
        assert held.open("203.0.113.5")[0] == 101
        assert held.open("198.51.100.1, 203.0.113.5")[0] == 101  # the rightmost untrusted hop counts
        status, head = held.open("203.0.113.5")
        assert status == 503 and "Retry-After" in head
        # Another client behind the same proxy is not affected.
        assert held.open("203.0.113.6")[0] == 101
        status, _ = upgrade(gw, 'for="[2001:db8::7]:4711";proto=https', header="Forwarded")
        assert status == 101
        held.close_all()

    run(with_witness(gw, crossing, scheme="ws"))


def test_forwarded_headers_from_an_untrusted_peer_are_ignored(gateway_factory):
    gw = gateway_factory(BASE % "limits:\n  max_connections_per_ip: 2\n  trusted_proxies: [\"10.0.0.0/8\"]\n")
    held = Held(gw)
    # The peer (127.0.0.1) is not trusted: every connection counts as 127.0.0.1's.
    assert held.open("203.0.113.5")[0] == 101
    assert held.open("203.0.113.6")[0] == 101
    assert held.open("203.0.113.7")[0] == 503
    held.close_all()


def test_new_connections_per_second_per_ip_gives_429(gateway_factory):
    directory = tempfile.mkdtemp(prefix="wgl")
    sock_path = os.path.join(directory, "admin.sock")
    gw = gateway_factory(BASE % ("limits:\n  connections_per_second_per_ip: 0.5\n  connection_burst_per_ip: 2\n"
                                 "  trusted_proxies: [\"127.0.0.1\"]\nadmin:\n  address: \"unix:%s\"\n" % sock_path))
    gw.wait_for_log("admin API listening")
    held = Held(gw)

    def crossing():
        assert held.open("192.0.2.1")[0] == 101
        assert held.open("192.0.2.1")[0] == 101
        status, head = held.open("192.0.2.1")
        assert status == 429, head
        retry = int(head.split("Retry-After: ")[1].split("\r\n")[0])
        assert 1 <= retry <= 2
        # Another address has its own budget.
        assert held.open("192.0.2.2")[0] == 101
        held.close_all()

    # The witness connects straight from 127.0.0.1: its own budget, unaffected.
    run(with_witness(gw, crossing, scheme="ws"))
    samples = scrape(sock_path)
    assert value(samples, "wssgate_limit_rejections_total", limit="connections_per_second_per_ip") == 1
    assert value(samples, "wssgate_handshake_failures_total", reason="http_429") == 1


def test_messages_per_second_per_connection_closes_1008(gateway_factory):
    gw = gateway_factory(BASE.replace("    kind: echo\n", "    kind: echo\n    max_messages_per_second: 5\n    message_burst: 5\n") % "")
    host, port = gw.address()

    def flood():
        raw = RawWebSocket(host, port, "/echo", tls=False)
        for n in range(30):
            try:
                raw.send_frame(0x1, b"m%d" % n)
            except OSError:
                break
        echoed = 0
        while True:
            opcode, _, _, payload = raw.recv_frame()
            if opcode == 0x8:
                assert payload[:2] == (1008).to_bytes(2, "big"), payload
                assert b"rate" in payload
                break
            echoed += 1
        assert 5 <= echoed < 30
        raw.close()

    run(with_witness(gw, flood, scheme="ws"))

    # At the allowed pace nothing happens.
    async def polite():
        async with websockets.connect(gw.url("/echo", scheme="ws")) as ws:
            for n in range(8):
                await ws.send("p%d" % n)
                assert await ws.recv() == "p%d" % n
                await asyncio.sleep(0.25)

    run(polite())
