#!/usr/bin/env bash
# Builds rpcbench.local/rocketmq:$ROCKETMQ_VERSION with no container registry:
#  1. fetches the RocketMQ name server and broker jars with all their
#     dependencies from Maven Central into docker/rocketmq/lib (pom.xml;
#     skipped when lib/ already holds them for this version);
#  2. unless the image exists, makes a Debian bookworm minimal root with
#     openjdk-17-jre-headless (debootstrap, while step 1 runs), adds the jars
#     under /opt/rocketmq/lib and run.sh, and imports it with `docker import`.
# Idempotent: fast when the jars and the image are present.
#   JARS_ONLY=1 bash docker/rocketmq/build.sh   # step 1 only (no Docker needed)
# The version must match rocketmq.version in pom.xml and rocketmqVersion in
# internal/broker/rocketmq.go.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ROCKETMQ_VERSION=5.3.3
IMAGE=${IMAGE:-rpcbench.local/rocketmq:$ROCKETMQ_VERSION}
lib="$here/lib"

log() { echo "rocketmq: $*" >&2; }

have_jars() {
  [ -f "$lib/rocketmq-broker-$ROCKETMQ_VERSION.jar" ] && [ -f "$lib/rocketmq-namesrv-$ROCKETMQ_VERSION.jar" ] &&
    [ -f "$lib/.complete-$ROCKETMQ_VERSION" ]
}

fetch_jars() {
  command -v mvn >/dev/null || {
    log "mvn missing: installing maven"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
  }
  grep -q "<rocketmq.version>$ROCKETMQ_VERSION</rocketmq.version>" "$here/pom.xml" ||
    { log "pom.xml does not pin $ROCKETMQ_VERSION"; return 1; }
  log "fetching jars for $ROCKETMQ_VERSION from Maven Central into $lib"
  rm -rf "$lib"
  # (Maven 3.8 prints colour codes even with -B -q: stripped.)
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies 2>&1 | sed -u $'s/\e\\[[0-9;]*m//g' >&2
  touch "$lib/.complete-$ROCKETMQ_VERSION"
  log "$(find "$lib" -name '*.jar' | wc -l) jars in $lib"
}

jars_pid=
if have_jars; then
  log "jars for $ROCKETMQ_VERSION present in $lib"
elif [ "${JARS_ONLY:-}" = 1 ]; then
  fetch_jars
else
  # Fetched while debootstrap makes the root, both mostly waiting on the network.
  fetch_jars &
  jars_pid=$!
fi
[ "${JARS_ONLY:-}" = 1 ] && exit 0

. "$here/../lib.sh"
# The image carries run.sh; a changed run.sh means a rebuild.
runsh=$(sha256sum "$here/run.sh" | cut -c1-16)
if have_image "$IMAGE"; then
  have=$(docker image inspect -f '{{index .Config.Labels "org.rpcbench.rocketmq.runsh"}}' "$IMAGE" 2>/dev/null || true)
  if [ "$have" = "$runsh" ]; then
    log "$IMAGE present"
    if [ -n "$jars_pid" ]; then wait "$jars_pid"; fi
    exit 0
  fi
  log "$IMAGE has an older run.sh ($have, want $runsh): rebuilding"
  docker rmi -f "$IMAGE" >/dev/null
fi
command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; exit 1; }

work=$(mktemp -d /var/tmp/rpcbench-rocketmq.XXXXXX)
trap '[ -z "$jars_pid" ] || kill "$jars_pid" 2>/dev/null; rm -rf "$work"' EXIT
log "debootstrap into $work (mirror $(debian_mirror))"
DEBOOTSTRAP_TAG=rocketmq debootstrap_root "$work/root" openjdk-17-jre-headless
if [ -n "$jars_pid" ]; then
  wait "$jars_pid" || { jars_pid=; log "fetching the jars failed"; exit 1; }
  jars_pid=
fi
mkdir -p "$work/root/opt/rocketmq/lib" "$work/root/opt/rocketmq/bin"
cp "$lib"/*.jar "$work/root/opt/rocketmq/lib/"
install -m 0755 "$here/run.sh" "$work/root/opt/rocketmq/bin/run.sh"
log "importing $IMAGE"
tar -C "$work/root" -c . | docker import \
  --change 'ENV ROCKETMQ_HOME=/opt/rocketmq' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.rpcbench.rocketmq.version=$ROCKETMQ_VERSION" \
  --change "LABEL org.rpcbench.rocketmq.runsh=$runsh" \
  --change 'EXPOSE 9876 10911' \
  --change 'WORKDIR /opt/rocketmq' \
  --change 'CMD ["/opt/rocketmq/bin/run.sh"]' \
  --message "rpcbench: Debian bookworm openjdk-17-jre-headless + RocketMQ $ROCKETMQ_VERSION jars from Maven Central" \
  - "$IMAGE" >/dev/null
log "built $IMAGE"
