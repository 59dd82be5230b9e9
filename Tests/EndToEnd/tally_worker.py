"""A worker that keeps nothing between wake-ups: each connection's running count lives in its
attachment. Every message is answered `"<pid> <count> <message>"`, so a test sees which process
answered and whether the count survived a hibernation or a move (a lost attachment starts over
at 1). With TALLY_TAG set, the answer ends with ` <tag>` (a deploy's new command)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))
import wssgate_worker  # noqa: E402

TAG = os.environ.get("TALLY_TAG", "")


class Tally(wssgate_worker.Handler):
    async def on_open(self, worker, connection):
        await super().on_open(worker, connection)
        connection.state["count"] = int(connection.attachment or b"0")
        if connection.resumed and connection.attachment is None:
            print("resumed without an attachment: connection %d" % connection.id, flush=True)

    async def on_message(self, worker, connection, data):
        connection.state["count"] += 1
        count = connection.state["count"]
        await worker.attach(connection.id, str(count).encode())
        answer = "%d %d %s" % (os.getpid(), count, data)
        await worker.send(connection.id, answer + (" " + TAG if TAG else ""))


if __name__ == "__main__":
    wssgate_worker.run(Tally(), name="tally")
