//! Golden file of rollup chunk version 2, in `tests/fixtures/rollup_v2/`: a
//! 5-minute rollup segment whose chunks are version 2 (version 1's are pinned by
//! `format_golden.rs`). Three series exercise the layout's modes: a decimal gauge
//! with a gap and partial buckets (predicted columns, start exceptions, integer
//! exceptions), a counter with a reset, and a series whose values are no decimals
//! (NaN payloads, -0.0, infinities, thirds: raw columns). Written once by
//! `cargo test --release --test engine -- --ignored format_golden_rollup_v2::regenerate`;
//! a change to these bytes needs a new version, never new bytes.

use std::fs;
use std::path::{Path, PathBuf};

use strata::fuzzing::segment::{file_name, Segment, SegmentWriter, WriterOptions};
use strata::rollup::codec::{decode_buckets, encode_buckets};
use strata::rollup::{rollup, Bucket, FIVE_MIN_MS};
use strata::{Labels, Sample, StoredTier};

use crate::format_golden::read_chunks;

/// 2026-01-01T00:00:00Z, as in the other fixtures.
const T0: i64 = 1_767_225_600_000;
const SEG_ID: u64 = 3;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rollup_v2/segments").join(file_name(SEG_ID))
}

/// `(id, labels, samples)`: deterministic, no random source.
fn series() -> Vec<(u64, Labels, Vec<Sample>)> {
    // A gauge in tenths every 10 s for 2 h, starting 40 s into a bucket, with a
    // 25-minute hole.
    let gauge: Vec<Sample> = (0..720i64)
        .filter(|i| !(300..450).contains(i))
        .map(|i| Sample::new(T0 + 40_000 + i * 10_000, ((i * 37 + i * i / 7) % 1000) as f64 / 10.0))
        .collect();
    // A counter every 15 s that resets once.
    let counter: Vec<Sample> =
        (0..480i64).map(|i| Sample::new(T0 + i * 15_000, if i < 200 { i * 3 } else { (i - 200) * 5 } as f64)).collect();
    let mut odd: Vec<Sample> = (0..120i64).map(|i| Sample::new(T0 + i * 20_000, i as f64 / 3.0)).collect();
    odd[5].value = f64::from_bits(0x7ff8_0000_0000_0bad);
    odd[6].value = -0.0;
    odd[40].value = f64::INFINITY;
    odd[41].value = f64::NEG_INFINITY;
    vec![
        (1, Labels::metric("cpu_usage", [("host", "a")]).unwrap(), gauge),
        (2, Labels::metric("http_requests_total", [("host", "a")]).unwrap(), counter),
        (3, Labels::metric("odd", [("host", "a")]).unwrap(), odd),
    ]
}

fn buckets(samples: &[Sample]) -> Vec<Bucket> {
    rollup(samples, FIVE_MIN_MS).unwrap()
}

fn write(dir: &Path) -> PathBuf {
    let mut w = SegmentWriter::create(dir, SEG_ID, StoredTier::FiveMin, WriterOptions::default()).unwrap();
    for (id, labels, samples) in series() {
        let mut bytes = Vec::new();
        let meta = encode_buckets(&buckets(&samples), &mut bytes).unwrap();
        w.add_series(id, &labels, &[(meta, &bytes)]).unwrap();
    }
    w.finish().unwrap();
    dir.join(file_name(SEG_ID))
}

#[test]
#[ignore]
fn regenerate() {
    crate::support::write_fixture_once(&fixture(), write);
}

#[test]
fn version_2_rollup_chunks_decode_to_the_buckets_of_their_samples() {
    let seg = Segment::open(&fixture()).unwrap();
    seg.verify().unwrap();
    assert_eq!(seg.info().tier, StoredTier::FiveMin);
    let mut gauge = Vec::new();
    let stored = seg.series_labels().unwrap();
    for (id, labels, samples) in series() {
        let e = seg.find(id).unwrap();
        assert!(stored.contains(&(id, labels)));
        let mut chunks = Vec::new();
        seg.for_each_chunk(
            &e,
            |_| true,
            |_, b| {
                chunks.push(b.to_vec());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(chunks.len(), 1, "series {id}: one chunk");
        assert_eq!(chunks[0][0], 2, "series {id}: a version 2 rollup chunk");
        let mut got = Vec::new();
        decode_buckets(&chunks[0], &mut got).unwrap();
        assert_eq!(got, buckets(&samples), "series {id}");
        if id == 1 {
            gauge = got;
        }
    }
    // Pinned by hand: the gauge's first bucket is partial (26 samples from 40 s
    // in), and the hole leaves four buckets out.
    assert_eq!((gauge[0].start, gauge[0].count, gauge[0].first_ts), (T0, 26, T0 + 40_000));
    assert_eq!(gauge.len(), 25 - 4);
}

/// The chunks are pinned byte for byte. The segment around them is written as
/// segment version 3 now (labels in a frame of their own), so its pages must be
/// these bytes and its series, labels and chunk metadata the fixture's.
#[test]
fn current_writer_reproduces_the_rollup_v2_fixture_chunks_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let got = fs::read(write(tmp.path())).unwrap();
    let want = fs::read(fixture()).unwrap();
    assert_eq!((want[8..10].to_vec(), got[8..10].to_vec()), (vec![2, 0], vec![3, 0]), "segment versions");
    let pages_end = |b: &[u8]| u64::from_le_bytes(b[b.len() - 88..b.len() - 80].try_into().unwrap()) as usize;
    let (w, g) = (&want[24..pages_end(&want)], &got[24..pages_end(&got)]);
    assert!(
        w == g,
        "rollup v2 chunks changed: {} page bytes written, {} in the fixture, first difference at {:?}",
        g.len(),
        w.len(),
        w.iter().zip(g).position(|(a, b)| a != b)
    );
    let (old, new) = (Segment::open(&fixture()).unwrap(), Segment::open(&tmp.path().join(file_name(SEG_ID))).unwrap());
    assert_eq!(read_chunks(&old), read_chunks(&new));
    // Debug text, as NaN values compare unequal to themselves.
    let table = |s: &Segment| format!("{:?} {:?}", s.series().collect::<Vec<_>>(), s.chunk_metas().unwrap());
    assert_eq!(table(&old), table(&new));
}
