"""Echo worker: every message goes back to its sender, with its type."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssgate_worker  # noqa: E402


class Echo(wssgate_worker.Handler):
    async def on_message(self, worker, connection, data):
        await worker.send(connection.id, data)


if __name__ == "__main__":
    wssgate_worker.run(Echo(), name="python-echo")
