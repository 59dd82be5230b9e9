"""RFC 6455 / 7692 rules and every session limit, crossed by a real client against the real
binary. Each one runs while a second session is open, which must keep working."""
import os
import struct
import time
import zlib

import websockets

from conftest import ECHO_CONFIG, RawWebSocket, insecure_context, run, with_witness

LIMITED = ECHO_CONFIG + """    max_message_bytes: 4KiB
    close_timeout: 500ms
"""


def raw(gw, **kwargs):
    host, port = gw.address()
    return RawWebSocket(host, port, **kwargs)


def crossing(gw, action):
    return run(with_witness(gw, action))


def test_message_over_limit_is_1009(gateway_factory):
    gw = gateway_factory(LIMITED)

    def oversized():
        ws = raw(gw)
        ws.send_frame(0x2, b"a" * 4096)  # exactly at the limit: fine
        assert ws.recv_frame()[3] == b"a" * 4096
        ws.send_frame(0x2, b"a" * 4097)
        ws.expect_close(1009)
        assert ws.wait_closed()

    crossing(gw, oversized)


def test_fragmented_message_over_limit_is_1009(gateway_factory):
    gw = gateway_factory(LIMITED)

    def oversized():
        ws = raw(gw)
        ws.send_frame(0x1, b"a" * 3000, fin=False)
        ws.send_frame(0x0, b"a" * 3000, fin=True)
        ws.expect_close(1009)

    crossing(gw, oversized)


def test_decompression_bomb_is_1009(gateway_factory):
    gw = gateway_factory(LIMITED)

    def bomb():
        ws = raw(gw, extensions="permessage-deflate; client_no_context_takeover")
        assert "permessage-deflate" in ws.response_head
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        payload = compressor.compress(b"\0" * 1_000_000) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert len(payload) < 4096  # small on the wire, a megabyte inflated
        ws.send_frame(0x2, payload[:-4], rsv1=True)
        ws.expect_close(1009)

    crossing(gw, bomb)


def test_compressed_message_echoes(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    def compressed():
        ws = raw(gw, extensions="permessage-deflate; client_max_window_bits")
        compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
        text = ("compressible " * 100).encode()
        payload = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
        ws.send_frame(0x1, payload[:-4], rsv1=True)
        opcode, fin, rsv1, data = ws.recv_frame()
        assert opcode == 0x1 and fin and rsv1
        assert zlib.decompressobj(-15).decompress(data + b"\x00\x00\xff\xff") == text

    crossing(gw, compressed)


def test_invalid_utf8_is_1007(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    def invalid():
        ws = raw(gw)
        ws.send_frame(0x1, b"valid \xce\xba\xe1\xbd\xb9 then \xed\xa0\x80 surrogate")
        ws.expect_close(1007)

    crossing(gw, invalid)


def test_invalid_utf8_in_first_fragment_fails_fast(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    def invalid():
        ws = raw(gw)
        ws.send_frame(0x1, b"\xff", fin=False)  # the message is not finished, the verdict is in
        ws.expect_close(1007)

    crossing(gw, invalid)


def test_code_point_split_across_fragments_is_fine(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    def split():
        ws = raw(gw)
        ws.send_frame(0x1, "κό".encode()[:1], fin=False)
        ws.send_frame(0x0, "κό".encode()[1:], fin=True)
        assert ws.recv_frame()[3] == "κό".encode()

    crossing(gw, split)


def test_protocol_violations_are_1002(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    violations = [
        ("unmasked frame", lambda ws: ws.send_frame(0x1, b"hi", mask=False)),
        ("reserved bit 2", lambda ws: ws.send_frame(0x1, b"hi", rsv2=True)),
        ("rsv1 without deflate", lambda ws: ws.send_frame(0x1, b"hi", rsv1=True)),
        ("reserved opcode", lambda ws: ws.send_frame(0x3, b"")),
        ("reserved control opcode", lambda ws: ws.send_frame(0xB, b"")),
        ("continuation first", lambda ws: ws.send_frame(0x0, b"x")),
        ("fragmented ping", lambda ws: ws.send_frame(0x9, b"x", fin=False)),
        ("ping over 125 bytes", lambda ws: ws.send_frame(0x9, b"x" * 126)),
        ("new message mid-message", lambda ws: (ws.send_frame(0x1, b"a", fin=False), ws.send_frame(0x1, b"b"))),
        ("close code 1005 on the wire", lambda ws: ws.send_frame(0x8, struct.pack("!H", 1005))),
        ("close code 999", lambda ws: ws.send_frame(0x8, struct.pack("!H", 999))),
        ("close payload of one byte", lambda ws: ws.send_frame(0x8, b"\x03")),
    ]
    for name, send in violations:
        def violate(send=send):
            ws = raw(gw)
            send(ws)
            ws.expect_close(1002)
            ws.close()
        try:
            crossing(gw, violate)
        except AssertionError as error:
            raise AssertionError("%s: %s" % (name, error))


def test_close_reason_must_be_utf8(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    def bad_reason():
        ws = raw(gw)
        ws.send_frame(0x8, struct.pack("!H", 1000) + b"\xff")
        ws.expect_close(1007)

    crossing(gw, bad_reason)


def test_client_close_code_is_echoed(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    def close_4000():
        ws = raw(gw)
        ws.send_frame(0x8, struct.pack("!H", 4000) + b"bye")
        opcode, _, _, payload = ws.recv_frame()
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 4000
        assert ws.wait_closed()  # the server closes TCP first

    crossing(gw, close_4000)


def test_ping_is_answered_with_pong(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    def ping():
        ws = raw(gw)
        ws.send_frame(0x9, b"are you there")
        assert ws.recv_frame() == (0xA, True, False, b"are you there")
        # Control frames may come between fragments.
        ws.send_frame(0x1, b"frag", fin=False)
        ws.send_frame(0x9, b"mid")
        assert ws.recv_frame()[3] == b"mid"
        ws.send_frame(0x0, b"ment", fin=True)
        assert ws.recv_frame()[3] == b"fragment"

    crossing(gw, ping)


def test_unanswered_keepalive_ping_closes_1011(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG + "    ping_interval: 300ms\n    pong_timeout: 300ms\n")

    def silent():
        ws = raw(gw)
        opcode, _, _, _ = ws.recv_frame()
        assert opcode == 0x9  # the gateway asks
        started = time.time()
        ws.expect_close(1011)  # nobody answered
        assert time.time() - started < 3
        assert ws.wait_closed()

    # The witness (the websockets library) answers pings, so it stays.
    crossing(gw, silent)


def test_idle_session_closes_1000(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG + "    idle_timeout: 600ms\n  other:\n    path: /other\n    kind: echo\n")

    def idle():
        ws = raw(gw)
        started = time.time()
        reason = ws.expect_close(1000)
        assert reason == "idle timeout" and 0.5 < time.time() - started < 3

    run(with_witness(gw, idle, path="/other"))


def test_close_handshake_timeout_drops_tcp(gateway_factory):
    gw = gateway_factory(LIMITED)

    def no_answer():
        ws = raw(gw)
        ws.send_frame(0x2, b"a" * 5000)
        while ws.recv_frame()[0] != 0x8:
            pass
        started = time.time()  # we never answer the Close
        assert ws.wait_closed()
        assert time.time() - started < 2.5

    crossing(gw, no_answer)


def test_slow_reader_does_not_grow_the_gateway(gateway_factory):
    """A client that sends but never reads: the gateway stops reading from it once its send
    queue is full, instead of buffering without bound."""
    gw = gateway_factory(ECHO_CONFIG + "    send_queue_bytes: 64KiB\n")

    attempt = 64 << 20

    def flood():
        ws = raw(gw)
        ws.sock.settimeout(3)
        sent = 0
        chunk = os.urandom(65536)
        try:
            while sent < attempt:
                ws.send_frame(0x2, chunk)
                sent += len(chunk)
        except (TimeoutError, OSError):
            pass
        ws.close()
        return sent

    sent = crossing(gw, flood)
    # The gateway pushed back: the client's sends blocked once the kernel's socket buffers (both
    # directions, autotuned to a few MiB each) and the 64 KiB send queue were full.
    print("slow reader: the client got %.1f MiB out before blocking" % (sent / 1048576))
    assert sent < attempt // 2, sent


def test_default_message_limit_is_one_mebibyte(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)

    def at_and_over():
        ws = raw(gw)
        ws.send_frame(0x2, b"m" * (1 << 20))
        assert len(ws.recv_frame()[3]) == 1 << 20
        ws.send_frame(0x2, b"m" * ((1 << 20) + 1))
        ws.expect_close(1009)

    crossing(gw, at_and_over)
