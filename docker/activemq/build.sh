#!/usr/bin/env bash
# Builds rpcbench.local/activemq:5.17 with no registry: a Debian bookworm
# minimal root (debootstrap) with Debian's activemq (ActiveMQ Classic
# 5.17.2) and OpenJDK 17, imported with `docker import`. Skips when the
# image exists.
#
# The image holds no configuration: rpcbench (internal/broker/activemq.go)
# runs java with the same arguments as its process source, its own
# activemq.xml passed in the environment, with host networking.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../lib.sh"
IMAGE=${IMAGE:-rpcbench.local/activemq:5.17}

if have_image "$IMAGE"; then
  echo "activemq: $IMAGE present" >&2
  exit 0
fi
command -v debootstrap >/dev/null || { echo "activemq: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/rpcbench-activemq.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "activemq: debootstrap into $work (mirror $(debian_mirror))" >&2
DEBOOTSTRAP_TAG=activemq debootstrap_root "$work/root" openjdk-17-jre-headless,activemq
test -f "$work/root/usr/share/activemq/bin/activemq.jar" || { echo "activemq: no activemq.jar in the root" >&2; exit 1; }
echo "activemq: importing $IMAGE" >&2
tar -C "$work/root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'EXPOSE 61613' \
  --message 'rpcbench: Debian bookworm activemq via debootstrap' \
  - "$IMAGE" >/dev/null
echo "activemq: built $IMAGE" >&2
