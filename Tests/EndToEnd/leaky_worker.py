"""A worker that prints everything the gateway tells it about each connection to standard error,
the way a careless worker might: the gateway logs its workers' output, and must redact it."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))
import wssgate_worker  # noqa: E402


class Leaky(wssgate_worker.Handler):
    async def on_open(self, worker, connection):
        for name, value in connection.fields:
            print("open field %s: %s" % (name, value), file=sys.stderr, flush=True)
        print("target=%s" % connection.field(":target", ""), file=sys.stderr, flush=True)

    async def on_message(self, worker, connection, data):
        await worker.send(connection.id, data)


if __name__ == "__main__":
    wssgate_worker.run(Leaky(), name="leaky")
