#!/usr/bin/env bash
# Compares two strata binaries on ingest, scan and query, interleaved in one run
# so that the machine's noise falls on both alike. Prints medians.
#
#   scripts/compare_builds.sh OLD_BINARY NEW_BINARY [ROUNDS]
#
# - ingest: `strata load --workload devops --hosts 100 --duration 12h --workers 2
#   --batch 1000` into a fresh directory (in-process, 12 M samples);
# - scan and query: `strata query` on one 24 h devops directory (100 hosts, 10 s,
#   8.64 M samples) written once by OLD_BINARY and read by both: a raw scan of
#   every cpu_usage_user series, a raw scan of one series, and a max per 5 m over
#   100 series, each over an unaligned range ending now-17m.
set -euo pipefail
old="$1"; new="$2"; rounds="${3:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== writing the 24 h query dataset with $old"
"$old" load --data "$work/q" --workload devops --hosts 100 --interval 10s --duration 24h \
  --workers 2 --batch 1000 --no-check >/dev/null
"$old" compact --data "$work/q" >/dev/null 2>&1 || true

python3 - "$old" "$new" "$rounds" "$work" <<'PY'
import json, statistics, subprocess, sys, time, shutil
old, new, rounds, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
bins = {"old": old, "new": new}
res = {k: {} for k in bins}

def record(who, what, v):
    res[who].setdefault(what, []).append(v)

def ingest(who):
    d = f"{work}/ingest-{who}"
    shutil.rmtree(d, ignore_errors=True)
    out = subprocess.run([bins[who], "load", "--data", d, "--workload", "devops", "--hosts", "100",
                          "--duration", "12h", "--workers", "2", "--batch", "1000", "--json"],
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    rate = j.get("samples_per_sec") or j.get("rate") or j["samples"] / j["seconds"]
    record(who, "ingest M samples/s", rate / 1e6)
    shutil.rmtree(d, ignore_errors=True)

queries = {
    "scan: raw, 100 series, 24 h (ms)": ['cpu_usage_user', "--start", "now-24h", "--end", "now-17m"],
    "scan: raw, 1 series, 24 h (ms)": ['cpu_usage_user{hostname="host_7"}', "--start", "now-24h", "--end", "now-17m"],
    "query: max per 5m, 100 series, 24 h (ms)": ['cpu_usage_user', "--start", "now-24h", "--end", "now-17m",
                                                "--step", "5m", "--agg", "max"],
}

def query(who):
    for name, args in queries.items():
        t = time.perf_counter()
        subprocess.run([bins[who], "query", "--data", f"{work}/q", *args], check=True,
                       stdout=subprocess.DEVNULL)
        record(who, name, (time.perf_counter() - t) * 1000)

for r in range(rounds):
    order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
    for who in order:
        ingest(who)
        query(who)

print(f"{'measure':45} {'old':>10} {'new':>10} {'new/old':>8}")
for what in res["old"]:
    a, b = statistics.median(res["old"][what]), statistics.median(res["new"][what])
    print(f"{what:45} {a:10.2f} {b:10.2f} {b / a:8.2f}")
PY
