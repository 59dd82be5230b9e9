"""Turns build/bench/results.json into docs/benchmarks.md (method, machine, table with ratios to
nginx) and docs/benchmarks.png (throughput and p99 latency per setup)."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def micro_table(path):
    """The package-benchmark text output as a table: wall time and mallocs per operation (p50)."""
    if not os.path.exists(path):
        return "(not run: `make micro-bench` writes build/bench/micro.txt)"
    rows, name, figures = [], None, {}
    for line in open(path, encoding="utf-8"):
        text = line.strip()
        if text and not text.startswith(("│", "╒", "╞", "├", "╘", "=")) and "Metric" not in text and text != "DataPath":
            if name and figures:
                rows.append((name, figures))
            name, figures = text, {}
        elif text.startswith("│") and name:
            cells = [c.strip() for c in text.strip("│").split("│")]
            if len(cells) > 3 and cells[0]:
                figures[cells[0]] = cells[3]
    if name and figures:
        rows.append((name, figures))
    lines = ["| operation | time p50 | mallocs p50 |", "| --- | --- | --- |"]
    for name, figures in rows:
        time_key = next((k for k in figures if k.startswith("Time (wall clock)")), None)
        unit = time_key[time_key.rfind("(") + 1:time_key.rfind(")")] if time_key else ""
        lines.append("| %s | %s %s | %s |" % (name, figures.get(time_key, "?"), unit, figures.get("Malloc (total) *", "?")))
    return "\n".join(lines)


def churn_figures(results):
    churn = results.get("churn")
    if not churn:
        return {"churn_open": "(not measured)", "churn_closed": "—", "churn_base": "—"}
    return {"churn_open": " → ".join("{:,.0f}".format(v) for v in churn["open_bytes_per_connection"]),
            "churn_closed": " → ".join("{:,}".format(int(v)) for v in churn["closed_kib"]),
            "churn_base": "{:,}".format(int(churn["base_kib"]))}


def memory_table(results):
    """Idle memory per connection on new processes, one row per setup, ratios against the first."""
    figures = results.get("memory")
    if not figures:
        return "(not measured)"
    names = list(figures)
    first = figures[names[0]]
    lines = ["| setup | connections | PSS | RSS | kernel: socket buffers | kernel: slab (both ends) | PSS of the setup, fresh | processes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        f = figures[name]
        ratio = "" if name == names[0] or not f["pss"] else " (%.2f×)" % (first["pss"] / f["pss"])
        lines.append("| %s | {:,} | **{:,.0f}**%s | {:,.0f} | {:,.0f} | {:,.0f} | {:,} KiB | %s |".format(
            f["connections"], f["pss"], f["rss"], f["socket_buffers"], f["slab"], int(f["fresh_pss_kib"])) % (name, ratio, f.get("processes", "—")))
    return "\n".join(lines) + hibernation_note(figures)


def hibernation_note(figures):
    """The worker route running against hibernated: what the whole setup holds at 10,000."""
    running, asleep = figures.get("wssgate worker"), figures.get("wssgate worker, hibernated")
    if not running or not asleep:
        return ""

    def total_mib(f):
        return (f["fresh_pss_kib"] * 1024 + f["pss"] * f["connections"]) / 2**20

    return ("\n\nHibernated, the worker route held its %s connections with %d process%s instead of %d, "
            "**%.1f MiB** in all (PSS) against %.1f MiB with its two workers running: the gateway's share "
            "of a connection is the same either way (the bundled echo worker keeps next to nothing "
            "per connection), so what hibernation saves is the worker processes themselves, and "
            "whatever a real worker keeps per connection." % (
                "{:,}".format(asleep["connections"]), asleep.get("processes", 0),
                "" if asleep.get("processes", 0) == 1 else "es", running.get("processes", 0),
                total_mib(asleep), total_mib(running)))


def main(path):
    with open(path) as f:
        results = json.load(f)
    setups = results["setups"]
    names = list(setups)
    base = setups[names[0]]

    def ratio(value, reference, lower_is_better=False):
        if not reference or not value:
            return "—"
        r = reference / value if lower_is_better else value / reference
        return "%.2f×" % r

    rows = [
        ("round trips/s, 32 B", "rps_32", False, "%.0f"),
        ("p50 latency, 32 B (µs)", "p50_us_32", True, "%.0f"),
        ("p99 latency, 32 B (µs)", "p99_us_32", True, "%.0f"),
        ("round trips/s, 4 KiB", "rps_4096", False, "%.0f"),
        ("p50 latency, 4 KiB (µs)", "p50_us_4096", True, "%.0f"),
        ("p99 latency, 4 KiB (µs)", "p99_us_4096", True, "%.0f"),
        ("CPU s per 100k round trips, 32 B", "cpu_per_100k_32", True, "%.2f"),
        ("CPU s per 100k round trips, 4 KiB", "cpu_per_100k_4096", True, "%.2f"),
        ("load generator's CPU s per 100k, 32 B", "generator_cpu_per_100k_32", True, "%.2f"),
        ("load generator's CPU s per 100k, 4 KiB", "generator_cpu_per_100k_4096", True, "%.2f"),
        ("new TLS handshakes/s", "handshakes_per_s", False, "%.0f"),
    ]
    lines = ["| figure | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for label, key, lower, fmt in rows:
        cells = []
        for name in names:
            value = setups[name].get(key)
            text = fmt % value if value is not None else "—"
            if name != names[0]:
                text += " (%s)" % ratio(value, base.get(key), lower)
            cells.append(text)
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    table = "\n".join(lines)
    memory = memory_table(results)

    micro = micro_table(os.path.join(os.path.dirname(path), "micro.txt"))
    # Hand-written (profiles, heap profiles and a patched swift-nio-ssl are not part of a run):
    # copied as they are.
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "where-the-time-goes.md"), encoding="utf-8") as f:
        time_notes = f.read()
    with open(os.path.join(here, "where-the-memory-goes.md"), encoding="utf-8") as f:
        memory_notes = f.read()
    startup = "\n".join("- %s: **%.0f ms**" % (name, value) for name, value in results.get("startup_ms", {}).items()) or "(not measured)"
    machine = results["machine"]
    # The run's figures beside the report, machine-readable.
    with open(os.path.join(ROOT, "docs", "benchmarks.json"), "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "w") as f:
        f.write("""# Benchmarks

Written by `make bench` (scripts/bench.py, scripts/bench/report.py): wssgate side by side with
nginx, HAProxy and Caddy on the same machine, in the same run, driven by the same load
generator. Every figure of the run is in [benchmarks.json](benchmarks.json), for a later run to
be compared with.

## Method

- **Setups**, all TLS on loopback with the same P-256 certificate:
  1. nginx (TLS, `worker_processes auto`) → a picows echo backend (uvloop, one process): the
     tutorial's architecture and the baseline; HAProxy (HTTP mode, a thread per CPU) and Caddy
     (`reverse_proxy`), as Debian ships them, in front of the same backend;
  2. wssgate `proxy` route → the same backend;
  3. wssgate `worker` route → the Swift echo worker over Unix sockets: two instances, one per
     CPU as nginx has one worker process per CPU (a link per event loop to each instance;
     connections pinned to the least busy instance, over its link on their own loop, so the
     worker's replies are handled on the client's thread); the worker takes its events on the
     link's event loop, `Worker.listen(_:handler:)`;
  4. wssgate `http` route → `scripts/bench/http_echo_app.py`, the smallest HTTP/1.1 keep-alive
     app we could write on the same runtime as the backend of setup 1 (uvloop, one process):
     every message is a `POST` (docs/http-backend.md) answered with the message itself as
     `text/plain` or `application/octet-stream`, over up to 100 keep-alive connections — an
     app's own web stack answering each WebSocket message, which nginx cannot do at all;
  5. wssgate `echo` route: the gateway's own ceiling;
  6. the generator ceiling: `scripts/bench/ceiling.c`, the cheapest TLS WebSocket echo we
     could write (C, a thread per CPU with its own epoll set, Debian's OpenSSL 3 with
     read-ahead, no checks, no limits): how many round trips the load generator can drive at
     all on this machine, and so the most any setup can show.
- **Builds**: the static binary that ships, `make static` (release, linked statically against
  glibc, `-enforce-exclusivity=unchecked` in every module, trimmed at link time; the tests run
  debug builds, which keep the checks), whose `wssgate worker echo` is the echo worker; nginx
  as Debian ships it.
- **Load**: %(clients)d picows client processes (uvloop), 100 connections in all, one message in
  flight per connection; %(runs)d runs per figure, the median reported, taken round robin (run 1
  of every setup, then run 2…) so that the machine's drift over minutes, which is large here,
  falls on every setup alike. Latency is sampled on every 16th round trip.
- **CPU**: user + system seconds of every process of the setup (the backend and the worker
  included) per 100,000 round trips, at each size; beside it the load generator's own CPU per
  100,000 round trips (both client processes), which it takes from the same 2 CPUs.
- **Memory**: on new processes for every setup (a new gateway, nginx, backend…): "before" once
  they have started and served one warm-up connection, "after" with %(idle)s idle `wss://`
  connections open and held %(settle)s s; the difference divided by their number. PSS and RSS
  of every process of the setup (the backend and the worker included); the kernel's memory
  beside it: the setup's own TCP sockets' buffers (`ss -m`, receive and send queues, forward
  allocation and options; the load generator's sockets left out) and the machine's slab
  (`/proc/meminfo`), which holds the socket structures of both ends on loopback.
- **TLS handshakes**: `openssl s_time -new` (full handshakes, no resumption), %(clients)d client
  processes at once, their rates summed.
- **Hub fan-out** (wssgate only; nginx has no equivalent): one publisher, 1,000 subscribers,
  300 messages; messages delivered per second across all subscribers; once on a topic without
  history and once on one with it, run by run.
- The load generator shares the machine's %(cpus)d CPUs with the setup under test: the figures
  compare setups with each other, they are not a capacity claim.

Machine: %(cpus)d CPUs, Linux %(kernel)s, Python %(python)s.

## Results

Ratios in parentheses are against setup 1 (higher is better; for latency, CPU and memory the
ratio is nginx's figure divided by ours, so higher is better there too).

%(table)s

Memory per idle `wss://` connection, bytes, each setup on new processes (ratio: nginx's PSS
divided by the setup's). The deflate row negotiates permessage-deflate on every connection;
the hub row subscribes every connection to a topic of its own. The two worker rows are the same
route, with the bundled echo worker (`wssgate worker echo`, two instances): running, and
hibernated (`worker.min_instances: 0`, nothing sent: no worker process starts, the gateway holds
every connection alone), each with 10,000 connections (one descriptor each; the proxies need two
per connection, and this machine's limit of 20,000 holds them to 9,000); "processes" counts the
setup's processes with the connections open.
`scripts/bench.py --memory --only "wssgate worker"` runs only these two.

%(memory)s

Hub fan-out: **%(hub).0f messages delivered per second** (1,000 subscribers on one gateway).
On a topic with history (`hub.history`, in memory: every publish recorded, with its offset,
before it is delivered): **%(hub_history).0f** per second, %(history_ratio)s of the rate without
(`scripts/bench.py --fanout` runs only these two, interleaved).

Cross-node fan-out: **%(cluster).0f messages delivered per second** with three gateways sharing
the topic through one redis-server (docs/cluster.md): 999 subscribers spread evenly over the
three, the publisher on the first; %(cluster_ratio)s of the single-node figure above, in the same
run, on the same 2 CPUs (three gateways and Redis share them with the load generator).

Memory given back: on a fresh gateway, 2,000 idle `wss://` connections to the echo route opened
and closed five times (`scripts/bench.py --churn` runs only this). PSS per connection while they
are open, round by round: **%(churn_open)s bytes**; the gateway's PSS after each close:
%(churn_closed)s KiB (%(churn_base)s KiB fresh). glibc keeps the pages of freed memory, so
without a trim each round touched pages the last one had left (measured when the trim was
added, same command: 26,804 → 42,242 → 51,496 → 56,940 → 60,502 bytes per connection, and
65 → 131 MB after the closes); the gateway now calls `malloc_trim(0)` off its event loops once
the connection count has fallen by 256 or more from its peak and held still for one 2-second
look (`HeapTrimPolicy`).

Start-up of the static binary, exec → `READY=1` (the gateway started as systemd starts it, with
`NOTIFY_SOCKET`; median of %(startup_runs)s starts; target under 100 ms with certificate files):

%(startup)s

![throughput and latency per setup](benchmarks.png)

%(time_notes)s
%(memory_notes)s
## Micro-benchmarks

`make micro-bench` (the `Benchmarks/` package, ordo-one `package-benchmark` with its malloc
interposer): the data path's pieces without sockets or TLS, per operation, medians.

%(micro)s
""" % {"micro": micro, "memory_notes": memory_notes, "time_notes": time_notes, "memory": memory, "settle": "%g" % results.get("settle", 6.0), "startup": startup, "startup_runs": max(results["runs"], 5), "clients": 2, "runs": results["runs"], "idle": "{:,}".format(results.get("idle_connections", 9000)), "cpus": machine["cpus"], "kernel": machine["kernel"],
       "python": machine["python"], "table": table, **churn_figures(results), "hub": results.get("hub_fanout_per_s", 0),
       "cluster": results.get("cluster_fanout_per_s", 0), "hub_history": results.get("hub_fanout_history_per_s", 0),
       "history_ratio": "%.2f×" % (results.get("hub_fanout_history_per_s", 0) / results["hub_fanout_per_s"]) if results.get("hub_fanout_per_s") else "n/a",
       "cluster_ratio": "%.2f×" % (results.get("cluster_fanout_per_s", 0) / results["hub_fanout_per_s"]) if results.get("hub_fanout_per_s") else "n/a"})

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    positions = range(len(names))
    width = 0.38
    left.bar([p - width / 2 for p in positions], [setups[n]["rps_32"] for n in names], width, label="32 B")
    left.bar([p + width / 2 for p in positions], [setups[n]["rps_4096"] for n in names], width, label="4 KiB")
    left.set_xticks(list(positions), names, rotation=15, fontsize=8)
    left.set_ylabel("echo round trips per second")
    left.legend()
    right.bar([p - width / 2 for p in positions], [setups[n]["p50_us_32"] / 1000 for n in names], width, label="p50, 32 B")
    right.bar([p + width / 2 for p in positions], [setups[n]["p99_us_32"] / 1000 for n in names], width, label="p99, 32 B")
    right.set_xticks(list(positions), names, rotation=15, fontsize=8)
    right.set_ylabel("latency (ms)")
    right.legend()
    fig.suptitle("wssgate and nginx, 100 connections over wss:// on loopback")
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, "docs", "benchmarks.png"), dpi=110)
    print(table)


if __name__ == "__main__":
    main(sys.argv[1])
