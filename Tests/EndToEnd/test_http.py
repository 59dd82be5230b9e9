"""The HTTP/1.1 side: health endpoints, refusals with their exact statuses, limits. Every bad
request runs while a second connection is open, and that one must keep working."""
import base64
import os
import socket
import time

from conftest import ECHO_CONFIG, insecure_context, raw_http, run, status_of, with_witness

KEY = base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path="/echo", key=KEY, version="13", extra=""):
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %s\r\n%s\r\n" % (path, key, version, extra)).encode()


def request(gw, raw, tls=True, read_timeout=5.0):
    host, port = gw.address()
    return raw_http(host, port, raw, tls=tls, read_timeout=read_timeout)


def check_status(gw, raw, expected, header=None, witness_path="/echo"):
    response = run(with_witness(gw, lambda: request(gw, raw), path=witness_path))
    assert status_of(response) == expected, response[:300]
    if header:
        assert header.encode().lower() in response.lower(), response[:400]
    return response


def test_livez_and_readyz(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    response = request(gw, b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 200 and response.endswith(b"ok\n")
    response = request(gw, b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 200 and response.endswith(b"ready\n")
    response = request(gw, b"HEAD /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status_of(response) == 200 and response.endswith(b"\r\n\r\n")


def test_unknown_path_404_wrong_method_405(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    check_status(gw, b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404)
    check_status(gw, b"POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405, "allow: GET, HEAD")
    check_status(gw, b"DELETE /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405, "allow: GET")


def test_plain_get_on_websocket_route_is_426(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    check_status(gw, b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 426, "upgrade: websocket")


def test_malformed_request_400(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    check_status(gw, b"GET / HTTP/1.1\r\nHost x no colon\r\n\r\n", 400)
    check_status(gw, b"\x16\x03garbage\r\n\r\n", 400)


def test_header_block_over_limit_431(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    big = "X-Filler: " + "a" * 17000 + "\r\n"
    check_status(gw, ("GET /livez HTTP/1.1\r\nHost: x\r\n%s\r\n" % big).encode(), 431)
    # Many small headers add up too.
    many = "".join("X-H%d: %s\r\n" % (i, "b" * 100) for i in range(200))
    check_status(gw, ("GET /livez HTTP/1.1\r\nHost: x\r\n%s\r\n" % many).encode(), 431)


def test_endless_request_line_431(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    check_status(gw, b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\n", 431)


def test_just_under_header_limit_is_fine(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    filler = "X-Filler: " + "a" * 15000 + "\r\n"
    response = request(gw, ("GET /livez HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n" % filler).encode())
    assert status_of(response) == 200


def test_slow_header_times_out_408(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG + "http:\n  header_timeout: 500ms\n")
    host, port = gw.address()

    def slowloris():
        sock = insecure_context().wrap_socket(socket.create_connection((host, port), timeout=5), server_hostname="localhost")
        sock.sendall(b"GET /livez HTTP/1.1\r\n")
        started = time.time()
        sock.sendall(b"X-Slow: 1\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        return data, time.time() - started

    data, elapsed = run(with_witness(gw, slowloris))
    assert status_of(data) == 408
    assert elapsed < 3


def test_silent_connection_is_closed_after_header_timeout(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG + "http:\n  header_timeout: 300ms\n")
    host, port = gw.address()
    sock = socket.create_connection((host, port), timeout=5)  # never even starts TLS
    started = time.time()
    assert sock.recv(100) == b""
    assert time.time() - started < 3
    sock.close()


def test_keep_alive_serves_several_requests(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    response = request(gw, b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.count(b"HTTP/1.1 200 OK") == 2 and b"HTTP/1.1 404 Not Found" in response


def test_upgrade_refusals(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG + "    subprotocols: [chat.v2, chat.v1]\n")
    check_status(gw, upgrade_request(version="8"), 426, "sec-websocket-version: 13")
    check_status(gw, upgrade_request(key="short"), 400)
    check_status(gw, upgrade_request(key="").replace(b"Sec-WebSocket-Key: \r\n", b""), 400)
    check_status(gw, upgrade_request(path="/missing"), 404)
    check_status(gw, upgrade_request().replace(b"GET ", b"POST ", 1), 405)


def test_upgrade_accepts_and_selects_subprotocol(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG + "    subprotocols: [chat.v2, chat.v1]\n")
    response = request(gw, upgrade_request(extra="Sec-WebSocket-Protocol: chat.v1, chat.v2\r\n"), read_timeout=1)
    assert status_of(response) == 101
    assert b"Sec-WebSocket-Protocol: chat.v2" in response  # the route's preference wins
    accept = base64.b64encode(__import__("hashlib").sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    assert b"Sec-WebSocket-Accept: " + accept in response


def test_required_subprotocol_missing_is_400(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG + "    subprotocols: [chat.v1]\n    require_subprotocol: true\n  open:\n    path: /open\n    kind: echo\n")
    check_status(gw, upgrade_request(extra="Sec-WebSocket-Protocol: other\r\n"), 400, witness_path="/open")
    response = request(gw, upgrade_request(extra="Sec-WebSocket-Protocol: chat.v1\r\n"), read_timeout=1)
    assert status_of(response) == 101 and b"Sec-WebSocket-Protocol: chat.v1" in response
