"""A chat room behind wssgate's `http` route, on nothing but the standard library's wsgiref:
every WebSocket event arrives as a POST and the answer lists commands for the gateway
(docs/http-backend.md). Run it with `python3 wsgi_chat.py 9000`."""
import json
import os
import sys
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server


def say(line):
    """Everyone in the room gets every line: a publish to the topic they subscribe to."""
    return {"op": "publish", "topic": "chat", "text": json.dumps(line)}


def app(environ, start_response):
    event = environ.get("HTTP_WSSGATE_EVENT", "")
    user = environ.get("HTTP_WSSGATE_USER", "guest")
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if event == "open":
        # The name comes from the WebSocket URL: wss://host/chat?name=alice
        query = parse_qs(urlsplit(environ.get("HTTP_WSSGATE_PATH", "")).query)
        name = "".join(c for c in query.get("name", ["guest"])[0] if c.isalnum() or c in " .-_") or "guest"
        commands = [{"op": "identify", "user": name}, {"op": "subscribe", "topic": "chat"},
                    say({"type": "join", "name": name, "pid": os.getpid()})]
    elif event in ("message", "messages"):
        texts = [body.decode()] if event == "message" else [m["text"] for m in json.loads(body) if "text" in m]
        commands = [say({"type": "message", "name": user, "text": t, "pid": os.getpid()}) for t in texts]
    elif event == "close":
        commands = [say({"type": "leave", "name": user})]
    else:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"not a wssgate event\n"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(commands).encode()]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    make_server("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9000, app, handler_class=QuietHandler).serve_forever()
