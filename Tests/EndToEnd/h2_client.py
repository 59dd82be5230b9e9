"""A small blocking HTTP/2 client made with the `h2` library, for RFC 8441 tests: plain requests,
and WebSockets opened as extended CONNECT streams whose frames it writes and reads byte by byte
(masked or not, any opcode or reserved bit), as RawWebSocket does on HTTP/1.1."""

import socket
import ssl
import struct

import h2.config
import h2.connection
import h2.events
import h2.settings
import hyperframe.frame

from conftest import encode_frame


class StreamReset(Exception):
    def __init__(self, code):
        super().__init__("stream reset with error code %d" % code)
        self.code = code


class H2Client:
    def __init__(self, host, port, timeout=5, alpn=("h2",)):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(list(alpn))
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        self.authority = "localhost:%d" % port
        self.negotiated = self.sock.selected_alpn_protocol()
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.streams = {}  # id -> dict(headers, data, ended, reset)
        self.goaway = None
        self._raw = b""
        self.settings_received = False
        if self.negotiated == "h2":
            self.conn.initiate_connection()
            self._flush()
            while not self.settings_received:
                self._pump()

    # -- plumbing -----------------------------------------------------------------------------

    def _flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def _state(self, stream_id):
        return self.streams.setdefault(stream_id, {"headers": None, "data": b"", "ended": False, "reset": None})

    def _pump(self):
        """Reads once from the socket and files the events; EOFError when the server closed."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        if self.goaway is not None:
            # The h2 library ends its connection at the first GOAWAY, but streams below its last
            # stream id go on (RFC 9113 §6.8): their frames are read here.
            return self._after_goaway(chunk)
        for event in self.conn.receive_data(chunk):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings_received = True
            elif isinstance(event, h2.events.ResponseReceived):
                self._state(event.stream_id)["headers"] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self._state(event.stream_id)["data"] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self._state(event.stream_id)["ended"] = True
            elif isinstance(event, h2.events.StreamReset):
                self._state(event.stream_id)["reset"] = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event
        self._flush()

    def _after_goaway(self, chunk):
        self._raw += chunk
        while len(self._raw) >= 9:
            frame, length = hyperframe.frame.Frame.parse_frame_header(memoryview(self._raw[:9]))
            if len(self._raw) < 9 + length:
                return
            frame.parse_body(memoryview(self._raw[9:9 + length]))
            self._raw = self._raw[9 + length:]
            if isinstance(frame, hyperframe.frame.DataFrame):
                state = self._state(frame.stream_id)
                state["data"] += frame.data
                if "END_STREAM" in frame.flags:
                    state["ended"] = True
            elif isinstance(frame, hyperframe.frame.RstStreamFrame):
                self._state(frame.stream_id)["reset"] = frame.error_code
            elif isinstance(frame, hyperframe.frame.PingFrame) and "ACK" not in frame.flags:
                ack = hyperframe.frame.PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"])
                self.sock.sendall(ack.serialize())

    @property
    def connect_protocol_enabled(self):
        return self.conn.remote_settings.enable_connect_protocol == 1

    # -- plain requests -----------------------------------------------------------------------

    def request(self, path, method="GET", headers=()):
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [(":method", method), (":path", path), (":scheme", "https"),
                                           (":authority", self.authority), *headers], end_stream=True)
        self._flush()
        state = self._state(stream_id)
        while not state["ended"] and state["reset"] is None:
            self._pump()
        if state["reset"] is not None:
            raise StreamReset(state["reset"])
        return int(state["headers"][":status"]), state["headers"], state["data"]

    # -- WebSockets over streams (RFC 8441) ---------------------------------------------------

    def open_websocket(self, path, headers=(), protocol="websocket"):
        """Sends the extended CONNECT; returns (stream id, status, response headers)."""
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, [(":method", "CONNECT"), (":protocol", protocol), (":path", path),
                                           (":scheme", "https"), (":authority", self.authority),
                                           ("sec-websocket-version", "13"), *headers])
        self._flush()
        state = self._state(stream_id)
        while state["headers"] is None and state["reset"] is None:
            self._pump()
        if state["reset"] is not None:
            raise StreamReset(state["reset"])
        return stream_id, int(state["headers"][":status"]), state["headers"]

    def send_frame(self, stream_id, opcode, payload=b"", fin=True, rsv1=False, mask=True, end_stream=False):
        self.send_bytes(stream_id, encode_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=mask), end_stream=end_stream)

    def send_bytes(self, stream_id, data, end_stream=False):
        """Writes `data` on the stream within the flow-control windows (reading while they are shut)."""
        view = memoryview(data)
        while True:
            window = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size)
            if window <= 0 and len(view):
                self._pump()
                continue
            part, view = view[:window], view[window:]
            self.conn.send_data(stream_id, bytes(part), end_stream=end_stream and not len(view))
            self._flush()
            if not len(view):
                return

    def end_stream(self, stream_id):
        self.conn.end_stream(stream_id)
        self._flush()

    def _read(self, stream_id, n):
        state = self._state(stream_id)
        while len(state["data"]) < n:
            if state["reset"] is not None:
                raise StreamReset(state["reset"])
            if state["ended"]:
                raise EOFError("stream ended")
            self._pump()
        data, state["data"] = state["data"][:n], state["data"][n:]
        return data

    def recv_frame(self, stream_id):
        """(opcode, fin, rsv1, payload) of the next frame on the stream."""
        b0, b1 = self._read(stream_id, 2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._read(stream_id, 2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._read(stream_id, 8))[0]
        assert not b1 & 0x80, "server frames are never masked"
        return b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40), self._read(stream_id, length)

    def recv_message(self, stream_id):
        """The next data message (pings answered by the caller's choice are skipped here)."""
        opcode, fin, _, payload = self.recv_frame(stream_id)
        while not fin:
            _, fin, _, more = self.recv_frame(stream_id)
            payload += more
        return opcode, payload

    def expect_close(self, stream_id, code):
        """Reads to a Close frame, checks its code, answers it; returns the reason."""
        while True:
            opcode, _, _, payload = self.recv_frame(stream_id)
            if opcode == 0x8:
                got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                assert got == code, "close code %r, expected %r (%r)" % (got, code, payload)
                try:
                    self.send_frame(stream_id, 0x8, payload[:2])
                except Exception:
                    pass
                return payload[2:].decode()

    def wait_stream_closed(self, stream_id):
        """Waits for the server to end (END_STREAM) or reset the stream; returns 'ended' or the reset code."""
        state = self._state(stream_id)
        while not state["ended"] and state["reset"] is None:
            self._pump()
        return "ended" if state["ended"] else state["reset"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
