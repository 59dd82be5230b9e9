"""A worker the tests control completely: it answers the hello, then misbehaves on purpose
(never reads, never answers opens, or sends broken frames)."""
import asyncio
import os
import struct
import tempfile
import threading

MAGIC = 0x57534757


async def read_frame(reader):
    """The body of the next frame the gateway sends (its kind byte first)."""
    (length,) = struct.unpack("!I", await reader.readexactly(4))
    return await reader.readexactly(length)


class FakeWorker:
    def __init__(self, behaviour, credit=65536):
        self.behaviour = behaviour  # "stall", "silent", "flap", "accept-and-send", "send-then-accept", or a list of byte strings to send, one per link
        self.credit = credit
        self.path = os.path.join(tempfile.mkdtemp(prefix="wgf"), "fake.sock")
        self.links = 0
        self.opens = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(5)

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            old = os.umask(0o177)
            server = await asyncio.start_unix_server(self._link, path=self.path)
            os.umask(old)
            self.ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())

    async def _link(self, reader, writer):
        index = self.links
        self.links += 1
        header = await reader.readexactly(4)
        (length,) = struct.unpack("!I", header)
        await reader.readexactly(length)  # the hello
        name = b"fake"
        writer.write(struct.pack("!IBIHII", 1 + 14 + 2 + len(name), 0x02, MAGIC, 1, 1 << 24, self.credit)
                     + struct.pack("!H", len(name)) + name)
        await writer.drain()
        if self.behaviour == "accept-and-send":
            # Each open that waits for a verdict gets accept and two sends in one write: the
            # gateway reads them together and must upgrade before it delivers the sends.
            while True:
                body = await read_frame(reader)
                if body[0] == 0x10:
                    self.opens += 1
                    connection = body[1:9]
                    frames = struct.pack("!IB", 9, 0x20) + connection
                    for text in (b"first", b"second"):
                        frames += struct.pack("!IB", 10 + len(text), 0x22) + connection + b"\x01" + text
                    writer.write(frames)
                    await writer.drain()
        if self.behaviour == "send-then-accept":
            # Each open that waits for a verdict: subscribe it to "early", publish there and
            # send to it, all before the accept, which follows half a second later; then one
            # more send. What came before the upgrade must reach the client, in order.
            while True:
                body = await read_frame(reader)
                if body[0] == 0x10:
                    self.opens += 1
                    connection = body[1:9]
                    topic = b"early"

                    def frame(kind, payload):
                        return struct.pack("!IB", 1 + len(payload), kind) + payload

                    writer.write(frame(0x24, connection + topic)
                                 + frame(0x26, b"\x01" + struct.pack("!H", len(topic)) + topic + b"published")
                                 + frame(0x22, connection + b"\x01" + b"sent"))
                    await writer.drain()
                    await asyncio.sleep(0.5)
                    writer.write(frame(0x20, connection) + frame(0x22, connection + b"\x01" + b"after"))
                    await writer.drain()
        if self.behaviour == "flap":
            # Takes the link's first open, then breaks the link: every link dies right after
            # its hello.
            while True:
                body = await read_frame(reader)
                if body[0] == 0x10:
                    self.opens += 1
                    writer.close()
                    return
        if self.behaviour == "stall":
            await asyncio.sleep(3600)  # reads nothing, ever
        elif self.behaviour == "silent":
            while True:  # reads, never answers an open
                body = await read_frame(reader)
                if body[0] == 0x10:
                    self.opens += 1
        else:
            variants = self.behaviour
            writer.write(variants[min(index, len(variants) - 1)])
            await writer.drain()
            if index < len(variants) and variants[index].endswith(b"\x00") and False:
                pass
            writer.close()
