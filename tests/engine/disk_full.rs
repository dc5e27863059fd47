//! Disk full, for real: the database lives on a 2 MiB tmpfs.
//!
//! 1. A filler file takes most of the space, then commits (`SyncMode::Always`)
//!    run until one fails: it must fail with `Error::Io` carrying ENOSPC, and the
//!    Db is then poisoned. After the filler is deleted, reopening (the documented
//!    recovery) serves every acknowledged sample exactly once and takes writes.
//! 2. With the disk filled again (but for room for the next WAL file's header),
//!    sealing fails with ENOSPC but poisons nothing (a failed write of a new
//!    segment leaves the old files valid): the data is still served, and once
//!    space is freed the same Db seals and commits again.
//!
//! Needs a tmpfs mount: as root directly, otherwise inside `unshare -Urm`. Where
//! neither works the test prints "SKIPPED: <why>" and passes, unless
//! `STRATA_REQUIRE_EXTERNAL=1` (which `.ci/run` sets): then it fails, naming why.

use crate::support::options;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use strata::{Db, Error, Labels, Matcher, Options, SyncMode};

const CHILD_ENV: &str = "STRATA_DISK_FULL_CHILD";
const CHILD_MARK: &str = "disk_full: running in a user namespace";
const ENOSPC: i32 = 28;

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mount {
    path: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = crate::support::status(Command::new("umount").arg(&self.path)).is_ok_and(|s| s.success());
        if !ok {
            let _ = crate::support::status(Command::new("umount").arg("-l").arg(&self.path));
        }
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
    let out = crate::support::output(
        Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at),
    )
    .map_err(|e| format!("cannot run mount: {e}"))?;
    if !out.status.success() {
        return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(Mount { path: at.to_path_buf() })
}

/// Skips the test with `why`, or fails it where `STRATA_REQUIRE_EXTERNAL=1` asks that it run.
fn skip(why: &str) {
    assert!(
        !crate::support::external_required(),
        "disk_full cannot run: {why}; STRATA_REQUIRE_EXTERNAL is set, so this fails"
    );
    println!("SKIPPED: {why}");
}

fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn opts() -> Options {
    options::foreground(SyncMode::Always)
}

fn labels(s: u64) -> Labels {
    Labels::from_pairs([("__name__", "df".to_string()), ("s", s.to_string())]).unwrap()
}

/// Batch `b`: 200 samples for each of 5 series, values that do not compress to nothing.
fn batch(b: u64) -> Vec<(u64, i64, u64)> {
    let mut v = Vec::new();
    for s in 0..5 {
        for k in 0..200 {
            let ts = (b * 200 + k) as i64 * 1000;
            let x = (b.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (s << 32) ^ k).wrapping_mul(0xff51_afd7_ed55_8ccd);
            v.push((s, ts, x));
        }
    }
    v
}

fn commit(db: &Db, b: &[(u64, i64, u64)]) -> strata::Result<()> {
    let mut app = db.appender();
    for &(s, ts, v) in b {
        app.append_labels(&labels(s), ts, f64::from_bits(v))?;
    }
    app.commit()
}

/// Every acknowledged sample present once, bit for bit; others only from `maybe`.
fn check(db: &Db, acked: &BTreeMap<(u64, i64), u64>, maybe: &BTreeMap<(u64, i64), u64>) {
    let mut seen = 0;
    for item in db.querier(i64::MIN..i64::MAX).select(&[Matcher::eq("__name__", "df")]).unwrap() {
        let (l, samples) = item.unwrap();
        let s: u64 = l.get("s").unwrap().parse().unwrap();
        let mut last = i64::MIN;
        for x in samples {
            assert!(x.ts > last, "series {s}: {} after {last}", x.ts);
            last = x.ts;
            let key = (s, x.ts);
            let bits = x.value.to_bits();
            match acked.get(&key) {
                Some(&v) => {
                    assert_eq!(v, bits, "series {s} at {}", x.ts);
                    seen += 1;
                }
                None => assert_eq!(maybe.get(&key), Some(&bits), "series {s} at {}: never acknowledged", x.ts),
            }
        }
    }
    assert_eq!(seen, acked.len(), "acknowledged samples missing");
}

/// Writes zeros to `path` until `limit` bytes or the disk is full; returns the bytes written.
fn fill(path: &Path, limit: u64) -> u64 {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4 << 10]; // one tmpfs page: the disk ends up exactly full
    let mut n = 0;
    while n < limit {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(ENOSPC), "filling {}: {e}", path.display());
                break;
            }
        }
    }
    let _ = f.sync_all();
    n
}

fn is_enospc(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.raw_os_error() == Some(ENOSPC))
        && e.to_string().contains("No space left on device")
}

fn run(mnt: &Path) {
    let dir = mnt.join("db");
    let filler = mnt.join("filler");
    let mut acked = BTreeMap::new();
    let mut maybe = BTreeMap::new();

    // 1. the WAL runs out of space during ingest
    let db = Db::open(&dir, opts()).unwrap();
    let filled = fill(&filler, 1536 << 10);
    assert!(filled >= 1 << 20, "the filler got only {filled} bytes");
    let mut b = 0;
    let err = loop {
        let data = batch(b);
        b += 1;
        match commit(&db, &data) {
            Ok(()) => acked.extend(data.iter().map(|&(s, ts, v)| ((s, ts), v))),
            Err(e) => {
                maybe.extend(data.iter().map(|&(s, ts, v)| ((s, ts), v)));
                break e;
            }
        }
        assert!(b < 1000, "2 MiB never filled up");
    };
    println!("disk full after {} acknowledged commits: {err}", b - 1);
    assert!(b > 1, "not even the first commit fitted");
    assert!(is_enospc(&err), "expected Error::Io with ENOSPC, got {err:?}");
    let again = commit(&db, &batch(b)).unwrap_err();
    assert!(matches!(&again, Error::Poisoned { cause } if cause.contains("No space left")), "{again:?}");
    check(&db, &acked, &maybe); // readers are still served
    assert!(db.close().is_err());
    drop(db);

    fs::remove_file(&filler).unwrap();
    let db = Db::open(&dir, opts()).unwrap();
    println!("reopened: {:?}", db.recovery_report());
    check(&db, &acked, &maybe);
    let data = batch(b + 1);
    commit(&db, &data).unwrap();
    acked.extend(data.iter().map(|&(s, ts, v)| ((s, ts), v)));
    db.flush().unwrap();
    check(&db, &acked, &maybe);

    // 2. sealing runs out of space: an error, not poison; retried once there is room
    let data = batch(b + 2);
    commit(&db, &data).unwrap();
    acked.extend(data.iter().map(|&(s, ts, v)| ((s, ts), v)));
    // Leave one page: room for the header of the WAL file that sealing starts (a WAL
    // that cannot start its next file poisons, like any failed WAL write), none for
    // the segment.
    let reserve = mnt.join("reserve");
    fill(&reserve, 4 << 10);
    fill(&filler, u64::MAX);
    fs::remove_file(&reserve).unwrap();
    let err = db.flush().unwrap_err();
    println!("sealing on a full disk: {err}");
    assert!(is_enospc(&err), "expected Error::Io with ENOSPC from the seal, got {err:?}");
    assert!(db.wal_stats().poisoned.is_none(), "a failed segment write poisoned the Db");
    check(&db, &acked, &maybe);
    fs::remove_file(&filler).unwrap();
    db.flush().unwrap();
    let data = batch(b + 3);
    commit(&db, &data).unwrap();
    acked.extend(data.iter().map(|&(s, ts, v)| ((s, ts), v)));
    db.close().unwrap();
    drop(db);

    let db = Db::open(&dir, opts()).unwrap();
    check(&db, &acked, &maybe);
    assert_eq!(db.recovery_report().wal_truncated_bytes, 0);
    db.close().unwrap();
}

#[test]
fn disk_full_during_ingest_loses_nothing_acknowledged() {
    let in_child = std::env::var_os(CHILD_ENV).is_some();
    if in_child {
        println!("{CHILD_MARK}");
    } else if effective_uid() != Some(0) {
        return run_in_user_namespace();
    }
    let base = tempfile::tempdir().unwrap();
    let mnt = base.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let guard = match mount_tmpfs(&mnt, "2m") {
        Ok(m) => m,
        Err(why) => return skip(&why),
    };
    run(&guard.path);
    drop(guard);
}

/// Not root: run this test again inside `unshare -Urm`, where mounting a tmpfs is allowed.
fn run_in_user_namespace() {
    let exe = std::env::current_exe().unwrap();
    let out = crate::support::output(
        Command::new("unshare")
            .args(["-Urm"])
            .arg(&exe)
            .args([
                "disk_full::disk_full_during_ingest_loses_nothing_acknowledged",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1"),
    );
    let out = match out {
        Ok(o) => o,
        Err(e) => return skip(&format!("not root and unshare cannot run: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !stdout.contains(CHILD_MARK) {
        let err = String::from_utf8_lossy(&out.stderr);
        return skip(&format!("not root and unshare -Urm failed: {}", err.trim()));
    }
    assert!(
        out.status.success(),
        "the test failed inside the user namespace:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
