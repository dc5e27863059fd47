//! Golden file of segment format version 2, in `tests/fixtures/segment_v2/`: a raw
//! segment whose series were added in label order, not id order, with pages small
//! enough that the series table's page numbers go backwards (version 1 could not
//! store that). Written once by
//! `cargo test --release --test engine -- --ignored format_golden_segment_v2::regenerate`;
//! a change to these bytes needs a new version, never new bytes.

use std::fs;
use std::path::{Path, PathBuf};

use strata::fuzzing::codec::chunk::{decode_chunk, encode_chunk};
use strata::fuzzing::segment::{file_name, Segment, SegmentWriter, WriterOptions};
use strata::{Labels, Sample, StoredTier};

use crate::format_golden::read_chunks;

/// 2026-01-01T00:00:00Z, as in the other fixtures.
const T0: i64 = 1_767_225_600_000;
pub(crate) const SEG_ID: u64 = 7;
/// Small pages: each series' chunk fills one.
const PAGE_SIZE: usize = 16;

pub(crate) fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/segment_v2/segments").join(file_name(SEG_ID))
}

/// `(id, labels, samples)` in the order they are written: label order, ids 9, 3, 5.
pub(crate) fn series() -> Vec<(u64, Labels, Vec<Sample>)> {
    let mk = |host: &str, base: f64| {
        let labels = Labels::metric("cpu_usage", [("host", host)]).unwrap();
        let samples = (0..12).map(|i| Sample::new(T0 + i * 10_000, base + i as f64 * 0.25)).collect();
        (labels, samples)
    };
    let (a, b, c) = (mk("a", 1.0), mk("b", 50.5), mk("c", -3.0));
    vec![(9, a.0, a.1), (3, b.0, b.1), (5, c.0, c.1)]
}

pub(crate) fn write(dir: &Path) -> PathBuf {
    let opts = WriterOptions { page_size: PAGE_SIZE, ..WriterOptions::default() };
    let mut w = SegmentWriter::create(dir, SEG_ID, StoredTier::Raw, opts).unwrap();
    for (id, labels, samples) in series() {
        let mut bytes = Vec::new();
        let meta = encode_chunk(&samples, &mut bytes);
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
fn version_2_segment_decodes_in_id_order_with_pages_in_label_order() {
    let bytes = fs::read(fixture()).unwrap();
    assert_eq!(&bytes[..8], b"STRATSEG");
    assert_eq!(bytes[8..10], [2, 0], "format version 2");
    let seg = Segment::open(&fixture()).unwrap();
    seg.verify().unwrap();
    assert_eq!(seg.page_count(), 3, "one page per series");
    // The table is in id order; the pages follow the order the series were added.
    let ids: Vec<u64> = seg.series().map(|e| e.id).collect();
    assert_eq!(ids, [3, 5, 9]);
    let pages: Vec<u32> = seg.series().map(|e| e.chunks[0].page).collect();
    assert_eq!(pages, [1, 2, 0]);
    let in_pages: Vec<u64> = seg.series_in_page_order().iter().map(|e| e.id).collect();
    assert_eq!(in_pages, [9, 3, 5]);
    let stored = seg.series_labels().unwrap();
    for (id, labels, want) in series() {
        let e = seg.find(id).unwrap();
        assert!(stored.contains(&(id, labels)));
        let mut got = Vec::new();
        seg.for_each_chunk(
            &e,
            |_| true,
            |_, b| {
                decode_chunk(b, &mut got).unwrap();
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(got, want, "series {id}");
    }
}

/// Version 3 only moved the labels out of the series entries: the current writer
/// makes the same pages, series, chunks and labels of these series
/// (`format_golden_segment_v3.rs` pins its bytes).
#[test]
fn current_writer_reproduces_the_version_2_fixture_but_for_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let got = fs::read(write(tmp.path())).unwrap();
    let want = fs::read(fixture()).unwrap();
    assert_eq!(got[8..10], [3, 0], "written as version 3");
    let pages_end = |b: &[u8]| u64::from_le_bytes(b[b.len() - 88..b.len() - 80].try_into().unwrap()) as usize;
    assert_eq!(pages_end(&want), pages_end(&got));
    assert!(want[24..pages_end(&want)] == got[24..pages_end(&got)], "the pages changed");
    let (old, new) = (Segment::open(&fixture()).unwrap(), Segment::open(&tmp.path().join(file_name(SEG_ID))).unwrap());
    assert_eq!(read_chunks(&old), read_chunks(&new));
    // Debug text, as NaN values compare unequal to themselves.
    let table = |s: &Segment| format!("{:?} {:?}", s.series().collect::<Vec<_>>(), s.chunk_metas().unwrap());
    assert_eq!(table(&old), table(&new));
}
