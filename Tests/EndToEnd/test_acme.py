"""Certificates from ACME (docs/certificates.md) against a real Pebble CA on loopback, with
pebble-challtestsrv as its DNS: the gateway answers TLS-ALPN-01 on its TLS listener and HTTP-01
on its plain one, serves what it gets (checked by clients trusting Pebble's root), renews when
told to without dropping WebSocket connections, survives rejected nonces and failed
challenges while serving the old certificate, and shares its storage with another gateway
without ordering twice."""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import urllib.request

import pytest
import websockets

from conftest import free_port, free_ports, gateway_config, insecure_context, raw_http, run, secret, status_of
from test_admin import Admin

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"
DOMAIN = "gw.test"


def wait_port(port, proc, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "exited early"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("port %d never opened" % port)


class Pebble:
    """Pebble and its DNS (pebble-challtestsrv), each ended by its PID. Pebble validates
    HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port`, where the test's gateway listens;
    every name resolves to 127.0.0.1 unless the test says otherwise."""

    def __init__(self, nonce_reject=40, eab_keys=None):
        for program in (PEBBLE, CHALLTESTSRV):
            if not os.path.exists(program):
                pytest.fail("%s is not installed (make test installs pebble with apt)" % program)
        self.directory = tempfile.mkdtemp(prefix="wgp")
        (self.http_port, self.tls_port, self.acme_port, self.management_port,
         self.dns_port, self.dns_management_port) = free_ports(6)
        # Pebble's own HTTPS certificate, which the gateway trusts through tls.acme.ca_bundle.
        self.ca_bundle = os.path.join(self.directory, "pebble-https.pem")
        key = os.path.join(self.directory, "pebble-https.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", self.ca_bundle, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
        config = os.path.join(self.directory, "pebble.json")
        with open(config, "w") as f:
            json.dump({"pebble": {
                "listenAddress": "127.0.0.1:%d" % self.acme_port,
                "managementListenAddress": "127.0.0.1:%d" % self.management_port,
                "certificate": self.ca_bundle, "privateKey": key,
                "httpPort": self.http_port, "tlsPort": self.tls_port,
                "ocspResponderURL": "", "externalAccountBindingRequired": bool(eab_keys),
                "externalAccountMACKeys": eab_keys or {},
            }}, f)
        self.dns = subprocess.Popen(
            [CHALLTESTSRV, "-dns01", "127.0.0.1:%d" % self.dns_port, "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", "127.0.0.1:%d" % self.dns_management_port, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT=str(nonce_reject), PEBBLE_AUTHZREUSE="0")
        self.log_path = os.path.join(self.directory, "pebble.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([PEBBLE, "-config", config, "-dnsserver", "127.0.0.1:%d" % self.dns_port],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_port(self.dns_management_port, self.dns)
        wait_port(self.acme_port, self.proc)
        wait_port(self.management_port, self.proc)
        self.https = ssl.create_default_context(cafile=self.ca_bundle)

    @property
    def directory_url(self):
        return "https://127.0.0.1:%d/dir" % self.acme_port

    def root(self):
        """Pebble's root CA (made anew at each start): what a client of the gateway trusts."""
        with urllib.request.urlopen("https://127.0.0.1:%d/roots/0" % self.management_port, context=self.https) as r:
            path = os.path.join(self.directory, "root.pem")
            with open(path, "wb") as f:
                f.write(r.read())
            return path

    def resolve(self, host, address):
        """Makes Pebble's DNS answer `address` for `host` (None: back to 127.0.0.1)."""
        if address is None:
            path, body = "/clear-a", {"host": host + "."}
        else:
            path, body = "/add-a", {"host": host + ".", "addresses": [address]}
        request = urllib.request.Request("http://127.0.0.1:%d%s" % (self.dns_management_port, path), data=json.dumps(body).encode(), method="POST")
        urllib.request.urlopen(request).read()

    def stop(self):
        for proc in (self.proc, self.dns):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.log.close()


@pytest.fixture
def pebble():
    server = Pebble()
    yield server
    server.stop()


def acme_config(pebble, storage, admin_socket, tls_port, challenges="tls-alpn-01", plain_port=None, retry="1s", eab=None):
    """A gateway with one TLS listener whose certificate comes from Pebble, an echo route and
    an admin socket; `plain_port` adds a plain listener that redirects to https."""
    config = gateway_config(extra='admin:\n  address: "unix:%s"\n' % admin_socket)
    acme = """    tls:
      acme:
        directory: "%s"
        ca_bundle: "%s"
        email: ops@example.org
        domains: [%s]
        storage: "%s"
        challenges: [%s]
        retry_initial: %s
        retry_max: %s
""" % (pebble.directory_url, pebble.ca_bundle, DOMAIN, storage, challenges, retry, "4s" if retry == "1s" else "1h")
    if eab:
        acme += "        eab_kid: %s\n        eab_hmac_key: %s\n" % eab
    config = config.replace('    address: "127.0.0.1:0"\n    tls:\n      self_signed: true\n', '    address: "127.0.0.1:%d"\n%s' % (tls_port, acme))
    if plain_port is not None:
        config = config.replace("listeners:\n", 'listeners:\n  plain:\n    address: "127.0.0.1:%d"\n    redirect_https: 443\n' % plain_port)
    return config


def served_certificate(port, root=None):
    """The DER certificate the listener shows for SNI gw.test; verified against `root` when given."""
    if root:
        context = ssl.create_default_context(cafile=root)
    else:
        context = insecure_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=DOMAIN) as tls:
            return tls.getpeercert(binary_form=True)


def readyz(port):
    return raw_http("127.0.0.1", port, b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def certificates(admin):
    status, body, _ = admin.call("GET", "/v1/certificates", "/v1/certificates")
    assert status == 200
    return body["certificates"]


def wait_until(predicate, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def new_gateway(gateway_factory, pebble, challenges="tls-alpn-01", plain=False, storage=None, tls_port=None, retry="1s", eab=None):
    storage = storage or os.path.join(tempfile.mkdtemp(prefix="wgs"), "acme")
    admin_socket = os.path.join(tempfile.mkdtemp(prefix="wga"), "admin.sock")
    config = acme_config(pebble, storage, admin_socket, tls_port or pebble.tls_port, challenges,
                         plain_port=pebble.http_port if plain else None, retry=retry, eab=eab)
    gw = gateway_factory(config, listeners=2 if plain else 1)
    return gw, Admin(unix=admin_socket), storage


def test_tls_alpn_01_obtains_serves_renews_and_keeps_connections(gateway_factory, pebble):
    gw, admin, storage = new_gateway(gateway_factory, pebble)
    gw.wait_for_log(r'msg="ACME certificate issued"', timeout=60)
    gw.wait_for_log(r'msg="ACME challenge passed" challenge=tls-alpn-01 domain=gw.test')
    root = pebble.root()
    first = served_certificate(pebble.tls_port, root)  # verified: Pebble issued it for gw.test
    answer = readyz(pebble.tls_port)
    assert status_of(answer) == 200 and answer.endswith(b"\r\n\r\nready\n"), answer
    [entry] = certificates(admin)
    assert entry["state"] == "valid" and entry["issued"] == 1 and entry["domains"] == [DOMAIN]
    # Pebble rejects 40% of good nonces: the gateway retried them.
    issued_line = gw.wait_for_log(r'msg="ACME certificate issued"')
    assert "bad_nonce_retries=0 " not in issued_line, issued_line
    # Keys on disk are the owner's only, and never in the log.
    for path in (os.path.join(storage, "certificates", DOMAIN, "privkey.pem"),
                 os.path.join(storage, "accounts", "127.0.0.1_%d" % pebble.acme_port, "account.key")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        with open(path) as f:
            body = f.read().split("\n")[1]
        assert not any(body in line for line in gw.lines)

    async def renew_with_live_connection():
        context = ssl.create_default_context(cafile=root)
        url = "wss://%s:%d/echo" % (DOMAIN, pebble.tls_port)
        async with websockets.connect(url, ssl=context, host="127.0.0.1", port=pebble.tls_port) as ws:
            await ws.send("before")
            assert await ws.recv() == "before"
            status, body, _ = admin.call("POST", "/v1/certificates/renew", "/v1/certificates/renew")
            assert status == 202 and body == {"listeners": ["main"]}
            await asyncio.get_running_loop().run_in_executor(None, lambda: wait_until(
                lambda: certificates(admin)[0]["issued"] == 2, what="the second certificate"))
            for i in range(20):
                await ws.send("after %d" % i)
                assert await ws.recv() == "after %d" % i
    run(renew_with_live_connection(), timeout=90)
    second = served_certificate(pebble.tls_port, root)
    assert second != first
    # A connection that saw the renewal is fine; the next gateway start uses the stored one.
    gw.stop()
    gw2, admin2, _ = new_gateway(gateway_factory, pebble, storage=storage)
    assert served_certificate(pebble.tls_port, root) == second
    assert status_of(readyz(pebble.tls_port)) == 200
    [entry] = certificates(admin2)
    assert entry["state"] == "valid" and entry["issued"] == 0
    time.sleep(0.5)
    assert not any('msg="ACME order"' in line for line in gw2.lines)


def test_http_01_on_the_plain_listener_before_its_redirect(gateway_factory, pebble):
    gw, admin, _ = new_gateway(gateway_factory, pebble, challenges="http-01", plain=True, tls_port=free_port())
    gw.wait_for_log(r'msg="ACME challenge passed" challenge=http-01 domain=gw.test', timeout=60)
    gw.wait_for_log(r'msg="ACME certificate issued"')
    tls_port = gw.address("main")[1]
    served_certificate(tls_port, pebble.root())
    # Other paths on the plain listener still redirect; unknown tokens are 404, not redirected.
    answer = raw_http("127.0.0.1", pebble.http_port, b"GET /echo HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", tls=False)
    assert status_of(answer) == 308
    answer = raw_http("127.0.0.1", pebble.http_port, b"GET /.well-known/acme-challenge/nope HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", tls=False)
    assert status_of(answer) == 404


def test_an_acme_tls_1_hello_without_a_pending_challenge_is_closed(gateway_factory, pebble):
    gw, admin, _ = new_gateway(gateway_factory, pebble)
    gw.wait_for_log(r'msg="ACME certificate issued"', timeout=60)
    context = insecure_context()
    context.set_alpn_protocols(["acme-tls/1"])
    with socket.create_connection(("127.0.0.1", pebble.tls_port), timeout=5) as sock:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            context.wrap_socket(sock, server_hostname=DOMAIN)
    # Browsers (http/1.1 or h2 offered) are not affected.
    context = ssl.create_default_context(cafile=pebble.root())
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", pebble.tls_port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=DOMAIN) as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"


def test_failed_challenges_back_off_and_keep_the_old_certificate(gateway_factory, pebble):
    gw, admin, _ = new_gateway(gateway_factory, pebble)
    gw.wait_for_log(r'msg="ACME certificate issued"', timeout=60)
    root = pebble.root()
    first = served_certificate(pebble.tls_port, root)
    # The CA now looks for gw.test where nothing listens: every validation fails.
    pebble.resolve(DOMAIN, "127.0.0.2")

    async def renew_failing():
        async with websockets.connect("wss://%s:%d/echo" % (DOMAIN, pebble.tls_port), ssl=ssl.create_default_context(cafile=root),
                                      host="127.0.0.1", port=pebble.tls_port) as ws:
            status, _, _ = admin.call("POST", "/v1/certificates/renew?listener=main", "/v1/certificates/renew")
            assert status == 202
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, lambda: wait_until(lambda: certificates(admin)[0]["failures"] >= 1, what="a failure"))
            except AssertionError as error:
                # What the gateway and the CA were doing, should the failure never come.
                lines = [line for line in gw.lines if "ACME" in line or "acme" in line]
                raise AssertionError("%s; certificates: %s; gateway: %s; pebble: %s" % (
                    error, certificates(admin), lines[-20:], open(pebble.log_path).read()[-3000:]))
            started = time.time()
            await loop.run_in_executor(None, lambda: wait_until(lambda: certificates(admin)[0]["failures"] >= 3, what="retries"))
            elapsed = time.time() - started
            # Two retries with a 1 s first wait doubling: at least 0.5 s + 1 s (jitter halves at most).
            assert elapsed >= 1.4, elapsed
            await ws.send("still here")
            assert await ws.recv() == "still here"
    run(renew_failing(), timeout=90)
    [entry] = certificates(admin)
    assert entry["state"] == "valid" and entry["issued"] == 1
    assert "could not validate gw.test by tls-alpn-01" in entry["last_error"], entry["last_error"]
    assert served_certificate(pebble.tls_port, root) == first
    assert status_of(readyz(pebble.tls_port)) == 200
    gw.wait_for_log(r'msg="ACME order failed".*could not validate gw.test by tls-alpn-01')
    # Backoff doubles from 1 s, is jittered (halved at most) and capped (retry_max 4s): read
    # from the waits the gateway chose, not by counting failures over a stretch of time.
    wait_until(lambda: certificates(admin)[0]["failures"] >= 5, timeout=60, what="five failures")
    waits = [float(wait) for wait in re.findall(r'msg="ACME order failed".*retry_in=([0-9.]+)s', "\n".join(gw.lines))]
    assert len(waits) >= 5, waits
    assert 0.5 <= waits[0] <= 1.0 and all(2.0 <= wait <= 4.0 for wait in waits[2:]), waits
    # The CA can reach the gateway again: the next retry succeeds and failures reset.
    pebble.resolve(DOMAIN, None)
    wait_until(lambda: certificates(admin)[0]["issued"] == 2, timeout=30, what="recovery")
    [entry] = certificates(admin)
    assert entry["failures"] == 0 and entry["last_error"] is None
    assert served_certificate(pebble.tls_port, root) != first


def test_without_a_certificate_readyz_says_so_and_a_self_signed_one_is_served(gateway_factory, pebble):
    pebble.resolve(DOMAIN, "127.0.0.2")
    gw, admin, _ = new_gateway(gateway_factory, pebble)
    gw.wait_for_log(r'msg="ACME order failed"', timeout=60)
    answer = readyz(pebble.tls_port)
    assert status_of(answer) == 200, answer
    assert answer.endswith(b"\r\n\r\ndegraded\n"), answer  # no internals on a public listener
    _, detail, _ = admin.call("GET", "/v1/status", "/v1/status")
    assert detail["degraded"].startswith("listener main serves a self-signed certificate until ACME issues one for gw.test (last error: challengeFailed"), detail
    with pytest.raises(ssl.SSLCertVerificationError):
        served_certificate(pebble.tls_port, pebble.root())
    served_certificate(pebble.tls_port)  # but it serves
    [entry] = certificates(admin)
    assert entry["state"] == "pending" and entry["not_after"] is None
    pebble.resolve(DOMAIN, None)
    wait_until(lambda: certificates(admin)[0]["state"] == "valid", timeout=30, what="the certificate")
    assert readyz(pebble.tls_port).endswith(b"\r\n\r\nready\n")


def test_two_gateways_sharing_storage_order_once(gateway_factory, pebble):
    storage = os.path.join(tempfile.mkdtemp(prefix="wgs"), "acme")
    first, _, _ = new_gateway(gateway_factory, pebble, storage=storage)
    first.wait_for_log(r'msg="ACME order"', timeout=30)
    # The second starts while the first holds the lock, on another port (the CA checks the
    # first). The first is stopped meanwhile, so it cannot have stored the certificate before
    # the second has read the storage (the second would then just load it, and never wait).
    os.kill(first.proc.pid, signal.SIGSTOP)
    try:
        second, admin2, _ = new_gateway(gateway_factory, pebble, storage=storage, tls_port=free_port())
    finally:
        os.kill(first.proc.pid, signal.SIGCONT)
    first.wait_for_log(r'msg="ACME certificate issued"', timeout=60)
    second.wait_for_log(r"another process stored a new certificate; using it", timeout=30)
    assert not any('msg="ACME order"' in line for line in second.lines)
    root = pebble.root()
    assert served_certificate(second.address("main")[1], root) == served_certificate(pebble.tls_port, root)
    assert certificates(admin2)[0]["state"] == "valid"


def test_external_account_binding(gateway_factory):
    """A CA that requires external account binding (Pebble's `externalAccountMACKeys`): with
    the CA-issued key id and HMAC key the account is made and the certificate issued; without
    them the error says what to set; the HMAC key never reaches the log."""
    hmac_key = secret("zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W")
    pebble = Pebble(eab_keys={"kid-1": hmac_key})
    try:
        bare, admin, _ = new_gateway(gateway_factory, pebble, retry="30s")
        bare.wait_for_log(r'msg="ACME order failed".*requires external account binding: set tls.acme.eab_kid and eab_hmac_key', timeout=30)
        assert certificates(admin)[0]["state"] == "pending"
        bare.stop()
        wrong, _, _ = new_gateway(gateway_factory, pebble, retry="30s", eab=("kid-1", "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk"))
        wrong.wait_for_log(r'msg="ACME order failed".*(unauthorized|malformed)', timeout=30)
        wrong.stop()
        gw, admin, _ = new_gateway(gateway_factory, pebble, eab=("kid-1", hmac_key))
        gw.wait_for_log(r'msg="ACME certificate issued"', timeout=60)
        served_certificate(pebble.tls_port, pebble.root())
    finally:
        pebble.stop()


class RenewalInfoServer:
    """ACME Renewal Information (RFC 9773) beside Pebble, which does not offer it in the version
    Debian ships: its own HTTPS (Pebble's certificate) serves Pebble's directory with a
    `renewalInfo` URL added, and answers each renewal-info request with the window the test
    set for the first certificate asked about (later ones get a window a month away). Every
    other request goes to Pebble itself."""

    def __init__(self, pebble, first_window):
        import http.server
        import threading
        server = self
        self.asked = []
        self.first_window = first_window

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/dir":
                    with urllib.request.urlopen(pebble.directory_url, context=pebble.https) as r:
                        directory = json.loads(r.read())
                    directory["renewalInfo"] = "https://127.0.0.1:%d/renewal-info/" % server.port
                    body, extra = directory, {}
                elif self.path.startswith("/renewal-info/"):
                    identifier = self.path[len("/renewal-info/"):]
                    server.asked.append(identifier)
                    if identifier == server.asked[0]:
                        start, end = server.first_window
                    else:
                        start, end = time.time() + 30 * 86400, time.time() + 31 * 86400
                    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
                    body, extra = {"suggestedWindow": {"start": stamp(start), "end": stamp(end)}}, {"Retry-After": "21600"}
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pebble.ca_bundle, os.path.join(pebble.directory, "pebble-https.key"))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def renewal_identifier(der):
    """RFC 9773 §4.1, computed by the `cryptography` package from the certificate itself."""
    import base64
    from cryptography import x509
    certificate = x509.load_der_x509_certificate(der)
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = certificate.serial_number.to_bytes((certificate.serial_number.bit_length() + 8) // 8, "big")
    encode = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    return encode(aki) + "." + encode(serial)


def test_renewal_information_window_decides_when_to_renew(gateway_factory, pebble):
    # The first certificate's window is already open: renew now, naming it in `replaces`.
    ari = RenewalInfoServer(pebble, first_window=(time.time() - 3600, time.time() - 60))
    try:
        storage = os.path.join(tempfile.mkdtemp(prefix="wgs"), "acme")
        admin_socket = os.path.join(tempfile.mkdtemp(prefix="wga"), "admin.sock")
        config = acme_config(pebble, storage, admin_socket, pebble.tls_port).replace(
            pebble.directory_url, "https://127.0.0.1:%d/dir" % ari.port)
        gw = gateway_factory(config)
        admin = Admin(unix=admin_socket)
        wait_until(lambda: certificates(admin)[0]["issued"] == 2, timeout=60, what="the renewal ARI asked for")
        root = pebble.root()
        second = served_certificate(pebble.tls_port, root)
        first_id = ari.asked[0]
        assert gw.wait_for_log(r'msg="ACME order replaces".* replaces=%s' % re.escape(first_id))
        # The gateway asks about the new certificate after storing it, not before saying it
        # was issued: wait for that question rather than race it.
        wait_until(lambda: renewal_identifier(second) in ari.asked[1:], timeout=30,
                   what="the renewal information of the second certificate asked for")
        # The second one's window is a month away: no third order, and the next attempt lies in it.
        def next_attempt_in_window():
            [entry] = certificates(admin)
            assert entry["issued"] == 2 and entry["state"] == "valid"
            next_attempt = time.mktime(time.strptime(entry["next_attempt"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
            return time.time() + 30 * 86400 - 120 <= next_attempt <= time.time() + 31 * 86400 + 120
        wait_until(next_attempt_in_window, timeout=10, what="the next attempt inside the second window")
        time.sleep(1)
        assert certificates(admin)[0]["issued"] == 2, "a third order was made"
    finally:
        ari.stop()


def test_nonces_rejected_without_end_give_up_after_ten_retries(gateway_factory):
    """Pebble told to reject every nonce: each request is retried 10 times with fresh nonces,
    then the order fails with the CA's badNonce problem and waits its backoff; no storm."""
    pebble = Pebble(nonce_reject=100)
    try:
        gw, admin, _ = new_gateway(gateway_factory, pebble, retry="30s")
        line = gw.wait_for_log(r'msg="ACME order failed"', timeout=60)
        assert "badNonce" in line and "retry_in=" in line, line
        [entry] = certificates(admin)
        assert entry["failures"] == 1 and entry["state"] == "pending" and "badNonce" in entry["last_error"]
        # 1 try + 10 retries of the first signed request (newAccount), then nothing until the backoff.
        time.sleep(2)
        with open(pebble.log_path) as f:
            posts = [l for l in f if "sign-me-up" in l and "POST" in l]
        assert len(posts) == 11, len(posts)
        assert certificates(admin)[0]["failures"] == 1
    finally:
        pebble.stop()


def test_acme_configuration_errors_name_the_key(tmp_path):
    from conftest import BINARY
    cases = [
        ("directory: letsencrypt\n        domains: ['*.example.org']", "tls.acme.domains", "DNS-01"),
        ("directory: http://ca.example/dir\n        domains: [a.example]", "tls.acme.directory", "https"),
        ("directory: letsencrypt\n        domains: [a.example]\n        challenges: [dns-01]", "tls.acme.challenges", "dns-01"),
        ("directory: letsencrypt\n        domains: [a.example]\n        eab_kid: kid", "tls.acme.eab_hmac_key", "both"),
        ("directory: letsencrypt\n        domains: [a.example]\n        retry_initial: 100ms", "tls.acme.retry_initial", "at least 1s"),
        ("directory: letsencrypt", "tls.acme.domains", "no domains"),
        ("domains: [a.example]", "tls.acme.directory", ""),
    ]
    for acme, key, words in cases:
        config = tmp_path / "c.yaml"
        config.write_text("listeners:\n  main:\n    address: 127.0.0.1:0\n    tls:\n      acme:\n        %s\nroutes:\n  e:\n    path: /e\n    kind: echo\n" % acme)
        result = subprocess.run([BINARY, "check-config", str(config)], capture_output=True, text=True)
        assert result.returncode == 2, (acme, result.stderr)
        assert key in result.stderr and words in result.stderr, (acme, result.stderr)
    # A CA bundle that does not load, and a storage that cannot be created, stop the start.
    bad_bundle = tmp_path / "bundle.pem"
    bad_bundle.write_text("not a certificate\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for acme, key, words in [
        ("directory: letsencrypt\n        domains: [a.example]\n        ca_bundle: %s" % bad_bundle, "tls.acme.ca_bundle", "no readable PEM"),
        ("directory: letsencrypt\n        domains: [a.example]\n        storage: %s/acme" % blocker, "tls.acme.storage", "is not a folder"),
    ]:
        config = tmp_path / "c.yaml"
        config.write_text("listeners:\n  main:\n    address: 127.0.0.1:0\n    tls:\n      acme:\n        %s\nroutes:\n  e:\n    path: /e\n    kind: echo\n" % acme)
        for command in (["check-config", str(config)], ["run", "--config", str(config)]):
            result = subprocess.run([BINARY, *command], capture_output=True, text=True, timeout=20,
                                    env=dict(os.environ, WSSGATE_ADMIN_ADDRESS="off"))
            assert result.returncode == 2, (command, result.stderr)
            assert key in result.stderr and words in result.stderr, result.stderr
    # The presets name Let's Encrypt; the HMAC key is never printed.
    config = tmp_path / "ok.yaml"
    config.write_text("listeners:\n  main:\n    address: 127.0.0.1:0\n    tls:\n      acme:\n        directory: letsencrypt-staging\n"
                      "        domains: [A.example]\n        eab_kid: kid-1\n        eab_hmac_key: c2VjcmV0LWhtYWMta2V5\nroutes:\n  e:\n    path: /e\n    kind: echo\n")
    result = subprocess.run([BINARY, "check-config", str(config)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "https://acme-staging-v02.api.letsencrypt.org/directory" in result.stdout
    assert "domains: [\"a.example\"]" in result.stdout
    assert "c2VjcmV0LWhtYWMta2V5" not in result.stdout and "[redacted]" in result.stdout
