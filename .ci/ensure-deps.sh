#!/usr/bin/env bash
# Installs and starts what `make test` needs, skipping what is present: the
# brokers' set-up that `make run` does too (docker/ensure-brokers.sh, which
# also installs Debian's activemq package for the ActiveMQ tests; the
# tests need the Docker engine itself, not the process-source fallback), and
# the test-only tools (.ci/ensure-*.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash docker/ensure-brokers.sh --require-docker
for s in .ci/ensure-*.sh; do
  [ "$s" = .ci/ensure-deps.sh ] && continue
  bash "$s"
done
