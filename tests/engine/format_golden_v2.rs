//! Golden files of WAL version 2 and `METADATA` version 1, in
//! `tests/fixtures/format_v2/`: a WAL file (seq 3) holding a Series, a Metadata
//! and a Samples record, and a `METADATA` file. Together with the version 1
//! fixtures they form the directory an upgrade leaves: a version 1 WAL file
//! (seq 2) written before it, a version 2 one after. Written once by
//! `cargo test --release --test engine -- --ignored format_golden_v2::regenerate`;
//! a change to these bytes needs a new version, never new bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use strata::fuzzing::wal::record::{decode_header_version, HEADER_LEN};
use strata::fuzzing::wal::{decode_frame, segment_file_name, Record, WalOptions, WalSample, WalWriter};
use strata::{Db, Labels, Matcher, MetricKind, MetricMetadata, Options, SyncMode, METADATA_FILE};

use super::format_golden::{copy_fixtures, fixtures as v1_fixtures};

/// 2026-01-01T00:00:00Z, as in version 1's fixtures.
const T0: i64 = 1_767_225_600_000;
const WAL_SEQ: u64 = 3;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format_v2")
}

fn disk_free() -> Labels {
    Labels::metric("disk_free_bytes", [("host", "a")]).unwrap()
}

/// The WAL file: a new series (4), metadata set for two metrics and removed for a
/// third, and a sample.
fn wal_records() -> Vec<Record> {
    vec![
        Record::Series(vec![(4, disk_free())]),
        Record::Metadata(vec![
            ("disk_free_bytes".into(), Some(MetricMetadata::new(MetricKind::Gauge, "bytes", "Free space."))),
            ("cpu_usage".into(), Some(MetricMetadata::new(MetricKind::Gauge, "percent", "CPU \"busy\"\nshare."))),
            ("gone_total".into(), None),
        ]),
        Record::Samples(vec![WalSample { series: 4, ts: T0 + 660_000, value: 1e9 }]),
    ]
}

/// The METADATA file: what a seal stored before the WAL file above was written.
fn stored_metadata() -> BTreeMap<String, MetricMetadata> {
    let mut m = BTreeMap::new();
    m.insert("cpu_usage".into(), MetricMetadata::new(MetricKind::Unknown, "", "superseded by the WAL"));
    m.insert("gone_total".into(), MetricMetadata::new(MetricKind::Counter, "", "Removed later."));
    m.insert("http_requests_total".into(), MetricMetadata::new(MetricKind::Counter, "", "Requests served, by code."));
    m
}

fn write_all(root: &Path) {
    let wal = root.join("wal");
    fs::create_dir_all(&wal).unwrap();
    let w = WalWriter::open(&wal, WAL_SEQ, WalOptions::new(SyncMode::Always, 1 << 20)).unwrap();
    let mut frames = Vec::new();
    for r in wal_records() {
        r.encode(&mut frames);
    }
    w.submit(frames).unwrap().wait().unwrap();
    w.close().unwrap();
    // The METADATA file as a seal writes it, through the public API.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default().background(false)).unwrap();
    for (name, m) in stored_metadata() {
        db.set_metadata(&name, m).unwrap();
    }
    let mut app = db.appender();
    app.append_labels(&disk_free(), T0, 1.0).unwrap();
    app.commit().unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    fs::copy(dir.path().join(METADATA_FILE), root.join(METADATA_FILE)).unwrap();
}

fn fixture_files() -> Vec<PathBuf> {
    vec![PathBuf::from("wal").join(segment_file_name(WAL_SEQ)), PathBuf::from(METADATA_FILE)]
}

#[test]
#[ignore]
fn regenerate() {
    let tmp = tempfile::tempdir().unwrap();
    write_all(tmp.path());
    for f in fixture_files() {
        let dst = fixtures().join(&f);
        if dst.exists() {
            continue;
        }
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(tmp.path().join(&f), &dst).unwrap();
        println!("wrote {}", dst.display());
    }
}

#[test]
fn wal_file_decodes_to_the_expected_records() {
    let bytes = fs::read(fixtures().join("wal").join(segment_file_name(WAL_SEQ))).unwrap();
    assert_eq!(decode_header_version(&bytes), Ok((WAL_SEQ, 2)));
    let mut pos = HEADER_LEN;
    let mut records = Vec::new();
    while pos < bytes.len() {
        let (rec, used) = decode_frame(&bytes[pos..]).unwrap();
        records.push(rec);
        pos += used;
    }
    assert_eq!(records, wal_records());
}

#[test]
fn current_writers_reproduce_every_fixture_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    write_all(tmp.path());
    for f in fixture_files() {
        let want = fs::read(fixtures().join(&f)).unwrap();
        let got = fs::read(tmp.path().join(&f)).unwrap();
        assert!(want == got, "{} changed: {} bytes written, {} in the fixture", f.display(), got.len(), want.len());
    }
}

/// Version 1's directory with the version 2 WAL file after its own and a METADATA
/// file: it opens, replays both WAL versions in order over the stored metadata.
#[test]
fn an_upgraded_directory_opens_with_its_metadata_and_samples() {
    assert!(v1_fixtures().join("wal").join(segment_file_name(2)).exists());
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path());
    for f in fixture_files() {
        fs::copy(fixtures().join(&f), tmp.path().join(&f)).unwrap();
    }
    let db = Db::open(tmp.path(), Options::default().background(false).sync(SyncMode::Never)).unwrap();
    let r = db.recovery_report();
    assert_eq!((r.wal_files, r.wal_records), (2, 5));
    let mut want: BTreeMap<String, MetricMetadata> = stored_metadata();
    want.remove("gone_total");
    for (name, m) in wal_records()
        .into_iter()
        .filter_map(|r| match r {
            Record::Metadata(list) => Some(list),
            _ => None,
        })
        .flatten()
    {
        if let Some(m) = m {
            want.insert(name, m);
        }
    }
    assert_eq!(db.all_metadata(), want.into_iter().collect::<Vec<_>>());
    assert_eq!(db.metadata("cpu_usage").unwrap().unit, "percent");
    let got = db.latest(&[Matcher::eq("__name__", "disk_free_bytes")]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].1.ts, got[0].1.value), (T0 + 660_000, 1e9));
    db.close().unwrap();
}
