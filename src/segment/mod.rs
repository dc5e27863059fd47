//! Immutable segment files: many series' labels and chunks, zstd-compressed in
//! pages, with a compressed series table and a fixed-size footer.
//!
//! Layout (see `docs/format/segment.md` for the byte tables):
//! `header | page* | series table | page directory | footer`.
//! Every byte of a file is covered by a check: the header and footer by their own
//! crc32, the directory and the table by crcs kept in the footer, each page's
//! payload by the crc in its page header, and the page header's lengths by the
//! directory. Chunk bytes are opaque here.

mod mmap;
mod reader;
mod writer;

use std::path::{Path, PathBuf};

use byteorder::{ByteOrder, LittleEndian};

use crate::codec::varint::{get_ivarint, get_uvarint, put_ivarint, put_uvarint};
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::sample::ChunkMeta;
use crate::tier::StoredTier;

pub use reader::{ChunkCursor, LabelSink, Segment};
pub use writer::SegmentWriter;

/// First 8 bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"STRATSEG";
/// Last 8 bytes of every complete segment file.
pub const END_MAGIC: &[u8; 8] = b"STRATEND";
/// The format version this code writes. Version 2 (labels inside the series
/// entries) and version 1 (also chunk pages in series id order, page numbers
/// stored as unsigned deltas) are still read.
pub const FORMAT_VERSION: u16 = 3;
/// Oldest format version still read.
pub const OLDEST_VERSION: u16 = 1;
/// The first format version whose series table keeps labels in a frame of their own.
pub const LABELS_FRAME_VERSION: u16 = 3;

pub(crate) const HEADER_LEN: usize = 24;
pub(crate) const FOOTER_LEN: usize = 88;
pub(crate) const PAGE_HEADER_LEN: usize = 12;
/// Version 3's series table starts with the lengths of its two frames.
pub(crate) const TABLE_PREFIX_LEN: usize = 24;
pub(crate) const DIR_ENTRY_LEN: usize = 16;
/// Largest decompressed page or series table a reader will allocate for; the
/// writer refuses chunks above it so that what it writes can always be read.
pub(crate) const MAX_SECTION_RAW: usize = 1 << 30;

/// One chunk as the series table stores it: its metadata, and where its bytes
/// live (`len` bytes at `offset` in the decompressed `page`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableChunk {
    pub meta: ChunkMeta,
    pub page: u32,
    pub offset: u32,
    pub len: u32,
}

/// One chunk as an open segment keeps it (40 bytes, three million of them for a
/// million series in three segments): what reads select and answer by (times,
/// count, last value) and where its bytes live. The min, max and sum the table
/// also stores are read again by the tools that need them
/// ([`reader::Segment::chunk_metas`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkRef {
    pub min_t: i64,
    pub max_t: i64,
    pub last: f64,
    pub count: u32,
    pub page: u32,
    pub offset: u32,
    pub len: u32,
}

/// One series of a segment: its id and chunks (ordered by `min_t`). Its labels are
/// validated on open and handed to the caller (a `Db` keeps them once, in its
/// index); [`reader::Segment::series_labels`] reads them again from the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesEntry<'a> {
    pub id: u64,
    pub chunks: &'a [ChunkRef],
}

/// Summary of a sealed segment. An empty segment has `min_t = i64::MAX` and
/// `max_t = i64::MIN` (an empty range, which overlaps no query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: u64,
    pub tier: StoredTier,
    pub path: PathBuf,
    pub min_t: i64,
    pub max_t: i64,
    pub samples: u64,
    pub series: u64,
    pub file_size: u64,
}

/// Settings of a [`SegmentWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Raw (decompressed) bytes at which a page is compressed and written. Default: 64 KiB.
    pub page_size: usize,
    /// zstd level for pages and the series table. Default: 3.
    pub zstd_level: i32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { page_size: 64 << 10, zstd_level: 3 }
    }
}

/// The file name of segment `id` inside the segments directory.
pub fn file_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

/// The format version a segment file's header names, validating nothing else
/// (`None` when it cannot be read or is no segment): to choose how to open it.
pub fn peek_version(path: &Path) -> Option<u16> {
    use std::io::Read;
    let mut b = [0u8; 10];
    std::fs::File::open(path).ok()?.read_exact(&mut b).ok()?;
    (&b[..8] == MAGIC).then(|| u16::from_le_bytes([b[8], b[9]]))
}

fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::corruption(file, offset, reason)
}

/// Fixed header: magic, version, tier, reserved zero byte, id, crc32 of bytes 0..20.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub tier: StoredTier,
    pub id: u64,
    /// Written as [`FORMAT_VERSION`]; a decoded header keeps the file's own.
    pub version: u16,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        LittleEndian::write_u16(&mut b[8..10], self.version);
        b[10] = self.tier.as_u8();
        LittleEndian::write_u64(&mut b[12..20], self.id);
        let crc = crc32fast::hash(&b[0..20]);
        LittleEndian::write_u32(&mut b[20..24], crc);
        b
    }

    pub fn decode(b: &[u8; HEADER_LEN], file: &Path) -> Result<Header> {
        if &b[0..8] != MAGIC {
            return Err(corrupt(file, 0, "bad magic: not a segment file"));
        }
        let version = LittleEndian::read_u16(&b[8..10]);
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(corrupt(file, 8, format!("unsupported segment format version {version}")));
        }
        let crc = LittleEndian::read_u32(&b[20..24]);
        if crc32fast::hash(&b[0..20]) != crc {
            return Err(corrupt(file, 0, "header checksum mismatch"));
        }
        if b[11] != 0 {
            return Err(corrupt(file, 11, "reserved header byte is not zero"));
        }
        let tier = StoredTier::try_from(b[10]).map_err(|e| corrupt(file, 10, e.to_string()))?;
        Ok(Header { tier, id: LittleEndian::read_u64(&b[12..20]), version })
    }
}

/// Fixed footer at the end of the file; `crc` covers bytes 0..76, then `END_MAGIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub table_offset: u64,
    pub table_len: u64,
    pub table_raw_len: u64,
    pub dir_offset: u64,
    pub min_t: i64,
    pub max_t: i64,
    pub samples: u64,
    pub series: u64,
    pub page_count: u32,
    pub table_crc: u32,
    pub dir_crc: u32,
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        LittleEndian::write_u64(&mut b[0..8], self.table_offset);
        LittleEndian::write_u64(&mut b[8..16], self.table_len);
        LittleEndian::write_u64(&mut b[16..24], self.table_raw_len);
        LittleEndian::write_u64(&mut b[24..32], self.dir_offset);
        LittleEndian::write_i64(&mut b[32..40], self.min_t);
        LittleEndian::write_i64(&mut b[40..48], self.max_t);
        LittleEndian::write_u64(&mut b[48..56], self.samples);
        LittleEndian::write_u64(&mut b[56..64], self.series);
        LittleEndian::write_u32(&mut b[64..68], self.page_count);
        LittleEndian::write_u32(&mut b[68..72], self.table_crc);
        LittleEndian::write_u32(&mut b[72..76], self.dir_crc);
        let crc = crc32fast::hash(&b[0..76]);
        LittleEndian::write_u32(&mut b[76..80], crc);
        b[80..88].copy_from_slice(END_MAGIC);
        b
    }

    /// `at` is the footer's offset in the file, for error reports.
    pub fn decode(b: &[u8; FOOTER_LEN], file: &Path, at: u64) -> Result<Footer> {
        if &b[80..88] != END_MAGIC {
            return Err(corrupt(file, at + 80, "bad end magic: file is truncated or not a segment"));
        }
        if crc32fast::hash(&b[0..76]) != LittleEndian::read_u32(&b[76..80]) {
            return Err(corrupt(file, at, "footer checksum mismatch"));
        }
        Ok(Footer {
            table_offset: LittleEndian::read_u64(&b[0..8]),
            table_len: LittleEndian::read_u64(&b[8..16]),
            table_raw_len: LittleEndian::read_u64(&b[16..24]),
            dir_offset: LittleEndian::read_u64(&b[24..32]),
            min_t: LittleEndian::read_i64(&b[32..40]),
            max_t: LittleEndian::read_i64(&b[40..48]),
            samples: LittleEndian::read_u64(&b[48..56]),
            series: LittleEndian::read_u64(&b[56..64]),
            page_count: LittleEndian::read_u32(&b[64..68]),
            table_crc: LittleEndian::read_u32(&b[68..72]),
            dir_crc: LittleEndian::read_u32(&b[72..76]),
        })
    }
}

/// One page directory entry: where the page header starts and its two lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PageLoc {
    pub offset: u64,
    pub clen: u32,
    pub raw_len: u32,
}

impl PageLoc {
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let mut b = [0u8; DIR_ENTRY_LEN];
        LittleEndian::write_u64(&mut b[0..8], self.offset);
        LittleEndian::write_u32(&mut b[8..12], self.clen);
        LittleEndian::write_u32(&mut b[12..16], self.raw_len);
        buf.extend_from_slice(&b);
    }

    pub fn decode(b: &[u8; DIR_ENTRY_LEN]) -> PageLoc {
        PageLoc {
            offset: LittleEndian::read_u64(&b[0..8]),
            clen: LittleEndian::read_u32(&b[8..12]),
            raw_len: LittleEndian::read_u32(&b[12..16]),
        }
    }

    /// Offset one past the page's last byte (header included).
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(PAGE_HEADER_LEN as u64)?.checked_add(u64::from(self.clen))
    }
}

/// The lengths at the start of a version 3 series table, which is this prefix,
/// the entries frame (`entries_len` bytes) and the labels frame (the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TablePrefix {
    pub entries_len: u64,
    pub entries_raw_len: u64,
    pub labels_raw_len: u64,
}

impl TablePrefix {
    pub fn encode(&self, buf: &mut Vec<u8>) {
        for v in [self.entries_len, self.entries_raw_len, self.labels_raw_len] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Splits a version 3 table (its checksum already verified) into the entries
    /// frame and the labels frame, checking the lengths against the table's and
    /// the footer's. Errors are reasons; the caller attaches the table's offset.
    pub fn split(table: &[u8], raw_len: u64) -> std::result::Result<(TablePrefix, &[u8], &[u8]), String> {
        let field = |i: usize| crate::codec::bytes::le_u64(table, i * 8);
        let (Some(entries_len), Some(entries_raw_len), Some(labels_raw_len)) = (field(0), field(1), field(2)) else {
            return Err("series table is shorter than its length prefix".into());
        };
        let rest = table.get(TABLE_PREFIX_LEN..).unwrap_or_default();
        let entries = usize::try_from(entries_len).ok().and_then(|n| rest.get(..n));
        let Some(entries) = entries.filter(|e| e.len() < rest.len()) else {
            return Err(format!("series table entries frame of {entries_len} bytes leaves no labels frame"));
        };
        let labels = rest.get(entries.len()..).unwrap_or_default();
        if entries_raw_len.checked_add(labels_raw_len) != Some(raw_len) {
            return Err("series table frame sizes do not add up to the footer's table size".into());
        }
        Ok((TablePrefix { entries_len, entries_raw_len, labels_raw_len }, entries, labels))
    }
}

/// Delta state shared by the table encoder and decoder; both walk the series in
/// file order, so the deltas are small: ids and pages grow, chunks are laid out
/// back to back, and series start at similar times.
#[derive(Debug, Default)]
pub(crate) struct TableState {
    /// The file's format version: version 1 stores page numbers as unsigned
    /// deltas (its pages follow id order), later versions as signed ones.
    signed_pages: bool,
    /// Versions 1 and 2 keep each series' labels inside its entry; version 3 keeps
    /// them in a frame of their own, so the entries can be read without them.
    inline_labels: bool,
    prev_id: Option<u64>,
    prev_first_min_t: i64,
    prev_page: u32,
    prev_end: u32,
    /// Decoding steps over inline labels instead of reading them (an index
    /// checkpoint holds them).
    pub skip_labels: bool,
}

impl TableState {
    /// The offset a chunk in `page` has when it directly follows the previous chunk.
    fn expected_offset(&self, page: u32) -> u32 {
        if page == self.prev_page {
            self.prev_end
        } else {
            0
        }
    }

    /// State for reading or writing a table of format `version`.
    pub fn new(version: u16) -> TableState {
        TableState {
            signed_pages: version >= 2,
            inline_labels: version < LABELS_FRAME_VERSION,
            ..TableState::default()
        }
    }

    /// Whether labels are inside the series entries (versions 1 and 2).
    pub fn inline_labels(&self) -> bool {
        self.inline_labels
    }

    /// Appends one series entry to `buf`, and its labels (already encoded) to
    /// `buf` too in versions 1 and 2, to `label_buf` from version 3 on. The
    /// caller has validated ordering (ids strictly increasing) and ranges.
    pub fn encode(
        &mut self,
        buf: &mut Vec<u8>,
        label_buf: &mut Vec<u8>,
        id: u64,
        labels: &[u8],
        chunks: &[TableChunk],
    ) {
        put_uvarint(buf, id.wrapping_sub(self.prev_id.unwrap_or(0)));
        if self.inline_labels {
            buf.extend_from_slice(labels);
        } else {
            label_buf.extend_from_slice(labels);
        }
        put_uvarint(buf, chunks.len() as u64);
        let mut prev_max_t = None;
        for c in chunks {
            let m = &c.meta;
            match prev_max_t {
                None => {
                    put_ivarint(buf, m.min_t.wrapping_sub(self.prev_first_min_t));
                    self.prev_first_min_t = m.min_t;
                }
                Some(p) => put_ivarint(buf, m.min_t.wrapping_sub(p)),
            }
            prev_max_t = Some(m.max_t);
            put_uvarint(buf, m.max_t.wrapping_sub(m.min_t) as u64);
            put_uvarint(buf, u64::from(m.count));
            for v in [m.min, m.max, m.sum, m.last] {
                buf.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            if self.signed_pages {
                put_ivarint(buf, i64::from(c.page) - i64::from(self.prev_page));
            } else {
                put_uvarint(buf, u64::from(c.page - self.prev_page));
            }
            put_ivarint(buf, i64::from(c.offset) - i64::from(self.expected_offset(c.page)));
            put_uvarint(buf, u64::from(c.len));
            self.prev_page = c.page;
            self.prev_end = c.offset + c.len;
        }
        self.prev_id = Some(id);
    }

    /// Decodes the series entry at `*pos`, validating it against `pages`, and
    /// returns its id. Its chunks are appended to `chunks`; its inline labels,
    /// validated too, go to `labels`, borrowed from `raw` (or, with `skip_labels`,
    /// are only stepped over and `labels` is left empty). From version 3 on the
    /// entry holds no labels: `labels` is not touched (the caller reads them from
    /// the labels frame). With `metas`, each chunk's full metadata is appended there too.
    /// Errors are reasons; the caller attaches the file offset.
    pub fn decode<'a>(
        &mut self,
        raw: &'a [u8],
        pos: &mut usize,
        pages: &[PageLoc],
        labels: &mut Vec<(&'a str, &'a str)>,
        chunks: &mut Vec<ChunkRef>,
        mut metas: Option<&mut Vec<ChunkMeta>>,
    ) -> std::result::Result<u64, String> {
        let start = *pos;
        let at = |what: &str| format!("{what} (series entry at table byte {start})");
        let delta = get_uvarint(raw, pos).ok_or_else(|| at("truncated series id"))?;
        let id = match self.prev_id {
            None => delta,
            Some(_) if delta == 0 => return Err(at("series ids are not strictly increasing")),
            Some(p) => p.checked_add(delta).ok_or_else(|| at("series id overflows"))?,
        };
        if self.inline_labels {
            let read = if self.skip_labels {
                labels.clear();
                Labels::skip_encoded(raw, pos)
            } else {
                Labels::decode_borrowed(raw, pos, labels)
            };
            read.map_err(|e| at(&format!("bad labels: {e}")))?;
        }
        let n = get_uvarint(raw, pos).ok_or_else(|| at("truncated chunk count"))?;
        // Each chunk takes at least 30 bytes, so a count the table cannot hold is corrupt.
        let left = raw.len().saturating_sub(*pos) as u64;
        if n == 0 || n > left / 30 {
            return Err(at(&format!("implausible chunk count {n}")));
        }
        chunks.reserve(n as usize);
        let mut prev: Option<ChunkMeta> = None;
        for _ in 0..n {
            let d = get_ivarint(raw, pos).ok_or_else(|| at("truncated chunk min_t"))?;
            let min_t = match prev {
                None => self.prev_first_min_t.wrapping_add(d),
                Some(p) => p.max_t.wrapping_add(d),
            };
            let span = get_uvarint(raw, pos).ok_or_else(|| at("truncated chunk max_t"))?;
            // Wrapping is a bijection, so every valid span maps into [min_t, i64::MAX].
            let max_t = min_t.wrapping_add(span as i64);
            if max_t < min_t {
                return Err(at("chunk max_t is before min_t"));
            }
            if prev.is_some_and(|p| min_t <= p.min_t) {
                return Err(at("chunks are not ordered by min_t"));
            }
            let count = get_uvarint(raw, pos).ok_or_else(|| at("truncated sample count"))?;
            let count = u32::try_from(count).ok().filter(|&c| c > 0).ok_or_else(|| at("bad sample count"))?;
            let mut vals = [0f64; 4];
            for v in &mut vals {
                let b = raw.get(*pos..*pos + 8).ok_or_else(|| at("truncated chunk summary"))?;
                *v = f64::from_bits(LittleEndian::read_u64(b));
                *pos += 8;
            }
            let page = if self.signed_pages {
                get_ivarint(raw, pos).and_then(|d| i64::from(self.prev_page).checked_add(d))
            } else {
                get_uvarint(raw, pos)
                    .and_then(|d| u64::from(self.prev_page).checked_add(d))
                    .and_then(|p| i64::try_from(p).ok())
            };
            let page = page.and_then(|p| u32::try_from(p).ok()).ok_or_else(|| at("bad chunk page number"))?;
            let loc = pages.get(page as usize).ok_or_else(|| at(&format!("chunk page {page} does not exist")))?;
            let off = get_ivarint(raw, pos)
                .and_then(|d| i64::from(self.expected_offset(page)).checked_add(d))
                .and_then(|o| u32::try_from(o).ok())
                .ok_or_else(|| at("bad chunk offset"))?;
            let len = get_uvarint(raw, pos)
                .and_then(|l| u32::try_from(l).ok())
                .filter(|&l| l > 0)
                .ok_or_else(|| at("bad chunk length"))?;
            let end = off.checked_add(len).filter(|&e| e <= loc.raw_len);
            let end = end.ok_or_else(|| at(&format!("chunk runs past the end of page {page}")))?;
            let meta = ChunkMeta { min_t, max_t, count, min: vals[0], max: vals[1], sum: vals[2], last: vals[3] };
            chunks.push(ChunkRef { min_t, max_t, last: meta.last, count, page, offset: off, len });
            if let Some(m) = metas.as_deref_mut() {
                m.push(meta);
            }
            if prev.is_none() {
                self.prev_first_min_t = min_t;
            }
            prev = Some(meta);
            self.prev_page = page;
            self.prev_end = end;
        }
        self.prev_id = Some(id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn meta(min_t: i64, max_t: i64) -> ChunkMeta {
        ChunkMeta { min_t, max_t, count: 3, min: -1.5, max: f64::NAN, sum: 0.25, last: 2.0 }
    }

    /// Opens, verifies and reads every chunk: everything a reader may do with a file.
    fn read_all(path: &Path) -> Result<usize> {
        let seg = Segment::open(path)?;
        seg.verify()?;
        let mut n = 0;
        for e in seg.series() {
            seg.for_each_chunk(
                &e,
                |_| true,
                |_, b| {
                    n += b.len();
                    Ok(())
                },
            )?;
        }
        Ok(n)
    }

    /// A small segment with several pages, one oversized chunk, and extreme timestamps.
    fn small_segment(dir: &Path) -> SegmentInfo {
        let opts = WriterOptions { page_size: 96, zstd_level: 1 };
        let mut w = SegmentWriter::create(dir, 1, crate::StoredTier::Raw, opts).unwrap();
        let body: Vec<u8> = (0..200u32).map(|i| (i * 7 % 13) as u8).collect();
        let series: [(u64, Vec<ChunkMeta>); 4] = [
            (3, vec![meta(i64::MIN, i64::MIN + 5), meta(0, 10)]),
            (4, vec![meta(-20, -10), meta(-5, 5), meta(20, 30)]),
            (90, vec![meta(100, i64::MAX)]),
            (u64::MAX, vec![meta(1, 1), meta(2, 2)]),
        ];
        for (k, (id, metas)) in series.iter().enumerate() {
            let labels = Labels::metric("cpu", [("host", format!("h{k}"))]).unwrap();
            let chunks: Vec<(ChunkMeta, &[u8])> =
                metas.iter().enumerate().map(|(j, m)| (*m, &body[k * 3 + j..k * 3 + j + 30 + 40 * j])).collect();
            w.add_series(*id, &labels, &chunks).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn extreme_values_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let info = small_segment(dir.path());
        assert_eq!((info.min_t, info.max_t, info.series, info.samples), (i64::MIN, i64::MAX, 4, 24));
        let seg = Segment::open(&info.path).unwrap();
        let ids: Vec<u64> = seg.series().map(|s| s.id).collect();
        assert_eq!(ids, vec![3, 4, 90, u64::MAX]);
        assert_eq!(seg.find(90).unwrap().chunks[0].max_t, i64::MAX);
        assert!(seg.chunk_metas().unwrap().last().unwrap().max.is_nan());
        assert!(seg.page_count() >= 4);
        assert!(read_all(&info.path).unwrap() > 0);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let info = small_segment(dir.path());
        let good = fs::read(&info.path).unwrap();
        let len = good.len();
        let foot: &[u8; FOOTER_LEN] = good[len - FOOTER_LEN..].try_into().unwrap();
        let f = Footer::decode(foot, &info.path, 0).unwrap();
        let area = |i: usize| match i as u64 {
            i if i < HEADER_LEN as u64 => 0,
            i if i < f.table_offset => 1,
            i if i < f.dir_offset => 2,
            i if i < (len - FOOTER_LEN) as u64 => 3,
            _ => 4,
        };
        let copy = dir.path().join("copy.seg");
        let expect_corruption = |bytes: &[u8], what: &str| {
            fs::write(&copy, bytes).unwrap();
            match read_all(&copy) {
                Err(Error::Corruption { file, .. }) => assert_eq!(file, copy),
                other => panic!("{what}: expected corruption, got {other:?}"),
            }
        };
        for cut in 0..len {
            expect_corruption(&good[..cut], &format!("truncated to {cut}"));
        }
        let mut detected = [0usize; 5];
        let mut bad = good.clone();
        for i in 0..len {
            for bit in 0..8 {
                bad[i] ^= 1 << bit;
                expect_corruption(&bad, &format!("bit {bit} of byte {i} flipped"));
                bad[i] ^= 1 << bit;
                detected[area(i)] += 1;
            }
        }
        // Every area exists in this file, and every flip in it was caught.
        assert!(detected.iter().all(|&n| n > 0), "{detected:?}");
        assert_eq!(detected.iter().sum::<usize>(), len * 8);
        fs::write(&copy, &good).unwrap();
        read_all(&copy).unwrap();
    }

    #[test]
    fn a_header_naming_no_tier_is_refused_where_it_is_read() {
        let file = Path::new("x.seg");
        for tier in StoredTier::ALL {
            assert_eq!(
                Header::decode(&Header { tier, id: 9, version: FORMAT_VERSION }.encode(), file).unwrap().tier,
                tier
            );
        }
        let mut b = Header { tier: StoredTier::Hour, id: 9, version: FORMAT_VERSION }.encode();
        b[10] = 3;
        let crc = crc32fast::hash(&b[0..20]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        match Header::decode(&b, file) {
            Err(Error::Corruption { offset, reason, .. }) => {
                assert_eq!(offset, 10);
                assert!(reason.contains("unknown tier byte 3"), "{reason}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    /// Builds a version 2 file around one page of `page_len` raw bytes and a
    /// hand-made table, with correct checksums, so that only the table's meaning
    /// can be wrong.
    fn assemble(page_len: usize, table: &[u8], fix: impl FnOnce(&mut Footer)) -> Vec<u8> {
        let ctable = zstd::bulk::compress(table, 1).unwrap();
        assemble_section(2, page_len, &ctable, table.len() as u64, fix)
    }

    /// [`assemble`] for any version, around a series table section as stored.
    fn assemble_section(
        version: u16,
        page_len: usize,
        ctable: &[u8],
        raw_len: u64,
        fix: impl FnOnce(&mut Footer),
    ) -> Vec<u8> {
        let mut out = Header { tier: StoredTier::Raw, id: 5, version }.encode().to_vec();
        let page = zstd::bulk::compress(&vec![7u8; page_len], 1).unwrap();
        let loc = PageLoc { offset: out.len() as u64, clen: page.len() as u32, raw_len: page_len as u32 };
        out.extend_from_slice(&loc.clen.to_le_bytes());
        out.extend_from_slice(&loc.raw_len.to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&page).to_le_bytes());
        out.extend_from_slice(&page);
        let table_offset = out.len() as u64;
        out.extend_from_slice(ctable);
        let mut dir = Vec::new();
        loc.encode(&mut dir);
        let dir_offset = out.len() as u64;
        out.extend_from_slice(&dir);
        let mut footer = Footer {
            table_offset,
            table_len: ctable.len() as u64,
            table_raw_len: raw_len,
            dir_offset,
            min_t: 0,
            max_t: 10,
            samples: 3,
            series: 1,
            page_count: 1,
            table_crc: crc32fast::hash(ctable),
            dir_crc: crc32fast::hash(&dir),
        };
        fix(&mut footer);
        out.extend_from_slice(&footer.encode());
        out
    }

    /// A version 2 table (labels inline) of `series`.
    fn table_of(series: &[(u64, Vec<TableChunk>)]) -> Vec<u8> {
        let mut st = TableState::new(2);
        let mut buf = Vec::new();
        let mut labels = Vec::new();
        Labels::metric("up", [("a", "b")]).unwrap().encode(&mut labels);
        for (id, refs) in series {
            st.encode(&mut buf, &mut Vec::new(), *id, &labels, refs);
        }
        buf
    }

    /// A version 3 table section (prefix, entries frame, labels frame) and its
    /// total raw length. The labels frame holds `labels` instead of the series'
    /// own label sets when given.
    fn v3_table(
        series: &[(u64, Vec<TableChunk>)],
        labels: Option<Vec<u8>>,
        fix: impl FnOnce(&mut TablePrefix),
    ) -> (Vec<u8>, u64) {
        let mut st = TableState::new(3);
        let (mut entries, mut label_raw) = (Vec::new(), Vec::new());
        let mut one = Vec::new();
        Labels::metric("up", [("a", "b")]).unwrap().encode(&mut one);
        for (id, refs) in series {
            st.encode(&mut entries, &mut label_raw, *id, &one, refs);
        }
        let label_raw = labels.unwrap_or(label_raw);
        let (ce, cl) = (zstd::bulk::compress(&entries, 1).unwrap(), zstd::bulk::compress(&label_raw, 1).unwrap());
        let mut prefix = TablePrefix {
            entries_len: ce.len() as u64,
            entries_raw_len: entries.len() as u64,
            labels_raw_len: label_raw.len() as u64,
        };
        let raw_len = prefix.entries_raw_len + prefix.labels_raw_len;
        fix(&mut prefix);
        let mut out = Vec::new();
        prefix.encode(&mut out);
        out.extend_from_slice(&ce);
        out.extend_from_slice(&cl);
        (out, raw_len)
    }

    #[test]
    fn version_3_labels_frame_is_checked_against_the_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.seg");
        let r = |offset, len| TableChunk { meta: meta(0, 10), page: 0, offset, len };
        let two = vec![(1, vec![r(0, 50)]), (2, vec![r(50, 50)])];
        let open = |(table, raw_len): (Vec<u8>, u64)| {
            let fix = |f: &mut Footer| (f.series, f.samples) = (2, 6);
            fs::write(&path, assemble_section(3, 100, &table, raw_len, fix)).unwrap();
            Segment::open(&path).map(|s| s.series_labels().unwrap())
        };
        let got = open(v3_table(&two, None, |_| {})).unwrap();
        assert_eq!(got.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(got[1].1, Labels::metric("up", [("a", "b")]).unwrap());

        let sets = |n: usize, tail: &[u8]| {
            let mut b = Vec::new();
            for i in 0..n {
                Labels::metric("up", [("a", i.to_string())]).unwrap().encode(&mut b);
            }
            b.extend_from_slice(tail);
            Some(b)
        };
        let cases: Vec<(&str, (Vec<u8>, u64))> = vec![
            ("a label set more than series", v3_table(&two, sets(3, &[]), |_| {})),
            ("a label set fewer than series", v3_table(&two, sets(1, &[]), |_| {})),
            ("stray byte after the label sets", v3_table(&two, sets(2, &[0]), |_| {})),
            ("label names out of order", v3_table(&two, Some(b"\x02\x01b\x01x\x01a\x01y".repeat(2)), |_| {})),
            ("entries frame runs into the labels", v3_table(&two, None, |p| p.entries_len += 5)),
            ("entries frame takes every byte", v3_table(&two, None, |p| p.entries_len += 1000)),
            ("entries frame cut short", v3_table(&two, None, |p| p.entries_len -= 1)),
            ("frame sizes", v3_table(&two, None, |p| p.labels_raw_len += 1)),
        ];
        for (what, table) in cases {
            let res = open(table);
            assert!(matches!(res, Err(Error::Corruption { .. })), "{what}: {res:?}");
        }
        // Covered by an index checkpoint (the table's checksum is the one it names),
        // the labels frame is not decompressed: only its checksum is checked.
        assert!(open(v3_table(&two, sets(3, &[]), |_| {})).is_err());
        let bytes = fs::read(&path).unwrap();
        let foot: &[u8; FOOTER_LEN] = bytes[bytes.len() - FOOTER_LEN..].try_into().unwrap();
        let known = Footer::decode(foot, &path, 0).unwrap().table_crc;
        let (seg, skipped) = Segment::open_indexed(&path, Some(known), &mut |_, _| Ok(())).unwrap();
        assert!(skipped);
        assert_eq!(seg.series().map(|e| e.id).collect::<Vec<_>>(), [1, 2]);
    }

    type FooterFix = Box<dyn FnOnce(&mut Footer)>;

    #[test]
    fn semantically_bad_tables_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.seg");
        let r = |m: ChunkMeta, page, offset, len| TableChunk { meta: m, page, offset, len };
        let check = |bytes: Vec<u8>| {
            fs::write(&path, bytes).unwrap();
            read_all(&path)
        };
        let ok = table_of(&[(1, vec![r(meta(0, 10), 0, 0, 100)])]);
        assert_eq!(check(assemble(100, &ok, |_| {})).unwrap(), 100);

        let cases: Vec<(&str, Vec<u8>, FooterFix)> = vec![
            ("chunk past page end", table_of(&[(1, vec![r(meta(0, 10), 0, 50, 51)])]), Box::new(|_| {})),
            ("page out of range", table_of(&[(1, vec![r(meta(0, 10), 1, 0, 5)])]), Box::new(|_| {})),
            (
                "ids not increasing",
                table_of(&[(1, vec![r(meta(0, 10), 0, 0, 5)]), (1, vec![r(meta(0, 10), 0, 5, 5)])]),
                Box::new(|f| (f.series, f.samples) = (2, 6)),
            ),
            (
                "chunks out of order",
                table_of(&[(1, vec![r(meta(0, 5), 0, 0, 5), r(meta(0, 10), 0, 5, 5)])]),
                Box::new(|f| f.samples = 6),
            ),
            ("inverted chunk", table_of(&[(1, vec![r(meta(10, 0), 0, 0, 5)])]), Box::new(|f| f.max_t = 0)),
            ("zero-length chunk", table_of(&[(1, vec![r(meta(0, 10), 0, 0, 0)])]), Box::new(|_| {})),
            ("sample count", ok.clone(), Box::new(|f| f.samples = 4)),
            ("series count", ok.clone(), Box::new(|f| f.series = 2)),
            ("time range", ok.clone(), Box::new(|f| f.min_t = -1)),
            ("raw table length", ok.clone(), Box::new(|f| f.table_raw_len += 1)),
            ("trailing table bytes", [ok.clone(), vec![0]].concat(), Box::new(|_| {})),
        ];
        for (what, table, fix) in cases {
            let res = check(assemble(100, &table, fix));
            assert!(matches!(res, Err(Error::Corruption { .. })), "{what}: {res:?}");
        }
    }
}
