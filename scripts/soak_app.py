"""The soak's `http` route app: accepts every connection and sends each message back to the
connection it came from (docs/http-backend.md). Run as its own process: `soak_app.py PORT`."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event = self.headers.get("WSSGate-Event")
        commands = []
        if event == "message":
            commands = [{"op": "send", "text": body.decode()}]
        elif event == "messages":
            commands = [{"op": "send", "text": message["text"]} for message in json.loads(body)]
        answer = json.dumps(commands).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
server.serve_forever()
