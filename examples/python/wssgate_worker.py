"""A wssgate worker in one file, standard library only (asyncio).

Implements the worker protocol (docs/worker-protocol.md, versions 1 and 2): listen on a Unix
socket, answer the gateway's hello, receive open/message/closed/suspend events, and send, close,
subscribe, unsubscribe, publish, accept, reject and attach. Credit for received messages is
returned automatically once the handler has processed them, so a slow handler slows its clients.
A suspended connection (its instance goes to sleep, or a deploy moves it) is released to the
gateway once `on_suspend` has run; it comes back, here or elsewhere, as a resumed open whose
`attachment` is what `worker.attach` last set.

    import wssgate_worker

    class Echo(wssgate_worker.Handler):
        async def on_message(self, worker, connection, data):
            await worker.send(connection.id, data)

    wssgate_worker.run(Echo())
"""
import asyncio
import os
import struct
import sys
import urllib.parse

MAGIC = 0x57534757  # "WSGW"
VERSION = 2  # the newest this library speaks; it speaks 1 to a gateway that does not know 2

HELLO, HELLO_ACK = 0x01, 0x02
OPEN, MESSAGE, CLOSED, SUBSCRIBED, RECORDED, SUSPEND = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
ACCEPT, REJECT, SEND, CLOSE, SUBSCRIBE, UNSUBSCRIBE, PUBLISH, CREDIT = 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27
RESUME, RECORD, RELEASE, ATTACH = 0x28, 0x29, 0x2A, 0x2B
IDENTIFY, SEND_TO, CLOSE_TO = 0x2C, 0x2D, 0x2E
# `subscribed` statuses (docs/worker-protocol.md) and `recorded` ones.
SUBSCRIBED_STATUS = {1: "recovered", 2: "not-recovered", 3: "no-history", 4: "unavailable"}
RECORDED_STATUS = {1: "recorded", 2: "published", 3: "failed"}
TEXT, BINARY = 1, 2


class ProtocolError(Exception):
    pass


class Connection:
    """A client connection as the gateway described it in its `open` event."""

    def __init__(self, connection_id, resumed, verdict_required, fields, link, attachment=None):
        self.id = connection_id
        self.resumed = resumed
        # bytes the worker attached (`worker.attach`) before the connection left an instance
        self.attachment = attachment
        self.verdict_required = verdict_required
        self.fields = fields  # list of (name, value): ":path", ":query", ":peer", headers...
        self.link = link
        self.state = {}  # for the handler's own use

    def field(self, name, default=None):
        for key, value in self.fields:
            if key == name:
                return value
        return default

    @property
    def path(self):
        return self.field(":path", "/")

    @property
    def query(self):
        return dict(urllib.parse.parse_qsl(self.field(":query", "")))


class Handler:
    """Override what you need. Each method is awaited before the next event of the same link is
    read; credit for a message is returned once `on_message` has finished."""

    async def on_open(self, worker, connection):
        if connection.verdict_required:
            await worker.accept(connection.id)

    async def on_message(self, worker, connection, data):
        pass

    async def on_close(self, worker, connection, code, reason):
        pass

    async def on_suspend(self, worker, connection):
        """The connection leaves this worker while its client stays connected (protocol
        version 2): attach what you need to carry on (`worker.attach`) now, at the latest. It
        comes back as a resumed `on_open` with `connection.attachment`."""

    async def on_subscribed(self, worker, connection, topic, status, position, missed):
        """The answer to `worker.resume`: `missed` publications were sent to the client."""

    async def on_recorded(self, worker, request, status, position):
        """The answer to `worker.record`."""


def _str16(text):
    data = text.encode()
    return struct.pack("!H", len(data)) + data


class _Reader:
    def __init__(self, body):
        self.body = body
        self.offset = 0

    def take(self, count, what):
        if self.offset + count > len(self.body):
            raise ProtocolError("frame ends before its %s" % what)
        data = self.body[self.offset:self.offset + count]
        self.offset += count
        return data

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def str16(self, what):
        (length,) = self.unpack("!H", what + " length")
        return self.take(length, what).decode()

    def rest(self):
        data = self.body[self.offset:]
        self.offset = len(self.body)
        return data

    def done(self):
        if self.offset != len(self.body):
            raise ProtocolError("trailing bytes")


class _Link:
    """One gateway's connection to this worker."""

    def __init__(self, worker, reader, writer):
        self.worker = worker
        self.reader = reader
        self.writer = writer
        self.connections = {}
        self.max_frame = 1 << 24
        self.gateway = None  # the hello's gateway name: the same on every link of one gateway
        self.version = 1
        self.credit_due = {}  # connection id → [messages, bytes] not yet returned
        self.flush_scheduled = False

    def write(self, frame_type, body):
        if 1 + len(body) > self.max_frame:
            raise ProtocolError("frame of %d bytes is over the gateway's limit" % (1 + len(body)))
        self.writer.write(struct.pack("!IB", 1 + len(body), frame_type) + body)

    async def read_frame(self):
        header = await self.reader.readexactly(4)
        (length,) = struct.unpack("!I", header)
        if length < 1 or length > self.worker.max_frame:
            raise ProtocolError("frame length %d out of bounds" % length)
        body = await self.reader.readexactly(length)
        return body[0], _Reader(body[1:])

    def owe_credit(self, connection_id, size):
        due = self.credit_due.setdefault(connection_id, [0, 0])
        due[0] += 1
        due[1] += max(size, 1)
        if due[1] >= self.worker.credit // 4:
            self.flush_credit()
        elif not self.flush_scheduled:
            # Whatever is left goes out once this batch of frames has been handled.
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_credit)

    def flush_credit(self):
        self.flush_scheduled = False
        for connection_id, (messages, size) in self.credit_due.items():
            if connection_id in self.connections:
                self.write(CREDIT, struct.pack("!QII", connection_id, messages, size))
        self.credit_due.clear()

    async def run(self):
        frame_type, body = await self.read_frame()
        if frame_type != HELLO:
            raise ProtocolError("expected hello")
        magic, low, high, max_frame = body.unpack("!IHHI", "hello")
        self.gateway = body.str16("gateway")
        body.done()
        if magic != MAGIC or low > VERSION or high < 1:
            raise ProtocolError("incompatible gateway (versions %d-%d)" % (low, high))
        self.version = min(high, VERSION)
        self.max_frame = max_frame
        self.write(HELLO_ACK, struct.pack("!IHII", MAGIC, self.version, self.worker.max_frame, self.worker.credit) + _str16(self.worker.name))
        await self.writer.drain()
        handler = self.worker.handler
        while True:
            frame_type, body = await self.read_frame()
            if frame_type == OPEN:
                connection_id, flags, count = body.unpack("!QBH", "open")
                if flags & ~(7 if self.version >= 2 else 3):
                    raise ProtocolError("open flags 0x%x set reserved bits" % flags)
                fields = [(body.str16("name"), body.str16("value")) for _ in range(count)]
                attachment = body.rest() if flags & 4 else None
                body.done()
                connection = Connection(connection_id, bool(flags & 1), bool(flags & 2), fields, self, attachment)
                self.connections[connection_id] = connection
                await handler.on_open(self.worker, connection)
            elif frame_type == MESSAGE:
                connection_id, kind = body.unpack("!QB", "message")
                payload = body.rest()
                if kind not in (TEXT, BINARY):
                    raise ProtocolError("message kind %d" % kind)
                connection = self.connections.get(connection_id)
                if connection is not None:
                    await handler.on_message(self.worker, connection, payload.decode() if kind == TEXT else payload)
                    self.owe_credit(connection_id, len(payload))
            elif frame_type == CLOSED:
                connection_id, code = body.unpack("!QH", "closed")
                reason = body.rest().decode()
                connection = self.connections.pop(connection_id, None)
                self.credit_due.pop(connection_id, None)
                if connection is not None:
                    await handler.on_close(self.worker, connection, code or None, reason)
            elif frame_type == SUSPEND and self.version >= 2:
                (connection_id,) = body.unpack("!Q", "suspend")
                body.done()
                connection = self.connections.pop(connection_id, None)
                self.credit_due.pop(connection_id, None)
                if connection is not None:
                    await handler.on_suspend(self.worker, connection)
                    # Every frame about it went out before this one.
                    self.write(RELEASE, struct.pack("!Q", connection_id))
            elif frame_type == SUBSCRIBED:
                connection_id, status, offset = body.unpack("!QBQ", "subscribed")
                epoch = body.str16("epoch")
                (missed,) = body.unpack("!I", "subscribed")
                topic = body.rest().decode()
                if status not in SUBSCRIBED_STATUS:
                    raise ProtocolError("subscribed status %d" % status)
                connection = self.connections.get(connection_id) or self.worker.connection(connection_id)
                if connection is not None:
                    position = {"offset": offset, "epoch": epoch} if epoch else None
                    await handler.on_subscribed(self.worker, connection, topic, SUBSCRIBED_STATUS[status], position, missed)
            elif frame_type == RECORDED:
                request, status, offset = body.unpack("!IBQ", "recorded")
                epoch = body.str16("epoch")
                body.done()
                if status not in RECORDED_STATUS:
                    raise ProtocolError("recorded status %d" % status)
                position = {"offset": offset, "epoch": epoch} if epoch else None
                await handler.on_recorded(self.worker, request, RECORDED_STATUS[status], position)
            else:
                raise ProtocolError("unexpected frame type 0x%02x from the gateway" % frame_type)
            await self.writer.drain()


class Worker:
    def __init__(self, handler, name=None, credit=256 * 1024, max_frame=1 << 24):
        self.handler = handler
        self.name = name or os.environ.get("WSSGATE_WORKER_NAME", "python-worker")
        self.credit = credit
        self.max_frame = max_frame
        self.links = {}  # an ordered set: the oldest link of a gateway carries its publishes
        self.requests = 0  # `record` request numbers

    def _link_of(self, connection_id):
        for link in self.links:
            if connection_id in link.connections:
                return link
        return None

    async def _drain(self, link):
        await link.writer.drain()

    def _link_for_command(self, connection_id):
        """The connection's link; for an id this worker does not hold, any link: in a cluster
        the gateway passes a send or close on to the node holding the connection (its number
        is in the id's top bits), and otherwise ignores it."""
        return self._link_of(connection_id) or next(iter(self.links), None)

    async def send(self, connection_id, data):
        link = self._link_for_command(connection_id)
        if link is not None:
            kind, payload = (TEXT, data.encode()) if isinstance(data, str) else (BINARY, bytes(data))
            link.write(SEND, struct.pack("!QB", connection_id, kind) + payload)
            await self._drain(link)

    async def close(self, connection_id, code=1000, reason=""):
        link = self._link_for_command(connection_id)
        if link is not None:
            link.write(CLOSE, struct.pack("!QH", connection_id, code) + reason.encode())
            await self._drain(link)

    async def attach(self, connection_id, data):
        """Sets the connection's attachment (bytes, at most the route's
        `worker.attachment_bytes`): the gateway keeps it and hands it back in the
        `open` of the next instance that takes the connection (`connection.attachment`)."""
        link = self._link_of(connection_id)
        if link is not None and link.version >= 2:
            link.write(ATTACH, struct.pack("!Q", connection_id) + bytes(data))
            await self._drain(link)

    async def identify(self, connection_id, user=None, add_tags=(), remove_tags=()):
        """Sets the connection's user id (an empty one clears it; None leaves it) and adds and
        removes tags: the admin API, workers and `http` routes then address it by user or tag,
        on every node of a cluster. Sent before `accept`, it takes effect with the upgrade."""
        link = self._link_of(connection_id)
        if link is not None and link.version >= 2:
            body = struct.pack("!QB", connection_id, 1 if user is not None else 0) + _str16(user or "")
            for tags in (add_tags, remove_tags):
                body += struct.pack("!H", len(tags)) + b"".join(_str16(tag) for tag in tags)
            link.write(IDENTIFY, body)
            await self._drain(link)

    async def _address_all(self, frame_type, body):
        for link in self._one_link_per_gateway():
            if link.version >= 2:
                link.write(frame_type, body)
                await self._drain(link)

    async def send_to_user(self, user, data):
        """Sends to every connection of a user, wherever it is."""
        kind, payload = (TEXT, data.encode()) if isinstance(data, str) else (BINARY, bytes(data))
        await self._address_all(SEND_TO, struct.pack("!B", 1) + _str16(user) + struct.pack("!B", kind) + payload)

    async def send_to_tag(self, tag, data):
        kind, payload = (TEXT, data.encode()) if isinstance(data, str) else (BINARY, bytes(data))
        await self._address_all(SEND_TO, struct.pack("!B", 2) + _str16(tag) + struct.pack("!B", kind) + payload)

    async def close_user(self, user, code=1000, reason=""):
        """Closes every connection of a user, wherever it is."""
        await self._address_all(CLOSE_TO, struct.pack("!B", 1) + _str16(user) + struct.pack("!H", code) + reason.encode())

    async def close_tag(self, tag, code=1000, reason=""):
        await self._address_all(CLOSE_TO, struct.pack("!B", 2) + _str16(tag) + struct.pack("!H", code) + reason.encode())

    async def accept(self, connection_id):
        link = self._link_of(connection_id)
        if link is not None:
            link.write(ACCEPT, struct.pack("!Q", connection_id))
            await self._drain(link)

    async def reject(self, connection_id, status=403, reason=""):
        link = self._link_of(connection_id)
        if link is not None:
            link.connections.pop(connection_id, None)
            link.write(REJECT, struct.pack("!QH", connection_id, status) + reason.encode())
            await self._drain(link)

    def _hub_link(self, connection_id):
        """Hub commands (subscribe, unsubscribe, publish) go over one link per gateway, its
        oldest: a subscribe then reaches the gateway before a publish sent after it."""
        own = self._link_of(connection_id)
        if own is None:
            return None
        for link in self.links:
            if link.gateway == own.gateway:
                return link
        return own

    async def subscribe(self, connection_id, topic):
        link = self._hub_link(connection_id)
        if link is not None:
            link.write(SUBSCRIBE, struct.pack("!Q", connection_id) + topic.encode())

    async def unsubscribe(self, connection_id, topic):
        link = self._hub_link(connection_id)
        if link is not None:
            link.write(UNSUBSCRIBE, struct.pack("!Q", connection_id) + topic.encode())

    def _one_link_per_gateway(self):
        """A gateway opens several links to one instance (one per event loop), all with the
        same name in their hello; a publish goes over one of them, or it would arrive twice."""
        chosen = {}
        for link in self.links:
            if link.gateway is not None:
                chosen.setdefault(link.gateway, link)
        return list(chosen.values())

    def connection(self, connection_id):
        link = self._link_of(connection_id)
        return link.connections.get(connection_id) if link is not None else None

    async def resume(self, connection_id, topic, since=None):
        """Subscribes the connection to `topic` (a topic with history) and resumes it after
        `since` ({"offset": n, "epoch": "…"}, the last position the client saw; None: from now).
        The gateway sends the client what it missed, then live messages, and answers with
        `Handler.on_subscribed` (status "recovered", "not-recovered", "no-history" or
        "unavailable", and where the stream stands). It does not wait for that answer: a
        handler awaiting it would hold up the very link that brings it."""
        link = self._hub_link(connection_id)
        if link is not None:
            since = since or {"offset": 0, "epoch": ""}
            link.write(RESUME, struct.pack("!QQ", connection_id, since["offset"]) + _str16(since["epoch"]) + topic.encode())
            await self._drain(link)

    async def record(self, topic, data):
        """Publishes like `publish`, over one gateway, and returns a request number; the
        gateway answers with `Handler.on_recorded(request, status, position)`: the
        publication's place in the topic's history (status "recorded"), or "published" when
        the topic keeps none, or "failed"."""
        kind, payload = (TEXT, data.encode()) if isinstance(data, str) else (BINARY, bytes(data))
        links = self._one_link_per_gateway()
        if not links:
            return None
        self.requests += 1
        links[0].write(RECORD, struct.pack("!IB", self.requests, kind) + _str16(topic) + payload)
        await self._drain(links[0])
        return self.requests

    async def publish(self, topic, data):
        kind, payload = (TEXT, data.encode()) if isinstance(data, str) else (BINARY, bytes(data))
        for link in self._one_link_per_gateway():
            link.write(PUBLISH, struct.pack("!B", kind) + _str16(topic) + payload)
            await self._drain(link)

    async def _serve_link(self, reader, writer):
        link = _Link(self, reader, writer)
        self.links[link] = None
        try:
            await link.run()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ProtocolError as error:
            print("wssgate worker: protocol error: %s" % error, file=sys.stderr, flush=True)
        finally:
            self.links.pop(link, None)
            for connection in list(link.connections.values()):
                try:
                    await self.handler.on_close(self, connection, 1006, "gateway link closed")
                except Exception as error:  # a handler failure must not stop the others
                    print("wssgate worker: on_close failed: %r" % error, file=sys.stderr, flush=True)
            writer.close()

    async def serve(self, path=None):
        path = path or os.environ["WSSGATE_WORKER_SOCKET"]
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        old_mask = os.umask(0o177)  # the socket is born 0600: only our user may connect
        try:
            server = await asyncio.start_unix_server(self._serve_link, path=path)
        finally:
            os.umask(old_mask)
        print("wssgate worker %s listening on %s" % (self.name, path), flush=True)
        async with server:
            parent = int(os.environ.get("WSSGATE_PARENT_PID", "0") or 0)
            if parent > 1:
                # Started by a gateway: stop once it is gone (killed outright, it cannot stop us).
                serving = asyncio.ensure_future(server.serve_forever())
                while not serving.done():
                    await asyncio.sleep(1)
                    if os.getppid() != parent:
                        serving.cancel()
                        break
                try:
                    await serving
                except asyncio.CancelledError:
                    pass
            else:
                await server.serve_forever()


def run(handler, **options):
    """Serves `handler` on $WSSGATE_WORKER_SOCKET until SIGTERM."""
    import signal

    async def main():
        worker = Worker(handler, **options)
        task = asyncio.ensure_future(worker.serve())
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        loop.add_signal_handler(signal.SIGINT, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
