//! Differential test of `strata::promql` against the real Prometheus (Debian's
//! 2.42): the same data goes to a Prometheus (by remote write) and to a `Db`; then
//! every query below runs on both, as an instant query at several times and as a
//! range query, and the answers must be equal: the same label sets, values within
//! a relative 1e-9, NaN equal to NaN.
//!
//! The data has counters with resets, gauges, classic histograms, a gap, a
//! staleness marker and series that appear and disappear. Skips with a message
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
    out
}

/// Expressions covering every function, operator and modifier the evaluator supports.
const QUERIES: &[&str] = &[
    "req_total",
    "req_total{job=\"api\"}",
    "req_total{job=~\"a.*\", instance!=\"i2\"}",
    "{__name__=~\"temp|ephemeral\"}",
    "temp offset 5m",
    "temp offset -2m",
    "temp @ start()",
    "temp @ end()",
    "ephemeral",
    "1",
    "-2.5 * 4",
    "(1 + 2) / 4",
    "-temp",
    "rate(req_total[5m])",
    "rate(req_total[1m])",
    "rate(req_total[2m] offset 3m)",
    "irate(req_total[5m])",
    "increase(req_total[10m])",
    "delta(temp[5m])",
    "idelta(temp[5m])",
    "deriv(temp[5m])",
    "predict_linear(temp[10m], 600)",
    "resets(req_total[20m])",
    "changes(temp[10m])",
    "avg_over_time(temp[5m])",
    "min_over_time(temp[5m])",
    "max_over_time(temp[5m])",
    "sum_over_time(temp[5m])",
    "count_over_time(temp[5m])",
    "last_over_time(temp[5m])",
    "present_over_time(temp[5m])",
    "stddev_over_time(temp[5m])",
    "stdvar_over_time(temp[5m])",
    "quantile_over_time(0.3, temp[10m])",
    "absent_over_time(ephemeral[2m])",
    "absent_over_time(nothing{job=\"x\"}[2m])",
    "max_over_time(rate(req_total[2m])[10m:1m])",
    "avg_over_time(temp[5m:30s])",
    "min_over_time(temp[7m:45s] offset 1m)",
    "sum(rate(req_total[5m]))",
    "sum by (job) (rate(req_total[5m]))",
    "sum without (instance) (req_total)",
    "avg by (job) (temp)",
    "min(temp)",
    "max by (job) (temp)",
    "count(temp)",
    "stddev(temp)",
    "stdvar by (job) (temp)",
    "group by (job) (req_total)",
    "topk(2, temp)",
    "bottomk(1, req_total)",
    "quantile(0.9, temp)",
    "count_values(\"value\", temp{instance=\"gap\"})",
    "sum by (__name__) ({__name__=~\"temp|req_total\"})",
    "req_total * 2",
    "2 - temp",
    "temp > 0",
    "0 < temp",
    "temp > bool 0",
    "temp == bool temp",
    "req_total / on(instance) group_left(version) build_info",
    "build_info * on(instance) group_right(version) req_total",
    "rate(req_total[5m]) / ignoring(job) group_left sum by (instance) (rate(req_total[5m]))",
    "temp{instance=\"i1\"} + on(job) temp{instance=\"i2\"}",
    "req_total and on(instance) build_info{version=\"1.0\"}",
    "temp or ephemeral",
    "temp unless on(instance) temp{instance=\"i3\"}",
    "lat_seconds_sum / lat_seconds_count",
    "temp % 3",
    "temp ^ 2",
    "abs(temp)",
    "ceil(temp)",
    "floor(temp)",
    "round(temp)",
    "round(temp, 0.3)",
    "exp(temp / 10)",
    "ln(req_total)",
    "log2(req_total)",
    "log10(req_total)",
    "sqrt(req_total)",
    "sgn(temp)",
    "clamp(temp, -1, 2)",
    "clamp_min(temp, 0)",
    "clamp_max(temp, 0)",
    "time()",
    "timestamp(temp)",
    "timestamp(abs(temp))",
    "vector(time())",
    "scalar(temp{instance=\"i1\"})",
    "scalar(temp)",
    "absent(nothing{job=\"x\"})",
    "absent(temp)",
    "label_replace(temp, \"host\", \"h-$1\", \"instance\", \"i(.*)\")",
    "label_join(req_total, \"both\", \"/\", \"job\", \"instance\")",
    "histogram_quantile(0.9, rate(lat_seconds_bucket[5m]))",
    "histogram_quantile(0.5, sum by (le) (rate(lat_seconds_bucket[5m])))",
    "histogram_quantile(0.99, lat_seconds_bucket)",
    "day_of_month()",
    "day_of_week(temp * 0 + 1700000000)",
    "days_in_month()",
    "hour()",
    "minute()",
    "month()",
    "year()",
    "sin(temp)",
    "temp atan2 2",
    // Edges: NaN and infinities through aggregations, nested subqueries, modifiers together.
    "avg(temp / 0)",
    "sum by (job) (temp / 0)",
    "max(ln(temp))",
    "min(ln(temp))",
    "quantile(1.5, temp)",
    "quantile(-1, temp)",
    "stddev by (job) (ln(temp))",
    "sort(temp)",
    "sort_desc(-temp)",
    "count_values by (job) (\"v\", round(temp))",
    "topk by (job) (1, req_total)",
    "bottomk(2, temp unless temp{instance=\"i3\"})",
    "rate(req_total[5m] @ end())",
    "rate(req_total[5m] @ start() offset 1m)",
    "predict_linear(temp[10m] offset 2m, 120)",
    "deriv(req_total[3m])",
    "max_over_time(max_over_time(temp[2m:20s])[6m:1m])",
    "sum_over_time(temp[5m:1m] @ end())",
    "count_over_time((temp > 0)[5m:])",
    "last_over_time(temp[10m:2m] offset 3m)",
    "temp > temp offset 1m",
    "temp >= bool on(instance, job) temp offset 30s",
    "req_total != bool ignoring(instance) group_left sum by (job) (req_total)",
    "1 > bool 2",
    "-(1 - 3)",
    "(temp or vector(0)) + 1",
    "sum(temp) or vector(0)",
    "temp and temp > 1",
    "ephemeral or temp{instance=\"gap\"}",
    "label_replace(temp, \"instance\", \"\", \"missing\", \"\")",
    "label_replace(req_total, \"j\", \"$1$1\", \"job\", \"(a)p.\")",
    "clamp(temp, 0, NaN)",
    "clamp_min(temp / 0, 1)",
    "histogram_quantile(0.5, sum by (job, le) (increase(lat_seconds_bucket[3m])))",
    "histogram_quantile(1, lat_seconds_bucket)",
    "histogram_quantile(0, lat_seconds_bucket)",
    "histogram_quantile(NaN, lat_seconds_bucket)",
    "absent_over_time(temp{instance=\"stale\"}[1m])",
    "absent(temp{instance=\"stale\"})",
    "timestamp(temp @ start())",
    "irate(req_total[1m:15s])",
    "increase(lat_seconds_count[7m])",
    "delta(temp{instance=\"gap\"}[12m])",
    "changes(temp{instance=\"stale\"}[40m])",
    "resets(temp[15m])",
    "avg_over_time(temp{instance=\"stale\"}[20m])",
    "count(temp offset 12m)",
    "group(req_total) by (instance)",
    "count without () (temp)",
    "sum without (job, instance) (req_total)",
    "avg(req_total) by (__name__, job)",
];

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
    let mut failures = Vec::new();
    let mut ran = 0;
    for q in QUERIES {
        for &t in &instants {
            let p = prom_get(addr, &format!("/api/v1/query?query={}&time={:.3}", enc(q), t as f64 / 1000.0));
            ran += 1;
            failures.extend(check(&format!("{q} @ {t}"), p, db.promql_instant(q, t)));
        }
        for &(rs, re, step) in &ranges {
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
    assert!(ran >= 300, "only {ran} queries");
    let both_failed = BOTH_FAILED.load(std::sync::atomic::Ordering::Relaxed);
    assert!(both_failed * 20 <= ran, "{both_failed} of {ran} queries failed on both sides");
    assert!(failures.is_empty(), "{} of {ran} queries differ:\n{}", failures.len(), failures.join("\n\n"));
}
