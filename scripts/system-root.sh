#!/usr/bin/env bash
# The Debian 12 root that `make system-test` boots with systemd as PID 1 (systemd-nspawn):
# mmdebstrap from Debian's packages, kept as build/system/root.tar and built again only when
# the package list below changes.
set -euo pipefail
cd "$(dirname "$0")/.."
packages="systemd,systemd-sysv,dbus,libnss-systemd,ca-certificates,openssl,curl,python3,python3-websockets,procps,iproute2"
out=build/system
mkdir -p "$out"
if [ -f "$out/root.tar" ] && [ "$(cat "$out/root.packages" 2>/dev/null)" = "$packages" ]; then
  exit 0
fi
echo "system-root: mmdebstrap bookworm ($packages), about a minute, once"
rm -f "$out/root.tar" "$out/root.packages"
mmdebstrap --quiet --variant=minbase --include="$packages" bookworm "$out/root.new.tar"
mv "$out/root.new.tar" "$out/root.tar"
echo "$packages" > "$out/root.packages"
