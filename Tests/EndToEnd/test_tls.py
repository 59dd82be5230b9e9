"""TLS as a user brings it: a Let's Encrypt-shaped chain (fullchain.pem = leaf + intermediate,
privkey.pem), RSA and ECDSA, verified by a client that trusts only the root; TLS 1.2 and 1.3
only; ALPN http/1.1; a failed handshake disturbs nobody."""
import os
import socket
import ssl
import subprocess
import sys
import tempfile

import pytest
import websockets

from conftest import ECHO_CONFIG, insecure_context, run, with_witness


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_chain(directory, key_type, key_format, san="DNS:localhost,IP:127.0.0.1", purpose="serverAuth"):
    """root → intermediate → leaf for localhost/127.0.0.1 (or `san`); returns (fullchain, privkey, root)."""
    def key(name, kind):
        if kind == "rsa":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", name, cwd=directory)
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name, cwd=directory)

    key("root.key", "ec")
    openssl("req", "-x509", "-new", "-key", "root.key", "-subj", "/CN=Test Root", "-days", "3", "-out", "root.pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    key("int.key", "ec")
    openssl("req", "-new", "-key", "int.key", "-subj", "/CN=Test Intermediate", "-out", "int.csr", cwd=directory)
    with open(os.path.join(directory, "int.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    openssl("x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key", "-CAcreateserial", "-days", "3",
            "-extfile", "int.ext", "-out", "int.pem", cwd=directory)
    key("leaf.key", key_type)
    openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=localhost", "-out", "leaf.csr", cwd=directory)
    with open(os.path.join(directory, "leaf.ext"), "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=%s\n" % (san, purpose))
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "int.pem", "-CAkey", "int.key", "-CAcreateserial", "-days", "2",
            "-extfile", "leaf.ext", "-out", "leaf.pem", cwd=directory)
    with open(os.path.join(directory, "fullchain.pem"), "w") as out:
        for name in ("leaf.pem", "int.pem"):
            out.write(open(os.path.join(directory, name)).read())
    if key_format == "pkcs8":
        openssl("pkcs8", "-topk8", "-nocrypt", "-in", "leaf.key", "-out", "privkey.pem", cwd=directory)
    elif key_format == "traditional":  # SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY"
        kind = "rsa" if key_type == "rsa" else "ec"
        openssl(kind, "-in", "leaf.key", "-out", "privkey.pem", *(["-traditional"] if kind == "rsa" else []), cwd=directory)
    return os.path.join(directory, "fullchain.pem"), os.path.join(directory, "privkey.pem"), os.path.join(directory, "root.pem")


def config_for(certificate, key, extra=""):
    return """
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      certificate: %s
      key: %s
%sroutes:
  echo:
    path: /echo
    kind: echo
""" % (certificate, key, extra)


@pytest.mark.parametrize("key_type,key_format", [("ec", "pkcs8"), ("ec", "traditional"), ("rsa", "pkcs8"), ("rsa", "traditional")])
def test_lets_encrypt_style_chain_verifies(gateway_factory, key_type, key_format):
    directory = tempfile.mkdtemp(prefix="wgt")
    fullchain, privkey, root = make_chain(directory, key_type, key_format)
    gw = gateway_factory(config_for(fullchain, privkey))
    _, port = gw.address()
    ctx = ssl.create_default_context(cafile=root)  # trusts only the root: the intermediate must be served

    async def echo():
        async with websockets.connect("wss://localhost:%d/echo" % port, ssl=ctx) as ws:
            await ws.send("chain ok")
            assert await ws.recv() == "chain ok"

    run(echo())
    with socket.create_connection(("127.0.0.1", port)) as sock:
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
            assert len(tls.getpeercert(binary_form=False)["subjectAltName"]) == 2


def handshake(port, **options):
    ctx = insecure_context()
    if "maximum" in options:
        ctx.maximum_version = options["maximum"]
    if "minimum" in options:
        ctx.minimum_version = options["minimum"]
    if "ciphers" in options:
        ctx.set_ciphers(options["ciphers"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.version(), tls.cipher()[0]


def test_tls_versions_and_ciphers(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    _, port = gw.address()
    assert handshake(port, maximum=ssl.TLSVersion.TLSv1_2)[0] == "TLSv1.2"
    assert handshake(port, minimum=ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"
    version, cipher = handshake(port, maximum=ssl.TLSVersion.TLSv1_2)
    assert "GCM" in cipher or "CHACHA20" in cipher

    def refused(**options):
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            handshake(port, **options)

    # Old versions and CBC/SHA-1 suites are refused; others are not disturbed.
    run(with_witness(gw, lambda: refused(maximum=ssl.TLSVersion.TLSv1_1, ciphers="ALL:@SECLEVEL=0")))
    run(with_witness(gw, lambda: refused(maximum=ssl.TLSVersion.TLSv1_2, ciphers="AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA")))
    # A client speaking plain HTTP to the TLS port fails its handshake and is dropped.
    def plain_http():
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            data = sock.recv(100)
            return data
    assert not run(with_witness(gw, plain_http)).startswith(b"HTTP/1.1 200")


def test_tls_13_only_listener(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG.replace("self_signed: true", "self_signed: true\n      min_version: \"1.3\""))
    _, port = gw.address()
    assert handshake(port)[0] == "TLSv1.3"
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(port, maximum=ssl.TLSVersion.TLSv1_2)


@pytest.mark.parametrize("key_type", ["ec", "rsa"])
def test_sslyze_finds_the_mozilla_intermediate_profile_met(gateway_factory, tmp_path, key_type):
    """sslyze scans the listener and checks it against Mozilla's "intermediate" configuration;
    the test root is handed to it, so the certificate's own trust is checked too."""
    directory = str(tmp_path)
    os.chmod(directory, 0o755)
    fullchain, key, root = make_chain(directory, key_type, "pkcs8")
    for name in os.listdir(directory):
        os.chmod(os.path.join(directory, name), 0o644)
    gw = gateway_factory(config_for(fullchain, key))
    _, port = gw.address()
    result = subprocess.run(
        [sys.executable, "-m", "sslyze", "--mozilla_config=intermediate", "--certinfo_ca_file=" + root,
         "localhost:%d{127.0.0.1}" % port],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and "OK - Compliant" in result.stdout, result.stdout[-3000:]
