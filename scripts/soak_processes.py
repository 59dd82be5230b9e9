"""The soak's real parts: Redis, two gateways in a cluster, the http route's app, the proxy
routes' upstream, and the TCP relay that puts client network faults between clients and a
gateway. Each can be killed and started again on the same address, as the faults need."""
import asyncio
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("nothing listens on port %d" % port)


def children(pid):
    """The live child processes of `pid`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def descriptors(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def make_certificate(directory):
    """A fresh key and self-signed certificate, installed as certbot installs a renewal: new
    files, then the names replaced at once."""
    for name in ("new.pem", "new.key"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            os.unlink(path)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", os.path.join(directory, "new.key"), "-out", os.path.join(directory, "new.pem"),
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    os.replace(os.path.join(directory, "new.pem"), os.path.join(directory, "fullchain.pem"))
    os.replace(os.path.join(directory, "new.key"), os.path.join(directory, "privkey.pem"))


class Redis:
    """redis-server with an append-only file: a restart keeps the history (docs/cluster.md)."""

    def __init__(self, directory):
        self.directory = directory
        self.socket = os.path.join(directory, "redis.sock")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", self.directory,
             "--logfile", os.path.join(self.directory, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while not os.path.exists(self.socket):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def restart(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.start()

    def pause(self, seconds):
        """Reachable, answering nothing: a network cut as the gateways see it."""
        self.proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


class Gateway:
    """One wssgate node; its log goes to a file (the soak reads counts, not lines)."""

    def __init__(self, binary, name, directory, config, port):
        self.binary = binary
        self.port = port
        self.name = name
        self.directory = directory
        self.config_path = os.path.join(directory, "%s.yaml" % name)
        self.admin_socket = os.path.join(directory, "%s-admin.sock" % name)
        self.log_path = os.path.join(directory, "%s.log" % name)
        self.write_config(config)
        self.proc = None
        self.exits = []  # (time, status) of every exit, expected or not
        self.start()

    def write_config(self, config):
        with open(self.config_path + ".tmp", "w") as f:
            f.write(config)
        os.replace(self.config_path + ".tmp", self.config_path)

    def start(self):
        log = open(self.log_path, "a")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WSSGATE_")}
        env["STATE_DIRECTORY"] = os.path.join(self.directory, self.name + "-state")
        self.proc = subprocess.Popen([self.binary, "run", "--config", self.config_path],
                                     stdout=subprocess.DEVNULL, stderr=log, env=env)
        log.close()
        self.wait_ready()

    def wait_ready(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway %s exited with %s at start" % (self.name, self.proc.returncode))
            if self.readyz() == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("gateway %s did not become ready" % self.name)

    def readyz(self):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=5)
            conn.request("GET", "/readyz")
            status = conn.getresponse().status
            conn.close()
            return status
        except OSError:
            return None

    def admin(self, method, path, timeout=10):
        conn = http.client.HTTPConnection("localhost", timeout=timeout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.admin_socket)
        conn.sock = sock
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def metrics(self):
        """The node's /metrics, summed by name (labels dropped)."""
        status, text = self.admin("GET", "/metrics")
        totals = {}
        if status != 200:
            return totals
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0]
            try:
                totals[name] = totals.get(name, 0.0) + float(value)
            except ValueError:
                pass
        return totals

    def metrics_by_route(self, name):
        """One metric of the node's /metrics, by its `route` label."""
        status, text = self.admin("GET", "/metrics")
        values = {}
        for line in text.splitlines() if status == 200 else []:
            if line.startswith(name + "{"):
                labels, _, value = line.rpartition(" ")
                route = labels.split('route="', 1)[1].split('"', 1)[0] if 'route="' in labels else ""
                values[route] = values.get(route, 0.0) + float(value)
        return values

    def drain(self):
        """SIGTERM: clients get 1001 and move; the node exits 0 (anything else is a crash)."""
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(60)
        self.exits.append((time.time(), status))
        return status

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def workers(self):
        return children(self.proc.pid)

    def crashed(self):
        """An exit nobody asked for, or one that was not clean."""
        return self.proc.poll() is not None or any(status != 0 for _, status in self.exits)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exits.append((time.time(), self.proc.wait(60)))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.exits.append((time.time(), "killed"))


class ChildProcess:
    """A Python helper (the http app, the upstream) run as its own process, so `kill -9` is real."""

    def __init__(self, script, port, *args):
        self.script = script
        self.port = port
        self.args = args
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, self.script), str(self.port), *self.args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.kill()


class Relay:
    """A TCP relay in front of a gateway listener, for the clients whose network fails: it can
    delay every chunk, stall for a while, or cut every connection through it (the client sees
    its connection end without a close, as when a network goes away)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self.delay = 0.0
        self.stalled_until = 0.0
        self.connections = set()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def main():
            server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
            ready.set()
            async with server:
                await server.serve_forever()

        self.loop.run_until_complete(main())

    async def _client(self, reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self.connections.add(pair)

        async def pipe(source, sink):
            try:
                while True:
                    chunk = await source.read(65536)
                    if not chunk:
                        break
                    while time.time() < self.stalled_until:
                        await asyncio.sleep(0.05)
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    sink.write(chunk)
                    await sink.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.connections.discard(pair)

    def cut(self):
        """Every connection through the relay ends at once, both ways, without a close frame."""
        def cut_all():
            for client, upstream in list(self.connections):
                for writer in (client, upstream):
                    transport = writer.transport
                    if transport is not None:
                        transport.abort()
        self.loop.call_soon_threadsafe(cut_all)

    def stall(self, seconds):
        self.stalled_until = time.time() + seconds
