//! OpenMetrics export (`strata export --format openmetrics`, `GET /export?format=openmetrics`)
//! read by the real `promtool tsdb create-blocks-from openmetrics`, whose blocks must hold
//! every sample. Without promtool the test says SKIPPED, except when
//! `STRATA_REQUIRE_EXTERNAL=1` (set in CI), where a missing promtool is a failure.
#![cfg(all(feature = "cli", feature = "server"))]

use crate::support::cli_support;
use crate::support::server_util;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli_support::{json, ok};
use strata::{Db, Labels};

/// 2026-01-01T00:00:00Z in ms.
const DAY0: i64 = 1_767_225_600_000;
const PER_SERIES: i64 = 500;

fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("promtool")).find(|p| p.is_file()));
    if found.is_none() {
        assert!(
            std::env::var("STRATA_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "promtool is not on PATH, and STRATA_REQUIRE_EXTERNAL=1 requires it (Debian: apt-get install prometheus)"
        );
        eprintln!("SKIPPED: promtool is not on PATH");
    }
    found
}

/// Two named series over 8 h (every 57.5 s, so timestamps have a fraction of a
/// second), one NaN, and a series without a metric name.
fn fill(db: &Db) {
    let mut app = db.appender();
    for h in ["a", "b"] {
        let l = Labels::metric("om_test", [("host", h)]).unwrap();
        for i in 0..PER_SERIES {
            let v = if h == "b" && i == 3 { f64::NAN } else { i as f64 * 0.25 };
            app.append_labels(&l, DAY0 + i * 57_500, v).unwrap();
        }
    }
    app.append_labels(&Labels::from_pairs([("job", "nameless")]).unwrap(), DAY0, 1.0).unwrap();
    app.commit().unwrap();
}

/// Samples in the blocks promtool wrote under `dir`, from each block's meta.json.
fn block_samples(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let meta = e.unwrap().path().join("meta.json");
        if meta.is_file() {
            n += json(&std::fs::read_to_string(meta).unwrap())["stats"]["numSamples"].as_u64().unwrap();
        }
    }
    n
}

#[test]
fn openmetrics_export_makes_promtool_blocks_with_every_sample() {
    let _serial = cli_support::serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = Db::open(&data, cli_support::keep_all()).unwrap();
    fill(&db);
    db.close().unwrap();
    let file = dir.path().join("export.om");
    let summary = json(&ok(&[
        "export",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "openmetrics",
        "-o",
        file.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!((summary["series"].as_u64(), summary["skipped_series"].as_u64()), (Some(2), Some(1)), "{summary}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().last(), Some("# EOF"));
    // Seconds with milliseconds, distinct from the Prometheus format's ms.
    assert!(text.contains("om_test{host=\"a\"} 0.25 1767225657.500\n"), "{}", &text[..200]);
    assert_eq!(text.lines().count() as i64, 2 * PER_SERIES + 1);

    // The server writes the same text for the same named series.
    let server = server_util::start();
    fill(&server.db);
    let r = server.get("/export?format=openmetrics&match=om_test");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert_eq!(r.text(), text);

    let Some(promtool) = promtool() else { return };
    let blocks = dir.path().join("blocks");
    let out = Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(&blocks)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(block_samples(&blocks), 2 * PER_SERIES as u64);
}
