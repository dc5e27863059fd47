//! Writes one segment file under a `.tmp` name and publishes it atomically, or
//! (for an in-memory database) the same bytes into a buffer.
//!
//! Pages are compressed and written as they fill, so memory stays at one page
//! plus the series entries (labels and chunk references) and the page directory.
//!
//! Series may be added in any id order: their chunks land in pages in the order
//! added (callers add series in label order, so a selector's series share pages),
//! while the series table is written in id order at [`SegmentWriter::finish`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use byteorder::{ByteOrder, LittleEndian};

use super::{
    file_name, Footer, Header, PageLoc, Segment, SegmentInfo, TableChunk, TablePrefix, TableState, WriterOptions,
    FORMAT_VERSION, MAX_SECTION_RAW, PAGE_HEADER_LEN, TABLE_PREFIX_LEN,
};
use crate::error::{Error, Result};
use crate::fsutil::{self, rename_durable, tmp_path};
use crate::hash::IdBuildHasher;
use crate::labels::Labels;
use crate::sample::ChunkMeta;
use crate::tier::StoredTier;

/// Where a segment's bytes go: a file (under its `.tmp` name until `finish`) or,
/// for an in-memory database, a buffer that becomes the segment's storage. The
/// writer writes whole pages and sections, so this choice costs nothing per sample.
enum Sink {
    File(BufWriter<File>),
    Memory(Vec<u8>),
}

/// Builds a segment file. Dropping it (or calling [`SegmentWriter::abort`]) before
/// [`SegmentWriter::finish`] removes the temporary file; nothing ever appears under
/// the final name until `finish` succeeds.
pub struct SegmentWriter {
    id: u64,
    tier: StoredTier,
    opts: WriterOptions,
    path: PathBuf,
    tmp: PathBuf,
    /// `None` once finished or aborted.
    out: Option<Sink>,
    /// Bytes written so far (the offset of the next byte).
    pos: u64,
    cctx: zstd::bulk::Compressor<'static>,
    page: Vec<u8>,
    comp: Vec<u8>,
    pages: Vec<PageLoc>,
    /// Series added so far: id, the range of its encoded labels in `label_bytes`,
    /// the range of its chunk references in `refs`.
    entries: Vec<(u64, std::ops::Range<usize>, std::ops::Range<usize>)>,
    label_bytes: Vec<u8>,
    refs: Vec<TableChunk>,
    ids: std::collections::HashSet<u64, IdBuildHasher>,
    min_t: i64,
    max_t: i64,
    samples: u64,
    series: u64,
    /// Set by any failed write: the file's contents are then unknown, so the writer refuses to go on.
    failed: bool,
    /// Set once the tmp file was renamed (or removed): Drop must not touch it any more.
    done: bool,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// Checks the options and makes the zstd context, before anything is created.
fn compressor(opts: WriterOptions) -> Result<zstd::bulk::Compressor<'static>> {
    if opts.page_size == 0 || opts.page_size > MAX_SECTION_RAW {
        return Err(invalid(format!("segment page size {} is out of range", opts.page_size)));
    }
    zstd::bulk::Compressor::new(opts.zstd_level).map_err(|e| invalid(format!("zstd level {}: {e}", opts.zstd_level)))
}

impl SegmentWriter {
    /// Creates `<dir>/<file_name(id)>.tmp` (replacing a leftover one) and writes the header.
    pub fn create(dir: &Path, id: u64, tier: StoredTier, opts: WriterOptions) -> Result<SegmentWriter> {
        let cctx = compressor(opts)?;
        let path = dir.join(file_name(id));
        let tmp = tmp_path(&path);
        let file = fsutil::create(OpenOptions::new().write(true).create(true).truncate(true), &tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        Self::start(path, tmp, Sink::File(BufWriter::with_capacity(256 << 10, file)), id, tier, opts, cctx)
    }

    /// A writer whose bytes stay in memory ([`SegmentWriter::finish_open`] turns them
    /// into a [`Segment`]); `dir` only names it in errors. Creates no file.
    pub fn in_memory(dir: &Path, id: u64, tier: StoredTier, opts: WriterOptions) -> Result<SegmentWriter> {
        let cctx = compressor(opts)?;
        let path = dir.join(file_name(id));
        Self::start(path.clone(), path, Sink::Memory(Vec::new()), id, tier, opts, cctx)
    }

    fn start(
        path: PathBuf,
        tmp: PathBuf,
        out: Sink,
        id: u64,
        tier: StoredTier,
        opts: WriterOptions,
        cctx: zstd::bulk::Compressor<'static>,
    ) -> Result<SegmentWriter> {
        let mut w = SegmentWriter {
            id,
            tier,
            opts,
            path,
            tmp,
            out: Some(out),
            pos: 0,
            cctx,
            page: Vec::with_capacity(opts.page_size.min(MAX_SECTION_RAW)),
            comp: Vec::new(),
            pages: Vec::new(),
            entries: Vec::new(),
            label_bytes: Vec::new(),
            refs: Vec::new(),
            ids: Default::default(),
            min_t: i64::MAX,
            max_t: i64::MIN,
            samples: 0,
            series: 0,
            failed: false,
            done: false,
        };
        w.write(&Header { tier, id, version: FORMAT_VERSION }.encode())?;
        Ok(w)
    }

    /// Adds one series. Each id may be added once, in any order (the order of the
    /// pages); chunks must be non-empty (bytes and samples), with `min_t <= max_t`
    /// and strictly increasing `min_t`. An invalid call is rejected before anything
    /// is written.
    pub fn add_series(&mut self, id: u64, labels: &Labels, chunks: &[(ChunkMeta, &[u8])]) -> Result<()> {
        self.check_usable()?;
        if self.ids.contains(&id) {
            return Err(invalid(format!("segment series {id} was already added")));
        }
        if chunks.is_empty() {
            return Err(invalid(format!("segment series {id} has no chunks")));
        }
        let mut prev_min_t = None;
        for (m, bytes) in chunks {
            if bytes.is_empty() || bytes.len() > MAX_SECTION_RAW || m.count == 0 || m.min_t > m.max_t {
                return Err(invalid(format!("segment series {id} has an empty, oversized or inverted chunk")));
            }
            if prev_min_t.is_some_and(|p| m.min_t <= p) {
                return Err(invalid(format!("chunks of segment series {id} are not ordered by min_t")));
            }
            prev_min_t = Some(m.min_t);
        }

        let first_ref = self.refs.len();
        for (meta, bytes) in chunks {
            // A chunk never spans pages: start a new page when it does not fit.
            if !self.page.is_empty() && self.page.len() + bytes.len() > self.opts.page_size {
                self.flush_page()?;
            }
            let page = u32::try_from(self.pages.len()).map_err(|_| invalid("segment has too many pages"))?;
            // Both fit in u32: the page holds at most max(page_size, chunk) <= MAX_SECTION_RAW bytes.
            let offset = self.page.len() as u32;
            self.page.extend_from_slice(bytes);
            self.refs.push(TableChunk { meta: *meta, page, offset, len: bytes.len() as u32 });
            if self.page.len() >= self.opts.page_size {
                self.flush_page()?;
            }
        }
        for r in &self.refs[first_ref..] {
            self.min_t = self.min_t.min(r.meta.min_t);
            self.max_t = self.max_t.max(r.meta.max_t);
            self.samples += u64::from(r.meta.count);
        }
        let first_label = self.label_bytes.len();
        labels.encode(&mut self.label_bytes);
        self.entries.push((id, first_label..self.label_bytes.len(), first_ref..self.refs.len()));
        self.ids.insert(id);
        self.series += 1;
        Ok(())
    }

    /// Flushes the last page, writes the table, directory and footer, syncs the data,
    /// renames the file to its final name and syncs the directory. An in-memory
    /// writer has no file to finish: it is finished by [`SegmentWriter::finish_open`].
    pub fn finish(mut self) -> Result<SegmentInfo> {
        self.write_tail()?;
        let out = match self.out.take() {
            Some(Sink::File(out)) => out,
            _ => return Err(invalid("an in-memory segment writer has no file to finish")),
        };
        let file =
            out.into_inner().map_err(|e| Error::io(format!("writing {}", self.tmp.display()), e.into_error()))?;
        fsutil::sync_data(&file).map_err(|e| fsutil::sync_error(self.tmp.display(), e))?;
        drop(file);
        // On error Drop removes the tmp file (if the rename itself happened, that is a no-op).
        rename_durable(&self.tmp, &self.path)?;
        self.done = true;
        Ok(self.info())
    }

    /// Finishes the segment and opens it for reading: the file through a map, or
    /// the in-memory buffer as it is.
    pub fn finish_open(mut self) -> Result<Segment> {
        if matches!(self.out, Some(Sink::File(_))) {
            let info = self.finish()?;
            return Segment::open(&info.path);
        }
        self.write_tail()?;
        self.done = true;
        match self.out.take() {
            Some(Sink::Memory(bytes)) => Segment::from_bytes(bytes, &self.path),
            _ => Err(invalid("segment writer already finished")),
        }
    }

    fn info(&self) -> SegmentInfo {
        SegmentInfo {
            id: self.id,
            tier: self.tier,
            path: self.path.clone(),
            min_t: self.min_t,
            max_t: self.max_t,
            samples: self.samples,
            series: self.series,
            file_size: self.pos,
        }
    }

    /// Flushes the last page and writes the table, directory and footer.
    fn write_tail(&mut self) -> Result<()> {
        self.check_usable()?;
        self.flush_page()?;

        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_unstable_by_key(|e| e.0);
        // Entries and labels in frames of their own: an open whose index
        // checkpoint holds the labels decompresses only the entries.
        let mut raw_entries = Vec::with_capacity(self.refs.len() * 40 + entries.len() * 4);
        let mut raw_labels = Vec::with_capacity(self.label_bytes.len());
        let mut state = TableState::new(FORMAT_VERSION);
        for (id, labels, refs) in entries {
            state.encode(&mut raw_entries, &mut raw_labels, id, &self.label_bytes[labels], &self.refs[refs]);
        }
        let c_entries = self.cctx.compress(&raw_entries).map_err(|e| self.fail("compressing the series table", e))?;
        let c_labels = self.cctx.compress(&raw_labels).map_err(|e| self.fail("compressing the series labels", e))?;
        let prefix = TablePrefix {
            entries_len: c_entries.len() as u64,
            entries_raw_len: raw_entries.len() as u64,
            labels_raw_len: raw_labels.len() as u64,
        };
        let mut table = Vec::with_capacity(TABLE_PREFIX_LEN + c_entries.len() + c_labels.len());
        prefix.encode(&mut table);
        table.extend_from_slice(&c_entries);
        table.extend_from_slice(&c_labels);
        let table_offset = self.pos;
        self.write(&table)?;

        let mut dir = Vec::with_capacity(self.pages.len() * super::DIR_ENTRY_LEN);
        for p in &self.pages {
            p.encode(&mut dir);
        }
        let dir_offset = self.pos;
        self.write(&dir)?;

        let footer = Footer {
            table_offset,
            table_len: table.len() as u64,
            table_raw_len: prefix.entries_raw_len + prefix.labels_raw_len,
            dir_offset,
            min_t: self.min_t,
            max_t: self.max_t,
            samples: self.samples,
            series: self.series,
            page_count: self.pages.len() as u32, // bounded by the u32 check in add_series
            table_crc: crc32fast::hash(&table),
            dir_crc: crc32fast::hash(&dir),
        };
        self.write(&footer.encode())
    }

    /// Abandons the segment and removes the temporary file.
    pub fn abort(mut self) {
        self.discard();
    }

    fn discard(&mut self) {
        let out = self.out.take();
        if !self.done && matches!(out, Some(Sink::File(_))) {
            self.done = true;
            let _ = fs::remove_file(&self.tmp);
        }
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed || self.out.is_none() {
            let e = io::Error::other("an earlier write of this segment failed");
            return Err(Error::io(format!("writing {}", self.tmp.display()), e));
        }
        Ok(())
    }

    fn fail(&mut self, what: &str, e: io::Error) -> Error {
        self.failed = true;
        Error::io(format!("{what} of {}", self.tmp.display()), e)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let res = match self.out.as_mut() {
            Some(Sink::File(out)) => fsutil::write_all(out, bytes),
            Some(Sink::Memory(buf)) => {
                buf.extend_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::other("segment writer is closed")),
        };
        res.map_err(|e| self.fail("writing", e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Compresses the page buffer and writes `clen | raw_len | crc32(compressed) | compressed`.
    fn flush_page(&mut self) -> Result<()> {
        if self.page.is_empty() {
            return Ok(());
        }
        self.comp.clear();
        self.comp.reserve(zstd::zstd_safe::compress_bound(self.page.len()));
        let n = self.cctx.compress_to_buffer(&self.page, &mut self.comp);
        n.map_err(|e| self.fail("compressing a page", e))?;
        let clen = u32::try_from(self.comp.len()).map_err(|_| invalid("compressed page exceeds 4 GiB"))?;
        let loc = PageLoc { offset: self.pos, clen, raw_len: self.page.len() as u32 };
        let mut head = [0u8; PAGE_HEADER_LEN];
        LittleEndian::write_u32(&mut head[0..4], clen);
        LittleEndian::write_u32(&mut head[4..8], loc.raw_len);
        LittleEndian::write_u32(&mut head[8..12], crc32fast::hash(&self.comp));
        self.write(&head)?;
        let comp = std::mem::take(&mut self.comp);
        let res = self.write(&comp);
        self.comp = comp;
        res?;
        self.pages.push(loc);
        self.page.clear();
        Ok(())
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(min_t: i64, max_t: i64) -> ChunkMeta {
        ChunkMeta { min_t, max_t, count: 1, min: 0.0, max: 0.0, sum: 0.0, last: 0.0 }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn unfinished_writers_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels::metric("up", [("a", "b")]).unwrap();
        let mut w = SegmentWriter::create(dir.path(), 7, crate::StoredTier::Raw, WriterOptions::default()).unwrap();
        w.add_series(1, &labels, &[(meta(1, 2), b"abc".as_slice())]).unwrap();
        assert_eq!(names(dir.path()), vec![format!("{}.tmp", file_name(7))]);
        drop(w);
        assert!(names(dir.path()).is_empty());

        let mut w = SegmentWriter::create(dir.path(), 8, crate::StoredTier::Raw, WriterOptions::default()).unwrap();
        w.add_series(1, &labels, &[(meta(1, 2), b"abc".as_slice())]).unwrap();
        w.abort();
        assert!(names(dir.path()).is_empty());

        let w = SegmentWriter::create(dir.path(), 9, crate::StoredTier::FiveMin, WriterOptions::default()).unwrap();
        let info = w.finish().unwrap();
        assert_eq!(names(dir.path()), vec![file_name(9)]);
        assert_eq!(info.file_size, fs::metadata(&info.path).unwrap().len());
    }

    #[test]
    fn in_memory_writer_holds_the_bytes_a_file_would_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels::metric("up", [("a", "b")]).unwrap();
        let opts = WriterOptions { page_size: 8, ..WriterOptions::default() };
        let fill = |w: &mut SegmentWriter| {
            for id in [3, 1, 2] {
                w.add_series(id, &labels, &[(meta(1, 2), b"abcdef".as_slice()), (meta(3, 4), b"gh")]).unwrap();
            }
        };
        let mut f = SegmentWriter::create(dir.path(), 4, crate::StoredTier::Raw, opts).unwrap();
        fill(&mut f);
        let on_disk = Segment::open(&f.finish().unwrap().path).unwrap();
        let mem_dir = dir.path().join("not-created");
        let mut m = SegmentWriter::in_memory(&mem_dir, 4, crate::StoredTier::Raw, opts).unwrap();
        fill(&mut m);
        let in_mem = m.finish_open().unwrap();
        assert_eq!(in_mem.bytes(), on_disk.bytes());
        assert_eq!(in_mem.series().collect::<Vec<_>>(), on_disk.series().collect::<Vec<_>>());
        assert_eq!(in_mem.series_labels().unwrap(), on_disk.series_labels().unwrap());
        assert!(!mem_dir.exists());
        // An in-memory writer has no file to finish, and says so.
        let m = SegmentWriter::in_memory(&mem_dir, 5, crate::StoredTier::Raw, opts).unwrap();
        assert!(matches!(m.finish(), Err(Error::InvalidArgument(_))));
        assert_eq!(names(dir.path()), vec![file_name(4)]);
    }

    #[test]
    fn rejects_bad_input_without_writing_it() {
        let dir = tempfile::tempdir().unwrap();
        let l = Labels::metric("up", [("a", "b")]).unwrap();
        let mut w = SegmentWriter::create(dir.path(), 1, crate::StoredTier::Raw, WriterOptions::default()).unwrap();
        w.add_series(5, &l, &[(meta(1, 2), b"x".as_slice())]).unwrap();
        let bad: [&[(ChunkMeta, &[u8])]; 4] =
            [&[], &[(meta(1, 2), b"")], &[(meta(3, 2), b"x")], &[(meta(1, 2), b"x"), (meta(1, 3), b"y")]];
        for chunks in bad {
            assert!(matches!(w.add_series(6, &l, chunks), Err(Error::InvalidArgument(_))));
        }
        assert!(matches!(w.add_series(5, &l, &[(meta(1, 2), b"x")]), Err(Error::InvalidArgument(_))));
        w.add_series(6, &l, &[(meta(1, 2), b"x".as_slice())]).unwrap();
        let info = w.finish().unwrap();
        assert_eq!((info.series, info.samples, info.min_t, info.max_t), (2, 2, 1, 2));
        let zero = WriterOptions { page_size: 0, ..WriterOptions::default() };
        assert!(SegmentWriter::create(dir.path(), 2, crate::StoredTier::Raw, zero).is_err());
    }
}
