//! The index checkpoint: `INDEX` beside the MANIFEST holds the series index of
//! the segments it names (ids, packed labels, postings), so that opening a
//! directory reads no label from a segment it covers. It only saves work: when it
//! is missing, damaged or names a segment the MANIFEST no longer lists, open
//! rebuilds the index from the segments and writes a new one.
//! Layout in `docs/format/index.md`.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::{insert_keys, Inner, Keyed, SeriesIndex};
use crate::codec::bytes::{le_u16, le_u32, le_u64};
use crate::codec::varint::{get_uvarint, put_uvarint};
use crate::error::{Error, Result};
use crate::labels::Labels;

pub const FILE_NAME: &str = "INDEX";
pub const VERSION: u16 = 1;
const MAGIC: &[u8; 8] = b"STRATIDX";
const HEADER_LEN: usize = 32;
const SEGMENT_LEN: usize = 12;
/// Bytes of the longest u64 varint.
const MAX_VARINT: usize = 10;
/// No label set is near this long; a longer length is damage.
const MAX_TEXT: u64 = 64 << 20;

/// A checkpoint file whose header, segment list and checksum are valid; its body
/// (series and postings) is decoded by [`Checkpoint::load_into`].
pub struct Checkpoint {
    path: PathBuf,
    /// `(segment id, series table crc)` of the segments whose series it holds.
    pub segments: Vec<(u64, u32)>,
    series: u64,
    bytes: Vec<u8>,
    body_start: usize,
}

impl Checkpoint {
    /// Reads and checks `dir/INDEX`. `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Checkpoint>> {
        let path = dir.join(FILE_NAME);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let bad = |offset: usize, why: String| Error::corruption(&path, offset as u64, why);
        let len = bytes.len();
        if len < HEADER_LEN + 4 {
            return Err(bad(0, format!("file of {len} bytes is shorter than a header and a checksum")));
        }
        if bytes.get(..8) != Some(MAGIC.as_slice()) {
            return Err(bad(0, "bad magic".into()));
        }
        let (crc_at, stored) = (len - 4, le_u32(&bytes, len - 4));
        if stored != bytes.get(..crc_at).map(crc32fast::hash) {
            return Err(bad(crc_at, "checksum mismatch".into()));
        }
        let u64_at = |at: usize| le_u64(&bytes, at);
        let version = le_u16(&bytes, 8);
        if version != Some(VERSION) {
            return Err(bad(8, format!("unsupported version {version:?} (this build reads {VERSION})")));
        }
        let nseg = le_u32(&bytes, 12).unwrap_or(0) as usize;
        let series = u64_at(16).unwrap_or(0);
        let body_len = u64_at(24).unwrap_or(0);
        let body_start = HEADER_LEN + nseg.saturating_mul(SEGMENT_LEN);
        if (body_start as u64).checked_add(body_len) != Some(crc_at as u64) {
            return Err(bad(12, "segment count and body length do not add up to the file length".into()));
        }
        let mut segments = Vec::with_capacity(nseg);
        for i in 0..nseg {
            let at = HEADER_LEN + i * SEGMENT_LEN;
            segments.push((u64_at(at).unwrap_or(0), le_u32(&bytes, at + 8).unwrap_or(0)));
        }
        Ok(Some(Checkpoint { path, segments, series, bytes, body_start }))
    }

    /// Number of series it holds.
    pub fn series(&self) -> u64 {
        self.series
    }

    /// Loads its series and postings into `index`, which must be empty. On damage
    /// the index is left partly loaded: the caller starts over without it.
    pub fn load_into(&self, index: &SeriesIndex) -> Result<()> {
        let mut g = index.inner.write();
        let body = self.bytes.get(self.body_start..self.bytes.len() - 4).unwrap_or_default();
        load(&mut g, self.series, body).map_err(|why| Error::corruption(&self.path, self.body_start as u64, why))
    }

    /// Every series it holds with its labels, and its postings, checked as
    /// [`Checkpoint::load_into`] checks them (for `strata check`).
    pub fn decode(&self) -> Result<(Vec<(u64, Labels)>, Postings)> {
        let index = SeriesIndex::new(1, usize::MAX);
        self.load_into(&index)?;
        let g = index.inner.read();
        let mut series: Vec<(u64, Labels)> = g.by_id.iter().map(|(id, l)| (id, l.clone())).collect();
        series.sort_unstable_by_key(|s| s.0);
        let postings = g
            .postings
            .iter()
            .map(|(k, values)| (k.clone(), values.iter().map(|(v, ids)| (v.clone(), ids.clone())).collect()))
            .collect();
        Ok((series, postings))
    }
}

/// Label name -> value -> sorted ids, as [`Checkpoint::decode`] returns them.
pub type Postings = HashMap<String, HashMap<String, Vec<u64>>>;

/// Writes `dir/INDEX` atomically (tmp, fsync, rename, fsync dir) from `index`,
/// which must hold exactly the series of `segments` with its postings sorted.
pub fn write(dir: &Path, index: &SeriesIndex, segments: &[(u64, u32)]) -> Result<()> {
    let path = dir.join(FILE_NAME);
    let io = |e| Error::io(format!("encoding {}", path.display()), e);
    let g = index.inner.read();
    let mut series: Vec<(u64, &Labels)> = g.by_id.iter().collect();
    series.sort_unstable_by_key(|s| s.0);
    let mut z = zstd::stream::write::Encoder::new(Vec::new(), 1).map_err(io)?;
    let mut buf = Vec::with_capacity(1 << 17);
    let mut prev = 0;
    for (id, labels) in &series {
        put_uvarint(&mut buf, id - prev);
        prev = *id;
        put_str(&mut buf, labels.text());
        if buf.len() >= 1 << 16 {
            z.write_all(&buf).map_err(io)?;
            buf.clear();
        }
    }
    let mut names: Vec<_> = g.postings.iter().collect();
    names.sort_unstable_by_key(|n| n.0);
    put_uvarint(&mut buf, names.len() as u64);
    for (name, values) in names {
        put_str(&mut buf, name);
        let mut values: Vec<_> = values.iter().collect();
        values.sort_unstable_by_key(|v| v.0);
        put_uvarint(&mut buf, values.len() as u64);
        for (value, ids) in values {
            put_str(&mut buf, value);
            put_uvarint(&mut buf, ids.len() as u64);
            let mut prev = 0;
            for &id in ids {
                put_uvarint(&mut buf, id - prev);
                prev = id;
            }
            if buf.len() >= 1 << 16 {
                z.write_all(&buf).map_err(io)?;
                buf.clear();
            }
        }
    }
    z.write_all(&buf).map_err(io)?;
    let body = z.finish().map_err(io)?;
    let count = series.len() as u64;
    drop(series);
    drop(g);

    let mut out = Vec::with_capacity(HEADER_LEN + segments.len() * SEGMENT_LEN + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(segments.len() as u32).to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    for (id, crc) in segments {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&crc.to_le_bytes());
    }
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    crate::fsutil::write_atomic(&path, &out)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Reads the decompressed body a field at a time.
struct Src<R> {
    r: R,
    text: Vec<u8>,
}

impl<R: BufRead> Src<R> {
    /// A varint, read in place from the buffer when it holds the longest one
    /// (tens of millions of them for a million series: a call per byte showed).
    fn uvarint(&mut self, what: &str) -> std::result::Result<u64, String> {
        let overlong = || format!("overlong {what}");
        let buf = self.r.fill_buf().map_err(|e| format!("truncated {what}: {e}"))?;
        if buf.len() >= MAX_VARINT {
            let mut pos = 0;
            let v = get_uvarint(buf, &mut pos).ok_or_else(overlong)?;
            self.r.consume(pos);
            return Ok(v);
        }
        let mut bytes = [0u8; MAX_VARINT];
        for (i, b) in bytes.iter_mut().enumerate() {
            self.r.read_exact(std::slice::from_mut(b)).map_err(|e| format!("truncated {what}: {e}"))?;
            if *b < 0x80 {
                return get_uvarint(bytes.get(..=i).unwrap_or_default(), &mut 0).ok_or_else(overlong);
            }
        }
        Err(overlong())
    }

    fn str(&mut self, what: &str) -> std::result::Result<&str, String> {
        let len = self.uvarint(what)?;
        if len > MAX_TEXT {
            return Err(format!("implausible {what} length {len}"));
        }
        self.text.resize(len as usize, 0);
        self.r.read_exact(&mut self.text).map_err(|e| format!("truncated {what}: {e}"))?;
        std::str::from_utf8(&self.text).map_err(|_| format!("{what} is not UTF-8"))
    }

    /// A strictly increasing id: `prev` plus a delta of at least one.
    fn next_id(&mut self, prev: u64, what: &str) -> std::result::Result<u64, String> {
        let d = self.uvarint(what)?;
        if d == 0 {
            return Err(format!("{what}s are not strictly increasing"));
        }
        prev.checked_add(d).ok_or_else(|| format!("{what} overflows"))
    }
}

fn load(g: &mut Inner, series: u64, body: &[u8]) -> std::result::Result<(), String> {
    if !g.by_id.is_empty() {
        return Err("loaded into an index that is not empty".into());
    }
    let dec = zstd::stream::read::Decoder::with_buffer(body).map_err(|e| format!("body does not decompress: {e}"))?;
    let mut src = Src { r: BufReader::with_capacity(1 << 16, dec), text: Vec::new() };
    // Every series takes at least 3 bytes compressed or not; the body is smaller
    // than what it holds, so cap what is reserved ahead by the series count only
    // as far as a plausible compression ratio goes.
    let reserve = series.min(body.len() as u64 * 64) as usize;
    g.by_labels.reserve(reserve, |e| e.hash);
    // Ids are below the index's next id (the MANIFEST's): room for them at once.
    let next = g.next_id;
    g.by_id.reserve_to(next, reserve);
    let (mut prev, mut pairs) = (0u64, 0usize);
    let mut keys = Vec::with_capacity(reserve);
    for _ in 0..series {
        let id = src.next_id(prev, "series id")?;
        prev = id;
        let text = src.str("label set")?;
        let n = crate::pairs::check_packed(text).filter(|&n| n > 0);
        pairs += n.ok_or_else(|| format!("series {id}: malformed label set"))?;
        // Ids strictly increase, so this one is new; its labels are checked for a
        // second id below, once every series is in.
        keys.push(Keyed { hash: g.hash(text), id });
        g.by_id.insert(id, Labels::from_packed(text));
    }
    insert_keys(g, keys)?;
    g.next_id = g.next_id.max(prev + 1);
    let last = prev;
    // Postings: every pair of every series exactly once, so the id counts add up.
    let names = src.uvarint("label name count")?;
    let mut ids_total = 0usize;
    for _ in 0..names {
        let name = src.str("label name")?.to_string();
        if g.postings.contains_key(&name) {
            return Err(format!("label name {name:?} is listed twice"));
        }
        let nvalues = src.uvarint("value count")?;
        let mut values: HashMap<String, Vec<u64>, _> = HashMap::default();
        for _ in 0..nvalues {
            let value = src.str("label value")?.to_string();
            let n = src.uvarint("posting count")?;
            if n == 0 || n > series {
                return Err(format!("implausible posting count {n} for {name}={value:?}"));
            }
            let mut ids = Vec::with_capacity(n as usize);
            let mut prev = 0;
            for _ in 0..n {
                prev = src.next_id(prev, "posting id")?;
                ids.push(prev);
            }
            if prev > last {
                return Err(format!("posting of {name}={value:?} names id {prev}, past every series"));
            }
            ids_total += ids.len();
            if values.insert(value, ids).is_some() {
                return Err(format!("label {name} lists a value twice"));
            }
        }
        g.postings.insert(name, values);
    }
    if ids_total != pairs {
        return Err(format!("postings hold {ids_total} ids but the series have {pairs} labels"));
    }
    let mut rest = [0u8];
    if src.r.read(&mut rest).map_err(|e| format!("body does not decompress: {e}"))? != 0 {
        return Err("bytes after the postings".into());
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::labels::Matcher;

    fn filled(n: u64) -> SeriesIndex {
        let idx = SeriesIndex::new(1, usize::MAX);
        for i in 0..n {
            let host = format!("h{}", i % 17);
            let l = Labels::metric(
                if i % 3 == 0 { "cpu" } else { "mem" },
                [("host", host.as_str()), ("i", &i.to_string())],
            );
            idx.get_or_create(&l.unwrap()).unwrap();
        }
        idx.finish_load();
        idx
    }

    #[test]
    fn round_trips_series_and_postings() {
        let dir = tempfile::tempdir().unwrap();
        let idx = filled(500);
        write(dir.path(), &idx, &[(3, 77), (9, 1)]).unwrap();
        let ck = Checkpoint::read(dir.path()).unwrap().unwrap();
        assert_eq!((ck.segments.clone(), ck.series()), (vec![(3, 77), (9, 1)], 500));
        let back = SeriesIndex::new(1, usize::MAX);
        ck.load_into(&back).unwrap();
        assert_eq!((back.len(), back.next_id()), (500, 501));
        for id in 1..=500 {
            let l = idx.labels(id).unwrap();
            assert_eq!(back.labels(id).unwrap(), l);
            assert_eq!(back.get_or_create(&l).unwrap(), (id, false));
        }
        for m in [Matcher::eq("__name__", "cpu"), Matcher::eq("host", "h3"), Matcher::regex("i", "1.").unwrap()] {
            assert_eq!(back.select(std::slice::from_ref(&m)), idx.select(&[m]));
        }
        assert_eq!(back.value_counts("host"), idx.value_counts("host"));
        assert_eq!(back.all_ids(), idx.all_ids());
    }

    #[test]
    fn a_label_set_with_two_ids_is_refused() {
        let labels = Labels::metric("up", [("a", "b")]).unwrap();
        let mut raw = Vec::new();
        for id in [1, 5, 9] {
            put_uvarint(&mut raw, 1);
            let other = Labels::metric("up", [("a", id.to_string())]).unwrap();
            put_str(&mut raw, if id == 5 { other.text() } else { labels.text() });
        }
        let body = zstd::bulk::compress(&raw, 1).unwrap();
        let idx = SeriesIndex::new(1, usize::MAX);
        let err = load(&mut idx.inner.write(), 3, &body).unwrap_err();
        assert!(err.contains("has two ids, 1 and 3"), "{err}");
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &filled(40), &[(1, 2)]).unwrap();
        let path = dir.path().join(FILE_NAME);
        let good = std::fs::read(&path).unwrap();
        let outcome = |bytes: &[u8]| -> Result<()> {
            std::fs::write(&path, bytes).unwrap();
            let ck = Checkpoint::read(dir.path())?.unwrap();
            ck.load_into(&SeriesIndex::new(1, usize::MAX))
        };
        outcome(&good).unwrap();
        for cut in 0..good.len() {
            assert!(matches!(outcome(&good[..cut]), Err(Error::Corruption { .. })), "cut at {cut}");
        }
        let mut bad = good.clone();
        for i in 0..good.len() {
            for bit in 0..8 {
                bad[i] ^= 1 << bit;
                assert!(matches!(outcome(&bad), Err(Error::Corruption { .. })), "bit {bit} of byte {i}");
                bad[i] ^= 1 << bit;
            }
        }
    }
}
