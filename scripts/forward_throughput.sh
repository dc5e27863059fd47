#!/usr/bin/env bash
# Remote-write forwarding throughput: `strata serve --forward-to` a local
# VictoriaMetrics while `strata load` writes the devops set to the server over HTTP.
#
#   scripts/forward_throughput.sh [STRATA_BINARY]
#   HOSTS=1000 DURATION=1h WORKERS=2 BATCH=10000 PROTOCOL=remote-write SHARDS=4 scripts/forward_throughput.sh
#
# Starts victoria-metrics (or $STRATA_VICTORIA_METRICS) and the server on fresh
# directories, runs `strata load --url ... --no-check`, then waits until the
# forwarder has nothing pending. Prints the ingest rate (the load's report), and
# the forward rate: samples VictoriaMetrics acknowledged (strata_forward_samples_sent_total)
# over the time from the load's start until the forwarder caught up, so a forwarder
# that keeps pace shows the same rate as ingest.
set -euo pipefail
BIN=${1:-target/release/strata}
VM=${STRATA_VICTORIA_METRICS:-$(command -v victoria-metrics)}
HOSTS=${HOSTS:-1000}
DURATION=${DURATION:-1h}
WORKERS=${WORKERS:-2}
BATCH=${BATCH:-10000}
PROTOCOL=${PROTOCOL:-remote-write}
SHARDS=${SHARDS:-4}
FBATCH=${FBATCH:-10000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-fwd.XXXXXX")
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
vport=$((20000 + RANDOM % 20000)); sport=$((vport + 1))
"$VM" -storageDataPath="$WORK/vm" -httpListenAddr="127.0.0.1:$vport" -retentionPeriod=100y >"$WORK/vm.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$vport/health" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN" serve --data "$WORK/data" --listen "127.0.0.1:$sport" --forward-to "http://127.0.0.1:$vport/api/v1/write" \
  --forward-shards "$SHARDS" --forward-batch-samples "$FBATCH" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$sport/health" >/dev/null 2>&1 && break; sleep 0.1; done
metric() { curl -sf "http://127.0.0.1:$sport/metrics" | awk -v m="$1" 'index($0, m "{") == 1 { print $2 }'; }
t0=$(date +%s.%N)
"$BIN" load --url "http://127.0.0.1:$sport" --protocol "$PROTOCOL" --hosts "$HOSTS" --duration "$DURATION" \
  --batch "$BATCH" --workers "$WORKERS" --no-check --json >"$WORK/load.json"
t1=$(date +%s.%N)
while :; do
  p=$(metric strata_forward_pending_samples); l=$(metric strata_forward_lag_seconds)
  awk -v p="$p" -v l="$l" 'BEGIN { exit !(p != "" && p + 0 == 0 && l + 0 == 0) }' && break
  sleep 0.05
done
t2=$(date +%s.%N)
sent=$(metric strata_forward_samples_sent_total)
rate=$(grep -o '"samples_per_sec":[0-9.e+-]*' "$WORK/load.json" | cut -d: -f2)
samples=$(grep -o '"samples":[0-9]*' "$WORK/load.json" | head -1 | cut -d: -f2)
awk -v r="$rate" -v n="$samples" -v s="$sent" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "ingest   %d samples over HTTP at %.2f M samples/s (load report)\n", n, r / 1e6
  printf "forward  %d samples sent in %.2f s from the load start = %.2f M samples/s (caught up %.2f s after the load ended)\n", s, c - a, s / (c - a) / 1e6, c - b
}'
