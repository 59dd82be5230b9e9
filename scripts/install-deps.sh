#!/usr/bin/env bash
# Installs what building (`build`) or testing (`test`) wssgate needs on Debian 12 with the Swift
# toolchain. Idempotent and quiet when everything is already there.
#   build: zlib headers and static library (CompressNIO links zlib)
#   test:  the above, openssl (test certificates), systemd's tools (systemd-socket-activate,
#          systemd-analyze), headless Chromium (the demo page's test), redis-server (the cluster
#          tests), pebble and pebble-challtestsrv (the ACME tests), a Python venv with websockets
#          and pytest, php-cli (the http route's PHP example), and Autobahn|Testsuite's wstest (Python 2.7, see scripts/setup-autobahn.sh)
#   image: buildah, podman and runc (containers without a Docker engine)
#   system: mmdebstrap and systemd-nspawn (make system-test boots a Debian root with systemd)
#   soak:  what `test` needs, and matplotlib in its venv (make soak draws its run)
#   bench: nginx, HAProxy and Caddy (the peers), gcc and libssl-dev (the generator ceiling), heaptrack, linux-perf (make cpu-profile), and a venv with picows, uvloop and matplotlib (make bench, make heap-profile)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}

apt_packages=(zlib1g-dev libyaml-dev pkg-config)
case "$mode" in
  test) apt_packages+=(openssl ca-certificates systemd chromium redis-server pebble php-cli) ;;
  soak) apt_packages+=(openssl ca-certificates redis-server) ;;
  # The image test drives the real docker CLI against podman's API: Debian's docker.io only
  # when no docker client is there already.
  image) apt_packages=(buildah podman runc file binutils ca-certificates openssl)
         command -v docker >/dev/null 2>&1 || apt_packages+=(docker.io) ;;
  system) apt_packages=(mmdebstrap systemd-container openssl) ;;
  bench) apt_packages+=(openssl nginx haproxy caddy python3-venv redis-server heaptrack gcc libssl-dev linux-perf) ;;
esac

missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$mode" = bench ]; then
  bench_venv=build/bench-venv
  if ! "$bench_venv/bin/python" -c "import picows, uvloop, matplotlib" >/dev/null 2>&1; then
    echo "install-deps: creating $bench_venv with picows, uvloop, matplotlib"
    mkdir -p build
    python3 -m venv "$bench_venv"
    "$bench_venv/bin/pip" install -q --disable-pip-version-check picows==2.3.1 uvloop==0.23.0 matplotlib==3.11.2
  fi
  # nginx, HAProxy and Caddy are started by the benchmark itself, by PID, on ports of its own;
  # the packaged services may run beside them.
  if command -v systemctl >/dev/null 2>&1; then
    for service in nginx haproxy caddy; do
      if systemctl is-active --quiet "$service" 2>/dev/null; then
        echo "install-deps: note: the $service service is running; the benchmark starts its own on other ports"
      fi
    done
  fi
  exit 0
fi

if [ "$mode" = system ]; then
  scripts/system-root.sh
  exit 0
fi

[ "$mode" = test ] || [ "$mode" = soak ] || exit 0

venv=build/py
python_packages=(websockets==17.4 pytest jsonschema==4.26.0 pyyaml==6.0.4 openapi-spec-validator==0.7.2 prometheus_client==0.23.1 sslyze==6.3.1 pyjwt==2.10.1 h2==4.4.1)
if ! "$venv/bin/python" -c "import websockets, pytest, jsonschema, yaml, openapi_spec_validator, prometheus_client, sslyze, jwt, h2" >/dev/null 2>&1; then
  echo "install-deps: creating $venv with ${python_packages[*]}"
  mkdir -p build
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "${python_packages[@]}"
fi

if [ "$mode" = soak ]; then
  if ! "$venv/bin/python" -c "import matplotlib" >/dev/null 2>&1; then
    echo "install-deps: adding matplotlib to $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check matplotlib==3.11.2
  fi
  exit 0
fi

scripts/setup-autobahn.sh
