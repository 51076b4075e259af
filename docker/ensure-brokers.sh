#!/usr/bin/env bash
# Makes the RabbitMQ, RocketMQ, Kafka and ActiveMQ brokers available to `rpcbench run` on this
# machine, skipping every step that is already done (idempotent; about a
# second when everything is in place). `make brokers` and `make run` run it;
# rpcbench itself never installs anything.
#
#  1. installs Debian's docker.io and debootstrap if missing (one apt-get
#     update; no recommended packages, apparmor only where the kernel uses it);
#  2. starts dockerd fully detached (setsid nohup, log in
#     /var/log/rpcbench-dockerd.log) if `docker info` does not answer, and
#     waits up to 60 s for it;
#  3. runs docker/build-images.sh: builds the missing local images (both at
#     once) with debootstrap, no registry needed;
#  4. installs Debian's activemq package (ActiveMQ Classic 5.17, for its
#     process source; installing starts nothing) if
#     /usr/share/activemq/bin/activemq.jar is missing, and java with it
#     (the image, docker/activemq, is built in step 3).
#
# Where no Docker engine can run (not root and no sudo, no apt, dockerd will
# not start), it falls back to what the process sources need instead: java
# and the RocketMQ jars (docker/rocketmq/lib), and says that RabbitMQ, which
# has no process source, will be skipped. With --require-docker (CI) that is
# an error instead.
#
# API versions: the machine's docker CLI may be newer (28.x, API 1.50) than
# Debian's engine (20.10, API 1.41). The CLI and testcontainers-go v0.44.0
# both negotiate the version down; if a client ever refuses, export
# DOCKER_API_VERSION=<the engine's ApiVersion> (printed below) before it runs.
#
# Usage: ensure-brokers.sh [--require-docker] [broker...]
# With broker names (rabbitmq, rocketmq, kafka, activemq) it sets up those
# alone: `make run` names the ones its default scenario uses, so a first run
# builds two images, not four. With none, all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

all_brokers=(rabbitmq rocketmq kafka activemq)
require_docker=
brokers=()
for a in "$@"; do
  case "$a" in
    --require-docker) require_docker=1 ;;
    rabbitmq | rocketmq | kafka | activemq) brokers+=("$a") ;;
    *)
      echo "ensure-brokers: unknown argument \"$a\": want --require-docker or broker names (${all_brokers[*]})" >&2
      exit 2
      ;;
  esac
done
[ ${#brokers[@]} -gt 0 ] || brokers=("${all_brokers[@]}")
wants() { [[ " ${brokers[*]} " == *" $1 "* ]]; }

log() { echo "ensure-brokers: $*" >&2; }
t0=$SECONDS

SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi
fi

apt_updated=
apt_install() {
  [ "$SUDO" = none ] && { log "not root and no sudo: cannot install $*"; return 1; }
  command -v apt-get >/dev/null 2>&1 || { log "no apt-get: cannot install $*"; return 1; }
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    $SUDO apt-get update -qq || return 1
    apt_updated=1
  fi
  log "installing $* (apt-get)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

# ensure_engine: 0 when a Docker engine answers (installed and started if
# need be), 1 with the reason logged when none can run here.
ensure_engine() {
  command -v docker >/dev/null 2>&1 && engine_answers && return 0
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    # docker.io recommends apparmor; it is needed only where the kernel uses it.
    if [[ " ${missing[*]} " == *" docker.io "* ]] &&
      [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] &&
      ! command -v apparmor_parser >/dev/null 2>&1; then
      missing+=(apparmor)
    fi
    apt_install "${missing[@]}" || return 1
  fi
  command -v docker >/dev/null 2>&1 || { log "no docker CLI after the install"; return 1; }
  engine_answers && return 0
  [ "$SUDO" = none ] && { log "not root and no sudo: cannot start dockerd"; return 1; }
  local dlog=/var/log/rpcbench-dockerd.log
  local from=$(($($SUDO stat -c %s "$dlog" 2>/dev/null || echo 0) + 1))
  log "starting dockerd (log: $dlog)"
  # setsid + nohup + closed stdin: the daemon outlives this script, its
  # session and the make or CI step that ran it.
  $SUDO setsid nohup dockerd >>"$dlog" 2>&1 </dev/null &
  local pid=$!
  disown || true
  local why="did not answer within 60 s"
  for _ in $(seq 1 60); do
    engine_answers && return 0
    if ! kill -0 "$pid" 2>/dev/null; then why="exited"; break; fi
    sleep 1
  done
  log "dockerd $why; its last log lines:"
  $SUDO tail -c +"$from" "$dlog" | tail -n 20 >&2 || true
  return 1
}

# process_source: java and the RocketMQ and Kafka jars, for their process
# sources.
process_source() {
  wants rocketmq || wants kafka || return 0
  command -v java >/dev/null 2>&1 || apt_install openjdk-17-jre-headless ||
    log "no java: RocketMQ and Kafka will be skipped"
  if wants rocketmq; then JARS_ONLY=1 bash docker/rocketmq/build.sh; fi
  if wants kafka; then JARS_ONLY=1 bash docker/kafka/build.sh; fi
}

# ensure_activemq: Debian's ActiveMQ Classic for its process source (the
# package's service is never started: rpcbench runs the broker itself with
# its own configuration). Skipped when present.
ensure_activemq() {
  wants activemq || return 0
  [ -f /usr/share/activemq/bin/activemq.jar ] && command -v java >/dev/null 2>&1 && return 0
  local pkgs=(activemq)
  command -v java >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
  apt_install "${pkgs[@]}" || { log "no activemq: the activemq driver will be skipped"; return 0; }
}

ensure_activemq

if ensure_engine; then
  log "Docker engine $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || echo '?') answers"
  # debootstrap may be missing where an engine already ran.
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
  images=()
  for b in "${brokers[@]}"; do [ -f "docker/$b/build.sh" ] && images+=("$b"); done
  bash docker/build-images.sh "${images[@]}"
  # Asked for by name, the process source gets what it needs too.
  if [ "${RPCBENCH_ROCKETMQ_SOURCE:-}" = process ] || [ "${RPCBENCH_KAFKA_SOURCE:-}" = process ]; then process_source; fi
  log "done in $((SECONDS - t0)) s"
  exit 0
fi

if [ -n "$require_docker" ]; then
  log "no Docker engine can run here, and --require-docker was given"
  exit 1
fi
log "no Docker engine can run here: falling back to the process sources"
process_source
log "RocketMQ, Kafka and ActiveMQ run as local processes where named; RabbitMQ has no process source and will be skipped"
log "done in $((SECONDS - t0)) s"
