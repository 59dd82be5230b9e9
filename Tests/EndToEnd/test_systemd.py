"""systemd, spoken natively and checked with systemd's own tools: the unit files pass
`systemd-analyze verify`, and `systemd-socket-activate` runs the gateway on a passed socket
while a test notify socket collects READY=1, STATUS=, WATCHDOG=1 and STOPPING=1."""
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import websockets

from conftest import BINARY, ROOT, free_port, insecure_context, run, wait_until_listening

pytestmark = pytest.mark.skipif(shutil.which("systemd-socket-activate") is None, reason="systemd tools not installed")


class NotifySocket:
    def __init__(self):
        self.path = os.path.join(tempfile.mkdtemp(prefix="wgn"), "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(30)
        self.messages = []

    def wait_for(self, needle):
        for message in self.messages:
            if needle in message:
                return message
        while True:
            message = self.sock.recv(4096).decode()
            self.messages.append(message)
            if needle in message:
                return message


def activate(port, notify, args=(), env=()):
    command = ["systemd-socket-activate", "-l", "127.0.0.1:%d" % port, "--fdname=https", "-E", "NOTIFY_SOCKET=" + notify.path]
    for item in env:
        command += ["-E", item]
    process = subprocess.Popen(command + [BINARY, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_until_listening(port)
    return process


async def echo(url):
    async with websockets.connect(url, ssl=insecure_context()) as ws:
        await ws.send("activated")
        assert await ws.recv() == "activated"


@pytest.mark.parametrize("with_file", [False, True])
def test_socket_activation_ready_and_stopping(with_file):
    notify = NotifySocket()
    port = free_port()
    args = []
    if with_file:
        path = os.path.join(tempfile.mkdtemp(prefix="wgc"), "wssgate.yaml")
        with open(path, "w") as f:
            f.write('listeners:\n  public:\n    address: "fd:https"\n    tls:\n      self_signed: true\nroutes:\n  echo:\n    path: /echo\n    kind: echo\n')
        args = ["run", "--config", path]
    gateway = activate(port, notify, args)
    try:
        # systemd-socket-activate starts the program on the first connection, which is served.
        run(echo("wss://127.0.0.1:%d/echo" % port))
        notify.wait_for("READY=1")
        gateway.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert gateway.wait(timeout=30) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
    assert notify.messages.index(next(m for m in notify.messages if "READY=1" in m)) < notify.messages.index(next(m for m in notify.messages if "STOPPING=1" in m))


def test_watchdog_pings_and_status():
    notify = NotifySocket()
    port = free_port()
    gateway = activate(port, notify, env=["WATCHDOG_USEC=400000"])
    try:
        run(echo("wss://127.0.0.1:%d/echo" % port))
        notify.wait_for("READY=1")
        started = time.time()
        notify.wait_for("WATCHDOG=1")
        assert time.time() - started < 2
        assert "websockets" in notify.wait_for("STATUS=")
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)


def test_unit_files_verify():
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    root = tempfile.mkdtemp(prefix="wgr")
    units = os.path.join(root, "usr", "lib", "systemd")
    os.makedirs(units)
    subprocess.run(["cp", "-a", "/lib/systemd/system", units], check=True)  # the stock targets
    for name in ("wssgate.service", "wssgate.socket"):
        shutil.copy(os.path.join(ROOT, "rootfs", "usr", "lib", "systemd", "system", name), os.path.join(units, "system", name))
    os.makedirs(os.path.join(root, "usr", "bin"))
    shutil.copy(BINARY, os.path.join(root, "usr", "bin", "wssgate"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--root=" + root,
         os.path.join(units, "system", "wssgate.socket"), os.path.join(units, "system", "wssgate.service")],
        capture_output=True, text=True,
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "wssgate" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_production_configuration_checks(tmp_path):
    # /etc/wssgate/wssgate.yaml names certificates that exist only on a real machine: with
    # stand-ins it must pass every other check.
    text = open(os.path.join(ROOT, "rootfs", "etc", "wssgate", "wssgate.yaml")).read()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "privkey.pem"), "-out", str(tmp_path / "fullchain.pem"), "-days", "2",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    text = text.replace("/etc/letsencrypt/live/example.com/", str(tmp_path) + "/").replace("/run/wssgate/workers", str(tmp_path / "workers"))
    path = tmp_path / "wssgate.yaml"
    path.write_text(text)
    result = subprocess.run([BINARY, "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert 'address: "fd:https"' in result.stdout
