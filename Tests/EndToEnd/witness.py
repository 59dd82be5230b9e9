"""A well-behaved client in a process of its own: it makes an echo round trip every 10 ms until
it is sent SIGTERM, then prints its round-trip times (seconds, sorted) as one JSON line.

The attack tests run it next to a hostile client. It has its own process so that what it
measures is the gateway: a witness on a thread of the attacker's Python process waits for the
interpreter lock whenever the attacker is busy, and measured that instead.

Usage: witness.py URL  (prints "ready" once connected)"""
import asyncio
import json
import signal
import ssl
import sys
import time

import websockets


async def main(url):
    context = None
    if url.startswith("wss:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    latencies = []
    async with websockets.connect(url, ssl=context) as ws:
        print("ready", flush=True)
        # Twenty more samples after the stop, so a witness that was starved still reports
        # how it fares once the attack has ended.
        after_stop = 0
        while after_stop < 20:
            started = time.monotonic()
            await ws.send("witness")
            answer = await asyncio.wait_for(ws.recv(), 10)
            if answer != "witness":
                raise SystemExit("the witness heard %r" % answer)
            latencies.append(time.monotonic() - started)
            if stop.is_set():
                after_stop += 1
            await asyncio.sleep(0.01)
    print(json.dumps(sorted(latencies)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
