"""Where an idle connection's heap goes: a fresh gateway under heaptrack, N idle wss://
connections held, and the heap at its peak broken down by owner, in bytes per connection
(`make heap-profile`; docs/benchmarks.md, "Where the memory goes").

heaptrack preloads itself, so the gateway must be a dynamically linked build, with symbols for
the owners to be named: `make heap-profile` builds one in .build-heap. The figures are bytes
malloc'd, not resident: a large buffer of which one page was ever written counts in full here
and as one page in PSS (scripts/bench.py --memory measures PSS)."""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import bench  # noqa: E402  (scripts/bench.py: the benchmark's gateway, certificate and idle clients)

# Owner, and a pattern for a demangled frame. A stack belongs to the first owner (in this order)
# matched among the four frames nearest its allocation (inlined frames come in either order),
# else to the nearest frame any owner matches: an object made while a read is handled counts for
# its own type, not the read.
OWNERS = [
    ("swift-nio-ssl: outbound buffer (ByteBufferBIO)", r"ByteBufferBIO"),
    ("BoringSSL: SSL object, session, AEAD contexts", r"^(SSL_|ssl_|bssl|CRYPTO_|OPENSSL_|EVP_|CBB|CBS)|CNIOBoringSSL|SSLConnection"),
    ("swift-nio-ssl: plaintext read buffer", r"NIOSSLHandler\.handlerAdded"),
    ("swift-nio-ssl: handler and its pending-write ring", r"NIOSSLHandler\.init|NIOSSLServerHandler"),
    ("zlib streams", r"deflateInit|inflateInit|\bdeflate|\binflate|Zlib|Compress"),
    ("NIO: timers", r"scheduleTask|scheduleCallback|ScheduledTask"),
    ("wssgate: session", r"WebSocketSessionHandler"),
    ("wssgate: session directory", r"SessionDirectory"),
    ("wssgate: hub subscriptions", r"TopicHub|HubSession|Subscription|HubRoute"),
    ("NIO: WebSocket frame decoder and encoder", r"ByteToMessageHandler|WebSocketFrameDecoder|WebSocketFrameEncoder"),
    ("NIO: receive buffer", r"BaseStreamSocketChannel\.readFromSocket|RecvByteBufferAllocator"),
    ("wssgate: upgrade, connection registry, metrics", r"HTTPConnectionHandler|GatewayServer|ConnectionRegistry|RouteMetrics"),
    ("NIO: channel, pipeline, pending writes", r"SocketChannel\.init|BaseSocketChannel|ChannelPipeline|ChannelHandlerContext|PendingStreamWrites|AcceptHandler"),
]
PLUMBING = r"swift_|malloc|realloc|calloc|operator new|Storage\.|allocate|_ContiguousArrayBuffer|ByteBufferAllocator|ManagedBuffer|posix_memalign"


def profile(binary, route, connections, directory):
    """Runs the gateway under heaptrack with `connections` idle ones held; returns the data file."""
    output = os.path.join(directory, "heap")
    wrapper = os.path.join(directory, "gateway.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec heaptrack -o %s %s "$@"\n' % (output, binary))
    os.chmod(wrapper, 0o755)
    bench.GATEWAY = wrapper  # the gateway only: its workers stay the static binary
    cert, key = bench.certificate(directory)
    proc, port = bench.start_wssgate(directory, cert, key, 9)
    time.sleep(2)
    variant = {"echo-deflate": "deflate", "hub": "subscribe"}.get(route, "")
    url = "wss://127.0.0.1:%d/%s" % (port, route)
    setup = bench.Setup(route, url, [proc], port)
    before = bench.open_files(setup.pids())
    clients, hold = bench.hold_idle(url, 1, variant)
    bench.release_idle(clients, hold, setup, before)
    clients, hold = bench.hold_idle(url, connections, variant)
    time.sleep(3)
    bench.release_idle(clients, hold, setup, before)
    # heaptrack runs the gateway as its child and writes its file when that child exits.
    for pid in bench.family(proc.pid):
        try:
            if os.path.realpath("/proc/%d/exe" % pid) == os.path.realpath(binary):
                os.kill(pid, 15)
        except OSError:
            pass
    proc.wait(timeout=60)
    bench.started.remove(proc)
    return output + ".zst", connections // bench.CLIENT_PROCESSES * bench.CLIENT_PROCESSES


def breakdown(data, connections):
    """Peak heap by owner, bytes per connection, with the largest call sites of each."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".stacks") as out:
        subprocess.run(["heaptrack_print", "-f", data, "--print-peaks", "0", "--print-allocators", "0",
                        "--print-leaks", "0", "--print-temporary", "0", "-F", out.name,
                        "--flamegraph-cost-type", "peak"], capture_output=True, check=True)
        stacks = out.read()
    rows = [line.rpartition(" ") for line in stacks.splitlines() if line.strip()]
    frames = sorted({frame for stack, _, _ in rows for frame in stack.split(";")})
    names = subprocess.run(["swift-demangle", "--simplified", "--compact"], input="\n".join(frames),
                           capture_output=True, text=True, check=True).stdout.splitlines()
    readable = dict(zip(frames, names))
    totals, sites = collections.Counter(), collections.defaultdict(collections.Counter)
    for stack, _, cost in rows:
        path = [readable.get(frame, frame) for frame in stack.split(";")]
        near = [frame for frame in path if frame and not re.search(PLUMBING, frame)]
        owner = next((name for name, pattern in OWNERS if any(re.search(pattern, frame) for frame in near[-4:])), None)
        for frame in reversed(near):
            if owner:
                break
            owner = next((name for name, pattern in OWNERS if re.search(pattern, frame)), None)
        owner = owner or "other (the process's own, not per connection)"
        totals[owner] += int(cost)
        sites[owner][" < ".join(frame[:60] for frame in reversed(near[-2:])) or "?"] += int(cost)
    return {owner: (total / connections, sites[owner].most_common(3)) for owner, total in totals.most_common()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="a dynamically linked gateway with symbols")
    parser.add_argument("--route", default="echo", choices=["echo", "echo-deflate", "hub", "worker"])
    parser.add_argument("--connections", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wgh") as directory:
        data, count = profile(os.path.abspath(args.binary), args.route, args.connections, directory)
        figures = breakdown(data, count)
    print("peak heap per idle wss:// connection, route %s, %d connections (bytes malloc'd):" % (args.route, count))
    for owner, (per_connection, top) in figures.items():
        print("%8.0f  %s" % (per_connection, owner))
        for site, cost in top:
            if cost / count >= 16:
                print("          %6.0f  %s" % (cost / count, site))
    print("%8.0f  in all" % sum(value for value, _ in figures.values()))


if __name__ == "__main__":
    try:
        main()
    finally:
        for proc in list(bench.started):
            bench.stop(proc)
