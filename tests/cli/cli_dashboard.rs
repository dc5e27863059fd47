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
        "--alert",
        "max(p99(cpu_usage_user[5m])) > 1000",
        "--size",
        "140x40",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(" Strata dashboard — "), "{out}");
    assert!(out.contains("series 30 │ samples 21,600"), "{out}");
    assert!(out.contains("● OK   cpu_usage_user>1000"), "{out}");
    assert!(out.contains("● OK   max(p99(cpu_usage_user[5m])) > 1000  "), "{out}");
    assert!(out.contains(" cpu_usage_user: last 1h, 3 series ") && out.contains("count 1,080 │ min "), "{out}");
    assert!(out.contains(" cpu_usage_user (10/10) "), "{out}");
    assert!(out.contains("last hour (1 min): min"), "{out}");
    let bars = |l: &&str| l.chars().filter(|c| "▁▂▃▄▅▆▇█".contains(*c)).count();
    assert!(lines.iter().map(bars).max().unwrap() > 100, "a full-width sparkline row:\n{out}");
    assert!(out.contains("Top series by rate") && out.contains("0.10/s"), "{out}");
    assert!(fails(&["dashboard", "--data", d, "--once", "--metric", "nope"]).contains("no metric named \"nope\""));
    assert!(cli_support::stderr(&cli_support::strata(&["dashboard", "--alert", "cpu>"])).contains("invalid alert"));
    // An expression alert is checked before anything is opened: a range where a
    // function needs one, or a range vector as the answer, is refused with why.
    let err = cli_support::stderr(&cli_support::strata(&["dashboard", "--alert", "p99(cpu_usage_user) > 5"]));
    assert!(err.contains("quantile_over_time(0.99, cpu_usage_user)") && err.contains("expected type matrix"), "{err}");
    let err = cli_support::stderr(&cli_support::strata(&["dashboard", "--alert", "cpu_usage_user[5m] > 5"]));
    assert!(err.contains("gives a matrix"), "{err}");
    assert!(fails(&["dashboard", "--data", d, "--once", "--summary-window", "0s"]).contains("--summary-window"));
}
