"""The upstream of the `frames` proxy tests: a Python websockets server in a process of its own,
so that a test can kill it. It prints its port, then `closed <code> <reason>` each time a
connection ends, and `flooded <n>` every 100 messages of /flood.

Each connection first gets the handshake headers the server saw (JSON), then its messages back.
`close:<code>:<reason>` makes it close with that code; `fragments` is answered in three frames, `big` with 70,000 bytes."""
import asyncio
import json
import sys

import websockets


async def handler(ws):
    path = ws.request.path
    if path.startswith("/flood"):
        for number in range(2000):
            await ws.send(number.to_bytes(4, "big") * 16384)
            if (number + 1) % 100 == 0:
                print("flooded", number + 1, flush=True)
        await ws.wait_closed()
        return
    names = ("X-Forwarded-For", "X-Forwarded-Proto", "Forwarded", "Host", "Sec-WebSocket-Extensions",
             "Sec-WebSocket-Protocol", "Authorization")
    seen = {name: ws.request.headers.get(name) for name in names}
    seen["path"] = path
    seen["subprotocol"] = ws.subprotocol
    try:
        await ws.send(json.dumps(seen))
        async for message in ws:
            if isinstance(message, str) and message.startswith("close:"):
                _, code, reason = message.split(":", 2)
                await ws.close(int(code), reason)
                break
            if message == "big":
                await ws.send(b"x" * 70000)
                continue
            if message == "fragments":
                await ws.send(["frag", "men", "ts"])
                continue
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    finally:
        print("closed", ws.close_code, ws.close_reason, flush=True)


def select_subprotocol(connection, offered):
    """The first of ours the client offers, or none (websockets alone would refuse a client
    that offers none)."""
    return next((protocol for protocol in ("chat.v2", "chat.v1") if protocol in offered), None)


async def main():
    server = await websockets.serve(handler, "127.0.0.1", 0, select_subprotocol=select_subprotocol,
                                    compression="deflate", max_size=None, ping_interval=None)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
