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


def server_hello_group(port, client_hello):
    """Sends a ClientHello to the gateway and reads the key_share group out of its ServerHello
    (RFC 8446 §4.1.3, §4.2.8): what was agreed, as on the wire."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(client_hello)
        data = b""
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
            chunk = sock.recv(65536)
            assert chunk, "the gateway closed before its ServerHello: %r" % data
            data += chunk
    assert data[0] == 22 and data[5] == 2, "not a ServerHello: %r" % data[:16]
    at = 9 + 2 + 32
    at += 1 + data[at] + 2 + 1
    end = at + 2 + int.from_bytes(data[at:at + 2], "big")
    at += 2
    while at + 4 <= end:
        kind, length = int.from_bytes(data[at:at + 2], "big"), int.from_bytes(data[at + 2:at + 4], "big")
        if kind == 51:  # key_share
            return int.from_bytes(data[at + 4:at + 6], "big")
        at += 4 + length
    raise AssertionError("no key_share in the ServerHello")


def test_post_quantum_key_exchange_for_clients_that_offer_it(gateway_factory):
    """The shipped binary agrees to X25519MLKEM768 with a client that offers it (a ClientHello
    BoringSSL's client wrote with its default groups, as browsers send theirs), and to classic
    X25519 with one that does not (Python's OpenSSL 3.0, whose ClientHello is made live)."""
    gw = gateway_factory(ECHO_CONFIG)
    _, port = gw.address()
    recorded = open(os.path.join(os.path.dirname(__file__), "fixtures", "boringssl-client-hello.bin"), "rb").read()
    assert server_hello_group(port, recorded) == 0x11EC
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    connection = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        connection.do_handshake()
    assert server_hello_group(port, outgoing.read()) == 0x001D
    # Neither disturbs an open session.
    run(with_witness(gw, lambda: server_hello_group(port, recorded)))
