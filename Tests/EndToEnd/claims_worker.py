"""A worker that answers each new connection with what the gateway told it about the client's
token: its `:sub` and `:claims` fields, as one JSON text message; then echoes."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python"))
import wssgate_worker  # noqa: E402


class Claims(wssgate_worker.Handler):
    async def on_open(self, worker, connection):
        claims = connection.field(":claims")
        await worker.send(connection.id, json.dumps({"sub": connection.field(":sub"), "claims": json.loads(claims) if claims else None,
                                                     "client_subject": connection.field(":client_subject")}))

    async def on_message(self, worker, connection, data):
        await worker.send(connection.id, data)


if __name__ == "__main__":
    wssgate_worker.run(Claims(), name="claims")
