#!/usr/bin/env bash
# Builds rpcbench.local/kafka:$KAFKA_VERSION with no container registry:
#  1. fetches the Kafka broker (kafka_2.13, KRaft) with all its runtime
#     dependencies from Maven Central into docker/kafka/lib (pom.xml;
#     skipped when lib/ already holds them for this version);
#  2. unless the image exists with this run.sh, makes a Debian bookworm
#     minimal root with openjdk-17-jre-headless (debootstrap, while step 1
#     runs), adds the jars under /opt/kafka/lib and run.sh, and imports it
#     with `docker import`.
# Idempotent: fast when the jars and the image are present.
#   JARS_ONLY=1 bash docker/kafka/build.sh   # step 1 only (no Docker needed)
# The version must match kafka.version in pom.xml and KafkaVersion in
# internal/broker/kafka.go.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
KAFKA_VERSION=4.4.0
IMAGE=${IMAGE:-rpcbench.local/kafka:$KAFKA_VERSION}
lib="$here/lib"

log() { echo "kafka: $*" >&2; }

have_jars() {
  [ -f "$lib/kafka_2.13-$KAFKA_VERSION.jar" ] && [ -f "$lib/.complete-$KAFKA_VERSION" ]
}

fetch_jars() {
  command -v mvn >/dev/null || {
    log "mvn missing: installing maven"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
  }
  grep -q "<kafka.version>$KAFKA_VERSION</kafka.version>" "$here/pom.xml" ||
    { log "pom.xml does not pin $KAFKA_VERSION"; return 1; }
  log "fetching jars for $KAFKA_VERSION from Maven Central into $lib"
  rm -rf "$lib"
  # (Maven 3.8 prints colour codes even with -B -q: stripped.)
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies 2>&1 | sed -u $'s/\e\\[[0-9;]*m//g' >&2
  touch "$lib/.complete-$KAFKA_VERSION"
  log "$(find "$lib" -name '*.jar' | wc -l) jars in $lib"
}

jars_pid=
if have_jars; then
  log "jars for $KAFKA_VERSION present in $lib"
elif [ "${JARS_ONLY:-}" = 1 ]; then
  fetch_jars
else
  # Fetched while debootstrap makes the root, both mostly waiting on the network.
  fetch_jars &
  jars_pid=$!
fi
[ "${JARS_ONLY:-}" = 1 ] && exit 0

. "$here/../lib.sh"
# The image carries run.sh and the jar list; a change means a rebuild.
stamp=$( (cat "$here/run.sh" "$here/pom.xml") | sha256sum | cut -c1-16)
if have_image "$IMAGE"; then
  have=$(docker image inspect -f '{{index .Config.Labels "org.rpcbench.kafka.stamp"}}' "$IMAGE" 2>/dev/null || true)
  if [ "$have" = "$stamp" ]; then
    log "$IMAGE present"
    if [ -n "$jars_pid" ]; then wait "$jars_pid"; fi
    exit 0
  fi
  log "$IMAGE has an older run.sh or pom.xml ($have, want $stamp): rebuilding"
  docker rmi -f "$IMAGE" >/dev/null
fi
command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; exit 1; }

work=$(mktemp -d /var/tmp/rpcbench-kafka.XXXXXX)
trap '[ -z "$jars_pid" ] || kill "$jars_pid" 2>/dev/null; rm -rf "$work"' EXIT
log "debootstrap into $work (mirror $(debian_mirror))"
DEBOOTSTRAP_TAG=kafka debootstrap_root "$work/root" openjdk-17-jre-headless
if [ -n "$jars_pid" ]; then
  wait "$jars_pid" || { jars_pid=; log "fetching the jars failed"; exit 1; }
  jars_pid=
fi
mkdir -p "$work/root/opt/kafka/lib" "$work/root/opt/kafka/bin"
cp "$lib"/*.jar "$work/root/opt/kafka/lib/"
install -m 0755 "$here/run.sh" "$work/root/opt/kafka/bin/run.sh"
log "importing $IMAGE"
tar -C "$work/root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.rpcbench.kafka.version=$KAFKA_VERSION" \
  --change "LABEL org.rpcbench.kafka.stamp=$stamp" \
  --change 'EXPOSE 9092 9093' \
  --change 'WORKDIR /opt/kafka' \
  --change 'CMD ["/opt/kafka/bin/run.sh"]' \
  --message "rpcbench: Debian bookworm openjdk-17-jre-headless + Kafka $KAFKA_VERSION jars from Maven Central" \
  - "$IMAGE" >/dev/null
log "built $IMAGE"
