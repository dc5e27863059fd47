#!/usr/bin/env bash
# A server's anonymous RSS over time while it ingests far more than its head holds,
# for one or more server binaries in turn (docs/PERFORMANCE.md, "A server's memory
# over time"): the head fills and seals again and again, so a flat series of
# readings means freed memory is reused; a climbing one, that it is not.
#
#   scripts/rss_over_time.sh BINARY [BINARY...]
#   HOSTS=1000 DURATION=5h EVERY=15 SERVE_ENV=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 scripts/rss_over_time.sh old
#
# Each run starts `BINARY serve` on a fresh directory and writes the devops set
# (HOSTS x 10 series, one sample per second of DURATION: 180 M samples by default)
# with `BINARY load --url ... --protocol line --batch 10000 --workers 2`. It prints
# RssAnon in MiB every EVERY seconds, the peak RSS (VmHWM) and the load's rate.
set -euo pipefail
HOSTS=${HOSTS:-1000}
DURATION=${DURATION:-5h}
EVERY=${EVERY:-15}
[[ $# -ge 1 ]] || { echo "usage: $0 BINARY [BINARY...]" >&2; exit 2; }
for bin in "$@"; do
  work=$(mktemp -d "${TMPDIR:-/tmp}/strata-rss.XXXXXX")
  port=$((30000 + RANDOM % 20000))
  # shellcheck disable=SC2086
  env ${SERVE_ENV:-} "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  "$bin" load --url "http://127.0.0.1:$port" --protocol line --hosts "$HOSTS" --interval 1s \
    --duration "$DURATION" --batch 10000 --workers 2 --no-check >"$work/load.out" 2>&1 &
  load=$!
  readings=""
  while kill -0 "$load" 2>/dev/null; do
    sleep "$EVERY"
    readings="$readings $(awk '/^RssAnon:/ { print int($2 / 1024) }' "/proc/$pid/status")"
  done
  wait "$load" || { echo "load failed:"; cat "$work/load.out"; }
  hwm=$(awk '/^VmHWM:/ { print int($2 / 1024) }' "/proc/$pid/status")
  echo "$(basename "$bin"): anon MiB every ${EVERY}s:$readings | peak RSS $hwm MiB | $(grep -o 'ingested.*' "$work/load.out")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$work"
done
