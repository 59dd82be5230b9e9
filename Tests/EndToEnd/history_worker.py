"""A worker (the shipped Python library) whose clients resume a topic with history: a client
connects to ?since=N&epoch=E (or without, from now); the worker resumes it on `feed.w` and tells
it the answer as JSON; a client message `record:TEXT` is recorded on `feed.w` and the position
comes back to that client."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))
import wssgate_worker  # noqa: E402


class Resuming(wssgate_worker.Handler):
    def __init__(self):
        self.requests = {}

    async def on_open(self, worker, connection):
        since = None
        if "epoch" in connection.query:
            since = {"offset": int(connection.query["since"]), "epoch": connection.query["epoch"]}
        await worker.resume(connection.id, connection.query.get("topic", "feed.w"), since)

    async def on_subscribed(self, worker, connection, topic, status, position, missed):
        await worker.send(connection.id, json.dumps({"subscribed": status, "topic": topic, "position": position, "missed": missed}))

    async def on_message(self, worker, connection, data):
        if isinstance(data, str) and data.startswith("record:"):
            request = await worker.record("feed.w", data[len("record:"):])
            self.requests[request] = connection.id

    async def on_recorded(self, worker, request, status, position):
        connection = self.requests.pop(request, None)
        if connection is not None:
            await worker.send(connection, json.dumps({"recorded": status, "position": position}))


if __name__ == "__main__":
    wssgate_worker.run(Resuming(), name="history")
