"""A worker written from docs/worker-protocol.md alone, that records everything the gateway
sends and does only what a test tells it: the regression tests of the protocol's promises
(closed reasons, credit, frame limits, refusals of a worker's mistakes, backoff)."""
import asyncio
import os
import struct
import tempfile
import threading
import time

MAGIC = 0x57534757
HELLO, HELLO_ACK = 0x01, 0x02
OPEN, MESSAGE, CLOSED = 0x10, 0x11, 0x12
ACCEPT, REJECT, SEND, CLOSE, SUBSCRIBE, UNSUBSCRIBE, PUBLISH, CREDIT = range(0x20, 0x28)


def frame(frame_type, body=b""):
    return struct.pack("!IB", 1 + len(body), frame_type) + body


def str16(text):
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("!H", len(data)) + data


class DocWorker:
    """`max_frame` and `credit` go into the hello_ack; with `return_credit` off the worker
    never returns credit on its own (a test does, with `send_frame`). `after_hello`: bytes
    written right after each hello_ack (a worker that breaks the protocol at once)."""

    def __init__(self, max_frame=1 << 24, credit=1 << 16, return_credit=True, after_hello=b""):
        self.max_frame = max_frame
        self.credit = credit
        self.return_credit = return_credit
        self.after_hello = after_hello
        self.path = os.path.join(tempfile.mkdtemp(prefix="wgd"), "doc.sock")
        self.events = []  # ("open", id, flags, fields) / ("message", id, kind, payload) / ("closed", id, code, reason)
        self.link_times = []  # when each link's hello arrived
        self.links_ended = 0
        self.largest_frame = 0
        self.violations = []  # what the gateway did against the document
        self._writers = {}  # connection id → the writer of its link
        self._all = []
        self._lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(5)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def main():
            old = os.umask(0o177)
            server = await asyncio.start_unix_server(self._link, path=self.path)
            os.umask(old)
            ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())

    async def _read(self, reader):
        (length,) = struct.unpack("!I", await reader.readexactly(4))
        with self._lock:
            self.largest_frame = max(self.largest_frame, length)
            if length > self.max_frame:
                self.violations.append("frame of %d bytes over the announced %d" % (length, self.max_frame))
        body = await reader.readexactly(length)
        return body[0], body[1:]

    async def _link(self, reader, writer):
        try:
            kind, _ = await self._read(reader)
            assert kind == HELLO
            with self._lock:
                self.link_times.append(time.time())
                self._all.append(writer)
            writer.write(frame(HELLO_ACK, struct.pack("!IHII", MAGIC, 1, self.max_frame, self.credit) + str16("doc")))
            writer.write(self.after_hello)
            await writer.drain()
            while True:
                kind, body = await self._read(reader)
                if kind == OPEN:
                    connection, flags, count = struct.unpack("!QBH", body[:11])
                    fields, offset = [], 11
                    for _ in range(count):
                        pair = []
                        for _ in range(2):
                            (size,) = struct.unpack("!H", body[offset:offset + 2])
                            pair.append(body[offset + 2:offset + 2 + size].decode())
                            offset += 2 + size
                        fields.append(tuple(pair))
                    with self._lock:
                        self._writers[connection] = writer
                        self.events.append(("open", connection, flags, fields))
                elif kind == MESSAGE:
                    connection, message_kind = struct.unpack("!QB", body[:9])
                    payload = body[9:]
                    with self._lock:
                        self.events.append(("message", connection, message_kind, payload))
                    if self.return_credit:
                        writer.write(frame(CREDIT, struct.pack("!QII", connection, 1, max(len(payload), 1))))
                        await writer.drain()
                elif kind == CLOSED:
                    connection, code = struct.unpack("!QH", body[:10])
                    with self._lock:
                        self.events.append(("closed", connection, code, body[10:].decode()))
                else:
                    with self._lock:
                        self.violations.append("gateway sent frame type 0x%02x" % kind)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with self._lock:
                self.links_ended += 1
            writer.close()

    # What the test reads

    def of_kind(self, kind):
        with self._lock:
            return [event for event in self.events if event[0] == kind]

    def wait_for(self, predicate, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                found = [event for event in self.events if predicate(event)]
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError("no such event; saw %r" % (self.events[-20:],))

    def opened(self, timeout=10):
        """The id of the newest connection opened here."""
        return self.wait_for(lambda event: event[0] == "open", timeout)[-1][1]

    # What the test makes the worker do

    def send_frame(self, connection, data):
        """Writes raw frame bytes on the link that carries `connection`."""
        def write():
            self._writers[connection].write(data)
        self.loop.call_soon_threadsafe(write)

    def publish(self, topic, payload, kind=1):
        """A publish on the first link (this worker has one gateway)."""
        data = frame(PUBLISH, struct.pack("!B", kind) + str16(topic) + payload)
        self.loop.call_soon_threadsafe(lambda: self._all[0].write(data))

    def subscribe(self, connection, topic):
        self.send_frame(connection, frame(SUBSCRIBE, struct.pack("!Q", connection) + topic.encode()))

    def send(self, connection, payload, kind=1):
        self.send_frame(connection, frame(SEND, struct.pack("!QB", connection, kind) + payload))

    def close(self, connection, code, reason):
        self.send_frame(connection, frame(CLOSE, struct.pack("!QH", connection, code) + reason.encode()))

    def credit_frame(self, connection, messages, size):
        self.send_frame(connection, frame(CREDIT, struct.pack("!QII", connection, messages, size)))
