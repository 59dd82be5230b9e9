#!/usr/bin/env python3
"""make size: where the static binary's bytes go, from the linker's map, and the budget.

  size.py --map build/static/wssgate.map --binary build/static/wssgate.unstripped \
          --stripped build/static/wssgate --budget 26000000

Prints the size of every component (our modules, each dependency, the Swift runtime,
FoundationEssentials, full Foundation, ICU, BoringSSL, libc, unwind tables), then fails (exit 1)
when the stripped binary is over the budget or any ICU data symbol (icudt) is linked in. Reads
GNU gold's and LLVM lld's map formats."""
import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

OURS = {"GatewayCore", "GatewayConfigLoader", "GatewayTLS", "GatewayWebSocket", "GatewayEdge", "GatewayLogging",
        "GatewayHub", "GatewayWorkers", "GatewayProxy", "GatewayAdmin", "GatewayCluster", "GatewayACME", "GatewayAuth",
        "GatewayMetrics", "WorkerProtocol", "Systemd", "WSSGateWorker", "RedisClient", "ExampleWorkers", "wssgate"}
# Sections that take no room in the file.
NOBITS = (".bss", ".tbss")
UNWIND = (".eh_frame", ".eh_frame_hdr", ".gcc_except_table")


def component(path):
    """The component an input file belongs to, by its path."""
    if path.strip() == "<internal>":
        return "linker-made or merged (relocations, GOT, string merging)"
    name = os.path.basename(path.split("(")[0])
    # A package's object, as SwiftPM built it (X.build/file.o) or as static-trim.py copied it
    # (objects/X.build__file.o).
    module = re.search(r"/([A-Za-z0-9_]+)\.build(?:/|__[^/]*$)", path)
    if module:
        module = module.group(1)
        if module in OURS:
            return "wssgate's own modules"
        if "BoringSSL" in module:
            return "BoringSSL (%s)" % module
        return "Swift package: " + module
    if re.match(r"libicu|lib_FoundationICU", name) or "icudt" in name:
        return "ICU"
    if name in ("libFoundation.a", "libCoreFoundation.a", "libFoundationInternationalization.a", "libFoundationNetworking.a"):
        return "full Foundation"
    if name.startswith(("libFoundationEssentials", "lib_FoundationCShims", "lib_FoundationCollections", "lib_FoundationCore")):
        return "FoundationEssentials"
    if name.startswith(("libswift", "libdispatch", "libBlocksRuntime", "swiftrt")):
        return "Swift runtime and standard library"
    if name.startswith("libyaml"):
        return "libyaml"
    if name.startswith("libz."):
        return "zlib"
    if name.startswith(("libc.", "libm.", "libm-", "libpthread", "libdl", "librt", "libgcc", "libstdc++", "libresolv", "crt", "libc_nonshared",
                        "libutil", "libmvec")) or "/crt" in path:
        return "libc, libgcc and C++ runtime"
    return "other (%s)" % name


def parse_lld(lines, outputs):
    """lld: `VMA LMA Size Align Out In Symbol`. The column a row's name starts in says what it
    is: an output section, an input section (`file:(section)`), or a symbol (left out)."""
    sizes = []
    output = None
    for line in lines:
        row = re.match(r"^\s*[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+ (\s*)(.*)$", line)
        if not row:
            continue
        size, indent, rest = int(row.group(1), 16), len(row.group(2)), row.group(3)
        if indent == 0:
            output = rest.strip()
            outputs[output] = outputs.get(output, 0) + size
        elif indent == 8 and output:
            sizes.append((output, rest.rsplit(":(", 1)[0], size))
    return sizes


def parse_gold(lines, outputs):
    """gold/bfd: ` .section  0xADDR  0xSIZE file` rows (long names wrap to the next line); the
    output sections' own sizes go into `outputs`."""
    sizes = []
    output = None
    for line in lines:
        top = re.match(r"^(\.[^\s]+|swift5_\S+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)", line)
        if top:
            output = top.group(1)
            outputs[output] = outputs.get(output, 0) + int(top.group(2), 16)
            continue
        if re.match(r"^(\.[^\s]+|swift5_\S+)\s*$", line):
            output = line.strip()
            continue
        row = re.match(r"^ (\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if row and output:
            sizes.append((output, row.group(4).strip(), int(row.group(3), 16)))
    return sizes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--map", required=True)
    parser.add_argument("--binary", required=True, help="the unstripped binary (for nm)")
    parser.add_argument("--stripped", required=True)
    parser.add_argument("--budget", type=int, required=True)
    args = parser.parse_args()
    lines = open(args.map, errors="replace").read().splitlines()
    is_lld = any(line.split()[:7] == ["VMA", "LMA", "Size", "Align", "Out", "In", "Symbol"] for line in lines[:5])
    outputs = {}
    rows = parse_lld(lines, outputs) if is_lld else parse_gold(lines, outputs)
    if not rows:
        sys.exit("size: no input sections found in %s" % args.map)

    def counted(section):
        return not (section.startswith(NOBITS) or section.startswith(".debug") or section in (".comment", ".symtab", ".strtab", ".shstrtab"))

    by_component = defaultdict(int)
    attributed = defaultdict(int)
    for output, path, size in rows:
        if not counted(output) or output.startswith(UNWIND):
            continue
        by_component[component(path)] += size
        attributed[output] += size
    # The linker merges unwind tables and makes some sections itself: counted from the output.
    unwind = sum(size for section, size in outputs.items() if section.startswith(UNWIND))
    unattributed = sum(max(size - attributed.get(section, 0), 0) for section, size in outputs.items()
                       if counted(section) and not section.startswith(UNWIND))
    if unattributed:
        by_component["linker-made or merged (relocations, GOT, string merging)"] += unattributed
    total = sum(by_component.values()) + unwind
    stripped = os.path.getsize(args.stripped)
    print("%-64s %10s" % ("component (allocated sections, from %s's map)" % ("lld" if is_lld else "gold"), "MB"))
    for name, size in sorted(by_component.items(), key=lambda item: -item[1]):
        if size >= 50_000:
            print("%-64s %10.2f" % (name, size / 1e6))
    small = sum(size for size in by_component.values() if size < 50_000)
    print("%-64s %10.2f" % ("everything under 50 kB", small / 1e6))
    print("%-64s %10.2f" % ("unwind tables (.eh_frame, .eh_frame_hdr, .gcc_except_table)", unwind / 1e6))
    print("%-64s %10.2f" % ("total", total / 1e6))
    print("%-64s %10.2f  (budget %.2f)" % ("stripped binary " + args.stripped, stripped / 1e6, args.budget / 1e6))
    symbols = subprocess.run(["nm", args.binary], capture_output=True, text=True).stdout
    icu = [line for line in symbols.splitlines() if "icudt" in line]
    print("icudt symbols: %d" % len(icu))
    failed = False
    if icu:
        print("size: ICU data is linked in (full Foundation?): " + icu[0], file=sys.stderr)
        failed = True
    if stripped > args.budget:
        print("size: %s is %d bytes, over the budget of %d" % (args.stripped, stripped, args.budget), file=sys.stderr)
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
