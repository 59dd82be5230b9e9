"""JWT authentication on upgrade (HS256, RS256, ES256) with tokens from the Authorization header,
a Sec-WebSocket-Protocol entry, a cookie or a query parameter: valid tokens reach the worker as
claims; expired, not-yet-valid, wrong-audience, wrong-issuer, badly signed, `none` and HS/RS
confused tokens all get 401, never logged; other clients carry on."""
import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time

import jwt
import pytest
import websockets

from conftest import ROOT, gateway_config, insecure_context, raw_http, run, secret, status_of, with_witness
from test_workers import wait_linked

HS_SECRET = secret("hs256-shared-secret-for-tests-0123456789abcdef")


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def make_keys(directory):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key")
    openssl("pkey", "-in", "rsa.key", "-pubout", "-out", "rsa.pub")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.key")
    openssl("pkey", "-in", "ec.key", "-pubout", "-out", "ec.pub")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "other.key")
    for name in os.listdir(directory):
        os.chmod(os.path.join(directory, name), 0o644)
    read = lambda name: open(os.path.join(directory, name)).read()
    return {name: read(name) for name in ("rsa.key", "rsa.pub", "ec.key", "ec.pub", "other.key")}


CONFIG = gateway_config(level="info", routes="""  app:
    path: /app
    kind: worker
    subprotocols: [app.v1]
    worker:
      command: "%(python)s"
      args: ["%(worker)s"]
      instances: 1
    auth:
      hs256_secret: "%(secret)s"
      public_keys: ["%(dir)s/rsa.pub", "%(dir)s/ec.pub"]
      issuer: "https://issuer.test"
      audience: ["wssgate", "other"]
      leeway: 30s
  rsonly:
    path: /rsonly
    kind: echo
    auth:
      public_keys: ["%(dir)s/rsa.pub"]
""")


def claims(**extra):
    now = int(time.time())
    base = {"sub": "user-7", "iss": "https://issuer.test", "aud": "wssgate", "iat": now, "exp": now + 300, "room": "lobby"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(scope="module")
def keys():
    directory = tempfile.mkdtemp(prefix="wgj")
    os.chmod(directory, 0o755)
    return directory, make_keys(directory)


@pytest.fixture
def gateway(gateway_factory, keys):
    directory, _ = keys
    gw = gateway_factory(CONFIG % {"python": sys.executable, "worker": os.path.join(ROOT, "Tests", "EndToEnd", "claims_worker.py"),
                                   "secret": HS_SECRET, "dir": directory})
    wait_linked(gw, 1)
    return gw


def attempt(gw, path, token=None, how="header", offered=None):
    """Upgrades with a token carried one way; returns (status, response head, first message)."""
    headers, subprotocols, url = {}, list(offered or []), gw.url(path)
    if token is not None:
        secret(token)
        if how == "header":
            headers["Authorization"] = "Bearer " + token
        elif how == "protocol":
            subprotocols += ["bearer", "bearer." + token]
        elif how == "cookie":
            headers["Cookie"] = "theme=dark; access_token=" + token
        elif how == "query":
            url += "?access_token=" + token

    async def go():
        try:
            async with websockets.connect(url, ssl=insecure_context(), additional_headers=headers,
                                          subprotocols=subprotocols or None) as ws:
                first = await asyncio.wait_for(ws.recv(), 10) if path == "/app" else None
                return 101, ws.response, ws.subprotocol, first
        except websockets.InvalidStatus as refused:
            return refused.response.status_code, refused.response, None, None

    return run(go())


@pytest.mark.parametrize("algorithm,how", [("HS256", "header"), ("RS256", "protocol"), ("ES256", "cookie"), ("HS256", "query")])
def test_valid_tokens_reach_the_worker_as_claims(gateway, keys, algorithm, how):
    _, material = keys
    key = {"HS256": HS_SECRET, "RS256": material["rsa.key"], "ES256": material["ec.key"]}[algorithm]
    token = jwt.encode(claims(aud=["other", "x"]), key, algorithm=algorithm)
    status, response, subprotocol, first = attempt(gateway, "/app", token, how)
    assert status == 101
    event = json.loads(first)
    assert event["sub"] == "user-7" and event["claims"]["room"] == "lobby" and event["claims"]["aud"] == ["other", "x"]
    if how == "protocol":
        # Answered with the marker the client offered, never with the token entry.
        assert subprotocol == "bearer"
        assert token not in str(response.headers)


def test_the_routes_own_subprotocol_wins_over_the_marker(gateway):
    token = jwt.encode(claims(), HS_SECRET, algorithm="HS256")
    status, _, subprotocol, _ = attempt(gateway, "/app", token, "protocol", offered=["app.v1"])
    assert status == 101 and subprotocol == "app.v1"


def forged(header, payload, key_bytes):
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    signature = hmac.new(key_bytes, signing_input.encode(), hashlib.sha256).digest() if key_bytes is not None else b""
    return signing_input + "." + b64url(signature)


def test_every_bad_token_gets_401_and_others_carry_on(gateway, keys):
    _, material = keys
    now = int(time.time())
    bad = {
        "expired": jwt.encode(claims(exp=now - 120), HS_SECRET, algorithm="HS256"),
        "not yet valid": jwt.encode(claims(nbf=now + 300), HS_SECRET, algorithm="HS256"),
        "wrong audience": jwt.encode(claims(aud="someone-else"), HS_SECRET, algorithm="HS256"),
        "no audience": jwt.encode(claims(aud=None), HS_SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode(claims(iss="https://evil.test"), HS_SECRET, algorithm="HS256"),
        "wrong HS secret": jwt.encode(claims(), "another-secret-that-is-long-enough-0123456789", algorithm="HS256"),
        "wrong RSA key": jwt.encode(claims(), material["other.key"], algorithm="RS256"),
        "alg none": forged({"alg": "none", "typ": "JWT"}, claims(), None),
        "alg None, HS signature": forged({"alg": "None", "typ": "JWT"}, claims(), HS_SECRET.encode()),
        "RS256 header, HS signature": forged({"alg": "RS256", "typ": "JWT"}, claims(), HS_SECRET.encode()),
        "not a JWT": "not-a-jwt",
        "tampered payload": (lambda t: t.split(".")[0] + "." + b64url(json.dumps(claims(sub="admin")).encode()) + "." + t.split(".")[2])(
            jwt.encode(claims(), HS_SECRET, algorithm="HS256")),
    }

    def crossing():
        for name, token in bad.items():
            status, response, _, _ = attempt(gateway, "/app", token, "header")
            assert status == 401, name
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        status, response, _, _ = attempt(gateway, "/app")
        assert status == 401 and response.headers["WWW-Authenticate"] == 'Bearer realm="wssgate"'
        # Within the leeway an expired token still passes.
        assert attempt(gateway, "/app", jwt.encode(claims(exp=now - 10), HS_SECRET, algorithm="HS256"))[0] == 101

    run(with_witness(gateway, crossing))
    for line in gateway.lines:
        for token in bad.values():
            assert token not in line
    assert any('msg="token refused"' in line and "reason=expired" in line for line in gateway.lines)


def test_hs_rs_confusion_is_refused(gateway, keys):
    """The classic attack: sign HS256 with the server's RSA public key as the HMAC secret."""
    _, material = keys
    confused = forged({"alg": "HS256", "typ": "JWT"}, claims(), material["rsa.pub"].encode())
    assert attempt(gateway, "/rsonly", confused)[0] == 401
    assert attempt(gateway, "/rsonly", jwt.encode(claims(), material["rsa.key"], algorithm="RS256"))[0] == 101


@pytest.mark.parametrize("auth,key", [
    ('      public_keys: ["/etc/hostname"]\n', "routes.app.auth.public_keys"),
    ('      hs256_secret: "short"\n', "routes.app.auth.hs256_secret"),
    ('      algorithms: [none]\n      hs256_secret: "%s"\n' % HS_SECRET, "routes.app.auth.algorithms"),
    ('      token_from: [smoke]\n      hs256_secret: "%s"\n' % HS_SECRET, "routes.app.auth.token_from"),
    ('      issuer: "x"\n', "routes.app.auth"),
])
def test_bad_auth_configuration_names_the_key(auth, key):
    directory = tempfile.mkdtemp(prefix="wgj")
    path = os.path.join(directory, "wssgate.yaml")
    with open(path, "w") as f:
        f.write("listeners:\n  main:\n    address: \"127.0.0.1:0\"\nroutes:\n  app:\n    path: /app\n    kind: echo\n    auth:\n" + auth)
    from conftest import BINARY
    result = subprocess.run([BINARY, "run", "--config", path], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "WSSGATE_ADMIN_ADDRESS": "off"})
    assert result.returncode == 2, result
    assert key in result.stderr, result.stderr


def test_keys_from_a_jwks_file(gateway_factory, keys):
    directory, material = keys
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    ec_public = load_pem_private_key(material["ec.key"].encode(), None).public_key()
    rsa_public = load_pem_private_key(material["rsa.key"].encode(), None).public_key()
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_public))
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_public))
    ec_jwk.update(kid="ec-1", alg="ES256", use="sig")
    rsa_jwk.update(kid="rsa-1", alg="RS256", use="sig")
    jwks_path = os.path.join(directory, "jwks.json")
    with open(jwks_path, "w") as f:
        json.dump({"keys": [ec_jwk, rsa_jwk]}, f)
    os.chmod(jwks_path, 0o644)
    gw = gateway_factory("""
listeners:
  main:
    address: "127.0.0.1:0"
    tls:
      self_signed: true
routes:
  echo:
    path: /echo
    kind: echo
    auth:
      jwks_file: %s
""" % jwks_path)
    ok_ec = jwt.encode(claims(), material["ec.key"], algorithm="ES256", headers={"kid": "ec-1"})
    ok_rsa = jwt.encode(claims(), material["rsa.key"], algorithm="RS256", headers={"kid": "rsa-1"})
    assert attempt(gw, "/echo", ok_ec)[0] == 101
    assert attempt(gw, "/echo", ok_rsa)[0] == 101
    wrong_key = jwt.encode(claims(), material["other.key"], algorithm="RS256", headers={"kid": "rsa-1"})
    assert attempt(gw, "/echo", wrong_key)[0] == 401
    hs_with_public = forged({"alg": "HS256", "kid": "rsa-1"}, claims(), material["rsa.pub"].encode())
    assert attempt(gw, "/echo", hs_with_public)[0] == 401


def test_check_config_output_keeps_authentication(gateway_factory, tmp_path):
    """check-config prints `auth` too: run from its output, the route still refuses an
    unauthenticated upgrade (and a token signed with the redacted inline secret), while a
    secret kept in a file is printed as its path and goes on working."""
    from conftest import BINARY, check_round_trip
    secret_file = tmp_path / "secret"
    secret_file.write_text(HS_SECRET + "\n")
    original = tmp_path / "original.yaml"
    original.write_text(gateway_config(level="info", routes="""  inline:
    path: /inline
    kind: echo
    auth:
      hs256_secret: "%s"
  filed:
    path: /filed
    kind: echo
    auth:
      hs256_secret_file: "%s"
      audience: ["wssgate"]
""" % (HS_SECRET, secret_file)))
    printed = check_round_trip(str(original))
    assert printed
    text = open(printed).read()
    assert HS_SECRET not in text
    assert 'hs256_secret: "[redacted]"' in text and 'hs256_secret_file: "%s"' % secret_file in text
    assert text.startswith("# Secrets are shown as")
    gw = gateway_factory(text)
    token = jwt.encode({"sub": "u1", "aud": "wssgate", "exp": int(time.time()) + 60}, HS_SECRET, algorithm="HS256")

    def upgrade(path, token=None):
        auth = "Authorization: Bearer %s\r\n" % token if token else ""
        return status_of(raw_http(*gw.address(), ("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (path, auth)).encode(),
                                  read_timeout=1))

    assert upgrade("/inline") == 401
    assert upgrade("/inline", token) == 401  # the secret is not in the printed file
    assert upgrade("/filed") == 401
    assert upgrade("/filed", token) == 101
