#!/usr/bin/env bash
# buildah/podman with this machine's constraints (see docs/testing.md): storage in build/, the
# runc runtime (crun fails here), and lowered nofile/nproc ulimits that runc can apply.
#   container.sh build IMAGE      build Docker/Dockerfile
#   container.sh podman ARGS…     run podman with the same storage and configuration
#   container.sh service SOCKET   podman's Docker-compatible API on a Unix socket, for the real
#                                 docker CLI (DOCKER_HOST=unix://SOCKET docker run …)
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(pwd)/build/containers
mkdir -p "$state/root" "$state/runroot"
conf="$state/containers.conf"
cat > "$conf" <<CONF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$conf"
storage=(--root "$state/root" --runroot "$state/runroot" --storage-driver vfs)
case "${1:-}" in
  build)
    buildah "${storage[@]}" bud --format docker --layers=false -f Docker/Dockerfile -t "$2" . >/dev/null
    buildah "${storage[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$2"
    ;;
  podman)
    shift
    exec podman "${storage[@]}" --cgroup-manager cgroupfs --runtime runc "$@"
    ;;
  service)
    exec podman "${storage[@]}" --cgroup-manager cgroupfs --runtime runc system service --time=0 "unix://$2"
    ;;
  *)
    echo "usage: $0 build IMAGE | podman ARGS… | service SOCKET" >&2
    exit 2
    ;;
esac
