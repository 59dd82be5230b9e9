"""A worker that passes commands on: a text message {"to": ID, "text": T} sends T to connection
ID, {"close": ID, "code": C} closes it — wherever that connection is (in a cluster, another node
holds it). Answers "done" to its own client after each."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))
import wssgate_worker  # noqa: E402


class Relay(wssgate_worker.Handler):
    async def on_message(self, worker, connection, data):
        command = json.loads(data)
        if "to" in command:
            await worker.send(command["to"], command["text"])
        elif "close" in command:
            await worker.close(command["close"], command["code"], command.get("reason", ""))
        await worker.send(connection.id, "done")


if __name__ == "__main__":
    wssgate_worker.run(Relay(), name="relay")
