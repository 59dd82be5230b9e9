"""Prometheus metrics at /metrics on the admin listener, parsed with prometheus_client's own text
parser, moving as a scripted client run proceeds: connections, close codes, messages and bytes,
handshake failures (TLS and HTTP), the TLS handshake histogram, send-queue overflows, worker
supervision, reloads, and build information."""
import asyncio
import os
import re
import signal
import socket
import tempfile
import time

import websockets
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, RawWebSocket, gateway_config, insecure_context, raw_http, run, status_of
from test_admin import UnixHTTPConnection
from test_workers import SWIFT_ECHO, wait_linked, worker_pids

CONFIG = gateway_config(level="info", routes="""  hub:
    path: /hub
    kind: hub
    send_queue_bytes: 16KiB
  work:
    path: /work
    kind: worker
    worker:
      command: "%s"
      args: ["worker", "echo"]
      instances: 1
""", extra="""admin:
  address: "unix:%s"
""")


def scrape(socket_path):
    """Every sample as {(name, sorted labels): value}."""
    conn = UnixHTTPConnection(socket_path)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type").startswith("text/plain; version=0.0.4")
    text = response.read().decode()
    conn.close()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def eventually(check, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def test_counters_follow_a_scripted_run(gateway_factory):
    directory = tempfile.mkdtemp(prefix="wgm")
    sock_path = os.path.join(directory, "admin.sock")
    gw = gateway_factory(CONFIG % (SWIFT_ECHO[0], sock_path))
    gw.wait_for_log(r"admin API listening")
    wait_linked(gw, 1)
    host, port = gw.address()

    before = scrape(sock_path)
    assert value(before, "wssgate_build_info", version="0.1.0") == 1
    assert value(before, "wssgate_connections_active", route="echo") == 0
    assert value(before, "wssgate_worker_instances_up", route="work") == 1

    async def talk():
        async with websockets.connect(gw.url("/echo"), ssl=insecure_context(), compression=None) as ws:
            for text in ("one", "two", "three"):
                await ws.send(text)
                assert await ws.recv() == text
            during = scrape(sock_path)
            assert value(during, "wssgate_connections_active", route="echo") == 1
        return during

    during = run(talk())
    assert value(during, "wssgate_connections_opened_total", route="echo") == value(before, "wssgate_connections_opened_total", route="echo") + 1
    assert value(during, "wssgate_messages_received_total", route="echo") == 3
    assert value(during, "wssgate_received_bytes_total", route="echo") == len("onetwothree")
    assert value(during, "wssgate_messages_sent_total", route="echo") == 3

    def closed_with_1000():
        after = scrape(sock_path)
        assert value(after, "wssgate_connections_closed_total", route="echo", code="1000") == 1
        assert value(after, "wssgate_connections_active", route="echo") == 0
        return after
    after = eventually(closed_with_1000)
    assert value(after, "wssgate_tls_handshake_duration_seconds_count", listener="main") >= 1
    assert value(after, "wssgate_tls_handshake_duration_seconds_bucket", listener="main", le="+Inf") >= 1

    # Handshake failures: an upgrade to no route (404), and a TLS handshake that fails.
    answer = raw_http(host, port, b"GET /nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert status_of(answer) == 404
    with socket.create_connection((host, port)) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on a TLS port
        plain.settimeout(5)
        try:
            plain.recv(100)
        except OSError:
            pass
    def failures_counted():
        samples = scrape(sock_path)
        assert value(samples, "wssgate_handshake_failures_total", reason="http_404") == 1
        assert value(samples, "wssgate_handshake_failures_total", reason="tls") == 1
    eventually(failures_counted)

    # A hub subscriber that never reads, and enough published to overflow its 16 KiB queue.
    stalled = RawWebSocket(host, port, "/hub", rcvbuf=4096)
    stalled.send_frame(0x1, b'{"op":"subscribe","topic":"m"}')
    stalled.recv_frame()
    import json
    payload = json.dumps({"topic": "m", "text": "x" * 60000})
    for _ in range(400):
        conn = UnixHTTPConnection(sock_path)
        conn.request("POST", "/v1/publish", body=payload, headers={"Content-Type": "application/json"})
        delivered = json.loads(conn.getresponse().read())["delivered"]
        conn.close()
        if delivered == 0:
            break
    def overflowed():
        samples = scrape(sock_path)
        assert value(samples, "wssgate_send_queue_overflows_total", route="hub") == 1
        assert value(samples, "wssgate_send_queue_dropped_messages_total", route="hub") >= 1
    eventually(overflowed)
    stalled.close()

    # A worker instance killed: a restart, and the instance back up.
    [pid] = worker_pids(gw, "work").values()
    os.kill(pid, signal.SIGKILL)
    def restarted():
        samples = scrape(sock_path)
        assert value(samples, "wssgate_worker_restarts_total", route="work") == 1
        assert value(samples, "wssgate_worker_instances_up", route="work") == 1
    eventually(restarted, timeout=20)

    # Reloads: one that takes, one refused.
    os.kill(gw.proc.pid, signal.SIGHUP)
    eventually(lambda: assert_reloads(sock_path, success=1, failure=0))
    with open(gw.config_path, "a") as f:
        f.write("bogus: true\n")
    os.kill(gw.proc.pid, signal.SIGHUP)
    eventually(lambda: assert_reloads(sock_path, success=1, failure=1))


def assert_reloads(sock_path, success, failure):
    samples = scrape(sock_path)
    assert value(samples, "wssgate_config_reloads_total", result="success") == success
    assert value(samples, "wssgate_config_reloads_total", result="failure") == failure

    # Every metric the gateway exports is in docs/metrics.md.
    documented = set(re.findall(r"^\| `(wssgate_[a-z0-9_]+)`", open(os.path.join(ROOT, "docs", "metrics.md")).read(), re.M))
    exported = {re.sub(r"_(bucket|sum|count)$", "", name) for name, _ in scrape(sock_path) if name.startswith("wssgate_")}
    assert len(exported) > 10, exported
    missing = {name for name in exported if name not in documented and name + "_total" not in documented}
    assert not missing, "exported but not in docs/metrics.md: %s" % sorted(missing)
