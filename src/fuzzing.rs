//! Entry points for the decode fuzzers. Each must return without panicking for
//! any input; `fuzz/` drives them with libFuzzer and `tests/fuzz_corpus.rs`
//! replays the checked-in corpus under `cargo test`.

use std::io::Write;

use crate::codec::{chunk, varint, xor::XorChunk};
use crate::labels::Labels;
use crate::manifest::Manifest;
use crate::sample::Sample;
use crate::segment::Segment;
use crate::wal;

/// WAL frames and headers: decode a sequence of frames as replay would.
pub fn wal_frames(data: &[u8]) {
    let _ = wal::record::decode_header(data);
    let mut rest = data;
    while let Ok((_, used)) = wal::decode_frame(rest) {
        if used == 0 || used > rest.len() {
            panic!("decode_frame consumed {used} of {} bytes", rest.len());
        }
        rest = &rest[used..];
    }
    let _ = wal::record::probe_frame(data);
}

/// A whole segment file: open, verify, and decode every chunk of every series.
pub fn segment_file(data: &[u8]) {
    let Ok(mut f) = tempfile::NamedTempFile::new() else { return };
    if f.write_all(data).and_then(|_| f.flush()).is_err() {
        return;
    }
    let Ok(seg) = Segment::open(f.path()) else { return };
    let _ = seg.verify();
    let mut out = Vec::new();
    for e in seg.series() {
        let _ = seg.for_each_chunk(
            e,
            |_| true,
            |_, bytes| {
                out.clear();
                let _ = chunk::decode_chunk(bytes, &mut out);
                Ok(())
            },
        );
    }
}

/// The manifest decoder.
pub fn manifest(data: &[u8]) {
    if let Ok(m) = Manifest::decode(data, std::path::Path::new("MANIFEST")) {
        // Whatever decodes must re-encode to the same bytes.
        assert_eq!(m.encode(), data, "manifest did not round-trip");
    }
}

/// The sample chunk decoder, plus a re-encode round trip of what it accepts.
pub fn chunk(data: &[u8]) {
    let mut out = Vec::new();
    if chunk::decode_chunk(data, &mut out).is_ok() && !out.is_empty() {
        let mut again = Vec::new();
        chunk::encode_chunk(&out, &mut again);
        let mut back = Vec::new();
        chunk::decode_chunk(&again, &mut back).expect("re-encoded chunk decodes");
        assert_eq!(out, back);
    }
    let mut part = Vec::new();
    let _ = chunk::decode_chunk_range(data, -1000, 1000, &mut part);
}

/// Labels and varints as they appear inside records.
pub fn labels(data: &[u8]) {
    let mut pos = 0;
    if let Ok(l) = Labels::decode(data, &mut pos) {
        let mut buf = Vec::new();
        l.encode(&mut buf);
        assert_eq!(Labels::decode(&buf, &mut 0).as_ref(), Ok(&l));
    }
    let mut pos = 0;
    while varint::get_uvarint(data, &mut pos).is_some() {}
}

/// The head's XOR chunk: arbitrary samples (sorted into strictly increasing
/// timestamps) must read back bit for bit.
pub fn xor_chunk(data: &[u8]) {
    let mut samples: Vec<Sample> = data
        .chunks_exact(16)
        .map(|c| {
            let mut t = [0u8; 8];
            let mut v = [0u8; 8];
            t.copy_from_slice(&c[..8]);
            v.copy_from_slice(&c[8..]);
            Sample::new(i64::from_le_bytes(t), f64::from_bits(u64::from_le_bytes(v)))
        })
        .collect();
    samples.sort_by_key(|s| s.ts);
    samples.dedup_by_key(|s| s.ts);
    let mut c = XorChunk::new();
    for s in &samples {
        c.append(s.ts, s.value);
    }
    assert_eq!(c.iter().collect::<Vec<_>>(), samples);
}
