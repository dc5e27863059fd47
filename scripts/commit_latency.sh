#!/usr/bin/env bash
# Commit latency of in-process ingest, two builds alternately in one session.
#
#   scripts/commit_latency.sh OLD_BINARY NEW_BINARY [ROUNDS] [DURATION] [LOAD ARGS...]
#
# Each round runs `strata load --workload devops --series 10000 --interval 1s
# --duration DURATION --no-check --json` (one worker, commits of 1,000 samples,
# SyncMode::Interval(1 s), the default 256 MiB head budget) with OLD, then with NEW,
# each on a fresh data directory, and prints samples/s and the commit latency
# percentiles. Medians per build at the end. Size DURATION so that a run lasts
# about a minute on the machine (2h is ~72 M samples). Further arguments go to
# `strata load` (e.g. `--head-memory-budget 16`, which both binaries must accept).
set -euo pipefail
OLD=${1:?old binary}
NEW=${2:?new binary}
ROUNDS=${3:-3}
DURATION=${4:-2h}
shift $(($# < 4 ? $# : 4))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-latency.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp "$OLD" "$WORK/old"
cp "$NEW" "$WORK/new"
num() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
printf '%-4s %-5s %10s %9s %9s %9s %9s\n' round build 'M/s' 'p50 µs' 'p99 µs' 'p99.9 µs' 'max µs'
for r in $(seq "$ROUNDS"); do
  for b in old new; do
    rm -rf "$WORK/data"
    out=$("$WORK/$b" load --data "$WORK/data" --workload devops --series 10000 --interval 1s \
      --duration "$DURATION" --no-check --json "$@" 2>/dev/null)
    lat=$(printf '%s' "$out" | grep -o '"latency_us":{[^}]*}')
    printf '%-4s %-5s %10.2f %9s %9s %9s %9s\n' "$r" "$b" \
      "$(printf '%s' "$out" | num samples_per_sec | awk '{ print $1 / 1e6 }')" \
      "$(printf '%s' "$lat" | num p50)" "$(printf '%s' "$lat" | num p99)" \
      "$(printf '%s' "$lat" | num p999)" "$(printf '%s' "$lat" | num max)" | tee -a "$WORK/rows"
  done
done
med() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for b in old new; do
  printf 'median %-5s' "$b"
  for col in 3 4 5 6 7; do printf ' %9s' "$(awk -v b="$b" -v c="$col" '$2 == b { print $c }' "$WORK/rows" | med)"; done
  echo
done
