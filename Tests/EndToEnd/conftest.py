"""Shared helpers for the end-to-end suite: each test starts the built `wssgate` binary as a
real process on loopback (port 0), talks to it with real clients, and ends it by its PID."""
import asyncio
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
BINARY = os.environ.get("WSSGATE_BINARY", os.path.join(ROOT, ".build", "debug", "wssgate"))


class Gateway:
    """A running wssgate process, with its log lines and bound listener addresses."""

    def __init__(self, args, env=None, config_text=None, tmpdir=None):
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="wg")
        self.config_path = None
        argv = [BINARY, "run"]
        if config_text is not None:
            self.config_path = os.path.join(self.tmpdir, "wssgate.yaml")
            with open(self.config_path, "w") as f:
                f.write(config_text)
            argv += ["--config", self.config_path]
        argv += args
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("WSSGATE_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=full_env)
        self.lines = []
        self.listeners = {}
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                m = re.search(r"msg=listening address=(\S+) listener=(\S+)", line)
                if m:
                    self.listeners[m.group(2)] = m.group(1)
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

    def make(config_text=None, args=(), env=None, listeners=1):
        gw = Gateway(list(args), env=env, config_text=config_text)
        started.append(gw)
        if listeners:
            gw.wait_ready(listeners)
        return gw

    yield make
    for gw in started:
        gw.stop(signal.SIGKILL if gw.proc.poll() is None else signal.SIGTERM, timeout=5)


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


ECHO_CONFIG = """
log:
  level: debug
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
routes:
  echo:
    path: /echo
    kind: echo
"""


async def with_witness(gw, action, path="/echo", name="main"):
    """Runs `action` (a blocking callable) while another WebSocket session is open, then checks
    that the other session still echoes: a bad client never disturbs a good one."""
    import websockets
    async with websockets.connect(gw.url(path, name=name), ssl=insecure_context() if gw.url(path, name=name).startswith("wss") else None) as ws:
        await ws.send("before")
        assert await ws.recv() == "before"
        result = await asyncio.to_thread(action)
        await ws.send("after")
        assert await ws.recv() == "after"
        return result
