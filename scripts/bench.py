#!/usr/bin/env python3
"""make bench: wssgate side by side with nginx, same machine, same run, same load generator.

Setups (all TLS on loopback, the same certificate):
  1. nginx (TLS) → picows echo backend      the tutorial's architecture, the baseline
  2. wssgate proxy route → the same backend, byte for byte (`mode: bytes`) and terminating both
     legs (`mode: frames`)
  3. wssgate worker route → the Swift echo worker over Unix sockets (2 instances)
  4. wssgate echo route                      the gateway's own ceiling

Figures (medians of RUNS runs; ratios against setup 1): echo round trips per second and
p50/p99 latency at 100 connections with 32-byte and 4 KiB messages; CPU seconds per 100,000
round trips (every process of the setup); memory per idle wss connection
(PSS of every process of the setup); new TLS handshakes per second (openssl s_time); hub
fan-out (wssgate only: one publisher, 1,000 subscribers), on one gateway and across three
gateways sharing the topic through redis-server (docs/cluster.md). Idle memory is measured at 9,000
connections by default: 10,000 proxied connections need 20,000 descriptors in one process, the
hard limit on the machines this was written on. Writes build/bench/results.json,
docs/benchmarks.md and docs/benchmarks.png. Every process it starts is ended by its PID.
"""
import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "bench")
PY = os.path.join(ROOT, "build", "bench-venv", "bin", "python")
LOAD = os.path.join(ROOT, "scripts", "bench", "load.py")
# What ships: the static binary `make static` writes (statically linked against glibc).
# BENCH_GATEWAY_BINARY (not WSSGATE_…: the gateway refuses unknown variables of its prefix) names another build, to compare two (with --only: no report written).
GATEWAY = os.environ.get("BENCH_GATEWAY_BINARY") or os.path.join(ROOT, "build", "static", "wssgate")
# The bundled echo worker: `wssgate worker echo`, from the same static binary.
ECHO_WORKER = GATEWAY
CLIENT_PROCESSES = 2
# The last column: the load generator against the cheapest echo (scripts/bench/ceiling.c).
CEILING = "generator ceiling (C echo)"
started = []


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("nothing listens on %d" % port)


def more_files():
    """Room for 10,000 proxied connections (two descriptors each): raise the descriptor limit of
    the processes under test as far as this user may."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, 65536))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(argv, **kwargs):
    proc = subprocess.Popen(argv, preexec_fn=more_files, **kwargs)
    started.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def family(pid):
    """A process and all its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        todo.extend(children.get(current, []))
    return result


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def pss_kib(pids):
    return memory_kib(pids)[1]


class Setup:
    def __init__(self, name, url, roots, wss_port):
        self.name, self.url, self.roots, self.port = name, url, roots, wss_port

    def pids(self):
        return [pid for root in self.roots for pid in family(root.pid)]


def certificate(directory):
    key, cert = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def start_backend():
    port = free_port()
    proc = spawn([PY, os.path.join(ROOT, "scripts", "bench", "echo_server.py"), str(port)], stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_nginx(directory, cert, key, backend_port):
    port = free_port()
    conf = os.path.join(directory, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""
daemon off;
worker_processes auto;
worker_rlimit_nofile 65536;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log warn;
events { worker_connections 30000; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    upstream backend { server 127.0.0.1:%(backend)d; keepalive 64; }
    server {
        listen 127.0.0.1:%(port)d ssl;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 3600s;
        }
    }
}
""" % {"dir": directory, "backend": backend_port, "port": port, "cert": cert, "key": key})
    proc = spawn(["nginx", "-c", conf, "-p", directory])
    wait_port(port)
    return proc, port


def start_haproxy(directory, cert, key, backend_port):
    """HAProxy as Debian ships it, terminating TLS in front of the backend: one process with a
    thread per CPU (its default), HTTP mode, which passes the upgrade and then tunnels."""
    port = free_port()
    pem = os.path.join(directory, "haproxy.pem")
    with open(pem, "w") as out, open(cert) as c, open(key) as k:
        out.write(c.read() + k.read())
    conf = os.path.join(directory, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write("""
global
    maxconn 9500
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 3600s
    timeout server 3600s
    timeout tunnel 3600s
frontend wss
    bind 127.0.0.1:%(port)d ssl crt %(pem)s
    default_backend echo
backend echo
    server backend 127.0.0.1:%(backend)d
""" % {"port": port, "pem": pem, "backend": backend_port})
    proc = spawn(["haproxy", "-db", "-f", conf], stdout=subprocess.DEVNULL, stderr=open(os.path.join(directory, "haproxy.log"), "w"))
    wait_port(port)
    return proc, port


def start_caddy(directory, cert, key, backend_port):
    """Caddy as Debian ships it: TLS with our certificate (no ACME, no admin endpoint),
    `reverse_proxy`, which passes WebSocket upgrades by itself."""
    port = free_port()
    conf = os.path.join(directory, "Caddyfile")
    with open(conf, "w") as f:
        f.write("""{
    admin off
    auto_https off
    log {
        level ERROR
    }
}
https://127.0.0.1:%(port)d {
    tls %(cert)s %(key)s
    reverse_proxy 127.0.0.1:%(backend)d
}
""" % {"port": port, "cert": cert, "key": key, "backend": backend_port})
    home = os.path.join(directory, "caddy-home")
    os.makedirs(home, exist_ok=True)
    env = dict(os.environ, HOME=home, XDG_DATA_HOME=home, XDG_CONFIG_HOME=home)
    proc = spawn(["caddy", "run", "--config", conf, "--adapter", "caddyfile"], env=env, stdout=subprocess.DEVNULL,
                 stderr=open(os.path.join(directory, "caddy.log"), "w"))
    wait_port(port)
    return proc, port


# The hub route every benchmark gateway has, and no admin API.
# Topics under `kept.` keep history (in memory): the fan-out runs once on `bench` and once on
# `kept.bench`, and the two rates compare a publish with history to one without.
HUB_AND_NO_ADMIN = """  hub:
    path: /hub
    kind: hub
    compression: { enabled: false }
    hub:
      publish: ["*"]
      history:
        size: 1000
        topics: ["kept.*"]
admin:
  address: "off"
"""


def start_http_app():
    """The app behind the `http` route (scripts/bench/http_echo_app.py)."""
    port = free_port()
    proc = spawn([PY, os.path.join(ROOT, "scripts", "bench", "http_echo_app.py"), str(port)], stdout=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def gateway_head(port, cert, key):
    """A benchmark gateway's log level and TLS listener."""
    return """
log:
  level: warning
listeners:
  main:
    address: "127.0.0.1:%d"
    tls:
      certificate: %s
      key: %s
""" % (port, cert, key)


def start_wssgate(directory, cert, key, backend_port, app_port=None):
    port = free_port()
    conf = os.path.join(directory, "wssgate.yaml")
    with open(conf, "w") as f:
        f.write(gateway_head(port, cert, key) + """routes:
  echo:
    path: /echo
    kind: echo
    compression: { enabled: false }
  echo-deflate:
    path: /echo-deflate
    kind: echo
  proxy:
    path: /proxy
    kind: proxy
    proxy:
      upstream: "ws://127.0.0.1:%(backend)d/"
  proxy-frames:
    path: /proxy-frames
    kind: proxy
    compression: { enabled: false }
    proxy:
      upstream: "ws://127.0.0.1:%(backend)d/"
      mode: frames
  worker:
    path: /worker
    kind: worker
    worker:
      command: "%(worker)s"
      args: [worker, echo]
      instances: 2
  http:
    path: /http
    kind: http
    compression: { enabled: false }
    http:
      url: "http://127.0.0.1:%(app)d/"
      connections: 100
""" % {"backend": backend_port, "worker": ECHO_WORKER, "app": app_port or 9} + HUB_AND_NO_ADMIN)
    proc = spawn([GATEWAY, "run", "--config", conf], stderr=open(os.path.join(directory, "wssgate.log"), "w"))
    wait_port(port)
    time.sleep(1.0)  # the worker linked
    return proc, port


def start_hibernating(directory, cert, key):
    """A gateway whose only route is the benchmark's worker route with `min_instances: 0`: the
    same worker, which never starts while the connections stay idle."""
    port = free_port()
    conf = os.path.join(directory, "wssgate-hibernating.yaml")
    with open(conf, "w") as f:
        f.write(gateway_head(port, cert, key) + """routes:
  worker:
    path: /worker
    kind: worker
    worker:
      command: "%s"
      args: [worker, echo]
      instances: 2
      min_instances: 0
admin:
  address: "off"
""" % ECHO_WORKER)
    proc = spawn([GATEWAY, "run", "--config", conf], stderr=open(os.path.join(directory, "wssgate-hibernating.log"), "w"))
    wait_port(port)
    return proc, port


def start_ceiling(directory, cert, key):
    """The generator ceiling: scripts/bench/ceiling.c, the cheapest TLS WebSocket echo we could
    write (a thread per CPU), built here with the system compiler."""
    source = os.path.join(ROOT, "scripts", "bench", "ceiling.c")
    binary = os.path.join(OUT, "ceiling")
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        subprocess.run(["cc", "-O2", "-o", binary, source, "-lssl", "-lcrypto", "-lpthread"], check=True)
    port = free_port()
    proc = spawn([binary, str(port), cert, key, str(os.cpu_count())], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "listening":
        raise SystemExit("the ceiling echo did not start")
    return proc, port


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0


def round_trips(setup, size, seconds):
    pids = setup.pids()
    cpu_before = cpu_seconds(pids)
    clients = [subprocess.Popen([PY, LOAD, "rtt", setup.url, str(100 // CLIENT_PROCESSES), str(size), str(seconds)],
                                stdout=subprocess.PIPE, text=True) for _ in range(CLIENT_PROCESSES)]
    outputs = [json.loads(c.communicate(timeout=seconds + 120)[0]) for c in clients]
    cpu = cpu_seconds(setup.pids()) - cpu_before
    count = sum(o["count"] for o in outputs)
    elapsed = max(o["seconds"] for o in outputs)
    latencies = [v for o in outputs for v in o["latencies_us"]]
    generator = sum(o["cpu_seconds"] for o in outputs)
    return {"rps": count / elapsed, "p50_us": percentile(latencies, 0.5), "p99_us": percentile(latencies, 0.99),
            "cpu_per_100k": cpu / count * 100_000 if count else 0,
            "generator_cpu_per_100k": generator / count * 100_000 if count else 0}


def profiles(setups, seconds):
    """`perf record` of every process of each setup during one round-trip run per size, summed
    by component (scripts/bench/profile.py); for symbols, run the unstripped binary
    (BENCH_GATEWAY_BINARY=build/static/wssgate.unstripped, which `make cpu-profile` sets)."""
    found = {}
    for setup in setups:
        for size in (32, 4096):
            data = os.path.join(OUT, "perf-%d.data" % size)
            pids = ",".join(str(pid) for pid in setup.pids())
            recorder = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-o", data, "-p", pids],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            figures = round_trips(setup, size, seconds)
            recorder.send_signal(signal.SIGINT)
            recorder.wait(timeout=60)
            summary = json.loads(subprocess.run([PY, os.path.join(ROOT, "scripts", "bench", "profile.py"), data],
                                                capture_output=True, text=True, check=True).stdout)
            summary.update(figures)
            summary.pop("latencies_us", None)
            found["%s, %d B" % (setup.name, size)] = summary
            print("%s, %d B: %.0f rt/s, cpu %.2f s/100k (%d samples)" % (setup.name, size, figures["rps"],
                                                                          figures["cpu_per_100k"], summary["samples"]))
            print("  " + ", ".join("%s %.1f%%" % item for item in summary["components"].items()))
            for percent, part, symbol in summary["top"]:
                print("  %5.1f%%  %-14s %s" % (percent, part, symbol))
            sys.stdout.flush()
    with open(os.path.join(OUT, "profile.json"), "w") as f:
        json.dump(found, f, indent=2)


def open_files(pids):
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            pass
    return total


def memory_kib(pids):
    """RSS and PSS, KiB, summed over the processes."""
    rss = pss = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                text = f.read()
            rss += int(re.search(r"^Rss:\s+(\d+) kB", text, re.M).group(1))
            pss += int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1))
        except (OSError, AttributeError):
            pass
    return rss, pss


def socket_buffer_bytes(server_ports, backend_ports):
    """Kernel memory charged to the setup's own TCP sockets (`ss -m`: receive queue, send queue,
    forward allocation and options, r + w + f + o): the accepted client connections (local port
    a server port) and, for proxies, both ends of the backend connections. The load
    generator's sockets are not counted."""
    out = subprocess.run(["ss", "-tmnH", "state", "established"], capture_output=True, text=True).stdout.splitlines()
    total = 0
    for line, memory in zip(out[0::2], out[1::2]):
        fields = line.split()
        local, peer = int(fields[2].rsplit(":", 1)[1]), int(fields[3].rsplit(":", 1)[1])
        if local in server_ports or local in backend_ports or peer in backend_ports:
            counts = dict((m.group(1), int(m.group(2))) for m in re.finditer(r"([a-z]+)(\d+)", memory))
            total += sum(counts.get(k, 0) for k in ("r", "w", "f", "o"))
    return total


def slab_kib():
    with open("/proc/meminfo") as f:
        return int(re.search(r"^Slab:\s+(\d+) kB", f.read(), re.M).group(1))


def hold_idle(url, connections, variant):
    """Opens `connections` idle connections over the client processes; returns (clients, hold
    file): they stay open until release_idle."""
    hold = tempfile.mktemp(prefix="wgb-hold")
    open(hold, "w").close()
    per_client = max(1, connections // CLIENT_PROCESSES)
    clients = [subprocess.Popen([PY, LOAD, "idle", url, str(per_client), hold, variant], stdout=subprocess.PIPE, text=True)
               for _ in range(CLIENT_PROCESSES if connections > 1 else 1)]
    for client in clients:
        line = client.stdout.readline()
        assert line.startswith("ready"), "idle connections to %s: %r" % (url, line)
    return clients, hold


def release_idle(clients, hold, setup, files_before):
    os.unlink(hold)
    for client in clients:
        client.wait(timeout=120)
    deadline = time.time() + 120
    while open_files(setup.pids()) > files_before + 10 and time.time() < deadline:
        time.sleep(0.5)


# The memory benchmark's setups: (name, what starts its processes, route, idle variant). Each gets
# new processes, so the figure is what a user who starts one and connects sees.
def memory_setups():
    def gateway(route, variant=""):
        def start(directory, cert, key):
            backend, backend_port = start_backend() if route == "proxy" else (None, None)
            proc, port = start_wssgate(directory, cert, key, backend_port or 9)
            return [proc] + ([backend] if backend else []), port, "wss://127.0.0.1:%d/%s" % (port, route), [backend_port] if backend else []
        return start

    def hibernating(directory, cert, key):
        proc, port = start_hibernating(directory, cert, key)
        return [proc], port, "wss://127.0.0.1:%d/worker" % port, []

    def peer(start_peer):
        def start(directory, cert, key):
            backend, backend_port = start_backend()
            proc, port = start_peer(directory, cert, key, backend_port)
            return [proc, backend], port, "wss://127.0.0.1:%d/" % port, [backend_port]
        return start

    return [
        ("nginx → backend", peer(start_nginx), ""),
        ("HAProxy → backend", peer(start_haproxy), ""),
        ("Caddy → backend", peer(start_caddy), ""),
        ("wssgate proxy → backend", gateway("proxy"), ""),
        # The worker route, running and hibernated, at 10,000: one descriptor per connection.
        ("wssgate worker", gateway("worker"), "", 10_000),
        ("wssgate worker, hibernated", hibernating, "", 10_000),
        ("wssgate echo", gateway("echo"), ""),
        ("wssgate echo, permessage-deflate", gateway("echo-deflate"), "deflate"),
        ("wssgate hub, a subscription each", gateway("hub"), "subscribe"),
    ]


def fresh_idle_memory(directory, cert, key, connections, only, settle):
    """Memory per idle wss:// connection, whole setup, on new processes: "before" after start
    and one warm-up connection (opened, held, closed), "after" with `connections` open and
    `settle` seconds of quiet. PSS and RSS of every process of the setup, and the kernel's
    memory for the setup's sockets (socket buffers, and slab, which counts both ends)."""
    figures = {}
    default = connections
    for name, start, variant, *count in memory_setups():
        connections = count[0] if count and default == 9_000 else default
        if only and not any(part in name for part in only.split(",")):
            continue
        procs, port, url, backend_ports = start(directory, cert, key)
        setup = Setup(name, url, procs, port)
        try:
            files_before = open_files(setup.pids())
            clients, hold = hold_idle(url, 1, variant)
            time.sleep(0.5)
            release_idle(clients, hold, setup, files_before)
            time.sleep(1.0)
            rss0, pss0 = memory_kib(setup.pids())
            sock0, slab0 = socket_buffer_bytes({port}, set(backend_ports)), slab_kib()
            clients, hold = hold_idle(url, connections, variant)
            count = connections // CLIENT_PROCESSES * CLIENT_PROCESSES
            time.sleep(settle)
            rss1, pss1 = memory_kib(setup.pids())
            processes = len(setup.pids())
            sock1, slab1 = socket_buffer_bytes({port}, set(backend_ports)), slab_kib()
            release_idle(clients, hold, setup, files_before)
        finally:
            for proc in procs:
                stop(proc)
                started.remove(proc)
        figures[name] = {"pss": (pss1 - pss0) * 1024 / count, "rss": (rss1 - rss0) * 1024 / count,
                         "socket_buffers": (sock1 - sock0) / count, "slab": (slab1 - slab0) * 1024 / count,
                         "fresh_pss_kib": pss0, "connections": count, "processes": processes}
        print("%-34s idle, fresh: PSS %6.0f  RSS %6.0f bytes per connection; kernel: socket buffers %5.0f, slab %5.0f (both ends); %d processes" % (
            name, figures[name]["pss"], figures[name]["rss"], figures[name]["socket_buffers"], figures[name]["slab"], processes), flush=True)
    return figures


def churn(directory, cert, key, backend_port, connections, rounds):
    """Memory given back: a fresh gateway, then `rounds` times open `connections` idle wss
    connections to the echo route and close them. Returns the PSS per connection with them
    open, and the gateway's PSS once they are closed, for every round."""
    proc, port = start_wssgate(directory, cert, key, backend_port)
    setup = Setup("wssgate echo (fresh)", "wss://127.0.0.1:%d/echo" % port, [proc], port)
    base = pss_kib(setup.pids())
    files_before = open_files(setup.pids())
    open_per_connection, closed_kib = [], []
    try:
        for _ in range(rounds):
            hold = tempfile.mktemp(prefix="wgb-hold")
            open(hold, "w").close()
            clients = [subprocess.Popen([PY, LOAD, "idle", setup.url, str(connections // CLIENT_PROCESSES), hold],
                                        stdout=subprocess.PIPE, text=True) for _ in range(CLIENT_PROCESSES)]
            for client in clients:
                line = client.stdout.readline()
                assert line.startswith("ready"), line
            time.sleep(2.0)
            open_per_connection.append((pss_kib(setup.pids()) - base) * 1024 / connections)
            os.unlink(hold)
            for client in clients:
                client.wait(timeout=120)
            deadline = time.time() + 60
            while open_files(setup.pids()) > files_before + 10 and time.time() < deadline:
                time.sleep(0.5)
            time.sleep(6.0)  # the gateway looks every 2 s and trims once the count holds still
            closed_kib.append(pss_kib(setup.pids()))
    finally:
        stop(proc)
        started.remove(proc)
    return {"connections": connections, "base_kib": base, "open_bytes_per_connection": open_per_connection,
            "closed_kib": closed_kib}


def handshakes(setup, seconds):
    """New TLS handshakes per second: CLIENT_PROCESSES `openssl s_time -new` at once (full
    handshakes, no resumption), their rates summed; one client process alone is the limit on 2
    CPUs, not the server."""
    clients = [subprocess.Popen(["openssl", "s_time", "-connect", "127.0.0.1:%d" % setup.port, "-new", "-time", str(seconds)],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(CLIENT_PROCESSES)]
    total = 0.0
    for client in clients:
        out = client.communicate(timeout=seconds + 60)[0]
        m = re.search(r"(\d+) connections in ([\d.]+) real seconds", out)
        total += int(m.group(1)) / float(m.group(2)) if m else 0.0
    return total


def hub_fanout(urls, subscribers, messages, topic="bench"):
    """One publisher on urls[0]; the subscribers spread evenly over the urls (one subscriber
    process per url, or CLIENT_PROCESSES on a single one)."""
    targets = urls if len(urls) > 1 else urls * CLIENT_PROCESSES
    ready = [tempfile.mktemp(prefix="wgb-ready") for _ in targets]
    subs = [subprocess.Popen([PY, LOAD, "sub", url, str(subscribers // len(targets)), topic, str(messages), r],
                             stdout=subprocess.PIPE, text=True) for url, r in zip(targets, ready)]
    deadline = time.time() + 120
    while not all(os.path.exists(r) for r in ready) and time.time() < deadline:
        time.sleep(0.1)
    pub = subprocess.Popen([PY, LOAD, "pub", urls[0], topic, str(messages), "16"])
    outputs = [json.loads(s.communicate(timeout=300)[0]) for s in subs]
    pub.wait(timeout=60)
    for r in ready:
        os.unlink(r)
    received = sum(o["received"] for o in outputs)
    span = max(o["last"] for o in outputs) - min(o["first"] for o in outputs)
    return received / span if span > 0 else 0.0


def hub_fanouts(port, runs, results):
    """The hub fan-out to 1,000 subscribers on a topic without history and on one with it,
    interleaved run by run (this machine's speed drifts), medians."""
    url = ["wss://127.0.0.1:%d/hub" % port]
    plain, kept = [], []
    for _ in range(runs):
        plain.append(hub_fanout(url, 1000, 300))
        kept.append(hub_fanout(url, 1000, 300, topic="kept.bench"))
    results["hub_fanout_per_s"] = statistics.median(plain)
    results["hub_fanout_history_per_s"] = statistics.median(kept)
    print("wssgate hub fan-out: %.0f messages delivered/s (1,000 subscribers); with history: %.0f (%.2f×)  (runs: %s / %s)" % (
        results["hub_fanout_per_s"], results["hub_fanout_history_per_s"],
        results["hub_fanout_history_per_s"] / results["hub_fanout_per_s"],
        ", ".join("%.0f" % r for r in plain), ", ".join("%.0f" % r for r in kept)), flush=True)


def start_cluster(directory, cert, key, nodes=3):
    """redis-server on a Unix socket and `nodes` gateways sharing topics through it."""
    redis_socket = os.path.join(directory, "redis.sock")
    spawn(["redis-server", "--port", "0", "--unixsocket", redis_socket, "--save", "", "--appendonly", "no",
           "--dir", directory], stdout=subprocess.DEVNULL)
    deadline = time.time() + 10
    while not os.path.exists(redis_socket) and time.time() < deadline:
        time.sleep(0.05)
    ports = []
    for index in range(nodes):
        port = free_port()
        conf = os.path.join(directory, "node%d.yaml" % index)
        with open(conf, "w") as f:
            f.write(gateway_head(port, cert, key) + """routes:
""" + HUB_AND_NO_ADMIN + """cluster:
  redis: "unix:%(redis)s"
  node: node%(index)d
""" % {"redis": redis_socket, "index": index})
        spawn([GATEWAY, "run", "--config", conf], stderr=open(os.path.join(directory, "node%d.log" % index), "w"))
        wait_port(port)
        ports.append(port)
    time.sleep(1.5)  # every node linked and subscribed
    return ports


def startup_ms(argv, conf_text, directory, runs):
    """exec → READY=1: the gateway started as systemd would (NOTIFY_SOCKET, a datagram socket of
    ours), the time from spawning it to its readiness notification; the median of `runs`."""
    times = []
    for index in range(runs):
        argv_run = list(argv)
        if conf_text is not None:
            conf = os.path.join(directory, "startup-%d.yaml" % index)
            with open(conf, "w") as f:
                f.write(conf_text % {"port": free_port()})
            argv_run += ["--config", conf]
        path = os.path.join(directory, "notify-%d" % index)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(path)
        listener.settimeout(15)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        if conf_text is None:
            env["WSSGATE_LISTENERS_MAIN_ADDRESS"] = "127.0.0.1:%d" % free_port()
            env["WSSGATE_ADMIN_ADDRESS"] = "off"
        start = time.perf_counter()
        proc = subprocess.Popen(argv_run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=directory)
        try:
            deadline = start + 15
            while b"READY=1" not in listener.recv(4096).split(b"\n"):
                if time.perf_counter() > deadline:
                    raise RuntimeError("%s: no READY=1 within 15 s" % " ".join(argv_run))
            times.append((time.perf_counter() - start) * 1000)
        finally:
            listener.close()
            os.unlink(path)
            stop(proc)
    return statistics.median(times)


def startup(directory, cert, key, backend_port, runs):
    """Start-up times of the static binary: with certificate files and one echo route; with the
    benchmark's own configuration (two supervised workers linked before READY=1, a proxy route);
    and the embedded default (a certificate generated at start, the chat worker)."""
    files = gateway_head(0, cert, key).replace('"127.0.0.1:0"', '"127.0.0.1:%(port)d"') + """routes:
  echo:
    path: /echo
    kind: echo
admin:
  address: "off"
"""
    with open(os.path.join(directory, "wssgate.yaml")) as f:
        bench_conf = f.read()
    bench_conf = re.sub(r'address: "127\.0\.0\.1:\d+"', 'address: "127.0.0.1:%(port)d"', bench_conf, count=1)
    return {
        "certificate files, one echo route": startup_ms([GATEWAY, "run"], files, directory, runs),
        "the benchmark's configuration (2 workers linked, a proxy route)": startup_ms([GATEWAY, "run"], bench_conf.replace("%", "%%").replace("%%(port)d", "%(port)d"), directory, runs),
        "embedded default (certificate generated at start, chat worker)": startup_ms([GATEWAY, "run"], None, directory, runs),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    # 10,000 proxied connections need 20,000 descriptors in one process; this machine's hard
    # limit is 20,000 and cannot be raised here, so 9,000 (for every setup alike).
    parser.add_argument("--idle", type=int, default=9_000)
    parser.add_argument("--churn", action="store_true", help="only the open-and-close rounds (a quick look, no report)")
    parser.add_argument("--memory", action="store_true", help="only the fresh idle-memory setups (with --only: some of them; a quick look, no report)")
    parser.add_argument("--settle", type=float, default=6.0, help="seconds the idle connections are held before memory is read")
    parser.add_argument("--only", default="", help="run only setups whose name contains this, or one of these (comma-separated; a quick look, no report)")
    parser.add_argument("--fanout", action="store_true", help="only the hub fan-out, without and with history (a quick look, no report)")
    parser.add_argument("--profile", action="store_true", help="perf record each setup (with --only: some of them) during one round-trip run per size; build/bench/profile.json")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="wgbench")
    os.chmod(directory, 0o755)
    cert, key = certificate(directory)
    results = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
               "runs": args.runs, "idle_connections": args.idle, "settle": args.settle, "setups": {}}
    try:
        if args.memory:
            fresh_idle_memory(directory, cert, key, args.idle, args.only, args.settle)
            return
        backend, backend_port = start_backend()
        if args.fanout:
            _, gateway_port = start_wssgate(directory, cert, key, backend_port)
            hub_fanouts(gateway_port, args.runs, results)
            return
        nginx, nginx_port = start_nginx(directory, cert, key, backend_port)
        haproxy, haproxy_port = start_haproxy(directory, cert, key, backend_port)
        caddy, caddy_port = start_caddy(directory, cert, key, backend_port)
        app, app_port = start_http_app()
        gateway, gateway_port = start_wssgate(directory, cert, key, backend_port, app_port)
        ceiling, ceiling_port = start_ceiling(directory, cert, key)
        setups = [
            Setup("nginx → backend", "wss://127.0.0.1:%d/" % nginx_port, [nginx, backend], nginx_port),
            Setup("HAProxy → backend", "wss://127.0.0.1:%d/" % haproxy_port, [haproxy, backend], haproxy_port),
            Setup("Caddy → backend", "wss://127.0.0.1:%d/" % caddy_port, [caddy, backend], caddy_port),
            Setup("wssgate proxy → backend", "wss://127.0.0.1:%d/proxy" % gateway_port, [gateway, backend], gateway_port),
            Setup("wssgate proxy (frames) → backend", "wss://127.0.0.1:%d/proxy-frames" % gateway_port, [gateway, backend], gateway_port),
            Setup("wssgate worker", "wss://127.0.0.1:%d/worker" % gateway_port, [gateway], gateway_port),
            Setup("wssgate http → app", "wss://127.0.0.1:%d/http" % gateway_port, [gateway, app], gateway_port),
            Setup("wssgate echo", "wss://127.0.0.1:%d/echo" % gateway_port, [gateway], gateway_port),
            Setup(CEILING, "wss://127.0.0.1:%d/" % ceiling_port, [ceiling], ceiling_port),
        ]
        if args.churn or not args.only:
            results["churn"] = churn(directory, cert, key, backend_port, 2000, 5)
            print("wssgate echo, 5 rounds of 2,000 connections opened and closed: %s bytes per connection open; PSS %s KiB closed (fresh: %d KiB)" % (
                ", ".join("%.0f" % v for v in results["churn"]["open_bytes_per_connection"]),
                ", ".join("%d" % v for v in results["churn"]["closed_kib"]), results["churn"]["base_kib"]), flush=True)
            if args.churn:
                return
        if args.only:
            setups = [setup for setup in setups if any(part in setup.name for part in args.only.split(","))]
        if args.profile:
            profiles(setups, args.seconds)
            return
        results["startup_ms"] = startup(directory, cert, key, backend_port, max(args.runs, 5))
        for name, value in results["startup_ms"].items():
            print("wssgate start-up, exec → READY=1, %s: %.0f ms" % (name, value), flush=True)
        # Round robin: run k of every setup, then run k+1. This machine's speed drifts by tens
        # of percent over minutes (other tenants); setups measured one after the other would
        # each get a different machine, while interleaved they share its ups and downs.
        measured = {(setup.name, size): [] for setup in setups for size in (32, 4096)}
        shaken = {setup.name: [] for setup in setups}
        for _ in range(args.runs):
            for setup in setups:
                for size in (32, 4096):
                    measured[(setup.name, size)].append(round_trips(setup, size, args.seconds))
                shaken[setup.name].append(handshakes(setup, 4))
        for setup in setups:
            figures = {}
            for size in (32, 4096):
                runs = measured[(setup.name, size)]
                for key_name in ("rps", "p50_us", "p99_us", "cpu_per_100k", "generator_cpu_per_100k"):
                    figures["%s_%d" % (key_name, size)] = statistics.median(r[key_name] for r in runs)
                print("%-26s %5d B: %8.0f rt/s  p50 %6d µs  p99 %6d µs  cpu %.2f s/100k, generator %.2f  (runs: %s)" % (
                    setup.name, size, figures["rps_%d" % size], figures["p50_us_%d" % size], figures["p99_us_%d" % size],
                    figures["cpu_per_100k_%d" % size], figures["generator_cpu_per_100k_%d" % size],
                    ", ".join("%.0f" % r["rps"] for r in runs)), flush=True)
            figures["handshakes_per_s"] = statistics.median(shaken[setup.name])
            print("%-26s handshakes %.0f/s" % (setup.name, figures["handshakes_per_s"]), flush=True)
            results["setups"][setup.name] = figures
        if not args.only:
            hub_fanouts(gateway_port, args.runs, results)
            ports = start_cluster(directory, cert, key)
            urls = ["wss://127.0.0.1:%d/hub" % port for port in ports]
            rate = statistics.median(hub_fanout(urls, 999, 300) for _ in range(args.runs))
            results["cluster_fanout_per_s"] = rate
            print("wssgate cluster fan-out: %.0f messages delivered/s (3 nodes through Redis, 999 subscribers)" % rate, flush=True)
        # The processes above have served every setup: idle memory is measured on new ones.
        for proc in reversed(started):
            stop(proc)
        started.clear()
        results["memory"] = fresh_idle_memory(directory, cert, key, args.idle, args.only, args.settle)
    finally:
        for proc in reversed(started):
            stop(proc)
    if args.only:
        return
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    subprocess.run([PY, os.path.join(ROOT, "scripts", "bench", "report.py"), os.path.join(OUT, "results.json")], check=True)


if __name__ == "__main__":
    main()
