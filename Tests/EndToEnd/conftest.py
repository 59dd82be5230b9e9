"""Shared helpers for the end-to-end suite: each test starts the built `wssgate` binary as a
real process on loopback (port 0), talks to it with real clients, and ends it by its PID."""
import asyncio
import difflib
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Absolute, so a test may start the gateway from another directory (`make test` passes a relative path).
BINARY = os.path.abspath(os.environ.get("GATEWAY_BINARY", os.path.join(ROOT, ".build", "debug", "wssgate")))

# Every log line of every gateway the suite starts, and every secret a test hands it (tokens,
# cookies, passwords): at the end of the run none of the secrets may appear in any line.
ALL_LOG_LINES = []
SECRETS = set()


def secret(value):
    """Registers a test secret that must never reach a log; returns it."""
    SECRETS.add(value)
    return value


def pytest_sessionfinish(session, exitstatus):
    leaks = sorted({(s, line) for line in ALL_LOG_LINES for s in SECRETS if s in line})
    if leaks:
        print("\nsecrets found in gateway logs:")
        for s, line in leaks[:20]:
            print("  %r in: %s" % (s, line))
        session.exitstatus = 1
    elif SECRETS:
        print("\nlog check: %d secrets, %d gateway log lines, none leaked" % (len(SECRETS), len(ALL_LOG_LINES)))
    if ROUND_TRIPS:
        print("check-config round trip: %d configurations printed, loaded again, printed the same" % len(ROUND_TRIPS))


# Configurations whose check-config output was loaded again and printed the same.
ROUND_TRIPS = []


def check_round_trip(path, args=(), env=None):
    """`check-config FILE > E; check-config E` must print E again: the printed configuration
    is complete. Files that do not load (tests of refusals) are left to their test."""
    overrides = []
    for index, arg in enumerate(args):
        if arg == "--set" and index + 1 < len(args):
            overrides += [arg, args[index + 1]]
        elif arg.startswith("--set="):
            overrides.append(arg)
    first = subprocess.run([BINARY, "check-config", path, *overrides], capture_output=True, text=True, env=env, timeout=30)
    if first.returncode != 0:
        return None
    printed = os.path.join(os.path.dirname(path), "effective.yaml")
    with open(printed, "w") as f:
        f.write(first.stdout)
    again = subprocess.run([BINARY, "check-config", printed], capture_output=True, text=True, env=env, timeout=30)
    assert again.returncode == 0, "check-config does not load its own output for %s:\n%s\n%s" % (path, again.stderr, first.stdout)
    assert again.stdout == first.stdout, "check-config's output, checked again, differs for %s:\n%s" % (path, "\n".join(
        difflib.unified_diff(first.stdout.splitlines(), again.stdout.splitlines(), lineterm="")))
    ROUND_TRIPS.append(path)
    return printed


class Gateway:
    """A running wssgate process, with its log lines and bound listener addresses."""

    def __init__(self, args, env=None, config_text=None, tmpdir=None, wrapper=(), cwd=None):
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="wg")
        os.chmod(self.tmpdir, 0o755)
        self.config_path = None
        argv = [*wrapper, BINARY, "run"]
        if config_text is not None:
            self.config_path = os.path.join(self.tmpdir, "wssgate.yaml")
            with open(self.config_path, "w") as f:
                f.write(config_text)
            os.chmod(self.config_path, 0o644)
            argv += ["--config", self.config_path]
        argv += args
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("WSSGATE_")}
        # The admin API's default socket is /run/wssgate/admin.sock; tests that do not set up an
        # admin API of their own keep it off rather than share that one path.
        if "admin:" not in (config_text or "") and not any(a.startswith("admin.") for a in args):
            full_env["WSSGATE_ADMIN_ADDRESS"] = "off"
        # The embedded default keeps its playground history where the gateway keeps state:
        # each test gateway its own folder (a test that restarts one passes the same folder).
        full_env["STATE_DIRECTORY"] = os.path.join(self.tmpdir, "state")
        full_env.update(env or {})
        # A None value unsets a variable (the admin test that wants the real default).
        full_env = {k: v for k, v in full_env.items() if v is not None}
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=full_env, cwd=cwd)
        self.lines = []
        self.listeners = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        # Beside the start, so the check does not delay the test (some tests race two
        # gateways); its verdict is collected when the test ends (`round_trip_verdict`).
        self._round_trip_error = None
        self._round_trip = None
        if self.config_path:
            def check():
                try:
                    check_round_trip(self.config_path, list(args), full_env)
                except AssertionError as error:
                    self._round_trip_error = error
            self._round_trip = threading.Thread(target=check, daemon=True)
            self._round_trip.start()

    def _pump(self):
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                ALL_LOG_LINES.append(line.rstrip("\n"))
                m = re.search(r"msg=listening address=(\S+) listener=(\S+)", line)
                if m:
                    self.listeners[m.group(2)] = m.group(1)
                elif line.startswith("{") and '"msg":"listening"' in line:
                    import json
                    event = json.loads(line)
                    self.listeners[event["listener"]] = event["address"]
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_log(self, pattern, timeout=10):
        deadline = time.time() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if re.search(pattern, line):
                        return line
                remaining = deadline - time.time()
                if remaining <= 0 or self.proc.poll() is not None and not any(re.search(pattern, l) for l in self.lines):
                    if remaining <= 0:
                        raise AssertionError("no log line matching %r; log:\n%s" % (pattern, "\n".join(self.lines)))
                self._cond.wait(min(remaining, 0.2) if remaining > 0 else 0.01)

    def wait_ready(self, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.listeners) >= count:
                return self
            if self.proc.poll() is not None:
                raise AssertionError("wssgate exited with %s:\n%s" % (self.proc.returncode, "\n".join(self.lines)))
            time.sleep(0.02)
        raise AssertionError("listeners not bound:\n" + "\n".join(self.lines))

    def address(self, name="main"):
        host, port = self.listeners[name].rsplit(":", 1)
        return host.strip("[]"), int(port)

    def url(self, path, name="main", scheme="wss"):
        host, port = self.address(name)
        if ":" in host:
            host = "[%s]" % host
        return "%s://%s:%d%s" % (scheme, host, port, path)

    def round_trip_verdict(self):
        """Raises what the check-config round trip of this gateway's file found, if anything."""
        if self._round_trip:
            self._round_trip.join(60)
        if self._round_trip_error:
            raise self._round_trip_error

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def gateway_factory():
    started = []

    def make(config_text=None, args=(), env=None, listeners=1, wrapper=(), cwd=None):
        gw = Gateway(list(args), env=env, config_text=config_text, wrapper=wrapper, cwd=cwd)
        started.append(gw)
        if listeners:
            gw.wait_ready(listeners)
            # The admin API binds beside the listeners, not before them: a test that talks to it
            # waits until it listens (a file that names one, not switched off).
            admin = re.search(r"^admin:\n  address: \"?([^\"\n]+)", config_text or "", re.M)
            if admin and admin.group(1) != "off":
                gw.wait_for_log(r"admin API listening")
        return gw

    yield make
    for gw in started:
        # SIGTERM first: the gateway stops its workers; SIGKILL only if it does not end.
        gw.stop(signal.SIGTERM, timeout=15)
    for gw in started:
        gw.round_trip_verdict()


def free_port():
    """A loopback port free right now, for peers that must be told a port before they bind
    (Pebble validates on fixed ports; systemd-socket-activate binds for the gateway)."""
    return free_ports(1)[0]


def free_ports(count):
    """`count` distinct loopback ports free right now: the sockets are held open together, so
    the kernel cannot hand the same port out twice."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def wait_until_listening(port, timeout=30):
    """Waits until something listens on 127.0.0.1:`port`, read from /proc/net/tcp rather than by
    connecting: systemd-socket-activate binds a moment after it starts, and a connection is what
    starts the gateway, so a probe would change what the test sees (a client that connects
    before the bind is refused, and then nothing ever starts the gateway)."""
    wanted = "0100007F:%04X" % port
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/net/tcp") as table:
            for row in table.read().splitlines()[1:]:
                fields = row.split()
                if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
                    return
        time.sleep(0.02)
    raise AssertionError("nothing listens on 127.0.0.1:%d after %d s" % (port, timeout))


def insecure_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def raw_http(host, port, request: bytes, tls=True, read_timeout=5.0):
    """Sends raw bytes and returns what the server answers until it closes the connection (or
    goes quiet for `read_timeout`)."""
    sock = socket.create_connection((host, port), timeout=read_timeout)
    if tls:
        sock = insecure_context().wrap_socket(sock, server_hostname="localhost")
    try:
        sock.sendall(request)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)
    finally:
        sock.close()


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response[9:12])


def gateway_config(routes="", extra="", level="debug", log=""):
    """The usual test gateway: one TLS listener on 127.0.0.1:0 with a generated certificate and
    an echo route at /echo. `routes` adds route entries (indented as under `routes:`), `extra`
    top-level sections, `log` more keys of the log section."""
    return ("\nlog:\n  level: %s\n%slisteners:\n  main:\n    address: \"127.0.0.1:0\"\n    tls:\n      self_signed: true\n"
            "routes:\n  echo:\n    path: /echo\n    kind: echo\n%s%s") % (level, log, routes, extra)


ECHO_CONFIG = gateway_config()


async def with_witness(gw, action, path="/echo", name="main", scheme="wss"):
    """Runs `action` (a blocking callable) while another WebSocket session is open, then checks
    that the other session still echoes: a bad client never disturbs a good one."""
    import websockets
    url = gw.url(path, name=name, scheme=scheme)
    async with websockets.connect(url, ssl=insecure_context() if scheme == "wss" else None) as ws:
        await ws.send("before")
        assert await ws.recv() == "before"
        result = await asyncio.to_thread(action)
        await ws.send("after")
        assert await ws.recv() == "after"
        return result


def encode_frame(opcode, payload=b"", fin=True, rsv1=False, rsv2=False, rsv3=False, mask=True):
    """One WebSocket frame's bytes, as a client writes it (or, with mask=False, as it must not)."""
    import struct
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | (0x20 if rsv2 else 0) | (0x10 if rsv3 else 0) | opcode
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", b0, (0x80 if mask else 0) | length)
    elif length < 65536:
        header = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, length)
    else:
        header = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, length)
    if mask:
        key = os.urandom(4)
        if payload:
            # XOR as one big integer: fast enough for megabytes.
            repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")
        header += key
    return header + payload


class RawWebSocket:
    """A deliberately minimal client that can send what a well-behaved library refuses to:
    unmasked frames, reserved bits and opcodes, bad close codes, invalid UTF-8."""

    def __init__(self, host, port, path="/echo", tls=True, timeout=5, extensions=None, rcvbuf=None):
        import base64
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.settimeout(timeout)
        if rcvbuf:
            # Before connecting, so the advertised window stays small: a client that stops
            # reading then holds only a few kilobytes in its kernel.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.connect((host, port))
        if tls:
            sock = insecure_context().wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        key = base64.b64encode(os.urandom(16)).decode()
        ext = "Sec-WebSocket-Extensions: %s\r\n" % extensions if extensions else ""
        sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (path, key, ext)).encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = sock.recv(4096)
            if not chunk:
                raise AssertionError("closed during handshake: %r" % self.buffer)
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        self.response_head = head.decode()
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_frame(self, opcode, payload=b"", fin=True, rsv1=False, rsv2=False, rsv3=False, mask=True):
        self.sock.sendall(encode_frame(opcode, payload, fin, rsv1, rsv2, rsv3, mask))

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def recv_frame(self):
        import struct
        b0, b1 = self._read(2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(8))[0]
        assert not b1 & 0x80, "server frames are never masked"
        return b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40), self._read(length)

    def expect_close(self, code):
        """Reads until a Close frame; asserts its code; answers it; returns the reason."""
        import struct
        while True:
            opcode, _, _, payload = self.recv_frame()
            if opcode == 0x8:
                got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                assert got == code, "close code %r, expected %r (%r)" % (got, code, payload)
                try:
                    self.send_frame(0x8, payload[:2])
                except OSError:
                    pass
                return payload[2:].decode()

    def wait_closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except (ConnectionResetError, ssl.SSLError):
            pass
        return True

    def close(self):
        self.sock.close()
