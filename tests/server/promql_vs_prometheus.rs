//! Differential test of `strata::promql` against the real Prometheus (Debian's
//! 2.42): the same data goes to a Prometheus (by remote write) and to a `Db`; then
//! every expression of `promql_exprs.txt` (at least 300, all distinct) runs on
//! both, as an instant query at several times and as two range queries, and the
//! answers must be equal: the same label sets, values within a relative 1e-9, NaN
//! equal to NaN, and for an instant `sort`/`sort_desc` the same order of values.
//!
//! The data has counters with resets, gauges, classic histograms (and broken
//! ones), gaps, staleness markers, NaN and infinities, equal values, and series
//! that appear and disappear. Skips with a message
//! when the binary is absent, unless `STRATA_REQUIRE_EXTERNAL=1`: then it fails.
#![cfg(feature = "server")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::server_util::{
    self,
    pb::{self, snappy},
};
use prost::Message;
use strata::promql::Value;
use strata::{Db, Labels, Options};

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;
const STEP_MS: i64 = 15_000;
const POINTS: i64 = 160; // 40 minutes at 15 s

type Series = (Vec<(&'static str, String)>, Vec<(i64, f64)>);

/// The test data, starting at `t0` (ms).
fn dataset(t0: i64) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    let t = |i: i64| t0 + i * STEP_MS;
    let lab = |pairs: &[(&'static str, &str)]| pairs.iter().map(|(k, v)| (*k, v.to_string())).collect::<Vec<_>>();
    // Counters: steady, with a reset, and one with jitter and two resets.
    for (job, inst, rate, reset_at) in
        [("api", "i1", 3.0, None), ("api", "i2", 5.0, Some(70)), ("db", "i1", 1.5, Some(40))]
    {
        let mut v = 100.0;
        let pts = (0..POINTS)
            .map(|i| {
                if Some(i) == reset_at {
                    v = 2.0;
                } else {
                    v += rate * 15.0 + (i % 7) as f64;
                }
                (t(i), v)
            })
            .collect();
        out.push((lab(&[("__name__", "req_total"), ("job", job), ("instance", inst)]), pts));
    }
    // Gauges.
    for (inst, k) in [("i1", 1.0), ("i2", -2.5), ("i3", 0.25)] {
        let pts = (0..POINTS).map(|i| (t(i), ((i * 7) % 13) as f64 * k - 3.0 + (i as f64) * 0.01)).collect();
        out.push((lab(&[("__name__", "temp"), ("job", "node"), ("instance", inst)]), pts));
    }
    // A gauge with a 10-minute gap.
    let pts = (0..POINTS).filter(|i| !(60..100).contains(i)).map(|i| (t(i), (i % 5) as f64)).collect();
    out.push((lab(&[("__name__", "temp"), ("job", "node"), ("instance", "gap")]), pts));
    // A gauge that goes stale at sample 50 and comes back at 120.
    let pts = (0..POINTS)
        .filter(|i| *i <= 50 || *i >= 120)
        .map(|i| (t(i), if i == 50 { f64::from_bits(STALE_NAN) } else { 10.0 + i as f64 }))
        .collect();
    out.push((lab(&[("__name__", "temp"), ("job", "node"), ("instance", "stale")]), pts));
    // A series that exists only in the middle.
    let pts = (80..110).map(|i| (t(i), i as f64)).collect();
    out.push((lab(&[("__name__", "ephemeral"), ("job", "batch")]), pts));
    // Classic histograms for two jobs.
    for (job, scale) in [("api", 1.0), ("db", 3.0)] {
        let bounds = ["0.1", "0.5", "1", "5", "+Inf"];
        let mut counts = [0.0f64; 5];
        let mut series: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 5];
        let (mut sum, mut count) = (Vec::new(), Vec::new());
        let mut s = 0.0;
        for i in 0..POINTS {
            let add = [1.0 * scale, 3.0, 2.0 * scale, 1.0, (i % 3) as f64];
            let mut cum = 0.0;
            for b in 0..5 {
                cum += add[b];
                counts[b] += cum;
                series[b].push((t(i), counts[b]));
            }
            s += 0.37 * scale + (i % 4) as f64;
            sum.push((t(i), s));
            count.push((t(i), counts[4]));
        }
        for (b, pts) in series.into_iter().enumerate() {
            out.push((lab(&[("__name__", "lat_seconds_bucket"), ("job", job), ("le", bounds[b])]), pts));
        }
        out.push((lab(&[("__name__", "lat_seconds_sum"), ("job", job)]), sum));
        out.push((lab(&[("__name__", "lat_seconds_count"), ("job", job)]), count));
    }
    // Info-style series for group_left joins.
    for (inst, ver) in [("i1", "1.0"), ("i2", "2.0")] {
        let pts = (0..POINTS).map(|i| (t(i), 1.0)).collect();
        out.push((lab(&[("__name__", "build_info"), ("instance", inst), ("version", ver)]), pts));
    }
    // A series that ends the way a vanished target does: with a staleness marker.
    let pts = (20..=60).map(|i| (t(i), if i == 60 { f64::from_bits(STALE_NAN) } else { 3.0 * i as f64 })).collect();
    out.push((lab(&[("__name__", "ephemeral"), ("job", "batch2")]), pts));
    // Ordinary NaN (not a staleness marker) and infinities.
    let mixed = [1.0, f64::NAN, f64::INFINITY, -2.0, 0.0, f64::NEG_INFINITY];
    for kind in ["nan", "inf", "ninf", "zero", "mixed"] {
        let pts = (0..POINTS)
            .map(|i| {
                let v = match kind {
                    "nan" => f64::NAN,
                    "inf" => f64::INFINITY,
                    "ninf" => f64::NEG_INFINITY,
                    "zero" => 0.0,
                    _ => mixed[(i % 6) as usize],
                };
                (t(i), v)
            })
            .collect();
        out.push((lab(&[("__name__", "special"), ("job", "special"), ("kind", kind)]), pts));
    }
    // Equal values, for topk/bottomk/sort ties; `d` alternates with NaN.
    for inst in ["a", "b", "c", "d"] {
        let pts = (0..POINTS)
            .map(|i| {
                let v = match inst {
                    "c" => 3.0,
                    "d" if i % 2 == 1 => f64::NAN,
                    _ => 5.0,
                };
                (t(i), v)
            })
            .collect();
        out.push((lab(&[("__name__", "tie"), ("inst", inst)]), pts));
    }
    // Broken classic histograms: no +Inf bucket, counts falling with the bound, a
    // NaN count, two spellings of one bound, only +Inf, all zero, bounds at or below
    // zero, a bound that is not a number, and `inf` spelled in lower case.
    let odd: [(&str, &[(&str, f64)]); 9] = [
        ("noinf", &[("0.1", 1.0), ("1", 3.0), ("10", 6.0)]),
        ("nonmono", &[("0.1", 4.0), ("1", 2.0), ("10", 7.0), ("+Inf", 7.0)]),
        ("nan", &[("0.1", 1.0), ("1", f64::NAN), ("+Inf", 4.0)]),
        ("dup", &[("1", 2.0), ("1.0", 1.0), ("+Inf", 5.0)]),
        ("onlyinf", &[("+Inf", 5.0)]),
        ("zero", &[("0.1", 0.0), ("+Inf", 0.0)]),
        ("neg", &[("-1", 1.0), ("0", 2.0), ("+Inf", 4.0)]),
        ("bad", &[("abc", 1.0), ("1", 2.0), ("+Inf", 3.0)]),
        ("lowinf", &[("1", 2.0), ("inf", 3.0)]),
    ];
    for (job, buckets) in odd {
        for &(le, per) in buckets {
            let pts = (0..POINTS).map(|i| (t(i), per * (i + 1) as f64)).collect();
            out.push((lab(&[("__name__", "odd_bucket"), ("job", job), ("le", le)]), pts));
        }
    }
    out
}

/// The expressions, one a line, in their own file: comments and blank lines
/// skipped. A line marked `[instant]` is compared as instant queries only (the
/// file says why).
fn expressions() -> Vec<(&'static str, bool)> {
    include_str!("promql_exprs.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix("[instant]") {
            Some(rest) => (rest.trim(), true),
            None => (l, false),
        })
        .collect()
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Labels -> points, from either side.
type Answer = BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

fn parse_value(v: &serde_json::Value) -> (i64, f64) {
    let t = (v[0].as_f64().unwrap() * 1000.0).round() as i64;
    let s = v[1].as_str().unwrap();
    let f = match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s.parse().unwrap(),
    };
    (t, f)
}

fn from_prometheus(data: &serde_json::Value) -> Answer {
    let mut out = Answer::new();
    let metric = |m: &serde_json::Value| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            m.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
        v.sort();
        v
    };
    match data["resultType"].as_str().unwrap() {
        "vector" => {
            for e in data["result"].as_array().unwrap() {
                out.insert(metric(&e["metric"]), vec![parse_value(&e["value"])]);
            }
        }
        "matrix" => {
            for e in data["result"].as_array().unwrap() {
                out.insert(metric(&e["metric"]), e["values"].as_array().unwrap().iter().map(parse_value).collect());
            }
        }
        "scalar" => {
            out.insert(vec![("<scalar>".into(), String::new())], vec![parse_value(&data["result"])]);
        }
        other => panic!("unexpected result type {other}"),
    }
    out
}

fn from_strata(v: Value) -> Answer {
    let mut out = Answer::new();
    let key = |m: &strata::promql::Metric| m.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    match v {
        Value::Vector(v) => {
            for s in v {
                out.insert(key(&s.metric), vec![(s.t, s.v)]);
            }
        }
        Value::Matrix(m) => {
            for s in m {
                out.insert(key(&s.metric), s.points);
            }
        }
        Value::Scalar(t, v) => {
            out.insert(vec![("<scalar>".into(), String::new())], vec![(t, v)]);
        }
        Value::String(..) => panic!("string result"),
    }
    out
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn compare(what: &str, prom: &Answer, ours: &Answer) -> Option<String> {
    if prom.keys().ne(ours.keys()) {
        return Some(format!(
            "{what}: label sets differ\n prometheus: {:?}\n strata:     {:?}",
            prom.keys(),
            ours.keys()
        ));
    }
    for (k, p) in prom {
        let o = &ours[k];
        if p.len() != o.len() || p.iter().zip(o).any(|(x, y)| x.0 != y.0 || !same(x.1, y.1)) {
            return Some(format!("{what}: {k:?}\n prometheus: {p:?}\n strata:     {o:?}"));
        }
    }
    None
}

/// Prometheus' `data`, or its `errorType` and `error`.
fn prom_get(addr: SocketAddr, path: &str) -> Result<serde_json::Value, (String, String)> {
    let r = server_util::request(addr, "GET", path, &[], b"");
    let j: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    match j["status"].as_str() {
        Some("success") => Ok(j["data"].clone()),
        Some("error") => Err((j["errorType"].as_str().unwrap_or("").into(), j["error"].as_str().unwrap_or("").into())),
        _ => panic!("{path}: {}", String::from_utf8_lossy(&r.body)),
    }
}

/// For `sort`/`sort_desc`: the values of an instant vector in answer order differ.
/// Values, not labels, are compared: equal values may come in either order.
fn order_differs(
    what: &str,
    prom: &Result<serde_json::Value, (String, String)>,
    ours: &Result<Value, strata::promql::PromqlError>,
) -> Option<String> {
    let (Ok(p), Ok(Value::Vector(o))) = (prom, ours) else { return None };
    let p: Vec<f64> = p["result"].as_array()?.iter().map(|e| parse_value(&e["value"]).1).collect();
    let o: Vec<f64> = o.iter().map(|s| s.v).collect();
    (p.len() != o.len() || p.iter().zip(&o).any(|(a, b)| !same(*a, *b)))
        .then(|| format!("{what}: order differs\n prometheus: {p:?}\n strata:     {o:?}"))
}

/// Queries both sides refused (they must stay few, or the comparison proves little).
static BOTH_FAILED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Both answers equal, or both errors of the same kind.
fn check(
    what: &str,
    prom: Result<serde_json::Value, (String, String)>,
    ours: Result<Value, strata::promql::PromqlError>,
) -> Option<String> {
    match (prom, ours) {
        (Ok(p), Ok(o)) => compare(what, &from_prometheus(&p), &from_strata(o)),
        (Err((kind, _)), Err(e)) if kind == e.kind.as_str() => {
            BOTH_FAILED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            None
        }
        (Err(p), Ok(_)) => Some(format!("{what}: prometheus failed ({p:?}), strata answered")),
        (Ok(_), Err(e)) => Some(format!("{what}: strata failed ({e}), prometheus answered")),
        (Err(p), Err(e)) => Some(format!("{what}: prometheus failed with {p:?}, strata with {e}")),
    }
}

#[test]
fn promql_matches_prometheus() {
    let Some(bin) = crate::support::external_binary("prometheus", "STRATA_PROMETHEUS") else {
        let why = "no `prometheus` binary (apt-get install prometheus, or set STRATA_PROMETHEUS)";
        assert!(
            !crate::support::external_required(),
            "promql_vs_prometheus cannot run: {why}; STRATA_REQUIRE_EXTERNAL is set, so this fails"
        );
        eprintln!("SKIPPED promql_vs_prometheus: {why}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _prom = crate::support::KillOnDrop(
        crate::support::spawn(
            Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--web.enable-remote-write-receiver")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap(),
    );
    let ready = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(addr).is_ok()
            && server_util::request(addr, "GET", "/-/ready", &[], b"").status == 200
        {
            break;
        }
        assert!(Instant::now() < ready, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Recent data, so that Prometheus' head accepts it; t0 is not minute-aligned.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    let t0 = (now - 50 * 60 * 1000) / 1000 * 1000 + 7_000;
    let data = dataset(t0);

    let req = pb::WriteRequest {
        timeseries: data
            .iter()
            .map(|(labels, pts)| pb::TimeSeries {
                labels: labels.iter().map(|(k, v)| pb::Label { name: k.to_string(), value: v.clone() }).collect(),
                samples: pts.iter().map(|&(t, v)| pb::Sample { value: Some(v), timestamp: t }).collect(),
            })
            .collect(),
    };
    let r = server_util::request(
        addr,
        "POST",
        "/api/v1/write",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ],
        &snappy(&req.encode_to_vec()),
    );
    assert!(r.status / 100 == 2, "remote write to prometheus: {} {}", r.status, String::from_utf8_lossy(&r.body));

    let db_dir = tempfile::tempdir().unwrap();
    let db = Db::open(db_dir.path(), Options::default()).unwrap();
    let mut app = db.appender();
    for (labels, pts) in &data {
        let l = Labels::from_pairs(labels.iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        for &(t, v) in pts {
            app.append_labels(&l, t, v).unwrap();
        }
    }
    app.commit().unwrap();

    let end = t0 + (POINTS - 1) * STEP_MS;
    // Instant times: inside, at a sample, just after the staleness marker, past the end.
    let instants = [t0 + 20 * 60_000 + 3_000, t0 + 50 * STEP_MS, t0 + 100 * STEP_MS, end + 4 * 60_000];
    // Ranges not aligned to the data: a coarse step over everything, and a step
    // finer than the samples' around the start of the data.
    let ranges = [(t0 + 61_234, end + 2 * 60_000, 37_000), (t0 - 3 * 60_000, t0 + 12 * 60_000 + 500, 7_000)];
    let exprs = expressions();
    let distinct: std::collections::HashSet<&str> = exprs.iter().map(|e| e.0).collect();
    eprintln!("promql_vs_prometheus: {} distinct expressions", distinct.len());
    assert_eq!(distinct.len(), exprs.len(), "an expression is listed twice in promql_exprs.txt");
    assert!(distinct.len() >= 300, "only {} distinct expressions", distinct.len());
    let mid = format!("{:.3}", (t0 + 20 * 60_000 + 500) as f64 / 1000.0);
    let mut failures = Vec::new();
    let mut ran = 0;
    for &(q, instant_only) in &exprs {
        let q = q.replace("T_MID", &mid);
        let q = q.as_str();
        // Only `sort` and `sort_desc` promise an order, and only in an instant query.
        let ordered = q.starts_with("sort(") || q.starts_with("sort_desc(");
        for &t in &instants {
            let p = prom_get(addr, &format!("/api/v1/query?query={}&time={:.3}", enc(q), t as f64 / 1000.0));
            ran += 1;
            let ours = db.promql_instant(q, t);
            let what = format!("{q} @ {t}");
            if ordered {
                failures.extend(order_differs(&what, &p, &ours));
            }
            failures.extend(check(&what, p, ours));
        }
        for &(rs, re, step) in ranges.iter().filter(|_| !instant_only) {
            let p = prom_get(
                addr,
                &format!(
                    "/api/v1/query_range?query={}&start={:.3}&end={:.3}&step={:.3}",
                    enc(q),
                    rs as f64 / 1000.0,
                    re as f64 / 1000.0,
                    step as f64 / 1000.0
                ),
            );
            ran += 1;
            failures.extend(check(&format!("{q} range {rs}..{re} step {step}"), p, db.promql_range(q, rs, re, step)));
        }
    }
    let both_failed = BOTH_FAILED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("promql_vs_prometheus: {ran} queries, {both_failed} refused by both sides");
    assert!(both_failed * 20 <= ran, "{both_failed} of {ran} queries failed on both sides");
    assert!(failures.is_empty(), "{} of {ran} queries differ:\n{}", failures.len(), failures.join("\n\n"));
}
