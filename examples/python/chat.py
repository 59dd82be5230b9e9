"""Chat worker: rooms are hub topics. Connect to /chat?room=NAME&name=YOU; every text message
is published to the room as JSON, with join and leave announcements.

With WORKER_AUTH_TOKEN set, a connection must carry ?token=<that value>: others are refused
with 403 before their upgrade completes (a route with `worker.authorize: true`)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssgate_worker  # noqa: E402


class Chat(wssgate_worker.Handler):
    async def on_open(self, worker, connection):
        query = connection.query
        if connection.verdict_required:
            token = os.environ.get("WORKER_AUTH_TOKEN")
            if token and query.get("token") != token:
                await worker.reject(connection.id, 403, "bad token")
                return
            await worker.accept(connection.id)
        room = query.get("room", "lobby")
        name = query.get("name", "user-%d" % connection.id)
        connection.state.update(room="chat." + room, name=name)
        await worker.subscribe(connection.id, "chat." + room)
        if not connection.resumed:
            await worker.publish("chat." + room, json.dumps({"type": "join", "name": name}))

    async def on_message(self, worker, connection, data):
        if isinstance(data, str):
            await worker.publish(connection.state["room"], json.dumps({"type": "message", "name": connection.state["name"], "text": data}))

    async def on_close(self, worker, connection, code, reason):
        if "room" in connection.state and code != 1006:
            await worker.publish(connection.state["room"], json.dumps({"type": "leave", "name": connection.state["name"]}))


if __name__ == "__main__":
    wssgate_worker.run(Chat(), name="python-chat")
