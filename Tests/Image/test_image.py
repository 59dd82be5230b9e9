"""The FROM-scratch image, run with podman and runc: it must be small, become ready, serve
wss://, pass its own health check, and stop cleanly on `podman stop` with every client told
1001 (Going Away)."""
import asyncio
import os
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = os.environ.get("GATEWAY_IMAGE", "localhost/wssgate:latest")


def podman(*args, check=True, timeout=120):
    return subprocess.run([os.path.join(ROOT, "scripts", "container.sh"), "podman", *args],
                          capture_output=True, text=True, check=check, timeout=timeout)


def insecure():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_is_small():
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    print("image size: %.1f MB" % (size / 1e6))
    assert size <= 25_000_000, size


def test_image_serves_and_stops_cleanly():
    name = "wssgate-test-%s" % uuid.uuid4().hex[:8]
    port = free_port()
    podman("run", "-d", "--name", name, "-p", "127.0.0.1:%d:8443" % port, IMAGE)
    try:
        deadline = time.time() + 60
        while True:
            try:
                response = urllib.request.urlopen("https://127.0.0.1:%d/readyz" % port, context=insecure(), timeout=2)
                if response.status == 200:
                    break
            except Exception:
                pass
            assert time.time() < deadline, podman("logs", name, check=False).stderr[-3000:]
            time.sleep(0.3)
        assert podman("healthcheck", "run", name, check=False).returncode == 0

        async def session():
            async with websockets.connect("wss://127.0.0.1:%d/echo" % port, ssl=insecure()) as ws:
                await ws.send("from outside")
                assert await ws.recv() == "from outside"
                stopper = asyncio.ensure_future(asyncio.to_thread(podman, "stop", "-t", "30", name))
                await asyncio.wait_for(ws.wait_closed(), 30)
                await stopper
                return ws.close_code

        assert asyncio.run(session()) == 1001
        state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        assert state == "0", podman("logs", name, check=False).stderr[-3000:]
        logs = podman("logs", name, check=False)
        assert "msg=stopped" in logs.stdout + logs.stderr
    finally:
        podman("rm", "-f", name, check=False)
