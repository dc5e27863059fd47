//! Opens, validates and reads sealed segment files through a memory map.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::fs::File;
use std::path::Path;

use parking_lot::Mutex;

use super::mmap::Mapped;
use super::{
    corrupt, ChunkRef, Footer, Header, PageLoc, SegmentInfo, SeriesEntry, TablePrefix, TableState, DIR_ENTRY_LEN,
    FOOTER_LEN, HEADER_LEN, MAX_SECTION_RAW, PAGE_HEADER_LEN,
};
use crate::codec::bytes::le_u32;
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::sample::ChunkMeta;

/// Decompression states kept for reuse by [`Segment::for_each_chunk`]; each remembers
/// its last page, so a sequential scan decompresses each page once.
const POOL_MAX: usize = 4;
/// Page buffers larger than this are not pooled (they come from oversized chunks).
const POOL_BUF_MAX: usize = 4 << 20;

/// An open, validated segment. Immutable and `Send + Sync`; share it with `Arc`.
pub struct Segment {
    map: Mapped,
    info: SegmentInfo,
    pages: Vec<PageLoc>,
    series: Table,
    /// The footer's checksum of the compressed series table: with the id, what an
    /// index checkpoint names a segment by.
    table_crc: u32,
    pool: Mutex<Vec<PageState>>,
}

/// The series table as the reader keeps it: ids, and every series' chunks in one
/// array (series `i` owns `chunks[starts[i]..starts[i + 1]]`), so that a series
/// costs 12 bytes beside its chunks and no allocation of its own.
#[derive(Default)]
struct Table {
    ids: Vec<u64>,
    starts: Vec<u32>,
    chunks: Vec<ChunkRef>,
}

impl Table {
    fn entry(&self, i: usize) -> Option<SeriesEntry<'_>> {
        let id = *self.ids.get(i)?;
        let start = *self.starts.get(i)? as usize;
        let end = self.starts.get(i + 1).map_or(self.chunks.len(), |&e| e as usize);
        Some(SeriesEntry { id, chunks: self.chunks.get(start..end)? })
    }
}

/// The series of a segment in id order ([`Segment::series`]).
#[derive(Clone)]
pub struct SeriesIter<'a> {
    table: &'a Table,
    next: usize,
}

impl<'a> Iterator for SeriesIter<'a> {
    type Item = SeriesEntry<'a>;

    fn next(&mut self) -> Option<SeriesEntry<'a>> {
        let e = self.table.entry(self.next)?;
        self.next += 1;
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.table.ids.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for SeriesIter<'_> {}

/// A zstd context, a page buffer, and which page the buffer holds.
struct PageState {
    dctx: zstd::bulk::Decompressor<'static>,
    buf: Vec<u8>,
    page: Option<u32>,
}

impl Segment {
    /// Maps and validates the file: magics, version, checksums of header, footer,
    /// directory and table, section bounds, and every series table entry.
    /// Page payloads are checked when read (or by [`Segment::verify`]).
    pub fn open(path: &Path) -> Result<Segment> {
        Segment::open_with(path, &mut |_, _| Ok(()))
    }

    /// [`Segment::open`], handing each series' id and validated labels to `labels`
    /// (a `Db` loads them into its index). An error it returns is reported as
    /// corruption of this file's series table.
    pub fn open_with(path: &Path, labels: &mut LabelSink<'_>) -> Result<Segment> {
        Ok(Segment::open_indexed(path, None, labels)?.0)
    }

    /// [`Segment::open_with`], except that when the series table's checksum is
    /// `known_crc` (an index checkpoint holds this table's labels) labels are not
    /// read: neither validated nor handed to `labels` (a version 3 table's labels
    /// frame is not even decompressed; older tables' are stepped over). Says
    /// whether they were skipped.
    pub fn open_indexed(path: &Path, known_crc: Option<u32>, labels: &mut LabelSink<'_>) -> Result<(Segment, bool)> {
        let file = File::open(path).map_err(|e| Error::io(format!("opening segment {}", path.display()), e))?;
        let map = Mapped::open(&file, path)?;
        let p = parse(map.bytes(), path, labels, known_crc, None)?;
        let skipped = known_crc == Some(p.table_crc);
        Ok((Segment::from_parsed(map, p), skipped))
    }

    /// Validates a segment held in memory (an in-memory database's), exactly as
    /// [`Segment::open`] validates a file; `name` stands for the path in errors.
    pub fn from_bytes(bytes: Vec<u8>, name: &Path) -> Result<Segment> {
        if bytes.is_empty() {
            return Err(corrupt(name, 0, "empty segment"));
        }
        let map = Mapped::Owned(bytes.into_boxed_slice());
        let p = parse(map.bytes(), name, &mut |_, _| Ok(()), None, None)?;
        Ok(Segment::from_parsed(map, p))
    }

    fn from_parsed(map: Mapped, p: Parsed) -> Segment {
        Segment {
            map,
            info: p.info,
            pages: p.pages,
            series: p.table,
            table_crc: p.table_crc,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The checksum of the compressed series table, from the footer.
    pub fn table_crc(&self) -> u32 {
        self.table_crc
    }

    /// The segment's bytes, exactly as they are (or would be) in its file.
    pub fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// All series, sorted by id.
    pub fn series(&self) -> SeriesIter<'_> {
        SeriesIter { table: &self.series, next: 0 }
    }

    /// Every series' labels, in id order (as [`Segment::series`]), read again from
    /// the series table. For tools and tests: a `Db` keeps labels in its index.
    pub fn series_labels(&self) -> Result<Vec<(u64, Labels)>> {
        let mut out = Vec::with_capacity(self.series.ids.len());
        parse(
            self.map.bytes(),
            &self.info.path,
            &mut |id, pairs| {
                out.push((id, Labels::from_checked(pairs)));
                Ok(())
            },
            None,
            None,
        )?;
        Ok(out)
    }

    /// Every chunk's full metadata (with the min, max and sum that [`ChunkRef`]
    /// leaves out), read again from the series table: series in id order, each
    /// series' chunks in order, as [`Segment::series`] lists them. For tools.
    pub fn chunk_metas(&self) -> Result<Vec<ChunkMeta>> {
        let mut out = Vec::with_capacity(self.series.chunks.len());
        // Labels are not wanted: stepped over, or (version 3) not decompressed.
        let known = Some(self.table_crc);
        parse(self.map.bytes(), &self.info.path, &mut |_, _| Ok(()), known, Some(&mut out))?;
        Ok(out)
    }

    /// Number of pages in the file.
    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// All series in the order their chunks lie in the pages (label order for
    /// files this version writes), so that reading them in turn decompresses
    /// each page once.
    pub fn series_in_page_order(&self) -> Vec<SeriesEntry<'_>> {
        let mut v: Vec<SeriesEntry<'_>> = self.series().collect();
        v.sort_by_key(|e| e.chunks.first().map(|c| (c.page, c.offset)));
        v
    }

    pub fn find(&self, id: u64) -> Option<SeriesEntry<'_>> {
        self.series.ids.binary_search(&id).ok().and_then(|i| self.series.entry(i))
    }

    /// A reader that keeps its decompressed page between calls; use one per thread
    /// for scans over many series, so that pages shared by series are decompressed once.
    pub fn cursor(&self) -> Result<ChunkCursor<'_>> {
        let state = match self.pool.lock().pop() {
            Some(s) => s,
            None => PageState {
                dctx: zstd::bulk::Decompressor::new().map_err(|e| Error::io("creating a zstd decompressor", e))?,
                buf: Vec::new(),
                page: None,
            },
        };
        Ok(ChunkCursor { seg: self, state: Some(state) })
    }

    /// Calls `f(meta, bytes)` for each chunk of `entry` (which must come from this
    /// segment) for which `want(meta)` holds, in order. Each needed page is checked
    /// against its crc and decompressed at most once per call.
    pub fn for_each_chunk(
        &self,
        entry: &SeriesEntry,
        want: impl FnMut(&ChunkRef) -> bool,
        f: impl FnMut(&ChunkRef, &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.cursor()?.for_each_chunk(entry, want, f)
    }

    /// Reads every page, checking its header against the directory, its crc and its
    /// decompressed length. Returns the first problem found.
    pub fn verify(&self) -> Result<()> {
        let mut c = self.cursor()?;
        for i in 0..self.pages.len() {
            c.load(i as u32)?;
        }
        Ok(())
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Error {
        corrupt(&self.info.path, offset, reason)
    }

    /// The compressed bytes of page `idx`, after checking its header and crc.
    fn page_data(&self, idx: u32) -> Result<(&PageLoc, &[u8])> {
        let loc = self.pages.get(idx as usize).ok_or_else(|| self.corrupt(0, format!("no page {idx}")))?;
        // Bounds were validated on open; stay defensive all the same.
        let start = usize::try_from(loc.offset).ok();
        let end = loc.end().and_then(|e| usize::try_from(e).ok());
        let bytes = match (start, end) {
            (Some(s), Some(e)) => self.map.bytes().get(s..e),
            _ => None,
        };
        let bytes = bytes.ok_or_else(|| self.corrupt(loc.offset, format!("page {idx} lies outside the file")))?;
        let (head, data) = bytes
            .split_at_checked(PAGE_HEADER_LEN)
            .ok_or_else(|| self.corrupt(loc.offset, format!("page {idx} is shorter than its header")))?;
        if le_u32(head, 0) != Some(loc.clen) || le_u32(head, 4) != Some(loc.raw_len) {
            return Err(self.corrupt(loc.offset, format!("page {idx} header disagrees with the page directory")));
        }
        if Some(crc32fast::hash(data)) != le_u32(head, 8) {
            return Err(self.corrupt(loc.offset, format!("page {idx} checksum mismatch")));
        }
        Ok((loc, data))
    }
}

/// Reads chunks of one segment, reusing one decompression buffer and remembering
/// the last page it decompressed. Returned to the segment's pool on drop.
pub struct ChunkCursor<'a> {
    seg: &'a Segment,
    /// Always `Some` until dropped.
    state: Option<PageState>,
}

impl ChunkCursor<'_> {
    /// Like [`Segment::for_each_chunk`], but a page already decompressed by an
    /// earlier call of this cursor is not decompressed again.
    pub fn for_each_chunk(
        &mut self,
        entry: &SeriesEntry,
        mut want: impl FnMut(&ChunkRef) -> bool,
        mut f: impl FnMut(&ChunkRef, &[u8]) -> Result<()>,
    ) -> Result<()> {
        for c in entry.chunks {
            if !want(c) {
                continue;
            }
            let seg = self.seg;
            let page = self.load(c.page)?;
            let bytes = chunk_range(c).and_then(|r| page.get(r));
            let bytes = bytes.ok_or_else(|| seg.corrupt(0, format!("chunk runs past the end of page {}", c.page)))?;
            f(c, bytes)?;
        }
        Ok(())
    }

    /// Page `idx` decompressed, from the buffer if it already holds it.
    fn load(&mut self, idx: u32) -> Result<&[u8]> {
        let seg = self.seg;
        let st = self.state.as_mut().ok_or_else(|| seg.corrupt(0, "chunk cursor used after drop"))?;
        if st.page == Some(idx) {
            return Ok(&st.buf);
        }
        st.page = None;
        let (loc, data) = seg.page_data(idx)?;
        let raw_len = loc.raw_len as usize;
        st.buf.clear();
        // The capacity bounds what zstd may write; the length is checked below.
        st.buf.reserve(raw_len);
        let n = st.dctx.decompress_to_buffer(data, &mut st.buf);
        let n = n.map_err(|e| seg.corrupt(loc.offset, format!("page {idx} does not decompress: {e}")))?;
        if n != raw_len || st.buf.len() != raw_len {
            return Err(seg.corrupt(loc.offset, format!("page {idx} decompresses to {n} bytes, not {raw_len}")));
        }
        st.page = Some(idx);
        Ok(&st.buf)
    }
}

impl Drop for ChunkCursor<'_> {
    fn drop(&mut self) {
        if let Some(st) = self.state.take() {
            let mut pool = self.seg.pool.lock();
            if pool.len() < POOL_MAX && st.buf.capacity() <= POOL_BUF_MAX {
                pool.push(st);
            }
        }
    }
}

fn chunk_range(c: &ChunkRef) -> Option<std::ops::Range<usize>> {
    let start = c.offset as usize;
    Some(start..start.checked_add(c.len as usize)?)
}

/// Receives each series' id and labels as a segment is opened.
pub type LabelSink<'a> = dyn FnMut(u64, &[(&str, &str)]) -> std::result::Result<(), String> + 'a;

/// What [`parse`] reads from a file.
struct Parsed {
    info: SegmentInfo,
    pages: Vec<PageLoc>,
    table: Table,
    table_crc: u32,
}

/// Validates the whole file except page payloads; returns the parsed parts. Labels
/// go to `on_labels`, unless the table's checksum is `known_crc` (then they are skipped).
fn parse(
    bytes: &[u8],
    path: &Path,
    on_labels: &mut LabelSink<'_>,
    known_crc: Option<u32>,
    mut metas: Option<&mut Vec<ChunkMeta>>,
) -> Result<Parsed> {
    let len = bytes.len();
    let file_size = len as u64;
    if len < HEADER_LEN + FOOTER_LEN {
        return Err(corrupt(path, 0, format!("file of {len} bytes is shorter than a header and a footer")));
    }
    let head: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN).and_then(|b| b.try_into().ok()).ok_or_else(|| short(path))?;
    let header = Header::decode(head, path)?;
    let fstart = len - FOOTER_LEN;
    let foot: &[u8; FOOTER_LEN] = bytes.get(fstart..).and_then(|b| b.try_into().ok()).ok_or_else(|| short(path))?;
    let footer = Footer::decode(foot, path, fstart as u64)?;
    let fat = fstart as u64;

    // The sections must tile the file exactly, so no byte escapes every check:
    // header | pages | table | directory | footer.
    let dir_len = u64::from(footer.page_count) * DIR_ENTRY_LEN as u64;
    if footer.dir_offset.checked_add(dir_len) != Some(fat) {
        return Err(corrupt(path, fat + 24, "page directory does not end where the footer starts"));
    }
    if footer.table_offset < HEADER_LEN as u64
        || footer.table_offset.checked_add(footer.table_len) != Some(footer.dir_offset)
    {
        return Err(corrupt(path, fat, "series table does not lie between the pages and the directory"));
    }
    let dir = bytes.get(footer.dir_offset as usize..fstart).ok_or_else(|| short(path))?;
    if crc32fast::hash(dir) != footer.dir_crc {
        return Err(corrupt(path, footer.dir_offset, "page directory checksum mismatch"));
    }
    let mut pages = Vec::with_capacity(footer.page_count as usize);
    let mut next = HEADER_LEN as u64;
    for (i, e) in dir.chunks_exact(DIR_ENTRY_LEN).enumerate() {
        let at = footer.dir_offset + (i * DIR_ENTRY_LEN) as u64;
        let loc = PageLoc::decode(e.try_into().map_err(|_| corrupt(path, at, "short directory entry"))?);
        if loc.offset != next {
            return Err(corrupt(path, at, format!("page {i} is not where the previous page ends")));
        }
        if loc.clen == 0 || loc.raw_len == 0 || loc.raw_len as usize > MAX_SECTION_RAW {
            return Err(corrupt(path, at, format!("page {i} has implausible lengths")));
        }
        next = loc
            .end()
            .filter(|&e| e <= footer.table_offset)
            .ok_or_else(|| corrupt(path, at, format!("page {i} runs past the start of the series table")))?;
        pages.push(loc);
    }
    if next != footer.table_offset {
        return Err(corrupt(path, fat, "pages do not end where the series table starts"));
    }

    let tstart = footer.table_offset;
    let table = bytes.get(tstart as usize..footer.dir_offset as usize).ok_or_else(|| short(path))?;
    if crc32fast::hash(table) != footer.table_crc {
        return Err(corrupt(path, tstart, "series table checksum mismatch"));
    }
    let skip = known_crc == Some(footer.table_crc);
    let mut state = TableState::new(header.version);
    // Version 3 keeps the labels in a frame of their own, decompressed only when read.
    let (raw, labels_raw) = if state.inline_labels() {
        (decompress(table, footer.table_raw_len, path, tstart, "series table")?, Vec::new())
    } else {
        let (prefix, entries, labels) =
            TablePrefix::split(table, footer.table_raw_len).map_err(|r| corrupt(path, tstart, r))?;
        let raw = decompress(entries, prefix.entries_raw_len, path, tstart, "series table entries frame")?;
        let labels_raw = if skip {
            Vec::new()
        } else {
            decompress(labels, prefix.labels_raw_len, path, tstart, "series table labels frame")?
        };
        (raw, labels_raw)
    };

    // An entry takes at least 32 bytes (id 1, chunk count 1, one chunk 30; inline
    // labels add at least 5): cap the preallocation by what the table can hold.
    let cap = footer.series.min(raw.len() as u64 / 32) as usize;
    let mut series = Table { ids: Vec::with_capacity(cap), starts: Vec::with_capacity(cap), chunks: Vec::new() };
    series.chunks.reserve(cap);
    let (mut min_t, mut max_t, mut samples) = (i64::MAX, i64::MIN, 0u64);
    let (mut pos, mut labels_pos) = (0, 0);
    let mut labels = Vec::new();
    state.skip_labels = skip;
    while pos < raw.len() {
        let start = series.chunks.len();
        let start32 = u32::try_from(start).map_err(|_| corrupt(path, tstart, "more than 2^32 chunks"))?;
        let id = state
            .decode(&raw, &mut pos, &pages, &mut labels, &mut series.chunks, metas.as_deref_mut())
            .map_err(|r| corrupt(path, tstart, r))?;
        if !state.inline_labels() && !skip {
            Labels::decode_borrowed(&labels_raw, &mut labels_pos, &mut labels)
                .map_err(|e| corrupt(path, tstart, format!("bad labels of series {id} in the labels frame: {e}")))?;
        }
        if !skip {
            on_labels(id, &labels).map_err(|r| corrupt(path, tstart, r))?;
        }
        for c in series.chunks.get(start..).unwrap_or_default() {
            min_t = min_t.min(c.min_t);
            max_t = max_t.max(c.max_t);
            samples = samples.saturating_add(u64::from(c.count));
        }
        series.ids.push(id);
        series.starts.push(start32);
    }
    series.chunks.shrink_to_fit();
    if labels_pos != labels_raw.len() {
        return Err(corrupt(path, tstart, "series table labels frame holds more label sets than series"));
    }
    if series.ids.len() as u64 != footer.series || samples != footer.samples {
        return Err(corrupt(path, fat, "footer series or sample count disagrees with the series table"));
    }
    if min_t != footer.min_t || max_t != footer.max_t {
        return Err(corrupt(path, fat, "footer time range disagrees with the series table"));
    }
    let info = SegmentInfo {
        id: header.id,
        tier: header.tier,
        path: path.to_path_buf(),
        min_t,
        max_t,
        samples,
        series: footer.series,
        file_size,
    };
    Ok(Parsed { info, pages, table: series, table_crc: footer.table_crc })
}

/// One zstd frame of a series table, which must decompress to exactly `raw_len`
/// (at most [`MAX_SECTION_RAW`]) bytes; `what` names it in errors.
fn decompress(frame: &[u8], raw_len: u64, path: &Path, at: u64, what: &str) -> Result<Vec<u8>> {
    let len = usize::try_from(raw_len).ok().filter(|&n| n <= MAX_SECTION_RAW);
    let len = len.ok_or_else(|| corrupt(path, at, format!("implausible {what} size {raw_len}")))?;
    let raw = zstd::bulk::decompress(frame, len)
        .map_err(|e| corrupt(path, at, format!("{what} does not decompress: {e}")))?;
    if raw.len() != len {
        return Err(corrupt(path, at, format!("{what} decompresses to {} bytes, not {len}", raw.len())));
    }
    Ok(raw)
}

fn short(path: &Path) -> Error {
    corrupt(path, 0, "file too short")
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::segment::{SegmentWriter, WriterOptions};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    type Expected = Vec<(u64, Labels, Vec<(ChunkMeta, Vec<u8>)>)>;

    fn random_series(rng: &mut Rng, n: usize, page_size: usize) -> Expected {
        let mut out = Vec::new();
        let mut id = 0;
        for i in 0..n {
            id += 1 + rng.below(1000);
            let labels = Labels::metric("m", [("i", i.to_string()), ("j", (i % 7).to_string())]).unwrap();
            let mut t = rng.below(1 << 40) as i64 - (1 << 39);
            let mut chunks = Vec::new();
            for _ in 0..1 + rng.below(5) {
                let span = rng.below(100_000) as i64;
                let meta = ChunkMeta {
                    min_t: t,
                    max_t: t + span,
                    count: 1 + rng.below(500) as u32,
                    min: f64::from_bits(rng.next()),
                    max: f64::from_bits(rng.next()),
                    sum: f64::from_bits(rng.next()),
                    last: f64::from_bits(rng.next()),
                };
                t += span + 1 + rng.below(10_000) as i64;
                // Mostly small chunks, sometimes larger than a page.
                let len =
                    if rng.below(50) == 0 { page_size + rng.below(3000) as usize } else { 1 + rng.below(700) as usize };
                let bytes: Vec<u8> = (0..len).map(|_| (rng.next() % 16) as u8).collect();
                chunks.push((meta, bytes));
            }
            out.push((id, labels, chunks));
        }
        out
    }

    fn write(dir: &Path, id: u64, opts: WriterOptions, series: &Expected) -> SegmentInfo {
        let mut w = SegmentWriter::create(dir, id, crate::StoredTier::Hour, opts).unwrap();
        for (id, labels, chunks) in series {
            let c: Vec<(ChunkMeta, &[u8])> = chunks.iter().map(|(m, b)| (*m, b.as_slice())).collect();
            w.add_series(*id, labels, &c).unwrap();
        }
        w.finish().unwrap()
    }

    fn same_meta(a: &ChunkMeta, b: &ChunkMeta) -> bool {
        (a.min_t, a.max_t, a.count) == (b.min_t, b.max_t, b.count)
            && (a.min.to_bits(), a.max.to_bits(), a.sum.to_bits(), a.last.to_bits())
                == (b.min.to_bits(), b.max.to_bits(), b.sum.to_bits(), b.last.to_bits())
    }

    #[test]
    fn round_trips_many_series() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let opts = WriterOptions { page_size: 16 << 10, zstd_level: 3 };
        let expected = random_series(&mut rng, 1000, opts.page_size);
        let info = write(dir.path(), 42, opts, &expected);
        let seg = Segment::open(&info.path).unwrap();
        assert_eq!(seg.info(), &info);
        assert_eq!((info.id, info.tier, info.series), (42, crate::StoredTier::Hour, 1000));
        let samples: u64 = expected.iter().flat_map(|s| &s.2).map(|c| u64::from(c.0.count)).sum();
        assert_eq!(info.samples, samples);
        assert!(seg.page_count() > 10, "expected many pages, got {}", seg.page_count());
        seg.verify().unwrap();

        let mut cursor = seg.cursor().unwrap();
        assert_eq!(seg.series().len(), expected.len());
        let all_labels = seg.series_labels().unwrap();
        let mut metas = seg.chunk_metas().unwrap().into_iter();
        for ((entry, (id, labels, chunks)), read) in seg.series().zip(&expected).zip(&all_labels) {
            assert_eq!((entry.id, &read.1), (*id, labels));
            assert_eq!(entry.chunks.len(), chunks.len());
            for (r, (m, _)) in entry.chunks.iter().zip(chunks) {
                let full = metas.next().unwrap();
                assert!(same_meta(&full, m));
                assert_eq!(
                    (r.min_t, r.max_t, r.count, r.last.to_bits()),
                    (m.min_t, m.max_t, m.count, m.last.to_bits())
                );
            }
            assert!(std::ptr::eq(seg.find(*id).unwrap().chunks, entry.chunks));
            assert!(seg.find(id + 1).is_none_or(|e| e.id == id + 1));
            let mut got = Vec::new();
            cursor
                .for_each_chunk(
                    &entry,
                    |_| true,
                    |_, b| {
                        got.push(b.to_vec());
                        Ok(())
                    },
                )
                .unwrap();
            assert_eq!(got, chunks.iter().map(|c| c.1.clone()).collect::<Vec<_>>());
        }
        assert!(seg.find(0).is_none());

        // `want` filters chunks; the segment-level call gives the same bytes.
        let (id, _, chunks) = expected.iter().find(|s| s.2.len() >= 3).unwrap();
        let entry = seg.find(*id).unwrap();
        let second_t = chunks[1].0.min_t;
        let mut got = Vec::new();
        let keep = |m: &ChunkRef, b: &[u8]| {
            got.push((m.min_t, b.to_vec()));
            Ok(())
        };
        seg.for_each_chunk(&entry, |m| m.min_t == second_t, keep).unwrap();
        assert_eq!(got, vec![(second_t, chunks[1].1.clone())]);
    }

    #[test]
    fn empty_segment_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let info = write(dir.path(), 3, WriterOptions::default(), &Vec::new());
        let seg = Segment::open(&info.path).unwrap();
        assert_eq!(seg.info(), &info);
        assert_eq!((info.series, info.samples, info.min_t, info.max_t), (0, 0, i64::MAX, i64::MIN));
        assert!(seg.series().len() == 0 && seg.find(0).is_none());
        seg.verify().unwrap();
    }

    #[test]
    fn segment_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Segment>();
    }
}
