#!/usr/bin/env bash
# Builds the local broker images with no container registry: runs every
# docker/*/build.sh, all at once. Each build.sh is idempotent (it skips its
# image when `docker image inspect` finds it), so this is fast when the images
# exist. To add a broker image, add docker/<broker>/build.sh; nothing here
# changes. Usage: bash docker/build-images.sh [broker...]  (default: all).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ $# -gt 0 ]; then
  scripts=(); for b in "$@"; do scripts+=("$here/$b/build.sh"); done
else
  scripts=("$here"/*/build.sh)
fi
# The builds run at the same time (each mostly waits on the network and
# dpkg), their lines prefixed with the broker's name.
pids=()
for s in "${scripts[@]}"; do
  [ -f "$s" ] || { echo "build-images: no $s" >&2; exit 1; }
done
for s in "${scripts[@]}"; do
  bash "$s" &
  pids+=($!)
done
failed=()
for i in "${!scripts[@]}"; do
  wait "${pids[$i]}" || failed+=("$(basename "$(dirname "${scripts[$i]}")")")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "build-images: failed: ${failed[*]}" >&2
  exit 1
fi
