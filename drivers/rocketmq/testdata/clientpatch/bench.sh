#!/bin/bash
# Runs the rocketmq driver's benchmarks against rocketmq-client-go v2.1.2
# with two of its performance defects fixed (perf.patch), to measure what
# they cost. rpcbench itself always uses the unpatched library; this is an
# experiment, run by `make bench-rocketmq-patched`.
#
# The defects (drivers/rocketmq, "defect 13" and "defect 14"):
#   13. producer.Request asks the name server for the topic's route on every
#       call (prepareSendRequest -> CheckTopicRouteHasTopic), a synchronous
#       round trip before the request is sent. Patched: only when the
#       producer has no route for the topic yet.
#   14. every remoting frame is written with four unbuffered writes (frame
#       length, header length, header, body): four syscalls and four TCP
#       segments. Patched: one write.
#
# Settings (environment):
#   BENCH      go test -bench pattern (^BenchmarkConcurrency$)
#   BENCHTIME  go test -benchtime (1x)
#   COUNT      go test -count (1)
# plus what the benchmarks take (RPCBENCH_ROCKETMQ to use a running broker).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
mod=github.com/apache/rocketmq-client-go/v2
ver=$(go list -m -f '{{.Version}}' "$mod")
src=$(go mod download -json "$mod@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then
  echo "bench.sh: cannot find $mod@$ver in the module cache" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
cp -r "$src" "$tmp/client"
chmod -R u+w "$tmp/client"
(cd "$tmp/client" && git apply -p1) <drivers/rocketmq/testdata/clientpatch/perf.patch
cp go.mod "$tmp/go.mod"
cp go.sum "$tmp/go.sum"
go mod edit -modfile "$tmp/go.mod" -replace "$mod=$tmp/client"
echo "bench.sh: $mod $ver with drivers/rocketmq/testdata/clientpatch/perf.patch applied" >&2
go test -modfile "$tmp/go.mod" -count "${COUNT:-1}" -run '^$' \
  -bench "${BENCH:-^BenchmarkConcurrency\$}" -benchtime "${BENCHTIME:-1x}" ./drivers/rocketmq/
