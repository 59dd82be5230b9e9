"""`make soak`: two gateways in a cluster under a mixed workload on every route kind, with faults
on a schedule, for SOAK_MINUTES (30 by default). It checks the promises of docs/reliability.md —
every publication on a history topic delivered exactly once and in order through resumes, every
worker/http/proxy message answered or its loss documented, no crash, memory and descriptors flat
after warm-up, latency bounded — and draws the run (build/soak/: CSV, PNG, summary; with
`--publish`, docs/reliability.md's figures and plot)."""
import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Tests", "EndToEnd"))  # the h2 client

import soak_clients as clients  # noqa: E402
import soak_report as report  # noqa: E402
from soak_faults import Faults  # noqa: E402
from soak_processes import ChildProcess, Gateway, Redis, Relay, free_port, make_certificate  # noqa: E402

HISTORY_TOPICS = ["soak.h.%d" % n for n in range(4)]
FIREHOSE = "soak.live"


def node_config(binary, name, port, directory, redis, app_port, upstream_port, extra_route):
    extra = """  extra:
    path: /extra
    kind: echo
""" if extra_route else ""
    return """log:
  level: info
listeners:
  main:
    address: "127.0.0.1:%(port)d"
    tls:
      certificate: %(directory)s/fullchain.pem
      key: %(directory)s/privkey.pem
      http2: true
admin:
  address: "unix:%(directory)s/%(name)s-admin.sock"
cluster:
  redis: "unix:%(redis)s"
  node: %(name)s
routes:
  echo:
    path: /echo
    kind: echo
  hub:
    path: /hub
    kind: hub
    hub:
      subscribe: ["*"]
      publish: ["*"]
      history:
        topics: ["soak.h.*"]
        size: 1000000
  work:
    path: /work
    kind: worker
    worker:
      command: "%(binary)s"
      args: ["worker", "echo"]
      instances: 2
  app:
    path: /app
    kind: http
    http:
      url: http://127.0.0.1:%(app_port)d/
  bytes:
    path: /bytes
    kind: proxy
    proxy:
      upstream: ws://127.0.0.1:%(upstream_port)d/ws
  frames:
    path: /frames
    kind: proxy
    proxy:
      upstream: ws://127.0.0.1:%(upstream_port)d/ws
      mode: frames
      lost_close_code: 1012
%(extra)s""" % dict(port=port, directory=directory, name=name, redis=redis.socket, binary=binary,
                    app_port=app_port, upstream_port=upstream_port, extra=extra)


class Soak:
    def __init__(self, binary, minutes, out):
        self.binary = os.path.abspath(binary)
        self.seconds = minutes * 60
        self.out = out
        self.directory = tempfile.mkdtemp(prefix="wgsoak")
        os.chmod(self.directory, 0o755)
        self.record = clients.Record()
        self.samples = []  # dicts: time, rss/fds/connections per node, p99, errors

    def start(self):
        make_certificate(self.directory)
        self.redis = Redis(self.directory)
        self.app = ChildProcess("soak_app.py", free_port())
        self.upstream = ChildProcess("soak_upstream.py", free_port())
        ports = {"a": free_port(), "b": free_port()}
        self.configs = {}
        self.nodes = {}
        for name, port in ports.items():
            self.configs[name] = lambda extra, name=name, port=port: node_config(
                self.binary, name, port, self.directory, self.redis, self.app.port, self.upstream.port, extra)
            self.nodes[name] = Gateway(self.binary, name, self.directory, self.configs[name](False), port)
        self.relay = Relay(ports["a"])

    def urls(self, path):
        """Where a client connects: either gateway, or gateway A through the faulty network."""
        ports = [self.nodes["a"].port, self.nodes["b"].port, self.relay.port]
        return lambda: ["wss://127.0.0.1:%d%s" % (port, path) for port in ports]

    async def workload(self, stop):
        record = self.record
        subscribers = [clients.Subscriber(self.urls("/hub"), topic, record)
                       for topic in HISTORY_TOPICS for _ in range(10)]
        tasks = [asyncio.create_task(s.run(stop)) for s in subscribers]
        deadline = time.time() + 60
        while not all(s.position for s in subscribers):
            if time.time() > deadline:
                raise RuntimeError("subscribers did not all subscribe within a minute")
            await asyncio.sleep(0.1)
        publishers = [clients.Publisher(self.urls("/hub"), topic, record, rate=10) for topic in HISTORY_TOPICS]
        tasks += [asyncio.create_task(p.run(stop)) for p in publishers]
        for route, count in (("work", 8), ("app", 8), ("bytes", 6), ("frames", 6), ("echo", 4)):
            tasks += [asyncio.create_task(clients.Requester(self.urls("/" + route), route, record).run(stop))
                      for _ in range(count)]
        tasks.append(asyncio.create_task(clients.Churner(self.urls("/echo"), record, per_second=5).run(stop)))
        tasks += [asyncio.create_task(clients.SlowConsumer(self.urls("/hub"), FIREHOSE, record).run(stop))
                  for _ in range(3)]
        tasks.append(asyncio.create_task(clients.Firehose(self.urls("/hub"), FIREHOSE, record, rate=50).run(stop)))
        tasks.append(asyncio.create_task(
            clients.Probe("wss://127.0.0.1:%d/echo" % self.nodes["a"].port, record).run(stop)))
        for _ in range(2):
            h2 = clients.H2Requester(lambda: random.choice([self.nodes["a"].port, self.nodes["b"].port]), record)
            threading.Thread(target=h2.run, args=(stop,), daemon=True).start()
        self.subscribers, self.publishers = subscribers, publishers
        return tasks

    def sample(self, started):
        now = time.time()
        entry = {"t": now - started}
        for name, node in self.nodes.items():
            try:
                entry["rss_%s" % name] = report.rss_mib(node.proc.pid)
                entry["fds_%s" % name] = report.fds(node.proc.pid)
                active = node.metrics_by_route("wssgate_connections_active")
                entry["connections_%s" % name] = sum(active.values())
                # What the node holds besides its clients' sockets and the proxied ones' upstream
                # sockets: listeners, links, pools, Redis. Clients move between the nodes with
                # the faults; this does not, unless something leaks.
                entry["held_fds_%s" % name] = entry["fds_%s" % name] - entry["connections_%s" % name] - sum(
                    active.get(route, 0) for route in ("bytes", "frames"))
            except (OSError, ValueError):
                for key in ("rss", "fds", "connections", "held_fds"):
                    entry["%s_%s" % (key, name)] = None
        with self.record.lock:
            window = [seconds for at, seconds in self.record.latencies if at > now - 10]
            entry["errors"] = len(self.record.errors)
        entry["p99_ms"] = report.percentile(window, 99) * 1000 if window else None
        self.samples.append(entry)

    async def run(self):
        stop = asyncio.Event()
        started = self.started = time.time()
        tasks = await self.workload(stop)
        faults = Faults(self)
        interval = min(30.0, max(8.0, self.seconds / 60))
        warmup = min(60.0, self.seconds / 8)
        next_fault = started + warmup
        next_sample = started
        while time.time() - started < self.seconds:
            if time.time() >= next_sample:
                await asyncio.to_thread(self.sample, started)
                next_sample += 2
            if time.time() >= next_fault:
                await asyncio.to_thread(faults.next)
                next_fault = time.time() + interval
            for name, node in self.nodes.items():
                if node.proc.poll() is not None and not faults.draining(name):
                    self.record.error("crash", "gateway %s exited with %s" % (name, node.proc.returncode))
                    await asyncio.to_thread(node.start)
            await asyncio.sleep(0.5)
        self.faults = faults.done
        # Publishing stops; every subscriber must then catch up with every publication.
        for publisher in self.publishers:
            publisher.interval = 3600
        await asyncio.sleep(1)
        finals = {p.topic: p.published for p in self.publishers}
        deadline = time.time() + 120
        while any(s.last < finals[s.topic] for s in self.subscribers) and time.time() < deadline:
            await asyncio.sleep(0.5)
        for s in self.subscribers:
            if s.last < finals[s.topic]:
                self.record.error("history", "%s: a subscriber has %d of %d" % (s.topic, s.last, finals[s.topic]))
        self.finals = finals
        stop.set()
        for s in self.subscribers:
            if s.ws is not None:
                await s.ws.close()
        await asyncio.wait(tasks, timeout=20)
        self.lost_metrics = {}
        for name, node in self.nodes.items():
            totals = node.metrics()
            for metric in ("wssgate_worker_messages_lost_total", "wssgate_http_backend_messages_lost_total",
                           "wssgate_cluster_messages_lost_total"):
                self.lost_metrics[metric] = self.lost_metrics.get(metric, 0) + totals.get(metric, 0)

    def stop(self):
        for node in self.nodes.values():
            node.stop()
        for part in (self.app, self.upstream, self.redis):
            part.stop()

    def verdict(self):
        return report.verdict(self)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    parser.add_argument("--out", default="build/soak")
    parser.add_argument("--publish", action="store_true", help="write docs/reliability.md's figures and plot")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    soak = Soak(args.binary, args.minutes, args.out)
    soak.start()
    try:
        asyncio.run(soak.run())
    finally:
        soak.stop()
    failures = soak.verdict()
    report.write(soak, failures, publish=args.publish)
    print(open(os.path.join(args.out, "summary.md")).read())
    if failures:
        print("SOAK FAILED:\n- " + "\n- ".join(failures))
        sys.exit(1)
    print("soak passed")


if __name__ == "__main__":
    main()
