//! Every command run WITHOUT a retention flag against a directory created to keep
//! data forever leaves years-old data alone: once with that data sealed in segments,
//! once with it still only in the WAL. And a retention flag that contradicts the
//! recorded policy is refused rather than applied.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

use strata::{Db, Labels, Matcher, Options, RetentionPolicy, SyncMode};

use crate::support::serial;

/// 2023-11-14, far past any tiered retention.
const OLD: i64 = 1_700_000_000_000;
const N: usize = 20_000;

fn run(args: &[&str]) -> Output {
    crate::support::output(Command::new(env!("CARGO_BIN_EXE_strata")).args(args)).expect("the strata binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "strata {args:?} failed:\n{text}");
    text
}

fn fixture(dir: &Path, sealed: bool) {
    let db =
        Db::open(dir, Options::default().sync(SyncMode::Never).background(false).retention(RetentionPolicy::forever()))
            .unwrap();
    let mut app = db.appender();
    for host in ["a", "b"] {
        let l = Labels::from_pairs([("__name__", "old_metric"), ("host", host)]).unwrap();
        for i in 0..N / 2 {
            app.append_labels(&l, OLD + i as i64 * 60_000, i as f64).unwrap();
        }
    }
    app.commit().unwrap();
    if sealed {
        db.flush().unwrap();
    }
}

fn old_samples(dir: &Path) -> usize {
    let db = Db::open(dir, Options::default().background(false)).unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    let n = q.select(&[Matcher::eq("__name__", "old_metric")]).unwrap().map(|s| s.unwrap().1.count()).sum();
    assert_eq!(db.retention_policy(), RetentionPolicy::forever(), "the recorded policy changed");
    n
}

fn every_command_keeps_old_data(sealed: bool) {
    let _one = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fixture(&dir, sealed);
    let d = dir.to_str().unwrap();
    let import = tmp.path().join("new.csv");
    std::fs::write(&import, "series,timestamp,value\nnew_metric{host=\"x\"},1700000000000,1\n").unwrap();
    let backup = tmp.path().join("backup");
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats", "--data", d],
        vec!["check", "--data", d],
        vec!["query", "old_metric", "--start", "2023-11-01", "--end", "2023-12-31", "--data", d],
        vec!["export", "--data", d],
        vec!["retention", "--data", d],
        vec!["compact", "--data", d],
        vec!["backup", backup.to_str().unwrap(), "--data", d],
        vec!["load", "--data", d, "--hosts", "1", "--duration", "10m"],
        vec!["import", import.to_str().unwrap(), "--data", d],
        vec!["dashboard", "--once", "--data", d],
        vec!["retention", "--data", d, "--apply"],
    ];
    for args in commands {
        let out = ok(&args);
        assert_eq!(old_samples(&dir), N, "strata {args:?} lost data (sealed: {sealed}):\n{out}");
        if args[0] == "query" {
            assert!(out.contains("old_metric"), "query hid the old data: {out}");
        }
        if args[0] == "export" {
            assert_eq!(out.matches("old_metric").count(), 2, "export hid the old data: {out}");
        }
    }
    assert_eq!(old_samples(&backup), N, "the backup lost data or its policy");
}

#[test]
fn sealed_data_survives_every_command_without_a_retention_flag() {
    every_command_keeps_old_data(true);
}

#[test]
fn wal_only_data_survives_every_command_without_a_retention_flag() {
    every_command_keeps_old_data(false);
}

#[test]
fn a_contradicting_retention_flag_is_refused_and_changes_nothing() {
    let _one = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fixture(&dir, true);
    let d = dir.to_str().unwrap();
    for cmd in ["stats", "compact", "export"] {
        let out = run(&[cmd, "--data", d, "--retention", "tiered"]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{cmd} accepted a contradicting --retention");
        assert!(err.contains("records retention") && err.contains("strata retention set"), "{err}");
        assert_eq!(old_samples(&dir), N);
    }
    // The same policy as recorded is accepted.
    ok(&["stats", "--data", d, "--retention", "forever"]);
    // An explicit change is recorded and reported, and then applies.
    let out = ok(&["retention", "set", "--preset", "tiered", "--data", d]);
    assert!(out.contains("retention now: raw 7d, 5m 30d, 1h 365d"), "{out}");
    assert!(out.contains("would remove segment"), "{out}");
    let out = ok(&["compact", "--data", d]);
    assert!(out.contains("removed segment") && out.contains("raw data past 7d"), "{out}");
    assert_eq!(old_samples_any(&dir), 0);
}

fn old_samples_any(dir: &Path) -> usize {
    let db = Db::open(dir, Options::default().background(false)).unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("__name__", "old_metric")]).unwrap().map(|s| s.unwrap().1.count()).sum()
}

#[test]
fn rules_are_managed_from_the_cli_and_recorded() {
    let _one = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    fixture(&dir, true);
    let d = dir.to_str().unwrap();
    let out = ok(&[
        "retention",
        "rule",
        "add",
        "short",
        "--metric",
        "old_*",
        "--match",
        "{host=\"a\"}",
        "--raw",
        "1d",
        "--data",
        d,
    ]);
    assert!(out.contains("\"short\" priority 0: old_*{host=\"a\"} raw 1d, 5m forever, 1h forever"), "{out}");
    let out = ok(&["retention", "rule", "list", "--data", d]);
    assert!(out.contains("(1 series)"), "{out}");
    let dry = ok(&["retention", "--data", d]);
    assert!(dry.contains("would"), "{dry}");
    let applied = ok(&["retention", "--apply", "--data", d]);
    assert!(applied.contains("trimmed segment") || applied.contains("removed segment"), "{applied}");
    assert_eq!(old_samples_any(&dir), N / 2, "only host a's data goes");
    ok(&["retention", "rule", "remove", "short", "--data", d]);
    let out = run(&["retention", "rule", "remove", "short", "--data", d]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no retention rule named"));
}
