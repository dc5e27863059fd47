//! Golden files of on-disk format version 1, in `tests/fixtures/format_v1/` (WAL
//! version 2 and `METADATA` are in `format_golden_v2.rs`): a
//! data directory holding a raw segment, a 5-minute rollup segment, a WAL file,
//! the MANIFEST and the SETTINGS file. They were written once, by
//! `cargo test --release --test engine -- --ignored format_golden::regenerate`, and are
//! never rewritten for a format-1 change: a test that fails here means the
//! on-disk format changed. Such a change needs a new format version (and a new
//! fixture directory next to this one), not new bytes for version 1.
//!
//! Each file is checked two ways: (a) the current decoders read it and the
//! decoded content equals the values written below; (b) the current writers,
//! given that same content, produce the fixture byte for byte. Every writer here
//! is deterministic (no clock, no random id): the segment bytes do depend on the
//! zstd library producing the same frames at level 3, so a zstd upgrade that
//! changes its output shows up in (b) while (a) still has to pass.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strata::fuzzing::codec::chunk::{decode_chunk, encode_chunk};
use strata::fuzzing::manifest::{Manifest, SegmentRecord, FLAG_ROLLED_UP};
use strata::fuzzing::segment::{file_name, Segment, SegmentInfo, SegmentWriter, WriterOptions};
use strata::fuzzing::wal::record::{decode_header, decode_header_version, HEADER_LEN};
use strata::fuzzing::wal::{decode_frame, segment_file_name, Record, WalOptions, WalSample, WalWriter};
use strata::retention::{read_settings, SETTINGS_FILE};
use strata::rollup::codec::{decode_buckets, encode_buckets_v1};
use strata::rollup::{Bucket, FIVE_MIN_MS};
use strata::{
    Agg, Db, Labels, Matcher, Options, Query, RetentionPolicy, RetentionRule, Sample, StoredTier, SyncMode, Tier,
    TierDurations,
};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const STEP: i64 = 30_000;
const RAW_ID: u64 = 1;
const ROLLUP_ID: u64 = 2;
const WAL_SEQ: u64 = 2;
/// Byte sizes of the two segment fixtures, as the MANIFEST records them.
const RAW_SIZE: u64 = 365;
const ROLLUP_SIZE: u64 = 421;

/// `cpu_usage{host="a",region="eu"}`, every 30 s from T0.
const CPU: [f64; 20] = [
    12.5, 13.0, 14.25, 11.0, 10.5, 15.75, 16.0, 12.0, 9.5, 10.0, 20.0, 21.5, 19.25, 18.0, 22.75, 25.0, 24.5, 23.0,
    26.25, -1.5,
];
/// `http_requests_total{code="200",host="a"}`, a counter that resets after 65.
const REQ: [f64; 20] =
    [0.0, 3.0, 7.0, 12.0, 20.0, 21.0, 30.0, 41.0, 50.0, 52.0, 60.0, 65.0, 3.0, 8.0, 15.0, 15.0, 22.0, 30.0, 31.0, 40.0];

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format_v1")
}

fn cpu_a() -> Labels {
    Labels::metric("cpu_usage", [("host", "a"), ("region", "eu")]).unwrap()
}
fn cpu_b() -> Labels {
    Labels::metric("cpu_usage", [("host", "b"), ("region", "eu")]).unwrap()
}
fn requests() -> Labels {
    Labels::metric("http_requests_total", [("code", "200"), ("host", "a")]).unwrap()
}

fn samples(values: &[f64]) -> Vec<Sample> {
    values.iter().enumerate().map(|(k, &v)| Sample::new(T0 + k as i64 * STEP, v)).collect()
}

/// The series of both segments: id, labels, samples (one chunk each).
fn segment_series() -> Vec<(u64, Labels, Vec<Sample>)> {
    vec![(1, cpu_a(), samples(&CPU)), (2, requests(), samples(&REQ))]
}

#[allow(clippy::too_many_arguments)]
fn bucket(start: i64, count: u64, sum: f64, min: f64, max: f64, first: f64, last: f64, increase: f64) -> Bucket {
    // Every bucket here is full: ten samples 30 s apart from its start.
    let last_ts = start + (count as i64 - 1) * STEP;
    Bucket { start, count, sum, min, max, first, first_ts: start, last, last_ts, increase }
}

/// The 5-minute buckets of the rollup segment, per series id, worked out by hand.
fn expected_buckets(id: u64) -> Vec<Bucket> {
    let t1 = T0 + FIVE_MIN_MS;
    match id {
        1 => vec![
            bucket(T0, 10, 124.5, 9.5, 16.0, 12.5, 10.0, 50.75),
            bucket(t1, 10, 198.75, -1.5, 26.25, 20.0, -1.5, 95.0),
        ],
        2 => {
            vec![bucket(T0, 10, 236.0, 0.0, 52.0, 0.0, 52.0, 52.0), bucket(t1, 10, 289.0, 3.0, 65.0, 60.0, 40.0, 45.0)]
        }
        _ => unreachable!("no series {id}"),
    }
}

/// What the WAL file holds: a new series (3) and samples after the segments' range.
fn wal_records() -> Vec<Record> {
    let s = |series, ts, value| WalSample { series, ts, value };
    vec![
        Record::Series(vec![(3, cpu_b())]),
        Record::Samples(vec![
            s(1, T0 + 600_000, 30.5),
            s(3, T0 + 600_000, -0.0),
            s(2, T0 + 600_000, 44.0),
            s(1, T0 + 630_000, 31.0),
            s(3, T0 + 630_000, 2.5),
        ]),
    ]
}

fn expected_manifest() -> Manifest {
    let rec = |id, rank, tier, samples, file_size, flags| SegmentRecord {
        id,
        rank,
        tier,
        level: 0,
        min_t: T0,
        max_t: if tier == StoredTier::Raw { T0 + 19 * STEP } else { T0 + FIVE_MIN_MS },
        samples,
        series: 2,
        file_size,
        flags,
    };
    Manifest {
        generation: 4,
        wal_floor: WAL_SEQ,
        next_segment_id: 3,
        next_rank: 3,
        next_series_id: 4,
        segments: vec![
            rec(RAW_ID, 1, StoredTier::Raw, 40, RAW_SIZE, FLAG_ROLLED_UP),
            rec(ROLLUP_ID, 2, StoredTier::FiveMin, 4, ROLLUP_SIZE, 0),
        ],
    }
}

/// Keep everything but `debug_*` series from dev, capped at 10 GiB.
fn expected_policy() -> RetentionPolicy {
    let day = Duration::from_secs(86_400);
    let rule = RetentionRule::new(
        "debug",
        "debug_*",
        vec![
            Matcher::eq("env", "dev"),
            Matcher::ne("host", "prod"),
            Matcher::regex("job", "api.*").unwrap(),
            Matcher::not_regex("team", "x|y").unwrap(),
        ],
        -3,
        TierDurations::new(day, 7 * day, 30 * day),
    )
    .unwrap();
    RetentionPolicy::forever().with_rule(rule).unwrap().with_max_disk_bytes(Some(10 << 30))
}

// ---- the current writers, given the content above ----

fn write_raw_segment(dir: &Path) -> SegmentInfo {
    let mut w = SegmentWriter::create(dir, RAW_ID, StoredTier::Raw, WriterOptions::default()).unwrap();
    for (id, labels, s) in segment_series() {
        let mut bytes = Vec::new();
        let meta = encode_chunk(&s, &mut bytes);
        w.add_series(id, &labels, &[(meta, &bytes)]).unwrap();
    }
    w.finish().unwrap()
}

fn write_rollup_segment(dir: &Path) -> SegmentInfo {
    let mut w = SegmentWriter::create(dir, ROLLUP_ID, StoredTier::FiveMin, WriterOptions::default()).unwrap();
    for (id, labels, s) in segment_series() {
        let buckets = strata::rollup::rollup(&s, FIVE_MIN_MS).unwrap();
        let mut bytes = Vec::new();
        // Rollup chunks are written as version 2 now (format_golden_rollup_v2.rs);
        // version 1's encoder is kept so that these bytes stay pinned.
        let meta = encode_buckets_v1(&buckets, &mut bytes).unwrap();
        w.add_series(id, &labels, &[(meta, &bytes)]).unwrap();
    }
    w.finish().unwrap()
}

fn write_wal(dir: &Path) -> PathBuf {
    let w = WalWriter::open(dir, WAL_SEQ, WalOptions::new(SyncMode::Always, 1 << 20)).unwrap();
    let mut frames = Vec::new();
    for r in wal_records() {
        r.encode(&mut frames);
    }
    w.submit(frames).unwrap().wait().unwrap();
    w.close().unwrap();
    dir.join(segment_file_name(WAL_SEQ))
}

/// SETTINGS as a new data directory records the policy it is opened with.
fn write_settings(dir: &Path) -> PathBuf {
    let db = Db::open(dir, Options::default().background(false).retention(expected_policy())).unwrap();
    db.close().unwrap();
    dir.join(SETTINGS_FILE)
}

/// Writes every file of the fixture directory into `root` (laid out as a data directory).
fn write_all(root: &Path) {
    let (segs, wal) = (root.join("segments"), root.join("wal"));
    fs::create_dir_all(&segs).unwrap();
    fs::create_dir_all(&wal).unwrap();
    write_raw_segment(&segs);
    write_rollup_segment(&segs);
    write_wal(&wal);
    fs::write(root.join("MANIFEST"), expected_manifest().encode()).unwrap();
    let settings_dir = tempfile::tempdir().unwrap();
    fs::copy(write_settings(settings_dir.path()), root.join(SETTINGS_FILE)).unwrap();
}

/// The fixture files, relative to the fixture directory.
fn fixture_files() -> Vec<PathBuf> {
    vec![
        PathBuf::from("segments").join(file_name(RAW_ID)),
        PathBuf::from("segments").join(file_name(ROLLUP_ID)),
        PathBuf::from("wal").join(segment_file_name(WAL_SEQ)),
        PathBuf::from("MANIFEST"),
        PathBuf::from(SETTINGS_FILE),
    ]
}

pub(crate) fn copy_fixtures(to: &Path) {
    for f in fixture_files() {
        let dst = to.join(&f);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(fixtures().join(&f), dst).unwrap();
    }
}

/// Regenerates missing fixtures. Only for a new format version's first fixture set:
/// format-1 bytes must never change, so an existing file is never rewritten.
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

// ---- (a) the current decoders read the fixtures ----

/// Reads every chunk of a segment, series by series.
pub(crate) fn read_chunks(seg: &Segment) -> Vec<(u64, Labels, Vec<Vec<u8>>)> {
    let labels = seg.series_labels().unwrap();
    seg.series()
        .zip(labels)
        .map(|(e, (id, labels))| {
            assert_eq!(id, e.id);
            let mut chunks = Vec::new();
            seg.for_each_chunk(
                &e,
                |_| true,
                |_, bytes| {
                    chunks.push(bytes.to_vec());
                    Ok(())
                },
            )
            .unwrap();
            (e.id, labels, chunks)
        })
        .collect()
}

#[test]
fn raw_segment_decodes_to_the_expected_samples() {
    let seg = Segment::open(&fixtures().join("segments").join(file_name(RAW_ID))).unwrap();
    seg.verify().unwrap();
    let i = seg.info();
    assert_eq!(
        (i.id, i.tier, i.min_t, i.max_t, i.samples, i.series),
        (RAW_ID, StoredTier::Raw, T0, T0 + 19 * STEP, 40, 2)
    );
    assert_eq!(i.file_size, RAW_SIZE);
    let series = read_chunks(&seg);
    assert_eq!(series.len(), 2);
    for ((id, labels, chunks), (want_id, want_labels, values)) in
        series.iter().zip([(1, cpu_a(), CPU), (2, requests(), REQ)])
    {
        assert_eq!((*id, labels), (want_id, &want_labels));
        assert_eq!(chunks.len(), 1, "series {id}: one chunk");
        let mut got = Vec::new();
        decode_chunk(&chunks[0], &mut got).unwrap();
        assert_eq!(got, samples(&values), "series {id}");
    }
    // Series 1's chunk is the table's first.
    let meta = &seg.chunk_metas().unwrap()[0];
    assert_eq!((meta.count, meta.min, meta.max, meta.sum, meta.last), (20, -1.5, 26.25, 323.25, -1.5));
}

#[test]
fn rollup_segment_decodes_to_the_expected_buckets() {
    let seg = Segment::open(&fixtures().join("segments").join(file_name(ROLLUP_ID))).unwrap();
    seg.verify().unwrap();
    let i = seg.info();
    assert_eq!(
        (i.id, i.tier, i.min_t, i.max_t, i.samples, i.series),
        (ROLLUP_ID, StoredTier::FiveMin, T0, T0 + FIVE_MIN_MS, 4, 2)
    );
    assert_eq!(i.file_size, ROLLUP_SIZE);
    let series = read_chunks(&seg);
    let labels: Vec<(u64, Labels)> = series.iter().map(|(id, l, _)| (*id, l.clone())).collect();
    assert_eq!(labels, vec![(1, cpu_a()), (2, requests())]);
    for (id, _, chunks) in &series {
        assert_eq!(chunks.len(), 1, "series {id}: one chunk");
        let mut got = Vec::new();
        decode_buckets(&chunks[0], &mut got).unwrap();
        assert_eq!(got, expected_buckets(*id), "series {id}");
    }
    // Series 2's chunk follows series 1's only one.
    let meta = &seg.chunk_metas().unwrap()[1];
    assert_eq!(seg.find(2).unwrap().chunks[0].min_t, meta.min_t);
    assert_eq!((meta.min_t, meta.max_t, meta.count, meta.sum), (T0, T0 + FIVE_MIN_MS, 2, 525.0));
}

#[test]
fn wal_file_decodes_to_the_expected_records() {
    let bytes = fs::read(fixtures().join("wal").join(segment_file_name(WAL_SEQ))).unwrap();
    assert_eq!(decode_header(&bytes), Ok(WAL_SEQ));
    let mut pos = HEADER_LEN;
    let mut records = Vec::new();
    while pos < bytes.len() {
        let (rec, used) = decode_frame(&bytes[pos..]).unwrap();
        records.push(rec);
        pos += used;
    }
    assert_eq!(records, wal_records());
    // -0.0 is kept bit for bit.
    let Record::Samples(s) = &records[1] else { panic!("second record is not samples") };
    assert_eq!(s[1].value.to_bits(), (-0.0f64).to_bits());
}

#[test]
fn manifest_decodes_to_the_expected_fields() {
    let path = fixtures().join("MANIFEST");
    let m = Manifest::decode(&fs::read(&path).unwrap(), &path).unwrap();
    assert_eq!(m, expected_manifest());
    assert_eq!(m.segments[0].flags & FLAG_ROLLED_UP, FLAG_ROLLED_UP, "the raw segment is rolled up");
}

#[test]
fn settings_decode_to_the_expected_policy() {
    let p = read_settings(&fixtures()).unwrap().expect("a SETTINGS file");
    assert_eq!(p, expected_policy());
    assert!(p.default_durations().is_forever());
    assert_eq!(p.max_disk_bytes(), Some(10 << 30));
    let r = &p.rules()[0];
    assert_eq!((p.rules().len(), r.name(), r.metric_glob(), r.priority()), (1, "debug", "debug_*", -3));
    assert_eq!(r.durations().hour, Duration::from_secs(30 * 86_400));
    let m: Vec<String> = r.matchers().iter().map(|m| m.to_string()).collect();
    assert_eq!(m, ["env=\"dev\"", "host!=\"prod\"", "job=~\"api.*\"", "team!~\"x|y\""]);
}

// ---- (b) the current writers produce the same bytes ----

#[test]
fn current_writers_reproduce_every_fixture_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    write_all(tmp.path());
    for f in fixture_files() {
        if f.starts_with("segments") {
            // Segment version 2 changed how the series table stores page numbers
            // (signed deltas), version 3 moved labels to a frame of their own:
            // version 1's fixtures must still read as the same series and chunk
            // bytes as what the current writer makes of them.
            let old = Segment::open(&fixtures().join(&f)).unwrap();
            let new = Segment::open(&tmp.path().join(&f)).unwrap();
            assert_eq!(read_chunks(&old), read_chunks(&new), "{}", f.display());
            assert_eq!(
                (old.info().samples, old.info().min_t, old.info().max_t),
                (new.info().samples, new.info().min_t, new.info().max_t)
            );
            assert_eq!(fs::read(fixtures().join(&f)).unwrap()[8..10], [1, 0], "{}: version 1", f.display());
            assert_eq!(fs::read(tmp.path().join(&f)).unwrap()[8..10], [3, 0], "{}: version 3", f.display());
            continue;
        }
        let mut want = fs::read(fixtures().join(&f)).unwrap();
        let mut got = fs::read(tmp.path().join(&f)).unwrap();
        if f.starts_with("wal") {
            // WAL version 2 only added a record kind: its frames are version 1's, and
            // the header differs in the version (and so the checksum) alone.
            assert_eq!(decode_header_version(&want), Ok((WAL_SEQ, 1)));
            assert_eq!(decode_header_version(&got), Ok((WAL_SEQ, 2)));
            want.drain(..HEADER_LEN);
            got.drain(..HEADER_LEN);
        }
        let first_diff = want.iter().zip(&got).position(|(a, b)| a != b);
        assert!(
            want == got,
            "{} changed: {} bytes written, {} in the fixture, first difference at {:?}",
            f.display(),
            got.len(),
            want.len(),
            first_diff
        );
    }
}

// ---- a data directory made of the fixtures opens and serves them ----

fn points(db: &Db, q: Query) -> Vec<(Labels, Vec<Sample>)> {
    db.query(&q).unwrap().series.into_iter().map(|s| (s.labels, s.points)).collect()
}

#[test]
fn db_opens_the_fixture_directory_and_serves_its_samples() {
    let tmp = tempfile::tempdir().unwrap();
    copy_fixtures(tmp.path());
    let db = Db::open(tmp.path(), Options::default().background(false).sync(SyncMode::Never)).unwrap();
    let r = db.recovery_report();
    assert_eq!((r.segments, r.wal_files, r.wal_records, r.wal_truncated_bytes), (2, 1, 2, 0));
    assert!(r.quarantined.is_empty());
    assert_eq!(db.retention_policy(), expected_policy());

    let range = T0..T0 + 3_600_000;
    let cpu = points(&db, Query::new().select([Matcher::eq("__name__", "cpu_usage")]).range(range.clone()));
    let mut cpu_a_points = samples(&CPU);
    cpu_a_points.extend([Sample::new(T0 + 600_000, 30.5), Sample::new(T0 + 630_000, 31.0)]);
    let cpu_b_points = vec![Sample::new(T0 + 600_000, -0.0), Sample::new(T0 + 630_000, 2.5)];
    assert_eq!(cpu, vec![(cpu_a(), cpu_a_points), (cpu_b(), cpu_b_points)]);

    let req = points(&db, Query::new().select([Matcher::eq("__name__", "http_requests_total")]).range(range.clone()));
    let mut req_points = samples(&REQ);
    req_points.push(Sample::new(T0 + 600_000, 44.0));
    assert_eq!(req, vec![(requests(), req_points)]);

    // The 5-minute tier answers from the rollup segment.
    let q = Query::new()
        .select([Matcher::eq("__name__", "http_requests_total")])
        .range(T0..T0 + 2 * FIVE_MIN_MS)
        .step(Duration::from_millis(FIVE_MIN_MS as u64))
        .agg(Agg::Sum)
        .tier(Tier::FiveMin);
    let res = db.query(&q).unwrap();
    assert_eq!(res.tier, Tier::FiveMin);
    let sums: Vec<f64> = res.series[0].points.iter().map(|p| p.value).collect();
    assert_eq!(sums, [236.0, 289.0]);
    db.close().unwrap();
}
