"""A worker that names its connections' users and tags before it accepts them (from the query:
`?user=alice&tag=a`), and addresses users and tags on command: a message `to-user:<user>:<text>`,
`to-tag:<tag>:<text>`, `close-user:<user>` or `close-tag:<tag>`."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))
import wssgate_worker  # noqa: E402


class Users(wssgate_worker.Handler):
    async def on_open(self, worker, connection):
        query = connection.query
        await worker.identify(connection.id, user=query.get("user"), add_tags=[query["tag"]] if "tag" in query else [])
        if connection.verdict_required:
            await worker.accept(connection.id)

    async def on_message(self, worker, connection, data):
        command, _, rest = data.partition(":")
        if command == "to-user":
            user, _, text = rest.partition(":")
            await worker.send_to_user(user, text)
        elif command == "to-tag":
            tag, _, text = rest.partition(":")
            await worker.send_to_tag(tag, text)
        elif command == "close-user":
            await worker.close_user(rest, 4003, "by the worker")
        elif command == "close-tag":
            await worker.close_tag(rest, 4004, "by the worker")
        elif command == "untag":
            await worker.identify(connection.id, remove_tags=[rest])
            await worker.send(connection.id, "untagged")


if __name__ == "__main__":
    wssgate_worker.run(Users(), name="users")
