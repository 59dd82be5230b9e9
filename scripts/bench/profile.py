#!/usr/bin/env python3
"""Where a setup's CPU goes: `perf report` of a `perf record` taken during a round-trip run
(scripts/bench.py --profile), its samples summed by component and its top symbols listed.

    profile.py PERF_DATA [--top N]          prints a JSON object:
        {"samples": n, "components": {name: percent}, "top": [[percent, component, symbol]]}

The gateway is one static binary, so perf's "shared object" column says little about it; its
components are read from the symbol instead: Swift symbols carry their module in their mangling
(`$s7NIOCore…`), BoringSSL's are C and C++ names, the Swift runtime's start with `swift_`, and the
kernel's are marked `[k]`. Symbols are demangled with the toolchain's `swift demangle`.
"""
import argparse
import json
import re
import subprocess

# Swift modules, by the name their mangling carries, to the component a reader knows.
MODULES = [
    ("NIOSSL", "NIOSSL"),
    ("NIOPosix", "swift-nio"), ("NIOCore", "swift-nio"), ("NIOHTTP1", "swift-nio"),
    ("NIOWebSocket", "swift-nio"), ("NIOConcurrencyHelpers", "swift-nio"), ("NIOEmbedded", "swift-nio"),
    ("_NIODataStructures", "swift-nio"), ("NIOExtras", "swift-nio"), ("_NIOBase64", "swift-nio"),
    ("Gateway", "gateway"), ("WorkerProtocol", "gateway"), ("WSSGateWorker", "gateway"),
    ("wssgate", "gateway"), ("RedisClient", "gateway"), ("Systemd", "gateway"),
    ("Prometheus", "metrics"), ("CoreMetrics", "metrics"), ("Metrics", "metrics"),
    ("Logging", "logging"), ("Atomics", "swift-atomics"), ("Synchronization", "Swift runtime"),
]
# Shared objects of the other setups, by file name without the .so version.
OTHER_DSOS = {"libssl": "OpenSSL", "libcrypto": "OpenSSL", "libc": "libc", "libm": "libc",
              "libpython3.11": "Python backend", "python3.11": "Python backend", "[vdso]": "libc"}
SWIFT_RUNTIME = re.compile(r"^(swift_|_swift|\$ss|\$sS|_\$ss|__swift|swift::|\$s[0-9]*Swift)")
LIBC = re.compile(r"^(__?memcpy|__?memmove|__?memset|memcmp|__memcmp|malloc|free|_int_|calloc|realloc|cfree|"
                  r"__libc|__GI_|pthread|__pthread|epoll|__epoll|read$|write$|__read|__write|writev|__writev|"
                  r"readv|recv|send|syscall|__syscall|_dl_|__strlen|strlen|__errno|__lll|lll_|tcache|"
                  r"__clock|clock_gettime|__vdso|arena_|sysmalloc|unlink_chunk|malloc_consolidate|_IO_)")


def mangled_module(symbol):
    """The first module name in a Swift mangling ($s, then a length-prefixed identifier)."""
    match = re.match(r"^_?\$s(\d+)", symbol)
    if not match:
        return None
    length = int(match.group(1))
    start = match.end()
    return symbol[start:start + length]


def component(symbol, kernel, dso):
    if kernel:
        return "kernel"
    # Another program of the setup (nginx, the Python backend, the C ceiling) or a shared
    # library it loads: named by its file, since only the static gateway is read symbol by symbol.
    if not dso.startswith("wssgate"):
        if ".cpython-" in dso:
            return "Python backend"
        return OTHER_DSOS.get(re.sub(r"\.so.*$", "", dso), dso)
    module = mangled_module(symbol)
    if module is not None:
        for prefix, name in MODULES:
            if module.startswith(prefix):
                return name
        if module == "Swift" or module.startswith("_Swift"):
            return "Swift runtime"
        return "other Swift (%s)" % module
    if SWIFT_RUNTIME.match(symbol):
        return "Swift runtime"
    if LIBC.match(symbol):
        return "libc"
    if symbol.startswith("0x") or symbol.startswith("[unknown]"):
        return "unknown"
    # What is left in a static gateway is BoringSSL (C, and bssl:: C++).
    return "BoringSSL"


def demangle(symbols):
    mangled = [s for s in symbols if re.match(r"^_?\$s", s)]
    if not mangled:
        return {}
    try:
        out = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(mangled), capture_output=True,
                             text=True, timeout=60).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return dict(zip(mangled, out)) if len(out) == len(mangled) else {}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    report = subprocess.run(["perf", "report", "-i", args.data, "--no-children", "--sort", "dso,symbol", "--stdio",
                             "-g", "none", "--percent-limit", "0"], capture_output=True, text=True, check=True).stdout
    samples = 0
    rows = []
    for line in report.splitlines():
        counted = re.match(r"^# Samples: ([0-9.]+)([KM]?)", line)
        if counted:
            samples = int(float(counted.group(1)) * {"": 1, "K": 1_000, "M": 1_000_000}[counted.group(2)])
        entry = re.match(r"^\s+([0-9.]+)%\s+(\S+)\s+\[([k.])\]\s+(.+?)(?:\s+-\s+-)?\s*$", line)
        if entry:
            rows.append((float(entry.group(1)), entry.group(2), entry.group(3) == "k", entry.group(4)))
    components = {}
    for percent, dso, kernel, symbol in rows:
        name = component(symbol, kernel, dso)
        components[name] = components.get(name, 0.0) + percent
    names = demangle([symbol for _, _, _, symbol in rows[:args.top]])
    top = [[percent, component(symbol, kernel, dso), names.get(symbol, symbol)[:120]]
           for percent, dso, kernel, symbol in rows[:args.top]]
    ordered = dict(sorted(((k, round(v, 1)) for k, v in components.items()), key=lambda item: -item[1]))
    print(json.dumps({"samples": samples, "components": ordered, "top": top}))


if __name__ == "__main__":
    main()
