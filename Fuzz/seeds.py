#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target under Fuzz/Corpus/<target>/seed-*: real
ClientHellos, the requests and frames the end-to-end suite sends (good and bad), each worker
frame type, RESP3 replies, configurations, ACME documents, tokens. Run again after a change of
format; inputs named regression-* (crashes once found) are kept as they are.

    python3 Fuzz/seeds.py
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import ssl
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")


def write(target, items):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.startswith("seed-"):
            os.remove(os.path.join(folder, name))
    for index, data in enumerate(items):
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(folder, "seed-%03d" % index), "wb") as f:
            f.write(data)


# --- TLS ClientHello --------------------------------------------------------------------------

def client_hello(server_name=None, alpn=None, maximum=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(alpn)
    if maximum:
        context.maximum_version = maximum
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    connection = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        connection.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def split_records(hello, at):
    """The same handshake message in two TLS records."""
    body = hello[5:]
    first, second = body[:at], body[at:]
    return (hello[:3] + struct.pack(">H", len(first)) + first
            + hello[:3] + struct.pack(">H", len(second)) + second)


hellos = [
    client_hello("example.com", ["http/1.1"]),
    client_hello("gateway.example.org", ["acme-tls/1"]),
    client_hello("localhost", ["h2", "http/1.1"]),
    client_hello(None, None),
    client_hello("example.com", ["http/1.1"], ssl.TLSVersion.TLSv1_2),
]
hellos += [split_records(hellos[0], 40), hellos[1][:60], b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
           b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x03\x48\x01"]
write("client-hello", hellos)


# --- WebSocket frames -------------------------------------------------------------------------

def frame(opcode, payload=b"", fin=True, mask=b"\x01\x02\x03\x04", rsv1=False, length_form=None):
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    form = length_form or ("short" if n < 126 else "16" if n <= 0xFFFF else "64")
    bit = 0x80 if mask else 0
    if form == "short":
        head = bytes([first, bit | n])
    elif form == "16":
        head = bytes([first, bit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([first, bit | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


def deflated(text):
    compressor = zlib.compressobj(wbits=-15)
    data = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]  # RFC 7692: without the 00 00 ff ff tail


frames = [
    frame(1, b"hello"),
    frame(2, bytes(range(200))),
    frame(1, b"a" * 300, length_form="16"),
    frame(1, b"x" * 5, length_form="64"),
    frame(1, b"unmasked", mask=None),
    frame(1, b"frag", fin=False) + frame(0, b"ment"),
    frame(9, b"ping"),
    frame(10, b"pong"),
    frame(8, close_payload(1000, b"bye")),
    frame(9, b"p" * 126),  # a control frame over 125 bytes
    frame(9, b"x", fin=False),  # a fragmented control frame
    bytes([0x81, 0xFF]) + struct.pack(">Q", 1 << 63) + b"\x00\x00\x00\x00",
    bytes([0x82, 0xFF]) + struct.pack(">Q", 1 << 40) + b"\x00\x00\x00\x00",
    frame(1, deflated(b"compressed hello"), rsv1=True),
    frame(3, b"reserved opcode"),
]
write("websocket-frames", frames)


# --- A session: option byte, read size byte, then the client's bytes --------------------------

def session(options, read_size, *parts):
    return bytes([options, read_size]) + b"".join(parts)


bad_utf8 = "κόσμε".encode() + b"\xed\xa0\x80" + b"more"
sessions = [
    session(0, 0, frame(1, b"hello"), frame(2, b"\x00\x01"), frame(8, close_payload(1000))),
    session(0, 7, frame(1, "héllo wörld".encode()), frame(9, b"ping"), frame(8, close_payload(1001, b"going"))),
    session(0, 0, frame(1, "κό".encode(), fin=False), frame(9, b"mid"), frame(0, "σμε".encode())),
    session(0, 3, frame(1, bad_utf8 * 20)),
    session(0, 0, frame(1, b"a" * 70000, length_form="64")),
    session(2, 0, frame(2, b"b" * 400)),  # over the small limit: 1009
    session(0, 0, frame(1, b"x", mask=None)),  # an unmasked client frame: 1002
    session(0, 0, frame(8, b"\x03")),  # a one-byte close payload
    session(0, 0, frame(8, close_payload(1005))),  # a code that may not be sent
    session(0, 0, frame(8, close_payload(4000, b"\xff"))),  # a reason that is not UTF-8
    session(0, 0, frame(0, b"continuation with nothing to continue")),
    session(0, 0, frame(1, b"first", fin=False), frame(1, b"second")),
    session(1, 0, frame(1, deflated(b"compressed hello hello hello"), rsv1=True), frame(8, close_payload(1000))),
    session(5, 11, frame(1, deflated(b"no context takeover"), rsv1=True),
            frame(1, deflated(b"again"), rsv1=True)),
    session(1, 0, frame(1, b"\xff\xff\xff\xff", rsv1=True)),  # not deflate data
    session(3, 0, frame(2, deflated(b"z" * 5000), rsv1=True)),  # inflates past the limit
    session(0, 0, frame(1, b"rsv2", mask=b"\x00\x00\x00\x00")[:0] + bytes([0xA1, 0x80, 0, 0, 0, 0])),
    session(8, 0, *[frame(1, b"m")] * 30),  # over the message rate
    session(0, 1, frame(10, b"unsolicited pong"), frame(1, b"after")),
]
write("websocket-session", sessions)


# --- HTTP: read size byte, then requests ------------------------------------------------------

UPGRADE = ("GET /echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


def http(read_size, text, tail=b""):
    return bytes([read_size]) + text.encode() + tail


requests = [
    http(0, "GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    http(0, "GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\nGET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    http(5, "GET /wssgate.js HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    http(0, "HEAD / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    http(0, "GET /../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    http(0, "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    http(0, "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"),
    http(0, "POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    http(0, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Long: " + "a" * 3000 + "\r\n\r\n"),
    http(0, "GET /" + "a" * 9000 + " HTTP/1.1\r\n\r\n"),
    http(0, "GET / HTTP/1.0\r\n\r\n"),
    http(0, "BREW /coffee HTCPCP/1.0\r\n\r\n"),
    http(0, "GET /livez HTTP/1.1\r\nHost: localhost\r\n"),  # never finished: 408
    http(0, UPGRADE + "\r\n", frame(1, b"hello") + frame(8, close_payload(1000))),
    http(9, UPGRADE + "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
         frame(1, deflated(b"hello compressed"), rsv1=True)),
    http(0, UPGRADE.replace("Version: 13", "Version: 8") + "\r\n"),
    http(0, UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "") + "\r\n"),
    http(0, UPGRADE.replace("Key: dGhlIHNhbXBsZSBub25jZQ==", "Key: short") + "\r\n"),
    http(0, UPGRADE.replace("GET /echo", "POST /echo") + "\r\n"),
    http(0, UPGRADE.replace("GET /echo", "GET /nowhere") + "\r\n"),
    http(0, UPGRADE + "Origin: https://elsewhere.example\r\nSec-WebSocket-Protocol: chat, bearer.abc\r\n\r\n"),
    http(0, UPGRADE + "\r\n", frame(1, b"x" * 5000, length_form="16")),  # over the route's 4 KiB
    http(0, "GET /echo?x=%ZZ HTTP/1.1\r\nHost: [::1\r\n\r\n"),
    http(0, "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
]
HUB = UPGRADE.replace("GET /echo", "GET /hub")


def hub(*commands, read_size=0):
    return http(read_size, HUB + "\r\n", b"".join(frame(1, json.dumps(c).encode() if not isinstance(c, bytes) else c)
                                                  for c in commands))


requests += [
    hub({"op": "subscribe", "topic": "room.a", "id": 1},
        {"op": "publish", "topic": "room.a", "data": {"score": [2, 1]}, "id": "p1"},
        {"op": "unsubscribe", "topic": "room.a", "id": 2}),
    hub({"op": "publish", "topic": "room.b", "data": "first", "id": 1},
        {"op": "subscribe", "topic": "room.b", "since": {"offset": 0, "epoch": "stale"}, "id": 2},
        {"op": "subscribe", "topic": "room.*", "id": 3}, read_size=13),
    hub({"op": "publish", "topic": "other.x", "data": 1, "id": 1}, {"op": "jump", "id": [1, {"a": None}]},
        {"op": "subscribe"}, b"{not json", b"[" * 600 + b"]" * 600, b"\"\\ud800\""),
    hub({"op": "subscribe", "topic": "room.c", "since": {"offset": 18446744073709551615, "epoch": ""}, "id": 1e308},
        {"op": "publish", "topic": "room.c", "data": "x" * 5000}),
]
write("http-edge", requests)


# --- Worker protocol frames -------------------------------------------------------------------

def s16(text):
    data = text.encode()
    return struct.pack(">H", len(data)) + data


def wframe(kind, body):
    return struct.pack(">IB", len(body) + 1, kind) + body


MAGIC = struct.pack(">I", 0x57534757)
worker = [
    wframe(0x01, MAGIC + struct.pack(">HHI", 1, 1, 1 << 20) + s16("wssgate 1.0")),
    wframe(0x02, MAGIC + struct.pack(">HII", 1, 1 << 20, 64) + s16("chat worker")),
    wframe(0x10, struct.pack(">QBH", 7, 3, 2) + s16(":path") + s16("/chat?room=a") + s16("origin") + s16("https://x")),
    wframe(0x11, struct.pack(">QB", 7, 1) + "héllo".encode()),
    wframe(0x12, struct.pack(">QH", 7, 1001) + b"going away"),
    wframe(0x13, struct.pack(">QBQ", 7, 1, 42) + s16("e1") + struct.pack(">I", 3) + b"room.a"),
    wframe(0x14, struct.pack(">IBQ", 9, 2, 43) + s16("e1")),
    wframe(0x20, struct.pack(">Q", 7)),
    wframe(0x21, struct.pack(">QH", 7, 403) + b"forbidden"),
    wframe(0x22, struct.pack(">QB", 7, 2) + bytes(range(16))),
    wframe(0x23, struct.pack(">QH", 7, 1000) + b"done"),
    wframe(0x24, struct.pack(">Q", 7) + b"room.a"),
    wframe(0x25, struct.pack(">Q", 7) + b"room.a"),
    wframe(0x26, struct.pack(">B", 1) + s16("room.a") + b"to everyone"),
    wframe(0x27, struct.pack(">QII", 7, 16, 65536)),
    wframe(0x28, struct.pack(">QQ", 7, 40) + s16("e1") + b"room.a"),
    wframe(0x29, struct.pack(">IB", 9, 1) + s16("room.a") + b"kept"),
    wframe(0x21, struct.pack(">QH", 7, 200)),  # a reject that is not 4xx/5xx
    wframe(0x7F, b""),  # an unknown type
    struct.pack(">I", 1 << 20) + b"\x11",  # over the limit
    struct.pack(">I", 0),  # no type
    wframe(0x11, struct.pack(">QB", 7, 3)),  # an unknown message kind
    wframe(0x24, struct.pack(">Q", 7) + b"\xff\xfe"),  # a topic that is not UTF-8
]
worker = [bytes([0]) + b"".join(worker[:3])] + [bytes([3]) + w for w in worker]
write("worker-frames", worker)


# --- RESP3 ------------------------------------------------------------------------------------

resp = [
    b"+OK\r\n", b"-ERR unknown command\r\n", b":1000\r\n", b"$5\r\nhello\r\n", b"$-1\r\n",
    b"*3\r\n$9\r\nsubscribe\r\n$4\r\nroom\r\n:1\r\n",
    b">3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$5\r\nhello\r\n",
    b"%2\r\n+a\r\n:1\r\n+b\r\n#t\r\n", b"~2\r\n+x\r\n+y\r\n", b"_\r\n", b",3.14\r\n", b",nan\r\n", b",-inf\r\n",
    b"(3492890328409238509324850943850943825024385\r\n", b"!21\r\nSYNTAX invalid syntax\r\n",
    b"=15\r\ntxt:Some string\r\n", b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n$1\r\na\r\n",
    b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", b"$99999999\r\n", b"*99999999\r\n",
    b"$3\r\nabcXY", b"+" + b"a" * 300 + b"\r\n", b"|0\r\n" * 50 + b"+deep\r\n",
    b"*2\r\n$1\r\nx\r\n", b"#x\r\n", b":12a\r\n",
]
write("resp", [bytes([n % 5]) + r for n, r in enumerate(resp)])


# --- Configuration files ----------------------------------------------------------------------

here = os.path.dirname(os.path.abspath(__file__))
configurations = [open(os.path.join(here, "..", "rootfs", "etc", "wssgate", "wssgate.yaml")).read()]
for name in sorted(os.listdir(os.path.join(here, "..", "docs", "examples"))) if os.path.isdir(
        os.path.join(here, "..", "docs", "examples")) else []:
    if name.endswith((".yaml", ".yml")):
        configurations.append(open(os.path.join(here, "..", "docs", "examples", name)).read())
configurations += [
    'listeners:\n  main:\n    address: "127.0.0.1:8080"\nroutes:\n  echo:\n    path: /echo\n    kind: echo\n',
    'listeners:\n  main:\n    address: "127.0.0.1:8080"\nroutes:\n  hub:\n    path: /hub\n    kind: hub\n'
    '    hub:\n      subscribe: ["*"]\n      publish: ["room.*"]\n      history:\n        size: 100\n        ttl: 5m\n',
    'listeners:\n  main:\n    address: "127.0.0.1:8080"\nroutes:\n  p:\n    path: /p\n    kind: proxy\n'
    '    proxy:\n      upstream: "ws://127.0.0.1:9000/"\n    max_message_bytes: 64KiB\n',
    'listeners:\n  main:\n    address: "127.0.0.1:8080"\nhttp:\n  max_header_bytes: 8KiB\n  header_timeout: 10s\n'
    'routes:\n  echo:\n    path: /echo\n    kind: echo\n    compression:\n      enabled: false\n',
    'listeners: &a\n  main: *a\n', 'routes: [1, 2\n', 'a: !!binary aGVsbG8=\n', '{"listeners": {}}\n',
    'listeners:\n  main:\n    address: "127.0.0.1:99999"\nroutes: {}\n', '\t- tab\n',
    'listeners:\n  main:\n    address: "unix:/tmp/x.sock"\nroutes:\n  e:\n    path: /e\n    kind: echo\n'
    '    max_message_bytes: 1TiB\n',
]
write("configuration", configurations)


# --- ACME documents: a choice byte, then the body ---------------------------------------------

acme = [
    (0, {"newNonce": "https://a/nonce", "newAccount": "https://a/acct", "newOrder": "https://a/order",
         "renewalInfo": "https://a/ari", "meta": {"termsOfService": "https://a/tos", "externalAccountRequired": True}}),
    (1, {"status": "pending", "identifiers": [{"type": "dns", "value": "example.com"}],
         "authorizations": ["https://a/authz/1"], "finalize": "https://a/finalize", "expires": "2030-01-01T00:00:00Z"}),
    (2, {"status": "valid", "identifier": {"type": "dns", "value": "example.com"}, "wildcard": False,
         "challenges": [{"type": "http-01", "url": "https://a/chall/1", "status": "valid", "token": "tok"}]}),
    (3, {"type": "tls-alpn-01", "url": "https://a/chall/2", "status": "invalid",
         "error": {"type": "urn:ietf:params:acme:error:connection", "detail": "refused", "status": 400}}),
    (4, {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "no",
         "subproblems": [{"type": "urn:ietf:params:acme:error:caa", "detail": "caa",
                          "subproblems": [{"detail": "deeper"}]}]}),
    (5, {"suggestedWindow": {"start": "2030-01-02T04:00:00Z", "end": "2030-01-03T04:00:00.123+02:00"},
         "explanationURL": "https://a/why"}),
]
acme = [bytes([choice]) + json.dumps(body).encode() for choice, body in acme]
acme += [b"\x06Sun, 06 Nov 1994 08:49:37 GMT", b"\x06120", b"\x06-5", b"\x062030-01-02T04:00:00Z",
         b"\x04{\"detail\": 5}", b"\x01[]", b"\x00{", b"\x04" + b"[" * 100 + b"]" * 100]
write("acme", acme)


# --- Tokens -----------------------------------------------------------------------------------

SECRET = b"wssgate-fuzz-secret-of-at-least-32-bytes"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(header, claims, key=SECRET):
    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(mac)


good = {"iss": "wssgate-fuzz", "aud": "fuzz", "sub": "alice", "exp": 1900000000}
tokens = [
    token({"alg": "HS256", "typ": "JWT"}, good),
    token({"alg": "HS256"}, dict(good, aud=["other", "fuzz"], nbf=1700000000)),
    token({"alg": "HS256"}, dict(good, exp=1700000000)),  # expired
    token({"alg": "HS256"}, dict(good, nbf=1900000000)),  # not yet valid
    token({"alg": "HS256"}, dict(good, iss="someone else")),
    token({"alg": "HS256"}, good, key=b"another secret of at least 32 bytes!!"),
    token({"alg": "none"}, good).rsplit(".", 1)[0] + ".",
    token({"alg": "RS256"}, good),
    token({"alg": "ES256", "kid": "x"}, good),
    "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9", token({"alg": "HS256"}, "not an object"),
]
write("jwt", tokens)


# --- Percent decoding -------------------------------------------------------------------------

write("percent-decoding", [
    "room=lobby&name=ann", "a%20b+c", "%e2%82%ac", "%E2%82%AC", "%", "%4", "%zz", "%+f", "%-1",
    "a=b=c&&d", "x=%F0%9F%98%80&y", "%C3%28", "/static/%2e%2e/secret", "+++", "access_token=abc.def.ghi",
])

# --- PROXY protocol ---------------------------------------------------------------------------

def proxy_v2(command=1, family=0x11, body=b""):
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20 | command, family]) + struct.pack(">H", len(body)) + body)


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


INET = bytes([192, 0, 2, 7, 198, 51, 100, 1]) + struct.pack(">HH", 56324, 443)
INET6 = bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack(">HH", 80, 443)
with_crc = proxy_v2(body=INET + b"\x03\x00\x04" + bytes(4))
with_crc = with_crc[:-4] + struct.pack(">I", crc32c(with_crc))
write("proxy-protocol", [
    "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "PROXY TCP6 2001:db8::7 2001:db8::1 56324 443\r\n",
    "PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY ", "GET / HTTP/1.1\r\n\r\n",
    proxy_v2(body=INET) + b"\x16\x03\x01\x00\x05hello",
    proxy_v2(family=0x21, body=INET6),
    proxy_v2(command=0, family=0, body=b""),
    proxy_v2(family=0x31, body=bytes(216)),
    proxy_v2(body=INET + b"\x02\x00\x0bexample.org\x05\x00\x03abc\x04\x00\x00"),
    proxy_v2(body=INET + b"\x20\x00\x0a\x01\x00\x00\x00\x00\x21\x00\x02v3"),
    proxy_v2(body=INET + b"\xea\x00\x05\x01vpce"),
    with_crc,
    proxy_v2(family=0x12, body=INET), proxy_v2(body=INET[:8]),
])
print("seeds written under", ROOT)
