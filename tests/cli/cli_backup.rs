//! `strata backup`: the snapshot opens with every acknowledged sample, segments
//! are hard links, and unsafe situations are refused.
#![cfg(feature = "cli")]

use crate::support::cli_support;
use std::os::unix::fs::MetadataExt;

use crate::support::cli_support::{fails, json, load_devops, ok};
use strata::{Db, Labels, Matcher};

fn count(dir: &std::path::Path) -> (usize, u64) {
    let db = Db::open(dir, cli_support::keep_all().background(false)).unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    let mut n = (0, 0);
    for s in q.select(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap() {
        n.0 += 1;
        n.1 += s.unwrap().1.len() as u64;
    }
    n
}

#[test]
fn backup_holds_every_acknowledged_sample() {
    let _serial = cli_support::serial();
    let src = tempfile::tempdir().unwrap();
    load_devops(src.path(), 5, "1h"); // sealed into a segment
                                      // More samples acknowledged but only in the WAL and head.
    {
        let db = Db::open(src.path(), cli_support::keep_all()).unwrap();
        let mut app = db.appender();
        let l = Labels::metric("late", [("k", "v")]).unwrap();
        for t in 0..500 {
            app.append_labels(&l, t, t as f64).unwrap();
        }
        app.commit().unwrap();
        db.close().unwrap();
    }
    let want = count(src.path());
    assert_eq!(want, (51, 50 * 360 + 500));

    let dest = tempfile::tempdir().unwrap();
    let d = dest.path().join("snap");
    let r = json(&ok(&["backup", d.to_str().unwrap(), "--data", src.path().to_str().unwrap(), "--json"]));
    // The sealed segment is linked; the samples only in the WAL travel in copied WAL files.
    assert_eq!(r["segments_linked"].as_u64(), Some(1), "{r}");
    assert_eq!(r["samples_in_segments"].as_u64(), Some(50 * 360));
    assert!(r["wal_files"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(count(&d), want);
    // Segments are shared with the source, not copied.
    for e in std::fs::read_dir(d.join("segments")).unwrap() {
        assert!(e.unwrap().metadata().unwrap().nlink() >= 2);
    }
    let check = cli_support::strata(&["check", "--data", d.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", cli_support::stdout(&check));
    // The source is still whole.
    assert_eq!(count(src.path()), want);
}

#[test]
fn backup_refuses_a_locked_source_and_a_non_empty_destination() {
    let _serial = cli_support::serial();
    let src = tempfile::tempdir().unwrap();
    load_devops(src.path(), 1, "10m");
    let s = src.path().to_str().unwrap();
    let dest = tempfile::tempdir().unwrap();
    std::fs::write(dest.path().join("x"), b"x").unwrap();
    assert!(fails(&["backup", dest.path().to_str().unwrap(), "--data", s]).contains("is not empty"));

    let db = Db::open(src.path(), cli_support::keep_all()).unwrap(); // as a running server would
    let target = dest.path().join("new");
    let e = fails(&["backup", target.to_str().unwrap(), "--data", s]);
    assert!(e.contains("in use by another process") && e.contains("--url"), "{e}");
    assert!(!target.exists());
    drop(db);
}
