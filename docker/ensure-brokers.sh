#!/usr/bin/env bash
# Makes a Docker engine answer on this machine and builds the local broker
# images, skipping every step that is already done (idempotent, fast when
# everything is in place).
#
#  1. installs Debian's docker.io and debootstrap if missing (apt-get update once);
#  2. starts dockerd fully detached (setsid nohup, log in
#     /var/log/rpcbench-dockerd.log) if `docker info` does not answer, and waits
#     up to 60 s for it;
#  3. runs docker/build-images.sh (builds only the images that are missing).
#
# API versions: the machine's docker CLI may be newer (28.x, API 1.50) than
# Debian's engine (20.10, API 1.41). The CLI and testcontainers-go v0.44.0
# both negotiate the version down (checked with `docker info` and with
# internal/broker's tests); if a client ever refuses, export
# DOCKER_API_VERSION=<the engine's ApiVersion> (printed below) before it runs.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { echo "ensure-docker: $*" >&2; }

if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# A docker CLI must exist (docker.io ships one; a newer one may be on PATH).
command -v docker >/dev/null 2>&1 || { log "no docker CLI after install"; exit 1; }

if ! timeout 10 docker info >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/rpcbench-dockerd.log)"
  # setsid + nohup + closed stdin: the daemon outlives this script, its
  # session and the CI step that ran it.
  $SUDO setsid nohup dockerd >>/var/log/rpcbench-dockerd.log 2>&1 </dev/null &
  disown || true
  ok=
  for _ in $(seq 1 60); do
    if timeout 5 docker info >/dev/null 2>&1; then ok=1; break; fi
    sleep 1
  done
  if [ -z "$ok" ]; then
    log "dockerd did not answer within 60 s; last log lines:"
    tail -n 20 /var/log/rpcbench-dockerd.log >&2 || true
    exit 1
  fi
fi
log "engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?') answers"

bash docker/build-images.sh
