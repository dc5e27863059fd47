#!/usr/bin/env bash
# Restart-to-/health of `strata serve` on an existing data directory.
#
#   scripts/serve_health.sh STRATA_BINARY DATA_DIR [PORT]
#
# Starts the server, polls `GET /health` every 20 ms until it answers 200, then
# prints the time that took, the CPU the server used by then (/proc/PID/stat)
# and its RSS and peak RSS (VmRSS, VmHWM), and stops the server.
set -euo pipefail
bin=$1
dir=$2
port=${3:-19611}
start=$(date +%s.%N)
"$bin" serve --data "$dir" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do sleep 0.02; done
end=$(date +%s.%N)
tick=$(getconf CLK_TCK)
cpu=$(awk -v t="$tick" '{printf "%.2f s CPU", ($14 + $15) / t}' "/proc/$pid/stat")
mem=$(awk '/VmRSS|VmHWM/ {printf "%s %.0f MiB ", $1, $2 / 1024}' "/proc/$pid/status")
echo "$(basename "$bin"): /health after $(echo "$end - $start" | bc) s; $cpu; $mem"
kill "$pid"
wait "$pid" 2>/dev/null || true
