#!/usr/bin/env python3
"""Runs every fuzz target (or those named) under libFuzzer for a fixed time each, one after
the other, and prints a line per target: runs, coverage (edges and features), corpus, peak
memory, and the verdict. New inputs go to build/fuzz/corpus/<target> (the committed seeds in
Fuzz/Corpus/<target> are read, never written); a crash, leak, timeout or limit breach leaves
its input in build/fuzz/artifacts/<target>/ and fails the run.

    scripts/fuzz.py --binary .build-fuzz/debug/wssgate-fuzz --seconds 60 [target ...]
    scripts/fuzz.py --binary ... --merge [target ...]

--merge keeps what fuzzing found, small: libFuzzer's -merge=1 picks, from the inputs found and
the committed ones, a set with the same coverage, and the picked inputs that are not seeds or
regressions replace Fuzz/Corpus/<target>/cov-* (at most MERGE_LIMIT, smallest first), so make
test replays them.
"""
import argparse
import hashlib
import shutil
import tempfile
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Inputs may reach past the largest seed: a 64 KiB message, a configuration file.
MAX_LEN = {"websocket-session": 80_000, "http-edge": 20_000, "configuration": 16_384}


def run(binary, target, seconds, out):
    corpus = os.path.join(out, "corpus", target)
    artifacts = os.path.join(out, "artifacts", target) + os.sep
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    log_path = os.path.join(out, target + ".log")
    env = dict(os.environ, WSSGATE_FUZZ_TARGET=target, SWIFT_BACKTRACE="enable=no",
               ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0",
               LSAN_OPTIONS="suppressions=" + os.path.join(ROOT, "Fuzz", "lsan.supp"))
    command = [binary, "-max_total_time=%d" % seconds, "-timeout=10", "-rss_limit_mb=2048",
               # No single allocation over 256 MiB: the parsers bound what a peer may make them hold.
               "-malloc_limit_mb=256", "-max_len=%d" % MAX_LEN.get(target, 8192), "-print_final_stats=1",
               "-artifact_prefix=" + artifacts, corpus, os.path.join(ROOT, "Fuzz", "Corpus", target)]
    started = time.monotonic()
    with open(log_path, "w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    text = open(log_path, errors="replace").read()
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", text, re.M))
    last = re.findall(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", text, re.M)
    runs, cov, ft, corp, size = last[-1] if last else ("0", "?", "?", "?", "?")
    runs = stats.get("number_of_executed_units", runs)
    verdict = "ok" if code == 0 else "FAILED (exit %d, see %s)" % (code, log_path)
    print("%-18s %6.0f s  %10s runs  cov %5s  ft %6s  corpus %5s (%s)  rss %5s MB  %s"
          % (target, time.monotonic() - started, runs, cov, ft, corp, size, stats.get("peak_rss_mb", "?"), verdict),
          flush=True)
    return code == 0


MERGE_LIMIT = 300


def merge(binary, target, out):
    committed = os.path.join(ROOT, "Fuzz", "Corpus", target)
    found = os.path.join(out, "corpus", target)
    os.makedirs(found, exist_ok=True)
    picked = tempfile.mkdtemp(prefix="wgfm")
    env = dict(os.environ, WSSGATE_FUZZ_TARGET=target, SWIFT_BACKTRACE="enable=no",
               LSAN_OPTIONS="suppressions=" + os.path.join(ROOT, "Fuzz", "lsan.supp"))
    result = subprocess.run([binary, "-merge=1", "-max_len=%d" % MAX_LEN.get(target, 8192), picked, found, committed],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit("merge of %s failed:\n%s" % (target, result.stderr[-3000:]))
    def digest(path):
        return hashlib.sha1(open(path, "rb").read()).hexdigest()
    kept = {digest(os.path.join(committed, name)) for name in os.listdir(committed) if not name.startswith("cov-")}
    for name in os.listdir(committed):
        if name.startswith("cov-"):
            os.remove(os.path.join(committed, name))
    new = sorted((os.path.getsize(os.path.join(picked, name)), name) for name in os.listdir(picked)
                 if digest(os.path.join(picked, name)) not in kept)
    for _, name in new[:MERGE_LIMIT]:
        shutil.copy(os.path.join(picked, name), os.path.join(committed, "cov-" + digest(os.path.join(picked, name))[:12]))
    shutil.rmtree(picked)
    print("%-18s %d inputs kept in Fuzz/Corpus/%s (cov-*), of %d picked" % (target, min(len(new), MERGE_LIMIT), target, len(new)))


def target_names(binary):
    """The driver's own list (FuzzTarget.all), which it prints when no target is chosen."""
    env = {k: v for k, v in os.environ.items() if k != "WSSGATE_FUZZ_TARGET"}
    result = subprocess.run([binary, "-runs=0"], capture_output=True, text=True, env=env)
    match = re.search(r"one of: (.+)", result.stderr)
    if not match:
        sys.exit("%s did not list its targets:\n%s" % (binary, result.stderr))
    return [name.strip() for name in match.group(1).split(",")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "fuzz"))
    parser.add_argument("--merge", action="store_true", help="minimise the inputs found into Fuzz/Corpus")
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args()
    known = target_names(args.binary)
    targets = args.targets or known
    unknown = [t for t in targets if t not in known]
    if unknown:
        sys.exit("unknown targets: %s (known: %s)" % (", ".join(unknown), ", ".join(known)))
    if args.merge:
        for target in targets:
            merge(args.binary, target, args.out)
        return
    results = [run(args.binary, target, args.seconds, args.out) for target in targets]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
