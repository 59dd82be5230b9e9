# wssgate — the two commands of the README, and the long runs behind their own targets.
#   make run          build (release) and start the gateway on its embedded default
#   make test         the whole test suite (format lint, unit, end-to-end, Autobahn sample); under 30 min
#   make format       rewrites the sources in swift-nio's style (.swift-format, 120 columns)
#   make build        release binaries at .build/release/ (wssgate and the example workers)
#   make conformance  every Autobahn case over ws:// and wss:// (about 30 min), and cases 1–10
#                     over wss:// through the proxy route (bytes and frames mode) to a Python websockets echo server
#   make system-test  the static binary and rootfs/ installed as the README says on Debian 12 with systemd
#                     as PID 1 (systemd-nspawn), certbot's files, socket activation, reload, renewal, stop
#   make bench        wssgate against nginx, side by side (docs/benchmarks.md); not in make test
#   make micro-bench  the data path's pieces: time and allocations per operation (Benchmarks/),
#                     checked against the stored thresholds in Benchmarks/Thresholds
#   make heap-profile an idle connection's heap by owner, under heaptrack (ROUTE=echo|echo-deflate|hub|worker)
#   make cpu-profile  where each setup's CPU goes, by component and symbol (perf record; SETUPS=wssgate,nginx,…)
#   make fuzz         every parser under libFuzzer with AddressSanitizer, FUZZ_SECONDS each (default 60);
#                     FUZZ_TARGETS="resp jwt" picks some (Fuzz/README.md)
#   make static       the fully static, stripped binary: build/static/wssgate
#   make size         the static binary's size by component (from the link map); fails past 26 MB or with ICU
#   make image        the FROM-scratch image (buildah); make image-test runs it with podman + runc
#                     and with the docker CLI against podman's API

SWIFT ?= swift
PYTHON := build/py/bin/python
DEBUG_BIN := .build/debug/wssgate
RELEASE_BIN := .build/release/wssgate
# Release builds skip the dynamic exclusivity checks, in every module (NIO's included): measured
# on the worker route's round trips, +6–10% (perf showed swift_beginAccess at about 3% of the
# gateway's time). Debug builds, which make test runs, keep them, so a violation still traps
# in the tests.
RELEASE_FLAGS := -Xswiftc -enforce-exclusivity=unchecked
# Autobahn cases run by `make test`: all of 1–10, and a sample of the permessage-deflate ones.
AUTOBAHN_SAMPLE := 1.*,2.*,3.*,4.*,5.*,6.*,7.*,8.*,9.*,10.*,12.1.*,12.2.1,12.3.1,12.4.1,12.5.1,13.1.*,13.2.1,13.3.1,13.5.1,13.7.*

.PHONY: soak tsan all build run test system-test lint format unit-test e2e-test autobahn-sample conformance deps clean static size image image-test bench micro-bench micro-bench-run heap-profile cpu-profile fuzz

all: build

build:
	@scripts/install-deps.sh build
	$(SWIFT) build -c release $(RELEASE_FLAGS)

run: build
	$(RELEASE_BIN) run

deps:
	@scripts/install-deps.sh test

# One build variant only (debug, with tests): the end-to-end suite runs the same binary.
test: deps lint
	$(SWIFT) build --build-tests
	$(MAKE) --no-print-directory unit-test e2e-test autobahn-sample

# swift-nio's .swift-format, applied with make format; make test fails on any finding.
FORMAT_PATHS := Package.swift Sources Tests Fuzz Benchmarks/Package.swift Benchmarks/Benchmarks
lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

format:
	$(SWIFT) format --in-place --recursive --parallel $(FORMAT_PATHS)

unit-test:
	$(SWIFT) test --skip-build

e2e-test:
	GATEWAY_BINARY=$(DEBUG_BIN) $(PYTHON) -m pytest -q -p no:cacheprovider Tests/EndToEnd

autobahn-sample:
	$(PYTHON) scripts/autobahn.py --binary $(DEBUG_BIN) --transports wss --out build/autobahn-sample --cases '$(AUTOBAHN_SAMPLE)'

conformance: deps build
	$(PYTHON) scripts/autobahn.py --binary $(RELEASE_BIN) --transports ws,wss --out build/autobahn --cases '*'
	$(PYTHON) scripts/autobahn.py --binary $(RELEASE_BIN) --route /proxied --transports wss --out build/autobahn-proxy --cases '1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*'
	$(PYTHON) scripts/autobahn.py --binary $(RELEASE_BIN) --route /framed --transports wss --out build/autobahn-framed --cases '1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*'

# The shape an operator installs: the static binary and rootfs/ on Debian 12 under real systemd.
system-test: deps static
	@scripts/install-deps.sh system
	GATEWAY_BINARY=build/static/wssgate $(PYTHON) -m pytest -q -p no:cacheprovider Tests/System

# ThreadSanitizer over the unit tests and the end-to-end suite (scripts/tsan.sh says what fails
# the run): the gateway and its tests built with -sanitize=thread in a scratch folder of their
# own. TSAN_E2E=EXPR runs a part of the end-to-end suite (pytest -k).
TSAN_SCRATCH := .build-tsan
tsan: deps
	$(SWIFT) build --scratch-path $(TSAN_SCRATCH) --sanitize=thread --build-tests
	scripts/tsan.sh

# Two gateways in a cluster under a mixed workload on every route kind, with faults on a schedule
# (docs/reliability.md): SOAK_MINUTES long (30; CI runs 2). SOAK_FLAGS=--publish writes the
# figures and the plot into docs/reliability.md.
SOAK_MINUTES ?= 30
soak: static
	@scripts/install-deps.sh soak
	$(PYTHON) scripts/soak.py --binary build/static/wssgate --minutes $(SOAK_MINUTES) $(SOAK_FLAGS)

# libFuzzer's driver exists only in this build (WSSGATE_FUZZ=1), in its own scratch folder: the
# coverage and AddressSanitizer instrumentation reach every module, NIO's included. SwiftPM's
# `--sanitize=fuzzer --sanitize=address` hands swiftc two flags of which only the last counts
# (the build then has no coverage: libFuzzer says "Is the code instrumented?"); one combined
# flag gives both, and `--sanitize=fuzzer` keeps SwiftPM linking libFuzzer's main.
FUZZ_SCRATCH := .build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
fuzz:
	@scripts/install-deps.sh build
	WSSGATE_FUZZ=1 $(SWIFT) build --scratch-path $(FUZZ_SCRATCH) $(FUZZ_FLAGS) --product wssgate-fuzz
	python3 scripts/fuzz.py --binary $(FUZZ_SCRATCH)/debug/wssgate-fuzz --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The benchmark runs what ships: the static gateway (its echo worker is `wssgate worker echo`).
bench: static micro-bench-run
	@scripts/install-deps.sh bench
	build/bench-venv/bin/python scripts/bench.py

# Where an idle connection's heap goes (heaptrack needs a dynamic build; symbols name the owners).
HEAP_SCRATCH := .build-heap
heap-profile: static
	@scripts/install-deps.sh bench
	$(SWIFT) build -c release $(RELEASE_FLAGS) -Xswiftc -g --scratch-path $(HEAP_SCRATCH) --product wssgate
	build/bench-venv/bin/python scripts/bench/heap_profile.py --binary $(HEAP_SCRATCH)/release/wssgate --route $(or $(ROUTE),echo)

# Where the CPU goes during round trips (docs/benchmarks.md, "Where the time goes"): perf record
# of each setup whose name contains one of SETUPS, on the unstripped static binary for symbols.
SETUPS ?= wssgate,ceiling,nginx
PROFILE_SECONDS ?= 8
cpu-profile: static
	@scripts/install-deps.sh bench
	BENCH_GATEWAY_BINARY=build/static/wssgate.unstripped build/bench-venv/bin/python scripts/bench.py --profile \
		--only "$(SETUPS)" --seconds $(PROFILE_SECONDS)

clean:
	rm -rf .build build

# The appliance: one static binary and the FROM-scratch image (buildah/podman, no Docker engine).
STATIC_SCRATCH := .build-static
# Link-level trimming, measured with make size (stripped binary, MB = 10^6 bytes; docs/architecture.md):
#   nothing: 33.8 MB; every function and datum in its own section (Swift, C and C++),
#   public symbols internalized at link (one link unit), --gc-sections and --icf=all with lld
#   (the toolchain's): 26.7 MB.
#   C and C++ (BoringSSL, zlib, the C shims) without unwind tables, and BoringSSL's C++ without
#   exceptions (it uses none, as in its own build): nothing catches an exception in them, and
#   one that reached Swift would end the process either way.
STATIC_TRIM := -Xswiftc -Xfrontend -Xswiftc -function-sections -Xswiftc -Xfrontend -Xswiftc -internalize-at-link \
	-Xcc -ffunction-sections -Xcc -fdata-sections -Xcxx -ffunction-sections -Xcxx -fdata-sections \
	-Xcc -fno-asynchronous-unwind-tables -Xcc -fno-unwind-tables -Xcxx -fno-exceptions \
	-Xswiftc -use-ld=lld -Xlinker --gc-sections -Xlinker --icf=all
# One product, linked statically against glibc: `$(STATIC_BUILD) NAME`.
STATIC_BUILD = $(SWIFT) build -c release $(RELEASE_FLAGS) --scratch-path $(STATIC_SCRATCH) -Xswiftc -static-executable $(STATIC_TRIM) --product
IMAGE := localhost/wssgate:latest

# The link map says where the bytes go (make size).
STATIC_MAP := $(abspath build/static/wssgate.map)
# The budget of the stripped static binary, in bytes.
SIZE_BUDGET := 26000000

# SwiftPM links the binary; scripts/static-trim.py links it again from copies of its Swift objects
# and of the toolchain archives' Swift members without unwind tables (Swift code runs without
# them; libc, libgcc and the runtime's C++ keep theirs).
static:
	@scripts/install-deps.sh build
	mkdir -p build/static
	$(STATIC_BUILD) wssgate
	python3 scripts/static-trim.py --scratch $(STATIC_SCRATCH) --product wssgate --objects build/static/objects \
		--output build/static/wssgate.unstripped --map $(STATIC_MAP)
	strip -o build/static/wssgate build/static/wssgate.unstripped
	@file build/static/wssgate | grep -q "statically linked" && ls -l build/static/wssgate

size: static
	python3 scripts/size.py --map $(STATIC_MAP) --binary build/static/wssgate.unstripped --stripped build/static/wssgate --budget $(SIZE_BUDGET)

image: static
	@scripts/install-deps.sh image
	cp /etc/ssl/certs/ca-certificates.crt build/ca-certificates.crt
	scripts/container.sh build $(IMAGE)

image-test: deps image
	@scripts/install-deps.sh image
	GATEWAY_IMAGE=$(IMAGE) $(PYTHON) -m pytest -q -s -p no:cacheprovider Tests/Image

# The data path's pieces (Benchmarks/, its own package): time and allocations per operation.
micro-bench: micro-bench-run
	@# The stored ceilings (Benchmarks/Thresholds/README.md): exit 4 means better than all of them.
	cd Benchmarks && $(SWIFT) package benchmark thresholds check --no-progress --path Thresholds \
		--filter 'UTF-8 validation, 4 KiB of (ASCII|mixed) text' --filter 'WebSocket echo through the session.*'; \
		rc=$$?; if [ $$rc -ne 0 ] && [ $$rc -ne 4 ]; then \
		echo "micro-bench: worse than a stored threshold (Benchmarks/Thresholds)" >&2; exit 1; fi

# The micro-benchmarks' table alone (what make bench puts in its report), without the check.
micro-bench-run:
	@scripts/install-deps.sh build
	@mkdir -p build/bench
	cd Benchmarks && $(SWIFT) package benchmark --no-progress | tee ../build/bench/micro.txt
