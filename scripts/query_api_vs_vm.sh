#!/usr/bin/env bash
# `POST /query` over HTTP: Strata against VictoriaMetrics on the same data, in one
# run (docs/PERFORMANCE.md, "POST /query on unaligned ranges, and compact answers").
#
# 1. Starts `strata serve` on a fresh directory, writes the 24 h devops set to it
#    with `strata load` (line protocol, 2 workers) and compacts it.
# 2. Starts VictoriaMetrics (`-search.disableCache`) and imports Strata's own export,
#    so both hold the very same samples.
# 3. With STRATA_BASELINE=<binary>, also serves a copy of the directory with that
#    binary (before/after in one run).
# 4. Asks, ROUNDS times after one warm-up round, interleaved between the servers:
#    b: 1 series raw over 24 h (VictoriaMetrics: `/api/v1/query?query=...[24h]`;
#       Strata: `POST /query` with `function: raw`, in the full and compact forms);
#    d: max of the 100 hosts' cpu_usage_user per hour; e: max by host per hour over
#    1,000 series; both `tier: auto` on a range that ends at the data's end plus
#    4.321 s, so it is aligned to no bucket (VictoriaMetrics: the PromQL forms).
#    Prints the median curl `time_total` per query and server, and bytes.
# 5. Checks the answers: Strata's equal the baseline's (b byte for byte), and b's
#    samples equal VictoriaMetrics'.
#
#   scripts/query_api_vs_vm.sh
#   STRATA_BASELINE=/path/to/old/strata ROUNDS=15 scripts/query_api_vs_vm.sh
#
# Needs curl, python3 and victoria-metrics (Debian package `victoria-metrics`).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-15}
HOSTS=${HOSTS:-100}
S_PORT=${S_PORT:-19474}
B_PORT=${B_PORT:-19475}
V_PORT=${V_PORT:-18438}
VM=${VM:-victoria-metrics}
STRATA_BASELINE=${STRATA_BASELINE:-}

for tool in curl python3 "$VM"; do
  command -v "$tool" >/dev/null || { echo "query_api_vs_vm: needs $tool" >&2; exit 1; }
done
if [[ -z "${STRATA:-}" ]]; then
  cargo build --release --quiet --bin strata
  STRATA=target/release/strata
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-query-vs-vm.XXXXXX")
cp "$STRATA" "$WORK/strata"
[[ -z "$STRATA_BASELINE" ]] || cp "$STRATA_BASELINE" "$WORK/strata-baseline"
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
  echo "query_api_vs_vm: $1 did not come up" >&2
  exit 1
}

serve() { # binary dir port log
  "$1" serve --data "$2" --listen "127.0.0.1:$3" >"$4" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
  wait_up "http://127.0.0.1:$3/health"
}

S_URL=http://127.0.0.1:$S_PORT
V_URL=http://127.0.0.1:$V_PORT
B_URL=http://127.0.0.1:$B_PORT

serve "$WORK/strata" "$WORK/data" "$S_PORT" "$WORK/strata.log"
S_PID=$LAST_PID
"$WORK/strata" load --url "$S_URL" --hosts "$HOSTS" --duration 24h --workers 2 --batch 10000 --json >"$WORK/load.json"
END_MS=$(grep -o '"end":[0-9]*' "$WORK/load.json" | grep -o '[0-9]*')
for try in $(seq 1 30); do
  curl -sf -X POST "$S_URL/admin/compact" >/dev/null && break
  [[ $try -lt 30 ]] || { echo "query_api_vs_vm: /admin/compact kept failing" >&2; exit 1; }
  sleep 1
done

"$VM" -storageDataPath "$WORK/vm" -httpListenAddr "127.0.0.1:$V_PORT" -search.disableCache >"$WORK/vm.log" 2>&1 &
PIDS+=("$!")
wait_up "$V_URL/health"
curl -sf "$S_URL/export?format=json" | curl -sf -X POST -T - "$V_URL/api/v1/import"
curl -sf "$V_URL/internal/force_flush" >/dev/null

SERVERS=(vm strata)
URLS=("$V_URL" "$S_URL")
if [[ -n "$STRATA_BASELINE" ]]; then
  kill -TERM "$S_PID"
  wait "$S_PID" || true
  cp -a "$WORK/data" "$WORK/data-baseline"
  serve "$WORK/strata" "$WORK/data" "$S_PORT" "$WORK/strata.log"
  serve "$WORK/strata-baseline" "$WORK/data-baseline" "$B_PORT" "$WORK/baseline.log"
  SERVERS+=(baseline)
  URLS+=("$B_URL")
fi

# The range: 24 h ending at the data's end plus 4.321 s (ms, both ends inclusive
# for /query; seconds for VictoriaMetrics).
E_MS=$((END_MS + 4321))
S_MS=$((E_MS - 86400000 + 1))
T=$(awk -v e="$E_MS" 'BEGIN { printf "%.3f", e / 1000 }')
S=$(awk -v e="$E_MS" 'BEGIN { printf "%.3f", e / 1000 - 86400 }')
RANGE="\"start_time\": $S_MS, \"end_time\": $E_MS"
# name|server kinds (vm, strata: new and baseline, new: new only)|vm query|vm params|strata body
QUERIES=(
  "b|vm|cpu_usage_user{hostname=\"host_0\"}[24h]|time=$T|"
  "b|strata||| {\"metric_name\": \"cpu_usage_user\", \"labels\": {\"hostname\": \"host_0\"}, $RANGE, \"function\": \"raw\"}"
  "b_compact|new||| {\"metric_name\": \"cpu_usage_user\", \"labels\": {\"hostname\": \"host_0\"}, $RANGE, \"function\": \"raw\", \"format\": \"compact\"}"
  "d|vm|max(max_over_time(cpu_usage_user[1h]))|start=$S&end=$T&step=3600|"
  "d|strata||| {\"metric_name\": \"cpu_usage_user\", $RANGE, \"function\": \"max\", \"step\": \"1h\", \"group_by\": [], \"tier\": \"auto\"}"
  "e|vm|max by (hostname) (max_over_time({__name__=~\"cpu_.*\"}[1h]))|start=$S&end=$T&step=3600|"
  "e|strata||| {\"selector\": \"{__name__=~\\\"cpu_usage_.*\\\"}\", $RANGE, \"function\": \"max\", \"step\": \"1h\", \"group_by\": [\"hostname\"], \"tier\": \"auto\"}"
)

ask() { # round server-index query-spec
  local name kind query params body url s
  IFS='|' read -r name kind query params body <<<"$3"
  s=${SERVERS[$2]}
  case "$kind" in
    vm) [[ "$s" == vm ]] || return 0 ;;
    strata) [[ "$s" != vm ]] || return 0 ;;
    new) [[ "$s" == strata ]] || return 0 ;;
  esac
  url=${URLS[$2]}
  if [[ "$s" == vm ]]; then
    curl -sf -o "$WORK/ans-$name-$s.json" -w "$1 $name $s %{time_total} %{size_download}\n" \
      -G "$url/api/v1/$([[ "$params" == time=* ]] && echo query || echo query_range)" \
      --data-urlencode "query=$query" -d "$params&nocache=1"
  else
    curl -sf -o "$WORK/ans-$name-$s.json" -w "$1 $name $s %{time_total} %{size_download}\n" \
      -H 'Content-Type: application/json' -d "$body" "$url/query"
  fi
}

: >"$WORK/times.txt"
for r in $(seq 0 "$ROUNDS"); do
  for q in "${QUERIES[@]}"; do
    for i in "${!SERVERS[@]}"; do
      ask "$r" "$i" "$q" >>"$WORK/times.txt"
    done
  done
done

python3 - "$WORK" "${SERVERS[@]}" <<'EOF'
import json, math, statistics, sys
work, servers = sys.argv[1], sys.argv[2:]
ans = lambda q, s: open(f"{work}/ans-{q}-{s}.json", "rb").read()
bad = []

def close(x, y):
    return x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-9 * max(abs(x), abs(y))

# b: VictoriaMetrics' samples are Strata's, in both forms.
vm = [(round(float(t) * 1000), float(v)) for t, v in json.loads(ans("b", "vm"))["data"]["result"][0]["values"]]
full = [(p["timestamp_ms"], float(p["value"])) for p in json.loads(ans("b", "strata"))["series"][0]["points"]]
compact = [(t, float(v)) for t, v in json.loads(ans("b_compact", "strata"))["series"][0]["points"]]
if not (vm == full == compact):
    bad.append(f"b: {len(vm)} samples from vm, {len(full)} full, {len(compact)} compact, not all equal")
print(f"b: {len(vm)} samples, vm and strata (full and compact) agree" if not bad else bad[-1])

if "baseline" in servers:
    if ans("b", "strata") != ans("b", "baseline"):
        bad.append("b: strata's full answer is not the baseline's, byte for byte")
    for q in ("d", "e"):
        a, b = (json.loads(ans(q, s)) for s in ("strata", "baseline"))
        pa = [(s["labels"], [(p["timestamp_ms"], p["value"]) for p in s["points"]]) for s in a["series"]]
        pb = [(s["labels"], [(p["timestamp_ms"], p["value"]) for p in s["points"]]) for s in b["series"]]
        same = len(pa) == len(pb) and all(
            la == lb and len(x) == len(y) and all(t == u and close(v, w) for (t, v), (u, w) in zip(x, y))
            for (la, x), (lb, y) in zip(pa, pb))
        print(f"{q}: strata answered from tier {a['tier']}, baseline from {b['tier']}: "
              + ("same series and values" if same else "ANSWERS DIFFER"))
        if not same:
            bad.append(f"{q}: strata and baseline differ")

times = {}
for line in open(f"{work}/times.txt"):
    r, q, s, t, size = line.split()
    if r != "0":
        times.setdefault((q, s), []).append(float(t) * 1000)
        times[(q, s, "bytes")] = int(size)
hdr = "| query | " + " | ".join(f"{s} ms" for s in servers) + " | strata/vm |"
hdr += " strata/baseline |" if "baseline" in servers else ""
hdr += " " + " | ".join(f"{s} bytes" for s in servers) + " |"
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
for q in ("b", "b_compact", "d", "e"):
    med = {s: statistics.median(times[(q, s)]) for s in servers if (q, s) in times}
    med.setdefault("vm", statistics.median(times[(q.split("_")[0], "vm")]))
    ratio = lambda a, b: f"{med[a] / med[b]:.2f}" if a in med and b in med else "-"
    row = f"| {q} | " + " | ".join(f"{med[s]:.2f}" if s in med else "-" for s in servers) + f" | {ratio('strata', 'vm')} |"
    row += f" {ratio('strata', 'baseline')} |" if "baseline" in servers else ""
    row += " " + " | ".join(str(times.get((q, s, "bytes"), "-")) for s in servers) + " |"
    print(row)
for b in bad:
    print("PROBLEM:", b)
sys.exit(1 if bad else 0)
EOF
echo "rounds: $ROUNDS (medians; one warm-up round not counted), data end: $END_MS ms, range end: $E_MS ms"
