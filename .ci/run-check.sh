#!/usr/bin/env bash
# `make run-check` (part of `make test`): checks the path `make run` takes on
# this machine.
#  1. Its set-up, docker/ensure-brokers.sh $RUN_BROKERS, run twice: the second run must be
#     a no-op (installs, starts and builds nothing) within 10 s.
#  2. `rpcbench run` of the default scenario with short cells must measure
#     every seed transport: result.json has a cell with counts.ok > 0 for each
#     of tcp, grpc, nats, rabbitmq and rocketmq.
# Takes about a minute once the set-up is done.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${RPCBENCH_BIN:-bin/rpcbench}
log() { echo "run-check: $*" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for i in 1 2; do
  t0=$(date +%s%N)
  st=0
  # shellcheck disable=SC2086 # RUN_BROKERS (from the Makefile): words
  bash docker/ensure-brokers.sh ${RUN_BROKERS:-} 2>"$tmp/setup$i.log" || st=$?
  cat "$tmp/setup$i.log" >&2
  [ "$st" = 0 ] || { log "FAIL: set-up run $i exited $st"; exit 1; }
  ms=$((($(date +%s%N) - t0) / 1000000))
  log "set-up run $i took ${ms} ms"
done
if grep -E 'installing|starting dockerd|debootstrap|fetching|importing|falling back' "$tmp/setup2.log" >&2; then
  log "FAIL: the second set-up run did work (lines above): not idempotent"
  exit 1
fi
if [ "$ms" -gt 10000 ]; then
  log "FAIL: the second set-up run took ${ms} ms, want a no-op within 10 s"
  exit 1
fi

rc=0
"$bin" run --duration 500ms --warmup 200ms --broker-warmup 2s --settle 0s --out "$tmp/results" || rc=$?
result=$(ls "$tmp"/results/*/result.json 2>/dev/null | head -n1 || true)
if [ -z "$result" ]; then
  log "FAIL: rpcbench run exited $rc and wrote no result.json"
  exit 1
fi
python3 - "$result" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
want = ["tcp", "grpc", "nats", "rabbitmq", "rocketmq"]
ok = {}
for c in r.get("cells") or []:
    if (c.get("counts") or {}).get("ok", 0) > 0:
        ok[c["driver"]] = ok.get(c["driver"], 0) + 1
skipped = {s["driver"]: s["reason"] for s in r.get("skipped") or []}
bad = [d for d in want if d not in ok]
for d in want:
    if d in ok:
        print(f"run-check: {d}: {ok[d]} measured cells", file=sys.stderr)
    else:
        print(f"run-check: {d}: no measured cell ({skipped.get(d, 'no cell with ok calls')})", file=sys.stderr)
if bad:
    print("run-check: FAIL: not measured: " + ", ".join(bad), file=sys.stderr)
    sys.exit(1)
EOF
if [ "$rc" != 0 ]; then
  log "FAIL: rpcbench run exited $rc"
  exit 1
fi
log "ok: set-up idempotent, every seed transport measured"
