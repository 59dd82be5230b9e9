"""SIGHUP reloads certificates and configuration without dropping anything; a broken new
certificate or configuration is refused and the running one stays; SIGTERM closes everyone with
1001 and exits 0. With 200 live wss:// connections throughout."""
import asyncio
import hashlib
import os
import signal
import ssl
import subprocess
import tempfile
import time

import websockets

from conftest import insecure_context, run

CONNECTIONS = 200


def make_certificate(directory, name):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(directory, name + ".key"), "-out", os.path.join(directory, name + ".pem"),
                    "-days", "2", "-subj", "/CN=%s" % name, "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)


def install(directory, name):
    for suffix, target in ((".pem", "fullchain.pem"), (".key", "privkey.pem")):
        with open(os.path.join(directory, name + suffix), "rb") as source, open(os.path.join(directory, target + ".tmp"), "wb") as out:
            out.write(source.read())
        os.replace(os.path.join(directory, target + ".tmp"), os.path.join(directory, target))


def presented(port):
    der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate(("127.0.0.1", port)))
    return hashlib.sha256(der).hexdigest()


def fingerprint(path):
    with open(path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def test_sighup_and_sigterm_with_200_live_connections(gateway_factory):
    directory = tempfile.mkdtemp(prefix="wgr")
    for name in ("first", "second"):
        make_certificate(directory, name)
    install(directory, "first")
    config = """
server:
  drain_timeout: 20s
  drain_spread: 1s
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      certificate: %s/fullchain.pem
      key: %s/privkey.pem
routes:
  echo:
    path: /echo
    kind: echo
""" % (directory, directory)
    gw = gateway_factory(config)
    _, port = gw.address()
    assert presented(port) == fingerprint(os.path.join(directory, "first.pem"))

    async def scenario():
        ctx = insecure_context()
        sockets = []
        for _ in range(CONNECTIONS):
            sockets.append(await websockets.connect(gw.url("/echo"), ssl=ctx))

        async def all_echo(tag):
            async def one(i, ws):
                await ws.send("%s %d" % (tag, i))
                assert await asyncio.wait_for(ws.recv(), 10) == "%s %d" % (tag, i)
            await asyncio.gather(*(one(i, ws) for i, ws in enumerate(sockets)))

        await all_echo("start")

        # A new certificate: nobody dropped, new handshakes present it.
        install(directory, "second")
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded", 10)
        await all_echo("after reload")
        assert await asyncio.to_thread(presented, port) == fingerprint(os.path.join(directory, "second.pem"))

        # A broken certificate: refused, the running one stays, nobody dropped.
        with open(os.path.join(directory, "fullchain.pem"), "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"reload refused: a certificate does not load", 10)
        await all_echo("after broken reload")
        assert await asyncio.to_thread(presented, port) == fingerprint(os.path.join(directory, "second.pem"))

        # A configuration change that needs a restart: refused as a whole.
        with open(gw.config_path, "a") as f:
            f.write("  more:\n    path: /more\n    kind: echo\n")
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"reload refused: these changes need a restart.*routes.more", 10)
        await all_echo("after refused configuration")

        # SIGTERM: every client gets 1001, the process exits 0 within the drain timeout.
        started = time.time()
        gw.proc.send_signal(signal.SIGTERM)
        codes = []
        for ws in sockets:
            await asyncio.wait_for(ws.wait_closed(), 25)
            codes.append(ws.close_code)
        return codes, time.time() - started

    codes, elapsed = run(scenario(), timeout=120)
    assert codes == [1001] * CONNECTIONS
    assert gw.proc.wait(timeout=25) == 0
    assert elapsed < 20


def test_sighup_applies_route_limits_to_new_connections(gateway_factory):
    from conftest import ECHO_CONFIG
    gw = gateway_factory(ECHO_CONFIG + "    max_message_bytes: 1KiB\n")

    async def scenario():
        ctx = insecure_context()
        old = await websockets.connect(gw.url("/echo"), ssl=ctx)
        with open(gw.config_path) as f:
            text = f.read()
        with open(gw.config_path, "w") as f:
            f.write(text.replace("max_message_bytes: 1KiB", "max_message_bytes: 4KiB"))
        gw.proc.send_signal(signal.SIGHUP)
        await asyncio.to_thread(gw.wait_for_log, r"msg=reloaded", 10)
        new = await websockets.connect(gw.url("/echo"), ssl=ctx)
        await new.send("n" * 3000)  # allowed by the new limit
        assert len(await new.recv()) == 3000
        await old.send("o" * 3000)  # the old connection keeps the limit it started with
        await old.wait_closed()
        assert old.close_code == 1009
        await new.close()

    run(scenario())
