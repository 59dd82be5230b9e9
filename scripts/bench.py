#!/usr/bin/env python3
"""make bench: wssgate side by side with nginx, same machine, same run, same load generator.

Setups (all TLS on loopback, the same certificate):
  1. nginx (TLS) → picows echo backend      the tutorial's architecture, the baseline
  2. wssgate proxy route → the same backend
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
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                total += int(re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M).group(1))
        except (OSError, AttributeError):
            pass
    return total


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


# The hub route every benchmark gateway has, and no admin API.
HUB_AND_NO_ADMIN = """  hub:
    path: /hub
    kind: hub
    compression: { enabled: false }
    hub:
      publish: ["*"]
admin:
  address: "off"
"""


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


def start_wssgate(directory, cert, key, backend_port):
    port = free_port()
    conf = os.path.join(directory, "wssgate.yaml")
    with open(conf, "w") as f:
        f.write(gateway_head(port, cert, key) + """routes:
  echo:
    path: /echo
    kind: echo
    compression: { enabled: false }
  proxy:
    path: /proxy
    kind: proxy
    proxy:
      upstream: "ws://127.0.0.1:%(backend)d/"
  worker:
    path: /worker
    kind: worker
    worker:
      command: "%(worker)s"
      args: [worker, echo]
      instances: 2
""" % {"backend": backend_port, "worker": ECHO_WORKER} + HUB_AND_NO_ADMIN)
    proc = spawn([GATEWAY, "run", "--config", conf], stderr=open(os.path.join(directory, "wssgate.log"), "w"))
    wait_port(port)
    time.sleep(1.0)  # the worker linked
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
    return {"rps": count / elapsed, "p50_us": percentile(latencies, 0.5), "p99_us": percentile(latencies, 0.99),
            "cpu_per_100k": cpu / count * 100_000 if count else 0}


def open_files(pids):
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            pass
    return total


def idle_memory(setup, connections):
    hold = tempfile.mktemp(prefix="wgb-hold")
    open(hold, "w").close()
    files_before = open_files(setup.pids())
    before = pss_kib(setup.pids())
    clients = [subprocess.Popen([PY, LOAD, "idle", setup.url, str(connections // CLIENT_PROCESSES), hold], stdout=subprocess.PIPE, text=True)
               for _ in range(CLIENT_PROCESSES)]
    for client in clients:
        line = client.stdout.readline()
        assert line.startswith("ready"), line
    time.sleep(2.0)
    after = pss_kib(setup.pids())
    os.unlink(hold)
    for client in clients:
        client.wait(timeout=120)
    # Wait until the setup has let go of the connections (the backend is shared by the next
    # setup, and its descriptors are limited).
    deadline = time.time() + 120
    while open_files(setup.pids()) > files_before + 100 and time.time() < deadline:
        time.sleep(0.5)
    return (after - before) * 1024 / connections


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
    result = subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % setup.port, "-new", "-time", str(seconds)],
                            capture_output=True, text=True, timeout=seconds + 60)
    m = re.search(r"(\d+) connections in ([\d.]+) real seconds", result.stdout)
    return int(m.group(1)) / float(m.group(2)) if m else 0.0


def hub_fanout(urls, subscribers, messages):
    """One publisher on urls[0]; the subscribers spread evenly over the urls (one subscriber
    process per url, or CLIENT_PROCESSES on a single one)."""
    targets = urls if len(urls) > 1 else urls * CLIENT_PROCESSES
    ready = [tempfile.mktemp(prefix="wgb-ready") for _ in targets]
    subs = [subprocess.Popen([PY, LOAD, "sub", url, str(subscribers // len(targets)), "bench", str(messages), r],
                             stdout=subprocess.PIPE, text=True) for url, r in zip(targets, ready)]
    deadline = time.time() + 120
    while not all(os.path.exists(r) for r in ready) and time.time() < deadline:
        time.sleep(0.1)
    pub = subprocess.Popen([PY, LOAD, "pub", urls[0], "bench", str(messages), "16"])
    outputs = [json.loads(s.communicate(timeout=300)[0]) for s in subs]
    pub.wait(timeout=60)
    for r in ready:
        os.unlink(r)
    received = sum(o["received"] for o in outputs)
    span = max(o["last"] for o in outputs) - min(o["first"] for o in outputs)
    return received / span if span > 0 else 0.0


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
    parser.add_argument("--only", default="", help="run only setups whose name contains this, or one of these (comma-separated; a quick look, no report)")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="wgbench")
    os.chmod(directory, 0o755)
    cert, key = certificate(directory)
    results = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
               "runs": args.runs, "idle_connections": args.idle, "setups": {}}
    try:
        backend, backend_port = start_backend()
        nginx, nginx_port = start_nginx(directory, cert, key, backend_port)
        gateway, gateway_port = start_wssgate(directory, cert, key, backend_port)
        setups = [
            Setup("nginx → backend", "wss://127.0.0.1:%d/" % nginx_port, [nginx, backend], nginx_port),
            Setup("wssgate proxy → backend", "wss://127.0.0.1:%d/proxy" % gateway_port, [gateway, backend], gateway_port),
            Setup("wssgate worker", "wss://127.0.0.1:%d/worker" % gateway_port, [gateway], gateway_port),
            Setup("wssgate echo", "wss://127.0.0.1:%d/echo" % gateway_port, [gateway], gateway_port),
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
                for key_name in ("rps", "p50_us", "p99_us", "cpu_per_100k"):
                    figures["%s_%d" % (key_name, size)] = statistics.median(r[key_name] for r in runs)
                print("%-26s %5d B: %8.0f rt/s  p50 %6d µs  p99 %6d µs  cpu %.2f s/100k  (runs: %s)" % (
                    setup.name, size, figures["rps_%d" % size], figures["p50_us_%d" % size], figures["p99_us_%d" % size],
                    figures["cpu_per_100k_%d" % size], ", ".join("%.0f" % r["rps"] for r in runs)), flush=True)
            figures["handshakes_per_s"] = statistics.median(shaken[setup.name])
            print("%-26s handshakes %.0f/s" % (setup.name, figures["handshakes_per_s"]), flush=True)
            results["setups"][setup.name] = figures
        # Idle memory: PSS of every process of the setup (the backend counts for setups 1 and 2,
        # the worker for setup 3), before and after opening the connections.
        for setup in setups:
            memory = idle_memory(setup, args.idle)
            results["setups"][setup.name]["idle_bytes_per_connection"] = memory
            print("%-26s idle %.0f bytes per connection" % (setup.name, memory), flush=True)
        if args.only:
            return
        rate = statistics.median(hub_fanout(["wss://127.0.0.1:%d/hub" % gateway_port], 1000, 300) for _ in range(args.runs))
        results["hub_fanout_per_s"] = rate
        print("wssgate hub fan-out: %.0f messages delivered/s (1,000 subscribers)" % rate, flush=True)
        ports = start_cluster(directory, cert, key)
        urls = ["wss://127.0.0.1:%d/hub" % port for port in ports]
        rate = statistics.median(hub_fanout(urls, 999, 300) for _ in range(args.runs))
        results["cluster_fanout_per_s"] = rate
        print("wssgate cluster fan-out: %.0f messages delivered/s (3 nodes through Redis, 999 subscribers)" % rate, flush=True)
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
