#!/usr/bin/env bash
# A dashboard over HTTP: its first load and its refreshes, query cache on and off,
# in one run (docs/PERFORMANCE.md, "Query cache: a dashboard's refresh").
#
# 1. Starts `strata serve` on a fresh directory, writes the 24 h devops set with
#    `strata load` and compacts it; stops it and copies the directory.
# 2. Each round starts two servers, one per copy: the default cache (64 MiB) and
#    `--query-cache-bytes 0`. Against each, in turn, it asks the six questions a-f
#    once (the first load, on an empty cache), then REFRESHES times again, each
#    time with every range 10 s later (the refreshes). Both servers then stop.
#    a: 1 series raw, 1 h; b: 1 series raw, 24 h (compact form); c: 1 series avg per
#    5 min, 24 h; d: max of 100 hosts per hour; e: max by host per hour over 1,000
#    series (all `POST /query`, tier auto, ranges ending 4.321 s past the data);
#    f: the newest point of the 1,000 series (`/api/v1/query`, instant).
# 3. Prints, per server, the median over rounds of the first load's total curl
#    `time_total` and the median refresh's, their ratio, each question's medians, and checks that both
#    servers gave the same answers, byte for byte.
#
#   ROUNDS=5 REFRESHES=10 scripts/dashboard_refresh.sh
#
# Needs curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
REFRESHES=${REFRESHES:-10}
HOSTS=${HOSTS:-100}
ON_PORT=${ON_PORT:-19484}
OFF_PORT=${OFF_PORT:-19485}

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "dashboard_refresh: needs $tool" >&2; exit 1; }
done
if [[ -z "${STRATA:-}" ]]; then
  cargo build --release --quiet --bin strata
  STRATA=target/release/strata
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-dashboard.XXXXXX")
cp "$STRATA" "$WORK/strata"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${KEEP:-}" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

wait_up() { # url
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "dashboard_refresh: $1 did not come up" >&2
  exit 1
}

serve() { # dir port log [flags...]
  "$WORK/strata" serve --data "$1" --listen "127.0.0.1:$2" "${@:4}" >>"$3" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  wait_up "http://127.0.0.1:$2/health"
}

stop() { # pid
  kill -TERM "$1"
  wait "$1" || true
}

serve "$WORK/data" "$ON_PORT" "$WORK/load.log"
"$WORK/strata" load --url "http://127.0.0.1:$ON_PORT" --hosts "$HOSTS" --duration 24h --workers 2 --batch 10000 --json >"$WORK/load.json"
END_MS=$(grep -o '"end":[0-9]*' "$WORK/load.json" | grep -o '[0-9]*')
for try in $(seq 1 30); do
  curl -sf -X POST "http://127.0.0.1:$ON_PORT/admin/compact" >/dev/null && break
  [[ $try -lt 30 ]] || { echo "dashboard_refresh: /admin/compact kept failing" >&2; exit 1; }
  sleep 1
done
stop "$LAST_PID"
cp -a "$WORK/data" "$WORK/data-off"

# The six questions over ranges ending at $1 (ms, inclusive): one line each,
# name|path|body (POST /query) or name|path|query string (GET).
questions() {
  local e=$1 day=$(( $1 - 86400000 + 1 )) hour=$(( $1 - 3600000 + 1 ))
  local one='"metric_name": "cpu_usage_user", "labels": {"hostname": "host_0"}'
  echo "a|/query|{$one, \"start_time\": $hour, \"end_time\": $e, \"function\": \"raw\", \"format\": \"compact\"}"
  echo "b|/query|{$one, \"start_time\": $day, \"end_time\": $e, \"function\": \"raw\", \"format\": \"compact\"}"
  echo "c|/query|{$one, \"start_time\": $day, \"end_time\": $e, \"function\": \"avg\", \"step\": \"5m\", \"tier\": \"auto\"}"
  echo "d|/query|{\"metric_name\": \"cpu_usage_user\", \"start_time\": $day, \"end_time\": $e, \"function\": \"max\", \"step\": \"1h\", \"group_by\": [], \"tier\": \"auto\"}"
  echo "e|/query|{\"selector\": \"{__name__=~\\\"cpu_usage_.*\\\"}\", \"start_time\": $day, \"end_time\": $e, \"function\": \"max\", \"step\": \"1h\", \"group_by\": [\"hostname\"], \"tier\": \"auto\"}"
  echo "f|/api/v1/query|query=%7B__name__%3D~%22cpu_usage_.*%22%7D&time=$(awk -v e="$1" 'BEGIN { printf "%.3f", e / 1000 }')"
}

ask_all() { # round kind(first|refresh) n server port end
  local name path arg
  while IFS='|' read -r name path arg; do
    if [[ "$path" == /query ]]; then
      curl -sf -o "$WORK/ans-$4-$2-$3-$name.json" -w "$1 $2 $3 $4 $name %{time_total}\n" \
        -H 'Content-Type: application/json' -d "$arg" "http://127.0.0.1:$5$path"
    else
      curl -sf -o "$WORK/ans-$4-$2-$3-$name.json" -w "$1 $2 $3 $4 $name %{time_total}\n" \
        "http://127.0.0.1:$5$path?$arg"
    fi
  done < <(questions "$6")
}

E_MS=$((END_MS + 4321))
: >"$WORK/times.txt"
for r in $(seq 1 "$ROUNDS"); do
  serve "$WORK/data" "$ON_PORT" "$WORK/on.log"
  ON_PID=$LAST_PID
  serve "$WORK/data-off" "$OFF_PORT" "$WORK/off.log" --query-cache-bytes 0
  OFF_PID=$LAST_PID
  for s in on off; do
    port=$([[ $s == on ]] && echo "$ON_PORT" || echo "$OFF_PORT")
    ask_all "$r" first 0 "$s" "$port" "$E_MS" >>"$WORK/times.txt"
  done
  for n in $(seq 1 "$REFRESHES"); do
    for s in on off; do
      port=$([[ $s == on ]] && echo "$ON_PORT" || echo "$OFF_PORT")
      ask_all "$r" refresh "$n" "$s" "$port" $((E_MS + n * 10000)) >>"$WORK/times.txt"
    done
  done
  curl -sf "http://127.0.0.1:$ON_PORT/metrics" | grep '^strata_query_cache' >"$WORK/cache-metrics.txt"
  stop "$ON_PID"
  stop "$OFF_PID"
done

python3 - "$WORK" <<'EOF'
import collections, filecmp, glob, os, statistics, sys
work = sys.argv[1]
per = collections.defaultdict(float)  # (round, kind, n, server) -> total ms
by_q = collections.defaultdict(list)  # (server, kind, question) -> ms
for line in open(f"{work}/times.txt"):
    r, kind, n, s, q, t = line.split()
    per[(r, kind, n, s)] += float(t) * 1000
    by_q[(s, kind, q)].append(float(t) * 1000)
bad = [os.path.basename(a) for a in glob.glob(f"{work}/ans-on-*.json")
       if not filecmp.cmp(a, a.replace("ans-on-", "ans-off-"), shallow=False)]
print("| server | first load ms (median of rounds) | refresh ms (median) | refresh / first load |")
print("|---|---|---|---|")
for s in ("on", "off"):
    first = statistics.median(v for (r, k, n, x), v in per.items() if k == "first" and x == s)
    refresh = statistics.median(v for (r, k, n, x), v in per.items() if k == "refresh" and x == s)
    print(f"| cache {s} | {first:.2f} | {refresh:.2f} | {refresh / first:.2f} |")
qs = sorted({q for (_, _, q) in by_q})
print("| server, median ms first load / refresh | " + " | ".join(qs) + " |")
print("|---|" + "---|" * len(qs))
for s in ("on", "off"):
    cells = [f"{statistics.median(by_q[(s, 'first', q)]):.2f} / {statistics.median(by_q[(s, 'refresh', q)]):.2f}" for q in qs]
    print(f"| cache {s} | " + " | ".join(cells) + " |")
print(open(f"{work}/cache-metrics.txt").read().strip())
print("answers: " + ("the same with the cache on and off" if not bad else f"DIFFER in {bad}"))
sys.exit(1 if bad else 0)
EOF
echo "rounds: $ROUNDS, refreshes per round: $REFRESHES, data end: $END_MS ms, first range end: $E_MS ms"
