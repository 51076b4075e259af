#!/usr/bin/env bash
# Builds rpcbench.local/rabbitmq:3.10 with no registry: a Debian bookworm
# minimal root (debootstrap) with Debian's rabbitmq-server (3.10.8 on Erlang
# 25), imported with `docker import`. Skips when the image exists.
#
# The image runs the server in the foreground as root with logs on stdout.
# rpcbench (internal/broker/rabbitmq.go) passes the node name, ports and
# data directory in the environment at run time; the defaults below suit
# `docker run --network host rpcbench.local/rabbitmq:3.10` (port 5672).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../lib.sh"
IMAGE=${IMAGE:-rpcbench.local/rabbitmq:3.10}

if have_image "$IMAGE"; then
  echo "rabbitmq: $IMAGE present" >&2
  exit 0
fi
command -v debootstrap >/dev/null || { echo "rabbitmq: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/rpcbench-rabbitmq.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "rabbitmq: debootstrap into $work (mirror $(debian_mirror))" >&2
DEBOOTSTRAP_TAG=rabbitmq debootstrap_root "$work/root" rabbitmq-server
# Let the broker's own files live wherever RABBITMQ_MNESIA_BASE points.
mkdir -p "$work/root/var/lib/rabbitmq/mnesia"
echo "rabbitmq: importing $IMAGE" >&2
tar -C "$work/root" -c . | docker import \
  --change 'ENV HOME=/var/lib/rabbitmq' \
  --change 'ENV RABBITMQ_LOGS=-' \
  --change 'ENV RABBITMQ_NODENAME=rabbit@localhost' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'EXPOSE 5672' \
  --change 'CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]' \
  --message 'rpcbench: Debian bookworm rabbitmq-server via debootstrap' \
  - "$IMAGE" >/dev/null
echo "rabbitmq: built $IMAGE" >&2
