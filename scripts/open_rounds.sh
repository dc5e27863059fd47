#!/usr/bin/env bash
# Opens data directories with `strata stats` (almost all of it `Db::open`, and
# the drop at exit), alternating builds within each round, and prints each
# run's wall time, CPU time and peak RSS.
#
#   scripts/open_rounds.sh ROUNDS BINARY:DATA_DIR [BINARY:DATA_DIR ...]
set -euo pipefail
rounds=$1
shift
for r in $(seq 1 "$rounds"); do
  for pair in "$@"; do
    bin=${pair%%:*}
    dir=${pair#*:}
    /usr/bin/time -f "$(basename "$bin") $dir round $r: %e s wall, %U user %S sys, %M KB maxrss" \
      "$bin" stats --data "$dir" >/dev/null
  done
done
