"""The FROM-scratch image, run as users run it: with podman and runc, and with the real `docker`
CLI against podman's Docker API. It must be small (one executable; uncompressed and as
compressed layers), become ready, serve the demo page, wss:// and the chat, pass its own health
check, check a configuration, and stop cleanly with every client told 1001 (Going Away)."""
import asyncio
import gzip
import io
import json
import os
import socket
import ssl
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
import uuid

import pytest
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


# The budget of issue 17: one static binary without ICU.
MAX_UNCOMPRESSED = 27_000_000
MAX_COMPRESSED = 11_000_000


def test_image_is_small_and_holds_one_executable():
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    folder = tempfile.mkdtemp(prefix="wgi")
    archive = os.path.join(folder, "image.tar")
    podman("save", "--format", "docker-archive", "-o", archive, IMAGE)
    compressed, executables = 0, []
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        for layer in manifest[0]["Layers"]:
            data = outer.extractfile(layer).read()
            compressed += len(gzip.compress(data, compresslevel=6))
            with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                executables += [m.name for m in inner.getmembers() if m.isfile() and m.mode & 0o111]
    shutil.rmtree(folder)
    print("image: %.1f MB uncompressed, %.1f MB as compressed layers, executables: %s" % (size / 1e6, compressed / 1e6, executables))
    assert executables == ["usr/bin/wssgate"], executables
    assert size <= MAX_UNCOMPRESSED, size
    assert compressed <= MAX_COMPRESSED, compressed


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


@pytest.fixture(scope="module")
def docker():
    """The real docker CLI, talking to podman's Docker API (there is no Docker engine here)."""
    folder = tempfile.mkdtemp(prefix="wgd")
    socket_path = os.path.join(folder, "podman.sock")
    service = subprocess.Popen([os.path.join(ROOT, "scripts", "container.sh"), "service", socket_path],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while not os.path.exists(socket_path):
        assert service.poll() is None and time.time() < deadline, "podman system service did not start"
        time.sleep(0.1)
    env = dict(os.environ, DOCKER_HOST="unix://" + socket_path)

    def run(*args, check=True, timeout=120):
        return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout, env=env)
    yield run
    service.terminate()
    service.wait(timeout=30)
    shutil.rmtree(folder, ignore_errors=True)


def test_docker_run_as_users_type_it(docker):
    """`docker run -d -p 127.0.0.1:PORT:8443 IMAGE`: the demo page, a wss:// echo and the chat;
    `docker stop -t 10` (podman's API takes a bare `docker stop` as no grace at all) drains:
    1001 to the clients, exit status 0."""
    port = free_port()
    container = docker("run", "-d", "-p", "127.0.0.1:%d:8443" % port, IMAGE).stdout.strip()
    try:
        deadline = time.time() + 60
        while True:
            try:
                page = urllib.request.urlopen("https://127.0.0.1:%d/" % port, context=insecure(), timeout=2)
                body = page.read()
                break
            except Exception:
                assert time.time() < deadline, docker("logs", container, check=False).stderr[-3000:]
                time.sleep(0.3)
        assert page.status == 200 and b"getWebSocketUrl" in body

        async def session():
            async with websockets.connect("wss://127.0.0.1:%d/echo" % port, ssl=insecure()) as echo, \
                    websockets.connect("wss://127.0.0.1:%d/chat?room=lobby&name=docker" % port, ssl=insecure()) as chat:
                await echo.send("through docker")
                assert await echo.recv() == "through docker"
                assert json.loads(await asyncio.wait_for(chat.recv(), 10)) == {"type": "join", "name": "docker"}
                await chat.send("hello room")
                assert json.loads(await asyncio.wait_for(chat.recv(), 10)) == {"type": "message", "name": "docker", "text": "hello room"}
                stopper = asyncio.ensure_future(asyncio.to_thread(docker, "stop", "-t", "10", container))
                await asyncio.wait_for(echo.wait_closed(), 15)
                await asyncio.wait_for(chat.wait_closed(), 15)
                await stopper
                return echo.close_code, chat.close_code

        assert asyncio.run(session()) == (1001, 1001)
        state = docker("inspect", "--format", "{{.State.ExitCode}}", container).stdout.strip()
        assert state == "0", docker("logs", container, check=False).stderr[-3000:]
    finally:
        docker("rm", "-f", container, check=False)


def test_docker_run_check_config(docker, tmp_path):
    """The shipped /etc/wssgate/wssgate.yaml names certificates the image does not have: without
    them check-config exits 2 naming the key; with them mounted it passes and prints the file."""
    def check_config(*volume):
        # Not --rm: through podman's Docker API, `docker run --rm` reports exit status 0 whatever
        # the container's was; the container is removed here instead.
        name = "wssgate-check-%s" % uuid.uuid4().hex[:8]
        try:
            return docker("run", "--name", name, *volume, IMAGE, "check-config", "/etc/wssgate/wssgate.yaml", check=False)
        finally:
            docker("rm", "-f", name, check=False)

    missing = check_config()
    assert missing.returncode == 2 and "listeners.public.tls.certificate" in missing.stderr, missing.stderr
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "privkey.pem"), "-out", str(tmp_path / "fullchain.pem"), "-days", "2",
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    for name in ("privkey.pem", "fullchain.pem"):
        os.chmod(tmp_path / name, 0o644)
    os.chmod(tmp_path, 0o755)
    mounted = check_config("-v", "%s:/etc/letsencrypt/live/example.com:ro" % tmp_path)
    assert mounted.returncode == 0, mounted.stderr
    assert 'address: "fd:https"' in mounted.stdout and 'args: ["worker", "chat"]' in mounted.stdout
