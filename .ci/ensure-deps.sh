#!/usr/bin/env bash
# Installs and starts what `make test` needs, skipping what is present.
set -euo pipefail
cd "$(dirname "$0")/../.."
for s in internal/ci/ensure-*.sh; do
  [ "$s" = internal/ci/ensure-deps.sh ] && continue
  bash "$s"
done
