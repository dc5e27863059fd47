//! Seed 004's README, run as its users run it: `strata serve` started with the
//! README's command (only the port changed, so tests can run side by side), then
//! every curl command of the seed's "API Examples", verbatim from
//! `tests/fixtures/seed004/api_examples.sh` with `localhost:8000` replaced, through
//! the real `curl`. Their 2025 timestamps must be kept: a new database keeps
//! everything forever. Each answer is checked field by field.
#![cfg(feature = "server")]

use crate::support::served::spawn;
use serde_json::{json, Value};
use std::process::Command;

const EXAMPLES: &str = include_str!("../fixtures/seed004/api_examples.sh");

/// The commands: blocks separated by blank lines, `#` comment lines left out.
fn commands() -> Vec<String> {
    let body: Vec<&str> = EXAMPLES.lines().filter(|l| !l.starts_with('#')).collect();
    body.join("\n").split("\n\n").map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
}

#[test]
fn the_seed_readme_curl_commands_work_against_strata_serve() {
    let tmp = tempfile::tempdir().unwrap();
    // curl reads its options from $HOME/.curlrc: quiet, errors shown, and the HTTP
    // status after the body, so the commands themselves stay verbatim.
    std::fs::write(tmp.path().join(".curlrc"), "silent\nshow-error\nwrite-out = \"\\n%{http_code}\"\n").unwrap();
    let mut server = spawn(tmp.path(), &["--listen", "127.0.0.1:0"], &[]);
    let addr = server.addr();
    let cmds = commands();
    assert_eq!(cmds.len(), 10, "the fixture holds the seed's ten examples: {cmds:#?}");
    let mut answers = Vec::new();
    for cmd in &cmds {
        assert!(cmd.starts_with("curl "), "{cmd}");
        let cmd = cmd.replace("localhost:8000", &addr.to_string());
        let out = crate::support::output(Command::new("bash").arg("-c").arg(&cmd).env("HOME", tmp.path()))
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{cmd}: {}{stdout}", String::from_utf8_lossy(&out.stderr));
        let (body, code) = stdout.rsplit_once('\n').unwrap_or_else(|| panic!("{cmd}: no status in {stdout:?}"));
        assert_eq!(code, "200", "{cmd}: {body}");
        let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{cmd}: {e}: {body}"));
        answers.push(v);
    }
    let host = json!({"host": "server1", "region": "us-west"});

    // POST /metrics/ingest: stored at its own 2025 time.
    assert_eq!(
        answers[0],
        json!({"status": "success", "metric_name": "cpu_usage", "timestamp": "2025-12-03T12:00:00Z", "ingested": 1})
    );
    // GET /metrics/list?page=1&page_size=10 and ?search=cpu.
    let listed =
        json!([{"metric_name": "cpu_usage", "series_count": 1, "type": "unknown", "unit": "", "description": ""}]);
    for (a, page_size, search) in [(&answers[1], 10, Value::Null), (&answers[2], 100, json!("cpu"))] {
        assert_eq!(a["metrics"], listed, "{a}");
        assert_eq!((a["total"].as_u64(), a["total_pages"].as_u64(), a["page"].as_u64()), (Some(1), Some(1), Some(1)));
        assert_eq!((a["page_size"].as_u64(), &a["search"]), (Some(page_size), &search));
    }
    // GET /metrics/cpu_usage/info.
    let info = &answers[3];
    assert_eq!(info["metric_name"], "cpu_usage");
    assert_eq!((info["series_count"].as_u64(), info["sample_count"].as_u64()), (Some(1), Some(1)));
    assert_eq!(info["label_names"], json!(["host", "region"]));
    assert_eq!(info["labels"], json!({"host": ["server1"], "region": ["us-west"]}));
    assert_eq!(
        (info["first_timestamp"].as_str(), info["last_timestamp"].as_str()),
        (Some("2025-12-03T12:00:00Z"), Some("2025-12-03T12:00:00Z"))
    );
    assert_eq!(info["first_timestamp_ms"], 1_764_763_200_000i64);
    // POST /query, avg over the day for host=server1.
    let q = &answers[4];
    assert_eq!((q["function"].as_str(), q["metric_name"].as_str()), (Some("avg"), Some("cpu_usage")));
    assert_eq!(
        (q["start_time"].as_str(), q["end_time"].as_str()),
        (Some("2025-12-03T00:00:00Z"), Some("2025-12-03T23:59:59Z"))
    );
    assert_eq!(q["labels"], json!({"host": "server1"}));
    assert_eq!(q["value"], 75.5);
    assert_eq!(q["series_count"], 1);
    assert_eq!(q["series"], json!([{"labels": host, "metric_name": "cpu_usage", "value": 75.5}]));
    // GET /query/raw, without and with labels: the one sample.
    for raw in [&answers[5], &answers[6]] {
        assert_eq!((raw["count"].as_u64(), raw["series_count"].as_u64()), (Some(1), Some(1)), "{raw}");
        assert_eq!(
            raw["data"],
            json!([{"timestamp": "2025-12-03T12:00:00Z", "timestamp_ms": 1_764_763_200_000i64, "value": 75.5, "labels": host}])
        );
    }
    // GET /query/rollup over [00:00, 12:00): half-open, so the 12:00 sample's bucket
    // is outside it (docs/SERVER.md); the answer names the window and the source.
    let r = &answers[7];
    assert_eq!((r["window"].as_str(), r["window_ms"].as_u64()), (Some("5m"), Some(300_000)));
    assert_eq!((r["bucket_count"].as_u64(), r["series"].as_array().map(Vec::len)), (Some(0), Some(0)), "{r}");
    assert_eq!(r["end_time"], "2025-12-03T12:00:00Z");
    // GET /rollups: raw, 5m and 1h, each kept forever on a new database.
    for a in [&answers[8], &answers[9]] {
        let tiers: Vec<(&str, &str)> = a["rollups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["tier"].as_str().unwrap(), t["retention"].as_str().unwrap()))
            .collect();
        assert_eq!(tiers, [("raw", "forever"), ("5m", "forever"), ("1h", "forever")], "{a}");
        assert_eq!(
            (a["oldest"].as_str(), a["newest"].as_str()),
            (Some("2025-12-03T12:00:00Z"), Some("2025-12-03T12:00:00Z"))
        );
    }
    let m = &answers[9]["metric"];
    assert_eq!((m["metric_name"].as_str(), m["sample_count"].as_u64()), (Some("cpu_usage"), Some(1)), "{m}");
    assert_eq!(m["buckets"], json!({"5m": 1, "1h": 1}));
    let (status, lines) = server.terminate();
    assert!(status.success(), "{lines:#?}");
}
