#!/usr/bin/env bash
# Remote-write forwarding throughput: `strata serve --forward-to` a local
# VictoriaMetrics while `strata load` writes the devops set to the server over HTTP.
#
#   scripts/forward_throughput.sh [STRATA_BINARY]
#   HOSTS=1000 DURATION=1h WORKERS=2 BATCH=10000 PROTOCOL=remote-write SHARDS=4 scripts/forward_throughput.sh
#   PROTOCOL=line HOSTS=1000 DURATION=6h scripts/forward_throughput.sh   (issue 14's 1 M samples/s run)
#
# Starts victoria-metrics (or $STRATA_VICTORIA_METRICS) and the server on fresh
# directories, runs `strata load --url ... --no-check`, then waits until the
# forwarder has sent every acknowledged sample and has nothing pending. Prints
# what VictoriaMetrics holds (its own count), the ingest rate (the load's report), and
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
rate=$(grep -o '"samples_per_sec":[0-9.e+-]*' "$WORK/load.json" | cut -d: -f2)
samples=$(grep -o '"samples":[0-9]*' "$WORK/load.json" | head -1 | cut -d: -f2)
# Caught up: every acknowledged sample sent, and nothing pending.
while :; do
  s=$(metric strata_forward_samples_sent_total); p=$(metric strata_forward_pending_samples)
  awk -v s="$s" -v p="$p" -v n="$samples" 'BEGIN { exit !(s != "" && s + 0 >= n && p + 0 == 0) }' && break
  sleep 0.05
done
t2=$(date +%s.%N)
sent=$(metric strata_forward_samples_sent_total)
# What VictoriaMetrics holds, counted through its own query API.
curl -sf "http://127.0.0.1:$vport/internal/force_flush" >/dev/null
held=$(curl -sf "http://127.0.0.1:$vport/api/v1/query" --data-urlencode 'query=sum(count_over_time({__name__=~".+"}[3650d]))' --data-urlencode "time=$(( $(date +%s) + 86400 ))" \
  | grep -o '"value":\[[^]]*\]' | grep -o '"[0-9]*"]' | tr -dc 0-9 || true)
echo "victoria-metrics holds ${held:-?} samples"
awk -v r="$rate" -v n="$samples" -v s="$sent" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  printf "ingest   %d samples over HTTP at %.2f M samples/s (load report)\n", n, r / 1e6
  printf "forward  %d samples sent in %.2f s from the load start = %.2f M samples/s (caught up %.2f s after the load ended)\n", s, c - a, s / (c - a) / 1e6, c - b
}'
