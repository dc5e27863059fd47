//! Golden file of segment format version 3, in `tests/fixtures/segment_v3/`: the
//! series of the version 2 fixture (added in label order, ids 9, 3, 5, one
//! 16-byte page each), whose series table keeps the labels in a frame of their
//! own after the entries. Written once by
//! `cargo test --release --test engine -- --ignored format_golden_segment_v3::regenerate`;
//! a change to these bytes needs a new version, never new bytes.

use std::fs;
use std::path::{Path, PathBuf};

use strata::fuzzing::segment::{file_name, Segment};
use strata::Labels;

use crate::format_golden::read_chunks;
use crate::format_golden_segment_v2::{series, write, SEG_ID};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/segment_v3/segments").join(file_name(SEG_ID))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
#[ignore]
fn regenerate() {
    crate::support::write_fixture_once(&fixture(), write);
}

#[test]
fn version_3_table_holds_entries_then_labels() {
    let bytes = fs::read(fixture()).unwrap();
    assert_eq!(&bytes[..8], b"STRATSEG");
    assert_eq!(bytes[8..10], [3, 0], "format version 3");
    // The footer's table: a 24-byte prefix, the entries frame, the labels frame.
    let footer = bytes.len() - 88;
    let (table_at, table_len, raw_len) =
        (u64_at(&bytes, footer), u64_at(&bytes, footer + 8), u64_at(&bytes, footer + 16));
    let table = &bytes[table_at as usize..(table_at + table_len) as usize];
    let (entries_len, entries_raw, labels_raw) = (u64_at(table, 0), u64_at(table, 8), u64_at(table, 16));
    assert_eq!(entries_raw + labels_raw, raw_len);
    let entries = zstd::bulk::decompress(&table[24..24 + entries_len as usize], entries_raw as usize).unwrap();
    let labels = zstd::bulk::decompress(&table[24 + entries_len as usize..], labels_raw as usize).unwrap();
    assert_eq!(entries.len() as u64, entries_raw);
    // The labels frame is the label sets in id order (3, 5, 9), back to back.
    let mut want = Vec::new();
    for host in ["b", "c", "a"] {
        Labels::metric("cpu_usage", [("host", host)]).unwrap().encode(&mut want);
    }
    assert_eq!(labels, want);
    // The entries frame holds no label text.
    assert!(!entries.windows(9).any(|w| w == b"cpu_usage"));

    let seg = Segment::open(&fixture()).unwrap();
    seg.verify().unwrap();
    assert_eq!(seg.series().map(|e| e.id).collect::<Vec<_>>(), [3, 5, 9]);
    assert_eq!(seg.series().map(|e| e.chunks[0].page).collect::<Vec<_>>(), [1, 2, 0]);
    let chunks = read_chunks(&seg);
    for (id, labels, samples) in series() {
        let (_, got_labels, got) = chunks.iter().find(|c| c.0 == id).unwrap();
        assert_eq!(got_labels, &labels);
        let mut decoded = Vec::new();
        strata::fuzzing::codec::chunk::decode_chunk(&got[0], &mut decoded).unwrap();
        assert_eq!(decoded, samples, "series {id}");
    }
    // The version 2 fixture of the same series reads the same.
    let v2 = Segment::open(&crate::format_golden_segment_v2::fixture()).unwrap();
    assert_eq!(read_chunks(&v2), chunks);
}

#[test]
fn current_writer_reproduces_the_version_3_fixture_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let got = fs::read(write(tmp.path())).unwrap();
    let want = fs::read(fixture()).unwrap();
    assert!(
        want == got,
        "segment v3 changed: first difference at {:?}",
        want.iter().zip(&got).position(|(a, b)| a != b)
    );
}
