"""The soak's verdict and its drawing: the checks of docs/reliability.md on what the run recorded,
a CSV of the samples, a PNG over time with the faults marked, and the summary (published into
docs/reliability.md between its markers with `--publish`)."""
import csv
import os
import re

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")
#: How far memory and descriptors may drift over the last two thirds of a run.
FLAT = 0.05
#: The probe's p99 bound (a round trip on a gateway that stays up, through every fault).
P99_BOUND_MS = 250


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def percentile(values, p):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def drift(samples, key):
    """How much `key` moved over the last two thirds of the run: the mean of that window's second
    half against its first half's (one gateway restart or a burst of reconnects moves single
    samples; a leak moves the halves)."""
    if not samples:
        return 0.0
    end = samples[-1]["t"]
    window = [s[key] for s in samples if s["t"] >= end / 3 and s.get(key) is not None]
    if len(window) < 4:
        return 0.0
    half = len(window) // 2
    first, second = sum(window[:half]) / half, sum(window[half:]) / (len(window) - half)
    return (second - first) / first if first else 0.0


def verdict(soak):
    failures = []
    record = soak.record
    by_kind = {}
    for _, kind, detail in record.errors:
        by_kind.setdefault(kind, []).append(detail)
    for kind, details in sorted(by_kind.items()):
        failures.append("%d %s error(s), first: %s" % (len(details), kind, details[0]))
    # Two minutes are warm-up more than a run: flatness is judged on runs of ten minutes or more.
    for key in ("rss_a", "held_fds_a") if soak.seconds >= 600 else ():
        moved = drift(soak.samples, key)
        if abs(moved) > FLAT:
            failures.append("%s drifted %+.1f%% over the last two thirds (at most %d%%)" % (key, moved * 100, FLAT * 100))
    p99 = percentile([seconds for _, seconds in record.latencies], 99) * 1000
    if p99 > P99_BOUND_MS:
        failures.append("probe p99 %.0f ms (at most %d ms)" % (p99, P99_BOUND_MS))
    if sum(soak.finals.values()) == 0:
        failures.append("nothing was published")
    return failures


def figures(soak):
    record = soak.record
    answered = sum(record.answered.values())
    return {
        "minutes": soak.seconds / 60,
        "faults": len(soak.faults),
        "publications": sum(soak.finals.values()),
        "deliveries": sum(s.received for s in soak.subscribers),
        "history_errors": sum(1 for _, kind, _ in record.errors if kind == "history"),
        "answered": answered,
        "lost_documented": sum(record.lost.values()),
        "unanswered": sum(record.unanswered.values()),
        "p99_ms": percentile([seconds for _, seconds in record.latencies], 99) * 1000,
        "rss_drift": drift(soak.samples, "rss_a") * 100,
        "fds_drift": drift(soak.samples, "held_fds_a") * 100,
        "rss_end": next((s["rss_a"] for s in reversed(soak.samples) if s.get("rss_a")), 0),
        "crashes": sum(1 for _, kind, _ in record.errors if kind == "crash"),
    }


def summary(soak, failures):
    f = figures(soak)
    lines = [
        "| | |",
        "|---|---|",
        "| duration | %.0f min, %d faults (%s) |" % (f["minutes"], f["faults"], ", ".join(sorted({k for _, k in soak.faults}))),
        "| history topics | %d publications, %d deliveries to resuming subscribers; lost, duplicated or reordered: %d |"
        % (f["publications"], f["deliveries"], f["history_errors"]),
        "| worker, http, proxy, echo, h2 requests | %d answered; %d lost with a documented close or a cut network; %d unanswered on an open connection |"
        % (f["answered"], f["lost_documented"], f["unanswered"]),
        "| per route | %s |" % ", ".join("%s %d/%d" % (route, record_count, soak.record.lost.get(route, 0))
                                         for route, record_count in sorted(soak.record.answered.items())),
        "| losses the gateways counted | %s |" % ", ".join("%s %d" % (name.replace("wssgate_", ""), value)
                                                          for name, value in sorted(soak.lost_metrics.items())),
        "| latency | probe p99 %.1f ms (bound %d ms) |" % (f["p99_ms"], P99_BOUND_MS),
        "| gateway a (never restarted) | RSS %.1f MiB at the end; drift over the last two thirds: RSS %+.1f%%, descriptors besides the clients' and upstreams' sockets %+.1f%% (bound ±%d%%, judged from 10 minutes) |"
        % (f["rss_end"], f["rss_drift"], f["fds_drift"], FLAT * 100),
        "| crashes | %d |" % f["crashes"],
        "| verdict | %s |" % ("passed" if not failures else "FAILED: " + "; ".join(failures)),
    ]
    return "\n".join(lines) + "\n"


def plot(soak, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    samples = soak.samples
    t = [s["t"] / 60 for s in samples]
    figure, axes = plt.subplots(5, 1, figsize=(10, 12), sharex=True)
    panels = [
        ("RSS (MiB)", ["rss_a", "rss_b"]),
        ("descriptors", ["fds_a", "fds_b", "held_fds_a"]),
        ("connections", ["connections_a", "connections_b"]),
        ("probe p99 (ms, 10 s window)", ["p99_ms"]),
        ("errors (cumulative)", ["errors"]),
    ]
    for axis, (title, keys) in zip(axes, panels):
        for key in keys:
            axis.plot(t, [s.get(key) for s in samples], label=key.replace("_", " "))
        axis.set_ylabel(title)
        if len(keys) > 1:
            axis.legend(loc="upper left", fontsize="small")
        for at, _ in soak.faults:
            axis.axvline((at - soak.started) / 60, color="grey", alpha=0.2, linewidth=0.8)
    axes[-1].set_xlabel("minutes (grey lines: faults)")
    figure.suptitle("wssgate soak: two gateways, every route kind, %d faults" % len(soak.faults))
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def write(soak, failures, publish=False):
    with open(os.path.join(soak.out, "samples.csv"), "w", newline="") as f:
        keys = sorted({key for s in soak.samples for key in s})
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(soak.samples)
    with open(os.path.join(soak.out, "faults.csv"), "w") as f:
        for at, kind in soak.faults:
            f.write("%.1f,%s\n" % (at - soak.started, kind))
    with open(os.path.join(soak.out, "errors.txt"), "w") as f:
        for at, kind, detail in soak.record.errors:
            f.write("%.1f %s %s\n" % (at - soak.started, kind, detail))
    text = summary(soak, failures)
    with open(os.path.join(soak.out, "summary.md"), "w") as f:
        f.write(text)
    plot(soak, os.path.join(soak.out, "soak.png"))
    if publish:
        plot(soak, os.path.join(DOCS, "reliability.png"))
        path = os.path.join(DOCS, "reliability.md")
        with open(path) as f:
            doc = f.read()
        doc = re.sub(r"(<!-- soak -->\n).*?(<!-- /soak -->)", lambda m: m.group(1) + text + m.group(2), doc, flags=re.S)
        with open(path, "w") as f:
            f.write(doc)
