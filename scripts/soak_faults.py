"""The soak's faults, one after another on a schedule, each kind in turn: what operators and
networks do to a gateway in production."""
import os
import random
import signal
import threading
import time

from soak_processes import make_certificate


class Faults:
    def __init__(self, soak):
        self.soak = soak
        self.done = []  # (time, kind)
        self.reloaded = False
        self._draining = set()
        self.kinds = [
            ("kill -9 a worker", self.kill_worker),
            ("kill -9 the http app", self.kill_app),
            ("restart the upstream", self.restart_upstream),
            ("reload with a route added or removed", self.reload_routes),
            ("certificate renewed", self.renew_certificate),
            ("network: stall 3 s", lambda: self.soak.relay.stall(3)),
            ("restart Redis", self.soak.redis.restart),
            ("drain gateway b", self.drain_b),
            ("network: connections cut", self.soak.relay.cut),
            ("Redis cut off 4 s", lambda: self.soak.redis.pause(4)),
            ("network: 200 ms delay for 5 s", self.delay),
        ]
        self.index = 0

    def next(self):
        kind, action = self.kinds[self.index % len(self.kinds)]
        self.index += 1
        self.done.append((time.time(), kind))
        action()

    def draining(self, name):
        return name in self._draining

    def kill_worker(self):
        node = self.soak.nodes[random.choice(["a", "b"])]
        workers = node.workers()
        if workers:
            os.kill(random.choice(workers), signal.SIGKILL)

    def kill_app(self):
        self.soak.app.kill()
        time.sleep(2)
        self.soak.app.start()

    def restart_upstream(self):
        self.soak.upstream.kill()
        time.sleep(1)
        self.soak.upstream.start()

    def reload_routes(self):
        self.reloaded = not self.reloaded
        for name, node in self.soak.nodes.items():
            node.write_config(self.soak.configs[name](self.reloaded))
            node.reload()

    def renew_certificate(self):
        # certbot's deploy hook: new files in place, then a reload.
        make_certificate(self.soak.directory)
        for node in self.soak.nodes.values():
            node.reload()

    def drain_b(self):
        node = self.soak.nodes["b"]
        self._draining.add("b")
        try:
            status = node.drain()
            if status != 0:
                self.soak.record.error("crash", "gateway b exited with %s on SIGTERM" % status)
            time.sleep(2)
            node.start()
        finally:
            self._draining.discard("b")

    def delay(self):
        relay = self.soak.relay
        relay.delay = 0.2
        threading.Timer(5, lambda: setattr(relay, "delay", 0.0)).start()
