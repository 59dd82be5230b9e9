"""Clients that run inside the machine (Debian's python3-websockets), copied to /root/clients.py.

    python3 clients.py echo URL TEXT            one round trip; prints the answer
    python3 clients.py chat URL                 joins the chat, prints the join event
    python3 clients.py hold STATE URL…          holds connections: one echo round trip per
                                                connection every 100 ms; STATE (JSON) says how
                                                many round trips each made, and how each ended
    python3 clients.py certificate HOST         the SHA-256 of the certificate served for HOST
"""
import asyncio
import hashlib
import json
import os
import socket
import ssl
import sys

import websockets

CA = "/root/ca.pem"


def context():
    return ssl.create_default_context(cafile=CA)


def connect(url):
    return websockets.connect(url, ssl=context() if url.startswith("wss:") else None, open_timeout=20)


async def echo(url, text):
    async with connect(url) as ws:
        await ws.send(text)
        print(await asyncio.wait_for(ws.recv(), 10))


async def chat(url):
    async with connect(url) as ws:
        print(await asyncio.wait_for(ws.recv(), 10))


async def hold(state_path, urls):
    state = {url: {"round_trips": 0, "closed": None} for url in urls}

    def save():
        with open(state_path + ".new", "w") as f:
            json.dump(state, f)
        os.replace(state_path + ".new", state_path)

    async def one(url):
        try:
            async with connect(url) as ws:
                if "/chat" in url:
                    await asyncio.wait_for(ws.recv(), 10)  # the join event
                while True:
                    if "/chat" in url:
                        await ws.ping()
                    else:
                        await ws.send("ping")
                        assert await asyncio.wait_for(ws.recv(), 10) == "ping"
                    state[url]["round_trips"] += 1
                    await asyncio.sleep(0.1)
        except websockets.exceptions.ConnectionClosed as closed:
            frame = closed.rcvd
            state[url]["closed"] = {"code": frame.code if frame else None, "reason": frame.reason if frame else None}
        except Exception as error:  # noqa: BLE001 - what ended it is the finding
            state[url]["closed"] = {"code": None, "reason": repr(error)}

    async def keep_saving():
        while True:
            save()
            await asyncio.sleep(0.1)

    saver = asyncio.ensure_future(keep_saving())
    await asyncio.gather(*(one(url) for url in urls))
    saver.cancel()
    save()


def certificate(host):
    raw = socket.create_connection(("127.0.0.1", 443), timeout=10)
    with context().wrap_socket(raw, server_hostname=host) as tls:
        print(hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest())


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "echo":
        asyncio.run(echo(*args))
    elif command == "chat":
        asyncio.run(chat(*args))
    elif command == "hold":
        asyncio.run(hold(args[0], args[1:]))
    elif command == "certificate":
        certificate(*args)
