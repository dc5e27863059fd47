#!/usr/bin/env bash
# Soak test of `strata serve` (docs/reliability/server.md).
#
# Starts the server on a temporary data directory (loopback only), measures the
# maximum ingest rate with two short unlimited `strata load` runs, then ingests at
# SOAK_PERCENT of it (or at SOAK_RATE) for SOAK_SECONDS while a /query loop asks
# for a 24 h avg per 5 m of one preloaded series. Every SOAK_EVERY seconds it
# prints the server's RSS, the samples ingested and the query p99 of the interval.
#
# Fails (exit 1) on any ingest or query error, on a lost sample (samples the
# server holds afterwards minus before != samples the load acknowledged), on a
# server that does not shut down cleanly, or on a peak RSS above SOAK_MAX_RSS_MB.
#
#   scripts/soak.sh                                   # 60 s, 50 % of max
#   SOAK_SECONDS=1800 scripts/soak.sh                 # the 30-minute soak
#   SOAK_RATE=500000 SOAK_SECONDS=120 scripts/soak.sh # query latency under 500 k/s
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK_SECONDS=${SOAK_SECONDS:-60}
SOAK_PERCENT=${SOAK_PERCENT:-50}
SOAK_RATE=${SOAK_RATE:-}
SOAK_PROTOCOL=${SOAK_PROTOCOL:-line}
SOAK_HOSTS=${SOAK_HOSTS:-1000} # devops hosts, 10 series each
SOAK_BATCH=${SOAK_BATCH:-10000}
SOAK_WORKERS=${SOAK_WORKERS:-2}
SOAK_EVERY=${SOAK_EVERY:-10}
SOAK_QUERY_PAUSE=${SOAK_QUERY_PAUSE:-0.1} # seconds between queries
SOAK_MAX_RSS_MB=${SOAK_MAX_RSS_MB:-4096}

for tool in curl awk; do
  command -v "$tool" >/dev/null || { echo "soak: needs $tool" >&2; exit 1; }
done
if [[ -z "${STRATA:-}" ]]; then
  cargo build --release --quiet --bin strata
  STRATA=target/release/strata
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-soak.XXXXXX")
# A private copy: a rebuild of target/ during the soak must not change the binary.
cp "$STRATA" "$WORK/strata"
BIN="$WORK/strata"
SERVER_PID=""
QUERY_PID=""
LOAD_PID=""
cleanup() {
  for p in $LOAD_PID $QUERY_PID $SERVER_PID; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${SOAK_KEEP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
metric() { # sum of a /metrics family
  curl -sf "$URL/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { printf "%.0f\n", s }'
}
stored_samples() {
  curl -sf "$URL/db/status" | grep -o '"samples":[0-9]*,"segment_samples"' | grep -o '[0-9]*'
}
rss_kb() { awk -v f="${1:-VmRSS}:" '$1 == f { print $2 }' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$SERVER_PID/status"; }
json_num() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
# p-th percentile (0-100) of the numbers on stdin, in ms with one decimal ("-" if none).
pct() { sort -g | awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int((p * NR + 99) / 100); if (i < 1) i = 1; printf "%.1f\n", v[i] * 1000 }'; }

# Start the server on a free port (a few tries).
for _ in 1 2 3 4 5; do
  PORT=$((20000 + RANDOM % 20000))
  URL="http://127.0.0.1:$PORT"
  "$BIN" serve --data "$WORK/data" --listen "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 50); do
    curl -sf "$URL/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  curl -sf "$URL/health" >/dev/null 2>&1 && break
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
done
[[ -n "$SERVER_PID" ]] || { echo "soak: the server did not start" >&2; cat "$WORK/serve.log" >&2; exit 1; }

load() { "$BIN" load --target "$URL" --protocol "$SOAK_PROTOCOL" --batch "$SOAK_BATCH" --workers "$SOAK_WORKERS" --json "$@"; }

# The query's series: 24 h of one series at 10 s (8,640 samples).
"$BIN" load --target "$URL" --workload sine_wave --series 1 --metric soak_probe --interval 10s --duration 24h \
  --no-check --json >/dev/null
SERIES=$((SOAK_HOSTS * 10))
if [[ -z "$SOAK_RATE" ]]; then
  # Two 10-minute windows of every series, 6 and 5 days back (older than any soak
  # window, so no timestamp is written twice); the second runs on existing series.
  load --hosts "$SOAK_HOSTS" --interval 1s --duration 10m --backfill 6d --no-check >/dev/null
  MAX=$(load --hosts "$SOAK_HOSTS" --interval 1s --duration 10m --backfill 5d --no-check | json_num samples_per_sec)
  SOAK_RATE=$(awk -v m="$MAX" -v p="$SOAK_PERCENT" 'BEGIN { printf "%.0f\n", m * p / 100 }')
  echo "max ingest       $(printf '%.0f' "$MAX") samples/s ($SOAK_PROTOCOL, batch $SOAK_BATCH, $SOAK_WORKERS workers, $SERIES series)"
fi
# The soak's window ends now, at 1 s per series step.
SPAN=$(((SOAK_RATE * SOAK_SECONDS + SERIES - 1) / SERIES))
if ((SPAN > 4 * 86400)); then
  echo "soak: $SOAK_SECONDS s at $SOAK_RATE/s over $SERIES series spans more than 4 days; raise SOAK_HOSTS" >&2
  exit 1
fi
echo "soak rate        $SOAK_RATE samples/s for ~$SOAK_SECONDS s ($SERIES series, ${SPAN} s of 1 s steps)"
echo "machine          $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

query() { # one POST /query; prints "<status> <seconds>"
  local end body
  end=$(now_ms)
  body="{\"metric_name\":\"soak_probe\",\"labels\":{\"host\":\"host_0\"},\"function\":\"avg\",\"step\":\"5m\",\"start_time\":$((end - 86400000)),\"end_time\":$end}"
  curl -s -o "$WORK/q.json" -w '%{http_code} %{time_total}' -H 'Content-Type: application/json' \
    --max-time 30 -d "$body" "$URL/query" || echo "000 30"
}
# The same query without ingest, for comparison.
for _ in $(seq 50); do echo "$(query)"; done >"$WORK/idle.log"
grep -q '"series_count":1' "$WORK/q.json" || { echo "soak: the probe query found no series" >&2; exit 1; }
echo "idle query       p50 $(awk '$1 == 200 { print $2 }' "$WORK/idle.log" | pct 50) ms  p99 $(awk '$1 == 200 { print $2 }' "$WORK/idle.log" | pct 99) ms (50 queries before ingest)"

BEFORE=$(stored_samples)
INGESTED0=$(metric strata_ingested_samples_total)
QLOG="$WORK/queries.log"
: >"$QLOG"
STOP="$WORK/stop"
# Query loop: POST /query for the 24 h avg per 5 m of the probe series, bounded by
# a stop file and a deadline; one line per query: end time (s), status, seconds.
(
  deadline=$(($(date +%s) + SOAK_SECONDS * 3 + 120))
  while [[ ! -e "$STOP" ]] && (($(date +%s) < deadline)); do
    out=$(query)
    echo "$(date +%s.%N) $out" >>"$QLOG"
    sleep "$SOAK_QUERY_PAUSE"
  done
) &
QUERY_PID=$!

T0=$(date +%s)
load --hosts "$SOAK_HOSTS" --interval 1s --duration "${SPAN}s" --rate "$SOAK_RATE" --no-check \
  >"$WORK/load.json" 2>"$WORK/load.err" &
LOAD_PID=$!

# RSS counts touched pages of the memory-mapped segments too (RssFile); anon is the heap.
printf '%6s  %8s  %8s  %8s  %13s  %10s  %8s  %10s  %6s\n' time RSS_MB anon_MB head_MB ingested samples/s queries query_p99 q_err
row() {
  local t=$1 last=$2 ing rate q
  ing=$(($(metric strata_ingested_samples_total) - INGESTED0))
  rate=$(((ing - PREV_ING) / (t - PREV_T > 0 ? t - PREV_T : 1)))
  q=$(awk -v a="$last" '$1 >= a' "$QLOG")
  printf '%5ss  %8.1f  %8.1f  %8.1f  %13s  %10s  %8s  %8sms  %6s\n' "$t" "$(awk -v k="$(rss_kb)" 'BEGIN { print k / 1024 }')" \
    "$(awk -v k="$(rss_kb RssAnon)" 'BEGIN { print k / 1024 }')" \
    "$(metric strata_head_bytes | awk '{ print $1 / 1048576 }')" "$ing" "$rate" \
    "$(printf '%s' "$q" | grep -c . || true)" "$(printf '%s\n' "$q" | awk 'NF { print $3 }' | pct 99)" \
    "$(printf '%s\n' "$q" | awk 'NF && $2 != 200' | wc -l)"
  PREV_ING=$ing
  PREV_T=$t
}
PREV_ING=0
PREV_T=0
LAST=$(date +%s.%N)
while kill -0 "$LOAD_PID" 2>/dev/null; do
  for _ in $(seq $((SOAK_EVERY * 10))); do
    kill -0 "$LOAD_PID" 2>/dev/null || break
    sleep 0.1
  done
  NOW=$(date +%s.%N)
  row $(($(date +%s) - T0)) "$LAST"
  LAST=$NOW
done
LOAD_RC=0
wait "$LOAD_PID" || LOAD_RC=$?
LOAD_PID=""
WALL=$(($(date +%s) - T0))
touch "$STOP"
wait "$QUERY_PID" || true
QUERY_PID=""

ACKED=$(json_num samples <"$WORK/load.json" || echo 0)
AFTER=$(stored_samples)
LOST=$((ACKED - (AFTER - BEFORE)))
Q_ALL=$(awk 'NF' "$QLOG" | wc -l)
Q_ERR=$(awk 'NF && $2 != 200' "$QLOG" | wc -l)
HWM_MB=$(($(hwm_kb) / 1024))
RSS_END_MB=$(($(rss_kb) / 1024))
kill -TERM "$SERVER_PID"
SERVER_RC=0
wait "$SERVER_PID" || SERVER_RC=$?
SERVER_PID=""

echo "ingest           $ACKED samples acknowledged in ${WALL} s ($(json_num samples_per_sec <"$WORK/load.json" | cut -d. -f1) samples/s), load exit $LOAD_RC$( [[ -s "$WORK/load.err" ]] && echo ": $(tail -c 300 "$WORK/load.err")")"
echo "commit latency   p50 $(json_num p50 <"$WORK/load.json") µs  p99 $(json_num p99 <"$WORK/load.json") µs (per request)"
echo "stored           $((AFTER - BEFORE)) samples more than before: lost $LOST"
echo "queries          $Q_ALL, errors $Q_ERR, latency p50 $(awk 'NF && $2 == 200 { print $3 }' "$QLOG" | pct 50) ms  p99 $(awk 'NF && $2 == 200 { print $3 }' "$QLOG" | pct 99) ms  max $(awk 'NF && $2 == 200 { print $3 }' "$QLOG" | pct 100) ms"
echo "server RSS       end $RSS_END_MB MiB, peak (VmHWM) $HWM_MB MiB; exit $SERVER_RC after SIGTERM"
PANICS=$(grep -c 'panicked' "$WORK/serve.log" || true)
FAIL=""
((LOAD_RC == 0)) || FAIL="$FAIL load-errors"
((Q_ERR == 0)) || FAIL="$FAIL query-errors"
((Q_ALL > 0)) || FAIL="$FAIL no-queries"
((LOST == 0)) || FAIL="$FAIL lost-samples"
((SERVER_RC == 0)) || FAIL="$FAIL server-exit"
((PANICS == 0)) || FAIL="$FAIL panics"
((HWM_MB <= SOAK_MAX_RSS_MB)) || FAIL="$FAIL rss-over-${SOAK_MAX_RSS_MB}MiB"
if [[ -n "$FAIL" ]]; then
  echo "soak FAILED:$FAIL" >&2
  exit 1
fi
echo "soak OK"
