//! `strata dashboard --once`: one frame rendered as text from a real directory
//! (the colour and layout checks are unit tests against ratatui's TestBackend).
#![cfg(feature = "cli")]

use crate::support::cli_support;
use crate::support::cli_support::{fails, load_devops, ok};

#[test]
fn once_renders_summary_alerts_sparklines_and_top_series() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    load_devops(dir.path(), 3, "2h");
    let out = ok(&[
        "dashboard",
        "--data",
        d,
        "--once",
        "--metric",
        "cpu_usage_user",
        "--alert",
        "cpu_usage_user>1000",
        "--alert",
        "cpu_usage_idle<-1",
        "--size",
        "140x40",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(" Strata dashboard — "), "{out}");
    assert!(out.contains("series 30 │ samples 21,600"), "{out}");
    assert!(out.contains("● OK   cpu_usage_user>1000"), "{out}");
    assert!(out.contains(" cpu_usage_user (10/10) "), "{out}");
    assert!(out.contains("last hour (1 min): min"), "{out}");
    let bars = |l: &&str| l.chars().filter(|c| "▁▂▃▄▅▆▇█".contains(*c)).count();
    assert!(lines.iter().map(bars).max().unwrap() > 100, "a full-width sparkline row:\n{out}");
    assert!(out.contains("Top series by rate") && out.contains("0.10/s"), "{out}");
    assert!(fails(&["dashboard", "--data", d, "--once", "--metric", "nope"]).contains("no metric named \"nope\""));
    assert!(cli_support::stderr(&cli_support::strata(&["dashboard", "--alert", "cpu>"])).contains("invalid alert"));
}
