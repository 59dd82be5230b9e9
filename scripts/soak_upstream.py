"""The soak's proxy upstream: a plain WebSocket echo server (`ws://127.0.0.1:PORT/…`), run as
its own process so the soak can restart it: `soak_upstream.py PORT`."""
import asyncio
import sys

import websockets


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.exceptions.ConnectionClosed:
        pass


async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=None, compression=None):
        await asyncio.Future()


asyncio.run(main())
