#!/usr/bin/env python3
"""Runs Autobahn|Testsuite's fuzzingclient against a freshly started wssgate.

Starts the given binary with Tests/Conformance/autobahn.yaml, learns the bound ports from its
log, runs wstest for each transport, and fails when any case's `behavior` is anything but OK
(INFORMATIONAL is accepted for 7.1.6, 7.13.1 and 7.13.2, which can have no other verdict) or its
`behaviorClose` is FAILED. Prints the counts.

With --route /proxied the gateway's proxy route sits in front of a Python websockets echo
server, and the cases that fail through it are run against that server directly too: a
byte-for-byte proxy can only be as conformant as its upstream, so there only FAILED counts
(and UNIMPLEMENTED for the deflate cases), the run names the cases the upstream fails on its
own, and exits non-zero only for cases the gateway adds.

With --route /framed the proxy route runs in `frames` mode in front of the same server: the
gateway ends the client's WebSocket itself, so the upstream's own failures no longer reach the
client and no case may fail. NON-STRICT is accepted there: when a client breaks the protocol
right after a message, the gateway fails it at once, before the upstream's echo of that message
has come back (3.2–3.4, 4.1.3–4.1.5, 4.2.3–4.2.5, 5.15).
"""
import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start_upstream():
    """A Python websockets echo server on a free loopback port (the proxy route's upstream)."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import asyncio, websockets\n"
        "async def echo(ws):\n"
        "    # Fragment by fragment: websockets caps fragments per assembled message.\n"
        "    try:\n"
        "        while True:\n"
        "            await ws.send(ws.recv_streaming())\n"
        "    except websockets.ConnectionClosed:\n"
        "        pass\n"
        "async def main():\n"
        "    async with websockets.serve(echo, '127.0.0.1', %d, max_size=None, compression='deflate'):\n"
        "        await asyncio.Future()\n"
        "asyncio.run(main())\n" % port
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the upstream echo server did not start")


def start_gateway(binary, config, extra=()):
    proc = subprocess.Popen(
        [binary, "run", "--config", config, "--set", "log.level=info", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    ports = {}
    deadline = time.time() + 30
    while time.time() < deadline and len(ports) < 2:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                raise SystemExit("wssgate exited early with status %s" % proc.returncode)
            continue
        m = re.search(r"msg=listening address=([\d.]+):(\d+) listener=(\w+)", line)
        if m:
            ports[m.group(3)] = int(m.group(2))
    if len(ports) < 2:
        proc.kill()
        raise SystemExit("wssgate did not report its listeners")
    # Keep draining its log so it never blocks on a full pipe.
    import threading
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, ports


def run_wstest(wstest, outdir, url, cases, exclude):
    """Runs the fuzzing client against `url`; returns {case: (behavior, behaviorClose)}."""
    os.makedirs(outdir, exist_ok=True)
    spec = {
        "outdir": outdir,
        "servers": [{"agent": "wssgate", "url": url}],
        "cases": cases,
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    }
    spec_path = os.path.join(outdir, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    result = subprocess.run(
        [wstest, "-m", "fuzzingclient", "-s", spec_path],
        cwd=outdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    if result.returncode != 0:
        print(result.stderr[-3000:])
        raise SystemExit("wstest failed with status %d" % result.returncode)
    with open(os.path.join(outdir, "index.json")) as f:
        index = json.load(f)["wssgate"]
    return {case: (o["behavior"], o["behaviorClose"]) for case, o in index.items()}


# The cases whose verdict can only be INFORMATIONAL (the suite records what a server did).
INFORMATIONAL_BY_DESIGN = {"7.1.6", "7.13.1", "7.13.2"}


def is_bad(case, behavior, close, strict=True):
    """Strict (the gateway's own routes): anything but OK, except the three cases that can
    only be INFORMATIONAL. Through the proxy route the upstream's own NON-STRICT answers pass
    through, so there only FAILED (and a deflate case left UNIMPLEMENTED) counts."""
    if close == "FAILED":
        return True
    if strict:
        return behavior != "OK" and not (behavior == "INFORMATIONAL" and case in INFORMATIONAL_BY_DESIGN)
    deflate_case = case.startswith("12.") or case.startswith("13.")
    return behavior == "FAILED" or (deflate_case and behavior == "UNIMPLEMENTED")


def case_key(case):
    return [int(x) for x in case.split(".")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--cases", default="*", help="comma-separated case patterns")
    parser.add_argument("--exclude", default="", help="comma-separated case patterns to skip")
    parser.add_argument("--transports", default="ws,wss")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "autobahn"))
    parser.add_argument("--wstest", default=os.path.join(ROOT, "build", "autobahn-venv", "bin", "wstest"))
    parser.add_argument("--route", default="/echo",
                        help="/echo; /proxied: the proxy route in front of a Python websockets echo server; "
                             "/framed: the same in frames mode")
    args = parser.parse_args()

    config = os.path.join(ROOT, "Tests", "Conformance", "autobahn.yaml")
    upstream = None
    extra = []
    framed = args.route == "/framed"
    if args.route in ("/proxied", "/framed"):
        upstream_process, upstream_port = start_upstream()
        name = args.route[1:]
        extra = ["--set", "routes.%s.kind=proxy" % name, "--set", "routes.%s.path=%s" % (name, args.route),
                 "--set", "routes.%s.proxy.upstream=ws://127.0.0.1:%d/" % (name, upstream_port)]
        if framed:
            # The same limits and compression as the echo route, which Autobahn's cases need.
            extra += ["--set", "routes.framed.proxy.mode=frames",
                      "--set", "routes.framed.max_message_bytes=64MiB",
                      "--set", "routes.framed.send_queue_bytes=64MiB",
                      "--set", "routes.framed.compression.server_no_context_takeover=false",
                      "--set", "routes.framed.compression.client_no_context_takeover=false"]
        upstream = None if framed else upstream_process
    proc, ports = start_gateway(args.binary, config, extra)
    failures = 0
    cases = 0
    upstream_only = []
    try:
        for transport in args.transports.split(","):
            port = ports["secure" if transport == "wss" else "plain"]
            started = time.time()
            index = run_wstest(args.wstest, os.path.abspath(os.path.join(args.out, transport)),
                               "%s://127.0.0.1:%d%s" % (transport, port, args.route),
                               args.cases.split(","), [c for c in args.exclude.split(",") if c])
            counts = collections.Counter(behavior for behavior, _ in index.values())
            bad = [case for case in sorted(index, key=case_key) if is_bad(case, *index[case], strict=upstream is None and not framed)]
            summary = ", ".join("%s %d" % (k, counts[k]) for k in sorted(counts))
            print("autobahn %s: %d cases in %.0f s: %s" % (transport, len(index), time.time() - started, summary))
            if upstream is not None and bad:
                # The same failing cases straight against the upstream, without the gateway.
                direct = run_wstest(args.wstest, os.path.abspath(os.path.join(args.out, transport + "-upstream-direct")),
                                    "ws://127.0.0.1:%d/" % upstream_port, bad, [])
                mine = [case for case in bad if is_bad(case, *direct.get(case, ("", "")), strict=False)]
                for case in mine:
                    print("  FAILED %s behavior=%s behaviorClose=%s: the upstream fails it on its own too (directly: %s/%s)"
                          % (case, index[case][0], index[case][1], *direct[case]))
                upstream_only += mine
                bad = [case for case in bad if case not in mine]
            for case in bad:
                print("  BAD %s behavior=%s behaviorClose=%s" % (case, *index[case]))
            failures += len(bad)
            cases += len(index)
            if proc.poll() is not None:
                raise SystemExit("wssgate died during the %s run (status %s)" % (transport, proc.returncode))
    finally:
        if args.route in ("/proxied", "/framed"):
            upstream_process.kill()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
    if upstream is not None:
        print("autobahn: %d passed, %d failed because of the gateway, %d failed by the upstream itself"
              % (cases - failures - len(upstream_only), failures, len(upstream_only)))
    else:
        print("autobahn: %d passed, %d failed" % (cases - failures, failures))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
