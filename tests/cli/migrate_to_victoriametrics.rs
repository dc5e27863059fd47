//! Migration in one command: `strata export --to http://vm/api/v1/import` streams
//! Strata's JSON lines into a real VictoriaMetrics (the Debian `victoria-metrics`
//! binary, or `STRATA_VICTORIA_METRICS`), and every sample reads back from its
//! `/api/v1/export`. Skips without the binary unless `STRATA_REQUIRE_EXTERNAL=1`
//! (set by `.ci/run`): then it fails.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli_support::{json, load_devops, ok};
use crate::support::{external_binary, external_required, KillOnDrop};

type Series = BTreeMap<String, BTreeMap<i64, f64>>;

/// Folds JSON lines (`{"metric":{…},"values":[…],"timestamps":[…]}`) into series,
/// keyed by their sorted labels; a series may span several lines.
fn fold(text: &str) -> Series {
    let mut out = Series::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v = json(line);
        let labels: BTreeMap<String, String> = serde_json::from_value(v["metric"].clone()).unwrap();
        let key = format!("{labels:?}");
        let entry = out.entry(key).or_default();
        let (ts, vs) = (v["timestamps"].as_array().unwrap(), v["values"].as_array().unwrap());
        assert_eq!(ts.len(), vs.len(), "{line}");
        for (t, x) in ts.iter().zip(vs) {
            let x = x.as_f64().or_else(|| x.as_str().and_then(|s| s.parse().ok())).unwrap();
            assert!(entry.insert(t.as_i64().unwrap(), x).is_none(), "a timestamp twice in {line}");
        }
    }
    out
}

/// A plain HTTP/1.0 GET: the body, once the answer is 200.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.lines().next()?.contains(" 200 ").then(|| body.to_string())
}

#[test]
fn export_to_victoriametrics_and_read_every_sample_back() {
    let Some(vm) = external_binary("victoria-metrics", "STRATA_VICTORIA_METRICS") else {
        let why = "no `victoria-metrics` binary (apt-get install victoria-metrics, or set STRATA_VICTORIA_METRICS)";
        assert!(!external_required(), "migrate_to_victoriametrics cannot run: {why}; STRATA_REQUIRE_EXTERNAL is set");
        eprintln!("SKIPPED migrate_to_victoriametrics: {why}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("strata");
    load_devops(&data, 8, "2h");
    let d = data.to_str().unwrap();
    let ours = fold(&ok(&["export", "--data", d]));
    let samples: usize = ours.values().map(BTreeMap::len).sum();
    assert_eq!((ours.len(), samples), (80, 80 * 720));

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let vm_dir = dir.path().join("vm");
    let _vm = KillOnDrop(
        Command::new(vm)
            .arg(format!("-storageDataPath={}", vm_dir.display()))
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg("-retentionPeriod=100y")
            .arg("-search.disableCache")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while get(port, "/health").is_none() {
        assert!(t0.elapsed() < Duration::from_secs(30), "VictoriaMetrics did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The one command.
    let url = format!("http://127.0.0.1:{port}/api/v1/import");
    let report = json(&ok(&["export", "--data", d, "--to", &url, "--json"]));
    assert_eq!((report["series"].as_u64(), report["samples"].as_u64()), (Some(80), Some(samples as u64)), "{report}");
    assert_eq!(report["output"].as_str(), Some(url.as_str()));

    get(port, "/internal/force_flush").expect("force_flush");
    let theirs = fold(&get(port, "/api/v1/export?match%5B%5D=%7B__name__%21%3D%22%22%7D").expect("export"));
    assert_eq!(theirs.keys().collect::<Vec<_>>(), ours.keys().collect::<Vec<_>>());
    for (labels, want) in &ours {
        let got = &theirs[labels];
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{labels}");
        for ((t, a), b) in want.iter().zip(got.values()) {
            // VictoriaMetrics stores values as decimal mantissa and exponent: up to 15
            // significant digits come back exactly, past that within rounding.
            assert!((a - b).abs() <= a.abs() * 1e-12, "{labels} at {t}: {a} became {b}");
        }
    }

    // A target that refuses the body makes the command fail, naming the answer.
    let bad = format!("http://127.0.0.1:{port}/api/v1/import/nonexistent");
    let out = Command::new(env!("CARGO_BIN_EXE_strata")).args(["export", "--data", d, "--to", &bad]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("answered 4") || err.contains("answered 5"), "{err}");
}
