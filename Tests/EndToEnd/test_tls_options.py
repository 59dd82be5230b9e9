"""TLS options: several certificates chosen by SNI, client certificates (required and optional,
the subject passed to workers), a plain listener that redirects to https while answering
/livez, and HSTS."""
import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys

import pytest
import websockets

from conftest import ROOT, raw_http, run, status_of, with_witness
from test_tls import make_chain, openssl
from test_workers import wait_linked


def chains(tmp_path):
    """A localhost chain, an api.test chain, and a client chain (CN client-7) under its own root."""
    made = {}
    for name, san, purpose in (("main", "DNS:localhost,IP:127.0.0.1", "serverAuth"), ("api", "DNS:api.test,DNS:*.api.test", "serverAuth"),
                               ("client", "DNS:client-7", "clientAuth")):
        directory = tmp_path / name
        directory.mkdir()
        os.chmod(str(directory), 0o755)
        made[name] = make_chain(str(directory), "ec", "pkcs8", san=san, purpose=purpose)
        if name == "client":
            # The leaf's subject names the client.
            openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=client-7/O=Tests", "-out", "leaf.csr", cwd=str(directory))
            openssl("x509", "-req", "-in", "leaf.csr", "-CA", "int.pem", "-CAkey", "int.key", "-CAcreateserial", "-days", "2",
                    "-extfile", "leaf.ext", "-out", "leaf.pem", cwd=str(directory))
            with open(os.path.join(str(directory), "fullchain.pem"), "w") as out:
                for part in ("leaf.pem", "int.pem"):
                    out.write(open(os.path.join(str(directory), part)).read())
            with open(os.path.join(str(directory), "ca-bundle.pem"), "w") as out:
                for part in ("int.pem", "root.pem"):
                    out.write(open(os.path.join(str(directory), part)).read())
        for entry in os.listdir(str(directory)):
            os.chmod(os.path.join(str(directory), entry), 0o644)
    os.chmod(str(tmp_path), 0o755)
    return made


def presented(port, server_name, root, client=None):
    """The DNS names of the certificate the gateway presents for `server_name`."""
    context = ssl.create_default_context(cafile=root)
    context.check_hostname = False
    if client:
        context.load_cert_chain(*client)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return [value for kind, value in tls.getpeercert()["subjectAltName"] if kind == "DNS"]


def test_sni_picks_the_certificate(gateway_factory, tmp_path):
    made = chains(tmp_path)
    (main_chain, main_key, main_root), (api_chain, api_key, api_root) = made["main"], made["api"]
    gw = gateway_factory("""
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      certificate: %s
      key: %s
      certificates:
        api:
          certificate: %s
          key: %s
routes:
  echo:
    path: /echo
    kind: echo
""" % (main_chain, main_key, api_chain, api_key))
    _, port = gw.address()
    assert presented(port, "api.test", api_root) == ["api.test", "*.api.test"]
    assert presented(port, "eu.api.test", api_root) == ["api.test", "*.api.test"]
    assert presented(port, "localhost", main_root) == ["localhost"]
    assert presented(port, "unknown.test", main_root) == ["localhost"]


MTLS = """
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      certificate: %(chain)s
      key: %(key)s
      client_certificates: %(mode)s
      client_ca: %(ca)s
routes:
  app:
    path: /app
    kind: worker
    worker:
      command: "%(python)s"
      args: ["%(worker)s"]
      instances: 1
"""


def connect_app(port, root, client=None):
    context = ssl.create_default_context(cafile=root)
    if client:
        context.load_cert_chain(*client)

    async def go():
        async with websockets.connect("wss://localhost:%d/app" % port, ssl=context) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))
    return run(go())


@pytest.mark.parametrize("mode", ["required", "optional"])
def test_client_certificates(gateway_factory, tmp_path, mode):
    made = chains(tmp_path)
    chain, key, root = made["main"]
    client_chain, client_key, _ = made["client"]
    ca = os.path.join(os.path.dirname(client_chain), "ca-bundle.pem")
    gw = gateway_factory(MTLS % {"chain": chain, "key": key, "mode": mode, "ca": ca, "python": sys.executable,
                                 "worker": os.path.join(ROOT, "Tests", "EndToEnd", "claims_worker.py")})
    wait_linked(gw, 1)
    _, port = gw.address()
    event = connect_app(port, root, (client_chain, client_key))
    assert "CN=client-7" in event["client_subject"] and "O=Tests" in event["client_subject"]
    # A certificate from another CA is refused either way.
    stranger_chain, stranger_key, _ = made["api"]
    with pytest.raises((ssl.SSLError, websockets.InvalidMessage, ConnectionError, EOFError, OSError)):
        connect_app(port, root, (stranger_chain, stranger_key))
    if mode == "required":
        with pytest.raises((ssl.SSLError, websockets.InvalidMessage, ConnectionError, EOFError, OSError)):
            connect_app(port, root)
    else:
        assert connect_app(port, root)["client_subject"] is None
    # The gateway carries on.
    assert "CN=client-7" in connect_app(port, root, (client_chain, client_key))["client_subject"]


def test_plain_listener_redirects_to_https_and_hsts(gateway_factory):
    gw = gateway_factory("""
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: [gw.example, localhost]
      hsts: "max-age=63072000; includeSubDomains"
  plain:
    address: "127.0.0.1:0"
    redirect_https: 8443
    redirect_hosts: ["*.cdn.example"]
routes:
  echo:
    path: /echo
    kind: echo
""", listeners=2)
    host, port = gw.address("plain")
    answer = raw_http(host, port, b"GET /echo?x=1 HTTP/1.1\r\nHost: gw.example:8080\r\n\r\n", tls=False, read_timeout=1).decode()
    assert status_of(answer.encode()) == 308 and "Location: https://gw.example:8443/echo?x=1\r\n" in answer
    upgrade = raw_http(host, port, b"GET /echo HTTP/1.1\r\nHost: gw.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", tls=False, read_timeout=1).decode()
    assert status_of(upgrade.encode()) == 308 and "Location: https://gw.example:8443/echo" in upgrade
    extra = raw_http(host, port, b"GET / HTTP/1.1\r\nHost: eu.cdn.example\r\n\r\n", tls=False, read_timeout=1).decode()
    assert status_of(extra.encode()) == 308 and "Location: https://eu.cdn.example:8443/\r\n" in extra
    # Not an open redirect: a host the gateway has no certificate for, or a target that is not a
    # path, sends nobody anywhere.
    for request in [b"GET /echo HTTP/1.1\r\nHost: evil.example\r\n\r\n",
                    b"GET @evil.example/ HTTP/1.1\r\nHost: gw.example\r\n\r\n"]:
        refused = raw_http(host, port, request, tls=False, read_timeout=1)
        assert status_of(refused) in (421, 400) and b"Location" not in refused, refused
    live = raw_http(host, port, b"GET /livez HTTP/1.1\r\nHost: gw.example\r\nConnection: close\r\n\r\n", tls=False, read_timeout=1)
    assert status_of(live) == 200
    assert b"Strict-Transport-Security" not in live
    thost, tport = gw.address("main")
    secure = raw_http(thost, tport, b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", read_timeout=1).decode()
    assert "Strict-Transport-Security: max-age=63072000; includeSubDomains" in secure


@pytest.mark.parametrize("tls_section,key", [
    ("      self_signed: true\n      client_certificates: required\n", "listeners.main.tls.client_ca"),
    ("      self_signed: true\n      client_certificates: sometimes\n      client_ca: /x\n", "listeners.main.tls.client_certificates"),
    ("      self_signed: true\n      client_certificates: required\n      client_ca: /etc/hostname\n", "listeners.main.tls.client_ca"),
    ("      self_signed: true\n    redirect_https: 443\n", "listeners.main.redirect_https"),
    ("      client_certificates: required\n      client_ca: /x\n", "listeners.main.tls: certificates, client certificates, hsts and http2 need"),
    ("      self_signed: true\n      certificates:\n        api:\n          certificate: /nonexistent.pem\n          key: /nonexistent.key\n",
     "listeners.main.tls.certificates.api.certificate"),
])
def test_bad_tls_options_name_the_key(tls_section, key):
    import tempfile
    from conftest import BINARY
    directory = tempfile.mkdtemp(prefix="wgt")
    path = os.path.join(directory, "wssgate.yaml")
    with open(path, "w") as f:
        f.write("listeners:\n  main:\n    address: \"127.0.0.1:0\"\n    tls:\n" + tls_section + "routes:\n  echo:\n    path: /echo\n    kind: echo\n")
    result = subprocess.run([BINARY, "run", "--config", path], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "WSSGATE_ADMIN_ADDRESS": "off"})
    assert result.returncode == 2, result
    assert key in result.stderr, result.stderr
