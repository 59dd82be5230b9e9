"""The benchmark's app behind wssgate's `http` route: the smallest HTTP/1.1 keep-alive server we
could write on uvloop (the same runtime as the picows backend behind nginx), answering every
`message` event with its body and the same type — the `text/plain` / `application/octet-stream`
shortcut for "send this to the connection" (docs/http-backend.md) — and every other event with
204. It parses only what the gateway sends: Content-Length bodies, no chunking."""
import asyncio
import resource
import sys

import uvloop


class App(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = bytearray()

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            length, content_type = 0, b"application/octet-stream"
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name == b"content-length":
                    length = int(value)
                elif name == b"content-type":
                    content_type = value.strip()
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            if b"wssgate-event: message\r\n" in head + b"\r\n":
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (
                    content_type, len(body), body))
            else:
                self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")


async def main(port):
    server = await asyncio.get_running_loop().create_server(App, "127.0.0.1", port, backlog=1024)
    print("listening", port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.install()
    asyncio.run(main(int(sys.argv[1])))
