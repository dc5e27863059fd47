#!/usr/bin/env bash
# Peak RSS of `strata serve` while the 24 h devops set (100 hosts, 8.64 M samples)
# is written to it over line protocol, for one or more server binaries in turn.
#
#   scripts/ingest_rss.sh BINARY [BINARY...]
#   ROUNDS=3 HOSTS=100 DURATION=24h BATCH=1000 WORKERS=1 scripts/ingest_rss.sh old new
#
# Each run starts the server on a fresh data directory, runs `strata load --url
# http://... --protocol line --hosts HOSTS --duration DURATION --batch BATCH
# --workers WORKERS --no-check` with the same binary, samples the server's RssAnon
# and RssFile every 0.1 s, and prints the load's rate, the server's VmHWM (peak RSS),
# the peak anonymous and file-backed RSS, and the RSS once the load has finished and
# the server has been idle for IDLE seconds (default 5). SERVE_ENV is passed to the
# server's environment (for allocator experiments, e.g. SERVE_ENV=MALLOC_ARENA_MAX=2).
set -euo pipefail
ROUNDS=${ROUNDS:-1}
HOSTS=${HOSTS:-100}
DURATION=${DURATION:-24h}
BATCH=${BATCH:-1000}
WORKERS=${WORKERS:-1}
IDLE=${IDLE:-5}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-rss.XXXXXX")
SERVER=""
trap '[[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"' EXIT
field() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$SERVER/status" 2>/dev/null || echo 0; }
printf '%-5s %-28s %8s %10s %10s %10s %10s\n' round binary 'M/s' 'HWM MiB' 'anon MiB' 'file MiB' 'idle MiB'
for r in $(seq "$ROUNDS"); do
  i=0
  for bin in "$@"; do
    i=$((i + 1))
    cp "$bin" "$WORK/strata-$i"
    rm -rf "$WORK/data"
    port=$((20000 + RANDOM % 20000))
    env ${SERVE_ENV:-} "$WORK/strata-$i" serve --data "$WORK/data" --listen "127.0.0.1:$port" >"$WORK/serve.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
    "$WORK/strata-$i" load --url "http://127.0.0.1:$port" --protocol line --hosts "$HOSTS" --duration "$DURATION" \
      --batch "$BATCH" --workers "$WORKERS" --no-check --json >"$WORK/load.json" 2>"$WORK/load.err" &
    load=$!
    anon=0 file=0
    while kill -0 "$load" 2>/dev/null; do
      a=$(field RssAnon); f=$(field RssFile)
      ((a > anon)) && anon=$a
      ((f > file)) && file=$f
      sleep 0.1
    done
    wait "$load"
    sleep "$IDLE"
    idle=$(field VmRSS)
    hwm=$(field VmHWM)
    rate=$(grep -o '"samples_per_sec":[0-9.e+-]*' "$WORK/load.json" | cut -d: -f2)
    printf '%-5s %-28s %8.2f %10.1f %10.1f %10.1f %10.1f\n' "$r" "$(basename "$bin")" "$(awk -v x="$rate" 'BEGIN { print x / 1e6 }')" \
      "$(awk -v k="$hwm" 'BEGIN { print k / 1024 }')" "$(awk -v k="$anon" 'BEGIN { print k / 1024 }')" \
      "$(awk -v k="$file" 'BEGIN { print k / 1024 }')" "$(awk -v k="$idle" 'BEGIN { print k / 1024 }')"
    kill -TERM "$SERVER"
    wait "$SERVER" || true
    SERVER=""
  done
done
