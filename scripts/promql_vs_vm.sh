#!/usr/bin/env bash
# PromQL over HTTP: Strata against VictoriaMetrics on the same data, in one run
# (docs/PERFORMANCE.md, "PromQL over HTTP vs VictoriaMetrics").
#
# 1. Starts `strata serve` on a fresh directory and writes the 24 h devops set to
#    it with `strata load` (line protocol, 2 workers), then compacts it (the state
#    an idle server reaches by itself: one raw segment and its tiers).
# 2. Starts VictoriaMetrics (`-search.disableCache`, own storage directory) and
#    imports Strata's own JSON-lines export into it, so both hold the very same
#    samples; `/internal/force_flush` makes them searchable.
# 3. With STRATA_BASELINE=<binary>, serves a second directory with that binary,
#    filled with the same export and compacted (it writes its own format, which
#    may be older), so before and after are measured in one run.
# 4. Asks queries a-f (QUERIES below) ROUNDS times, interleaved between the
#    servers, after one warm-up round, and prints the median curl `time_total`
#    per query and server, the ratio, the response bytes and the median CPU time
#    the server spent (all its threads, from /proc; steadier than wall time on
#    a machine shared with builds). Ranges end at the
#    data's end plus 4.321 s, so no step is aligned to 10 s, 5 m or 1 h.
# 5. Checks that the answers agree: same series, same timestamps, values equal
#    within 1e-9 relative (VictoriaMetrics sums in another order); the baseline's
#    answers must be the new binary's, byte for byte or up to series order.
#
#   scripts/promql_vs_vm.sh
#   STRATA_BASELINE=/path/to/old/strata ROUNDS=15 scripts/promql_vs_vm.sh
#
# Needs curl, python3 and victoria-metrics (Debian package `victoria-metrics`).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-15}
HOSTS=${HOSTS:-100}
S_PORT=${S_PORT:-19464}
B_PORT=${B_PORT:-19465}
V_PORT=${V_PORT:-18428}
VM=${VM:-victoria-metrics}
STRATA_BASELINE=${STRATA_BASELINE:-}

for tool in curl python3 "$VM"; do
  command -v "$tool" >/dev/null || { echo "promql_vs_vm: needs $tool" >&2; exit 1; }
done
if [[ -z "${STRATA:-}" ]]; then
  cargo build --release --quiet --bin strata
  STRATA=target/release/strata
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strata-vs-vm.XXXXXX")
# Private copies: a rebuild of target/ during the run must not change a binary.
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
  echo "promql_vs_vm: $1 did not come up" >&2
  exit 1
}

serve() { # binary dir port log [flags...]
  "$1" serve --data "$2" --listen "127.0.0.1:$3" "${@:5}" >"$4" 2>&1 &
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
# A manual compaction that races the server's own one is refused ("segments ...
# are not all live"); ask again until one goes through.
for try in $(seq 1 30); do
  curl -sf -X POST "$S_URL/admin/compact" >/dev/null && break
  [[ $try -lt 30 ]] || { echo "promql_vs_vm: /admin/compact kept failing" >&2; exit 1; }
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
  # The baseline writes its own directory (it may not read a newer format):
  # the same export imported, then compacted, as above.
  serve "$WORK/strata-baseline" "$WORK/data-baseline" "$B_PORT" "$WORK/baseline.log" \
    --max-body-bytes 4GiB --max-decompressed-bytes 4GiB
  # Series created host by host, as `strata load` creates them (the export lists
  # them in label order, which would give the baseline label-ordered ids).
  curl -sf "$S_URL/export?format=json" | python3 -c '
import json, sys
FIELDS = "user system idle nice iowait irq softirq steal guest guest_nice".split()
def key(line):
    m = json.loads(line)["metric"]
    return (int(m.get("hostname", "host_0").split("_")[-1]), FIELDS.index(m["__name__"][len("cpu_usage_"):]))
sys.stdout.writelines(sorted(sys.stdin, key=key))
' | curl -sf -X POST -T - "$B_URL/import?format=json" >/dev/null
  curl -sf -X POST "$B_URL/admin/flush" >/dev/null
  for try in $(seq 1 30); do
    curl -sf -X POST "$B_URL/admin/compact" >/dev/null && break
    [[ $try -lt 30 ]] || { echo "promql_vs_vm: baseline /admin/compact kept failing" >&2; exit 1; }
    sleep 1
  done
  SERVERS+=(baseline)
  URLS+=("$B_URL")
fi

# Query times in seconds: the data's end plus 4.321 s, and 24 h before that.
T=$(awk -v e="$END_MS" 'BEGIN { printf "%.3f", e / 1000 + 4.321 }')
S=$(awk -v e="$END_MS" 'BEGIN { printf "%.3f", e / 1000 + 4.321 - 86400 }')
# Prometheus (and so Strata) refuses max_over_time({__name__=~"cpu_.*"}[1h]): dropping
# the name leaves ten series per host with one label set. Query e reads the same
# 1,000 series as ten selectors whose results keep a `field` label apart.
E_PARTS=()
for f in user system idle nice iowait irq softirq steal guest guest_nice; do
  E_PARTS+=("label_replace(max_over_time(cpu_usage_$f[1h]), \"field\", \"$f\", \"\", \"\")")
done
E_QUERY="max by (hostname) ($(printf '%s or ' "${E_PARTS[@]}" | sed 's/ or $//'))"
# name|endpoint|query|params
QUERIES=(
  "a|query|cpu_usage_user{hostname=\"host_0\"}[1h]|time=$T"
  "b|query|cpu_usage_user{hostname=\"host_0\"}[24h]|time=$T"
  "c|query_range|avg_over_time(cpu_usage_user{hostname=\"host_0\"}[5m])|start=$S&end=$T&step=300"
  "d|query_range|max(max_over_time(cpu_usage_user[1h]))|start=$S&end=$T&step=3600"
  "e|query_range|$E_QUERY|start=$S&end=$T&step=3600"
  "f|query|{__name__=~\"cpu_.*\"}|time=$T"
  # For reference, VictoriaMetrics alone: the one-selector form it accepts.
  "e1|query_range|max by (hostname) (max_over_time({__name__=~\"cpu_.*\"}[1h]))|start=$S&end=$T&step=3600|vm"
)

PID_OF=("$(pgrep -f -- "-httpListenAddr 127.0.0.1:$V_PORT")" "$(pgrep -f -- "--listen 127.0.0.1:$S_PORT")")
[[ -z "$STRATA_BASELINE" ]] || PID_OF+=("$(pgrep -f -- "--listen 127.0.0.1:$B_PORT")")
cpu_ns() { # CPU time of every thread of a process, in ns (robust to a busy machine)
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

ask() { # round server-index query-spec
  local name ep query params only url extra="" c0 c1 line
  IFS='|' read -r name ep query params only <<<"$3"
  [[ -z "$only" || "$only" == "${SERVERS[$2]}" ]] || return 0
  url=${URLS[$2]}
  # VictoriaMetrics: no response cache for this request either.
  [[ "${SERVERS[$2]}" != vm ]] || extra="&nocache=1"
  c0=$(cpu_ns "${PID_OF[$2]}")
  line=$(curl -sf -o "$WORK/ans-$name-${SERVERS[$2]}.json" -w "$1 $name ${SERVERS[$2]} %{time_total} %{size_download}" \
    -G "$url/api/v1/$ep" --data-urlencode "query=$query" -d "${params}${extra}")
  c1=$(cpu_ns "${PID_OF[$2]}")
  echo "$line $((c1 - c0))"
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

def load(q, s):
    with open(f"{work}/ans-{q}-{s}.json") as f:
        d = json.load(f)
    assert d["status"] == "success", (q, s, d)
    out = {}
    for r in d["data"]["result"]:
        key = tuple(sorted(r["metric"].items()))
        pts = r["values"] if "values" in r else [r["value"]]
        out[key] = [(float(t), float(v)) for t, v in pts]
    return out

def nameless(a):
    return {tuple(p for p in k if p[0] != "__name__"): v for k, v in a.items()}

def same(a, b):
    if a.keys() != b.keys() and len(nameless(a)) == len(a) and len(nameless(b)) == len(b):
        # VictoriaMetrics keeps the name where Prometheus drops it (avg_over_time
        # of one metric): compared without it, the series must still pair up.
        a, b = nameless(a), nameless(b)
    if a.keys() != b.keys():
        return f"series differ: {len(a)} against {len(b)}"
    for k in a:
        if [t for t, _ in a[k]] != [t for t, _ in b[k]]:
            return f"timestamps of {dict(k)} differ"
        for (t, x), (_, y) in zip(a[k], b[k]):
            if not (x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-9 * max(abs(x), abs(y))):
                return f"{dict(k)} at {t}: {x} against {y}"
    return None

times = {}
for line in open(f"{work}/times.txt"):
    r, q, s, t, size, cpu = line.split()
    if r != "0":  # round 0 warms up
        times.setdefault((q, s), []).append(float(t))
        times.setdefault((q, s, "cpu"), []).append(int(cpu) / 1e6)
        times[(q, s, "bytes")] = int(size)
queries = sorted({k[0] for k in times})
bad = False
for q in queries:
    ref = load(q, "vm")
    if (q, "strata") not in times:
        print(f"query {q}: asked of vm only")
        continue
    problems = [f"{s} and vm disagree: {why}" for s in servers[1:] if (why := same(ref, load(q, s)))]
    if "baseline" in servers:
        a, b = (open(f"{work}/ans-{q}-{s}.json", "rb").read() for s in ("strata", "baseline"))
        if a != b:
            # Selectors now read series in label order, as Prometheus does: an
            # instant vector may list them in another order than the baseline's.
            ra, rb = (sorted(json.dumps(r, sort_keys=True) for r in json.loads(x)["data"]["result"]) for x in (a, b))
            if ra != rb:
                problems.append("strata and baseline answers differ")
            else:
                print(f"query {q}: the baseline lists the same series in another order")
    n = sum(len(v) for v in ref.values())
    print(f"query {q}: {len(ref)} series, {n} points: " + ("; ".join(problems) or "answers agree"))
    bad = bad or bool(problems)

cols = servers
hdr = "| query | " + " | ".join(f"{s} ms" for s in cols) + " | strata/vm |"
if "baseline" in cols:
    hdr += " strata/baseline |"
hdr += " " + " | ".join(f"{s} bytes" for s in cols) + " |"
hdr += " " + " | ".join(f"{s} CPU ms" for s in cols) + " |"
print(hdr)
print("|" + "---|" * (hdr.count("|") - 1))
for q in queries:
    med = {s: statistics.median(times[(q, s)]) * 1000 for s in cols if (q, s) in times}
    ratio = lambda a, b: f"{med[a] / med[b]:.2f}" if a in med and b in med else "-"
    row = f"| {q} | " + " | ".join(f"{med[s]:.2f}" if s in med else "-" for s in cols) + f" | {ratio('strata', 'vm')} |"
    if "baseline" in cols:
        row += f" {ratio('strata', 'baseline')} |"
    row += " " + " | ".join(str(times.get((q, s, 'bytes'), "-")) for s in cols) + " |"
    row += " " + " | ".join(f"{statistics.median(times[(q, s, 'cpu')]):.2f}" if (q, s, "cpu") in times else "-" for s in cols) + " |"
    print(row)
sys.exit(1 if bad else 0)
EOF
echo "rounds: $ROUNDS (median of each; one warm-up round not counted), data end: $END_MS ms, query end: $T s"
