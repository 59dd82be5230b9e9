#!/usr/bin/env python3
"""Links the static gateway again without the unwind tables of its Swift code (make static).

Swift code needs no unwind tables to run: Swift errors are return values, not exceptions; no
C++ exception is caught across a Swift frame here (the Swift runtime and BoringSSL are built
without exceptions); and debuggers and profilers walk Swift stacks by frame pointers, which
Swift keeps. What does need its tables keeps them: libc, libgcc, libstdc++ and the Swift
runtime's own C++ (the C and C++ members of the toolchain's archives, left as they are) —
discarding every unwind table aborts at start. The compiler has no switch to leave them out, so
this takes the link command SwiftPM ran (its build manifest), copies the Swift objects of the
packages (ours and the dependencies') and the Swift members of the toolchain's Swift archives
without `.eh_frame`, and runs the same command on those copies. Measured by `make size`: 1.5 MB
of the stripped binary for the packages' objects, 1.15 MB more for the toolchain's.
"""
import argparse
import json
import os
import re
import subprocess
import sys


def link_command(manifest, product):
    """The arguments of the manifest's link command for the product."""
    text = open(manifest, encoding="utf-8").read()
    match = re.search(r'\n  "C\.%s-[^"]*\.exe":\n(.*?)\n\n' % re.escape(product), text, re.S)
    if not match:
        sys.exit("static-trim: no link command for %s in %s" % (product, manifest))
    args = re.search(r"\n    args: (\[.*\])", match.group(1))
    if not args:
        sys.exit("static-trim: the link command for %s has no args" % product)
    return json.loads(args.group(1))


# The toolchain archives whose Swift members are copied without unwind tables: Swift code
# only (the standard library, Concurrency's and Dispatch's Swift parts, FoundationEssentials and
# what it brings); the runtime's C++ members in the same archives are left as they are.
TOOLCHAIN_SWIFT_ARCHIVES = [
    "libswiftCore.a",
    "libswift_Concurrency.a",
    "libswiftDispatch.a",
    "libswiftSynchronization.a",
    "libswift_StringProcessing.a",
    "libswift_RegexParser.a",
    "libFoundationEssentials.a",
    "lib_FoundationCollections.a",
]


def toolchain_static_dir(command):
    """The toolchain's swift_static/linux directory, next to the swiftc the link runs."""
    swiftc = os.path.realpath(command[0])
    return os.path.join(os.path.dirname(os.path.dirname(swiftc)), "lib", "swift_static", "linux")


def trim_archive(source, copy):
    """Copies an archive with its Swift members (`*.swift.o`, or the one whole-module object
    named after the library) stripped of `.eh_frame`."""
    members = subprocess.run(["ar", "t", source], capture_output=True, text=True, check=True).stdout.split()
    module = os.path.basename(source)[3:-2]
    swift = [m for m in members if m.endswith(".swift.o") or m == module + ".o" or m == "Swift.o"]
    work = copy + ".d"
    subprocess.run(["rm", "-rf", work], check=True)
    os.makedirs(work)
    subprocess.run(["cp", source, copy + ".tmp"], check=True)
    if swift:
        subprocess.run(["ar", "x", os.path.abspath(source)] + swift, cwd=work, check=True)
        for member in swift:
            path = os.path.join(work, member)
            subprocess.run(["objcopy", "--remove-section=.eh_frame", "--remove-section=.rela.eh_frame", path], check=True)
        subprocess.run(["ar", "r", os.path.abspath(copy + ".tmp")] + swift, cwd=work, check=True)
    subprocess.run(["ranlib", copy + ".tmp"], check=True)
    os.replace(copy + ".tmp", copy)
    subprocess.run(["rm", "-rf", work], check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scratch", required=True, help="SwiftPM's scratch path of the static build")
    parser.add_argument("--product", required=True)
    parser.add_argument("--objects", required=True, help="where the trimmed objects go")
    parser.add_argument("--output", required=True)
    parser.add_argument("--map", required=True, help="the link map to write")
    args = parser.parse_args()

    command = link_command(os.path.join(args.scratch, "release.yaml"), args.product)
    build_root = os.path.realpath(args.scratch)
    os.makedirs(args.objects, exist_ok=True)
    trimmed, listed = 0, []
    for index, arg in enumerate(command):
        if not arg.startswith("@"):
            continue
        for line in open(arg[1:], encoding="utf-8").read().splitlines():
            path = line.strip()
            if len(path) > 1 and path[0] == path[-1] and path[0] in "'\"":
                path = path[1:-1]
            if not path:
                continue
            if path.endswith(".swift.o") and os.path.realpath(path).startswith(build_root + os.sep):
                # objects/<Module>.build__<file>.o: make size still tells the modules apart.
                module = os.path.basename(os.path.dirname(path))
                copy = os.path.join(args.objects, (module + "__" + os.path.basename(path)).replace(" ", "_"))
                if not os.path.exists(copy) or os.path.getmtime(copy) < os.path.getmtime(path):
                    subprocess.run(["objcopy", "--remove-section=.eh_frame", "--remove-section=.rela.eh_frame", path, copy], check=True)
                trimmed += 1
                path = copy
            listed.append(path)
        file_list = os.path.join(args.objects, "objects.list")
        with open(file_list, "w", encoding="utf-8") as f:
            f.write("".join("'%s'\n" % p.replace("'", "'\\''") for p in listed))
        command[index] = "@" + file_list
    # The toolchain's Swift libraries, likewise: their Swift objects lose their unwind tables,
    # their C and C++ objects (the runtime's) keep theirs. The copies are named before any
    # library: lld takes each symbol from the first archive that defines it.
    libraries = os.path.join(args.objects, "toolchain")
    os.makedirs(libraries, exist_ok=True)
    static_dir = toolchain_static_dir(command)
    copies = []
    for name in TOOLCHAIN_SWIFT_ARCHIVES:
        source = os.path.join(static_dir, name)
        copy = os.path.join(libraries, name)
        if not os.path.exists(source):
            continue
        if not os.path.exists(copy) or os.path.getmtime(copy) < os.path.getmtime(source):
            trim_archive(source, copy)
        copies.append(os.path.abspath(copy))
    command[1:1] = copies
    # The same link, to another file, with a map of where the bytes go.
    out = command.index("-o")
    command[out + 1] = args.output
    kept, skip = [], False
    for i, arg in enumerate(command):
        if skip:
            skip = False
            continue
        if arg == "-Xlinker" and i + 1 < len(command) and command[i + 1].startswith("-Map="):
            skip = True
            continue
        kept.append(arg)
    kept += ["-Xlinker", "-Map=" + os.path.abspath(args.map)]
    subprocess.run(kept, check=True)
    print("static-trim: %s linked again with %d Swift objects without unwind tables" % (args.output, trimmed))


if __name__ == "__main__":
    main()
