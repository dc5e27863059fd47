//! Metric metadata: last write wins, field-wise updates, removal, validation, and
//! durability: across reopen from the WAL alone, after a seal (from `METADATA`),
//! through a backup, and across SIGKILL at random moments.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use strata::{Db, Labels, MetadataUpdate, MetricKind, MetricMetadata, Options, SyncMode, METADATA_FILE};

const CHILD_ENV: &str = "STRATA_METADATA_CHILD_DIR";
const METRICS: u64 = 4;

fn opts() -> Options {
    Options::default().background(false).sync(SyncMode::Always)
}

fn gauge(unit: &str, help: &str) -> MetricMetadata {
    MetricMetadata::new(MetricKind::Gauge, unit, help)
}

fn add_sample(db: &Db, name: &str, ts: i64) {
    let mut app = db.appender();
    app.append_labels(&Labels::metric(name, [("host", "a")]).unwrap(), ts, 1.0).unwrap();
    app.commit().unwrap();
}

fn wal_files(dir: &Path) -> usize {
    fs_count(&dir.join("wal"))
}

fn fs_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn last_write_wins_updates_merge_and_removal_forgets() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.metadata("cpu"), None);
    assert!(db.set_metadata("cpu", gauge("percent", "CPU busy")).unwrap());
    // The same value again changes nothing and is not logged again.
    let before = std::fs::metadata(dir.path().join("wal").join("0000000000000001.wal")).unwrap().len();
    assert!(!db.set_metadata("cpu", gauge("percent", "CPU busy")).unwrap());
    let after = std::fs::metadata(dir.path().join("wal").join("0000000000000001.wal")).unwrap().len();
    assert_eq!(before, after);
    assert!(db.set_metadata("cpu", gauge("ratio", "CPU busy share")).unwrap());
    assert_eq!(db.metadata("cpu"), Some(gauge("ratio", "CPU busy share")));
    // Field-wise: only the fields given change; later entries win.
    let n = db
        .update_metadata(&[
            ("cpu".into(), MetadataUpdate { help: Some("first".into()), ..Default::default() }),
            ("cpu".into(), MetadataUpdate { help: Some("second".into()), ..Default::default() }),
            ("mem".into(), MetadataUpdate { kind: Some(MetricKind::Gauge), ..Default::default() }),
        ])
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(db.metadata("cpu"), Some(gauge("ratio", "second")));
    assert_eq!(db.metadata("mem"), Some(gauge("", "")));
    // An invalid entry fails the whole call, naming what was wrong; nothing is stored.
    let e = db
        .update_metadata(&[
            ("ok".into(), MetricMetadata::default().into()),
            ("cpu".into(), MetadataUpdate { unit: Some("per second".into()), ..Default::default() }),
        ])
        .unwrap_err();
    assert!(e.is_input_error() && e.to_string().contains("per second"), "{e}");
    assert_eq!(db.metadata("ok"), None);
    assert!(db.remove_metadata("mem").unwrap());
    assert!(!db.remove_metadata("mem").unwrap());
    let names: Vec<String> = db.all_metadata().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["cpu"]);
    db.close().unwrap();
}

#[test]
fn metadata_survives_reopen_from_the_wal_and_from_the_file_after_a_seal() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        db.set_metadata("a_total", MetricMetadata::new(MetricKind::Counter, "", "A.")).unwrap();
        db.set_metadata("b", gauge("bytes", "B.")).unwrap();
        db.remove_metadata("b").unwrap();
        db.set_metadata("c", gauge("seconds", "C.\nsecond line")).unwrap();
        db.close().unwrap();
    }
    assert!(!dir.path().join(METADATA_FILE).exists(), "no seal yet: the WAL alone holds it");
    let want = vec![
        ("a_total".to_string(), MetricMetadata::new(MetricKind::Counter, "", "A.")),
        ("c".to_string(), gauge("seconds", "C.\nsecond line")),
    ];
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        assert_eq!(db.all_metadata(), want);
        // A seal stores the map before the WAL files holding its records go.
        add_sample(&db, "c", 1000);
        db.flush().unwrap();
        db.close().unwrap();
    }
    assert!(dir.path().join(METADATA_FILE).exists());
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.recovery_report().wal_records, 0, "every record before the seal is gone from the WAL");
    assert_eq!(db.all_metadata(), want);
    // Later changes replay over the file.
    db.set_metadata("a_total", MetricMetadata::new(MetricKind::Counter, "", "A, again.")).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(db.metadata("a_total").unwrap().help, "A, again.");
    // Deleting every series of a metric keeps its metadata (documented choice).
    db.delete(&[strata::Matcher::eq("__name__", "c")], i64::MIN..=i64::MAX).unwrap();
    assert_eq!(db.metadata("c"), Some(gauge("seconds", "C.\nsecond line")));
    // A backup carries it.
    let backup = tempfile::tempdir().unwrap();
    let dest = backup.path().join("b");
    db.backup(&dest).unwrap();
    db.close().unwrap();
    let restored = Db::open(&dest, opts()).unwrap();
    assert_eq!(restored.metadata("a_total").unwrap().help, "A, again.");
    assert_eq!(restored.all_metadata().len(), 2);
    restored.close().unwrap();
    assert!(wal_files(dir.path()) >= 1);
}

#[test]
fn a_damaged_metadata_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        db.set_metadata("x", gauge("u", "h")).unwrap();
        add_sample(&db, "x", 1);
        db.flush().unwrap();
        db.close().unwrap();
    }
    let path = dir.path().join(METADATA_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let e = Db::open(dir.path(), opts()).err().expect("a damaged METADATA file is refused");
    assert!(e.to_string().contains(METADATA_FILE), "{e}");
    let report = strata::check_dir(dir.path(), |_, _, _| {}).unwrap();
    assert!(report.errors() > 0);
}

/// Runs only as the child: sets metadata forever, sealing now and then.
#[test]
fn metadata_child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let db = Db::open(&dir, opts().wal_segment_size(16 << 10).block_duration(Duration::from_secs(3600))).unwrap();
    let start = db.all_metadata().iter().map(|(_, m)| m.help.parse::<u64>().unwrap() + 1).max().unwrap_or(0);
    for i in start.. {
        let name = format!("m{}", i % METRICS);
        let kind = MetricKind::ALL[(i % 8) as usize];
        db.set_metadata(&name, MetricMetadata::new(kind, "", i.to_string())).unwrap();
        println!("ack {i}");
        if i % 5 == 2 {
            add_sample(&db, &name, i as i64);
            db.flush().unwrap();
        }
    }
}

#[test]
fn acknowledged_metadata_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    for run in 0..12u64 {
        let mut child = crate::support::spawn(
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "metadata::metadata_child_entry", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )
        .unwrap();
        let out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let (mut line, mut got) = (Vec::new(), Vec::new());
            while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 && line.ends_with(b"\n") {
                if let Some((_, i)) = String::from_utf8_lossy(&line).trim_end().rsplit_once("ack ") {
                    got.push(i.parse::<u64>().unwrap());
                }
                line.clear();
            }
            got
        });
        std::thread::sleep(Duration::from_millis(40 + (run * 37) % 200));
        child.kill().unwrap();
        child.wait().unwrap();
        for i in reader.join().unwrap() {
            acked.insert(format!("m{}", i % METRICS), i);
        }
        let db = Db::open(dir.path(), opts()).unwrap();
        for (name, &i) in &acked {
            let m = db.metadata(name).unwrap_or_else(|| panic!("run {run}: {name} lost"));
            let got: u64 = m.help.parse().unwrap();
            // The acknowledged value, or the one write in flight after it.
            assert!(got == i || got == i + METRICS, "run {run}: {name} holds {got}, acknowledged {i}");
            assert_eq!(m.kind, MetricKind::ALL[(got % 8) as usize]);
        }
        db.close().unwrap();
    }
    assert!(acked.len() as u64 == METRICS, "the child acknowledged writes to every metric");
    assert!(dir.path().join(METADATA_FILE).exists(), "some run sealed");
}
