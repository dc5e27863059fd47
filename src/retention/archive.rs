//! The retention archive: raw samples that retention (or a merge dropping expired
//! data) removes are first written as Parquet under the policy's `archive_dir`,
//! partitioned by UTC day, and the removal is published only once those files are
//! durable. Layout (docs/format/parquet-export.md, "Archive"):
//!
//! `<archive_dir>/tier=raw/date=YYYY-MM-DD/<segment id, 16 hex digits>.parquet`
//!
//! A segment leaves the manifest at most once and ids are never reused, so a file is
//! named by the (first) segment the removed data came from: a pass re-run after a
//! crash between the archive write and the manifest change writes the same names
//! again, replacing the files rather than adding copies. Files are written to
//! `<name>.tmp`, fsynced, renamed, and their directory fsynced; a crash mid-write
//! leaves only `.tmp` files, which the next pass that archives removes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::sample::Sample;

const DAY_MS: i64 = 86_400_000;

/// Footer key-value metadata of an archive file: its series count, the segment its
/// rows came from (16 hex digits) and its tier.
pub const KV_SERIES: &str = "strata.series";
pub const KV_SEGMENT: &str = "strata.segment";
pub const KV_TIER: &str = "strata.tier";

/// The directory of one tier's archive.
pub const TIER_DIR: &str = "tier=raw";

/// One archive file written (or replaced) by a removal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedFile {
    pub path: PathBuf,
    /// The UTC day of every row, `YYYY-MM-DD`.
    pub day: String,
    pub rows: u64,
    pub bytes: u64,
}

/// `YYYY-MM-DD` of the UTC day starting at `day * 86_400_000` ms.
pub fn day_name(day: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day.saturating_mul(DAY_MS))
        .map_or_else(|| format!("day{day}"), |t| t.format("%Y-%m-%d").to_string())
}

/// The directory of one day's files.
pub fn day_dir(root: &Path, day: i64) -> PathBuf {
    root.join(TIER_DIR).join(format!("date={}", day_name(day)))
}

/// The file name for data removed from segment `segment`.
pub fn file_name(segment: u64) -> String {
    format!("{segment:016x}.parquet")
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(what, e)
}

/// The archive files of one removal, one per UTC day, written as series are pushed.
pub(crate) struct ArchiveBatch {
    root: PathBuf,
    segment: u64,
    /// Days the removed segments span: a stale file of this name in one of them that
    /// this batch does not write (left by an earlier attempt) is removed at `finish`.
    span: (i64, i64),
    days: BTreeMap<i64, imp::DayFile>,
}

impl ArchiveBatch {
    /// A batch for data removed from segments spanning `[min_t, max_t]`, named by
    /// `segment`.
    pub fn new(root: &Path, segment: u64, min_t: i64, max_t: i64) -> Result<ArchiveBatch> {
        imp::supported(root)?;
        Ok(ArchiveBatch {
            root: root.to_path_buf(),
            segment,
            span: (min_t.div_euclid(DAY_MS), max_t.div_euclid(DAY_MS)),
            days: BTreeMap::new(),
        })
    }

    /// Adds one series' removed samples (in time order), each to its day's file.
    pub fn push(&mut self, labels: &Labels, samples: &[Sample]) -> Result<()> {
        let mut rest = samples;
        while let Some(first) = rest.first() {
            let day = first.ts.div_euclid(DAY_MS);
            let n = rest.partition_point(|s| s.ts.div_euclid(DAY_MS) == day);
            let (now, later) = rest.split_at(n);
            let f = match self.days.entry(day) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(imp::DayFile::create(&day_dir(&self.root, day), &file_name(self.segment))?)
                }
            };
            f.push(labels, now)?;
            rest = later;
        }
        Ok(())
    }

    /// Makes every file durable under its final name, removes stale files of this
    /// name in the other days of the span, and says what was written.
    pub fn finish(mut self) -> Result<Vec<ArchivedFile>> {
        let mut out = Vec::new();
        for (day, f) in std::mem::take(&mut self.days) {
            out.push(f.finish(day_name(day))?);
        }
        let name = file_name(self.segment);
        let (lo, hi) = self.span;
        // A segment spans days only within the compaction windows (a week at most);
        // the bound keeps a corrupt span from meaning a long loop.
        for day in lo..=hi.min(lo.saturating_add(366)) {
            if out.iter().any(|f| f.day == day_name(day)) {
                continue;
            }
            let dir = day_dir(&self.root, day);
            match std::fs::remove_file(dir.join(&name)) {
                Ok(()) => crate::fsutil::sync_dir(&dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("removing a stale {} in {}", name, dir.display()), e)),
            }
        }
        Ok(out)
    }
}

/// Removes `.tmp` files that a crash mid-write left in the archive; how many.
pub(crate) fn sweep(root: &Path) -> Result<usize> {
    let tier = root.join(TIER_DIR);
    let rd = match std::fs::read_dir(&tier) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(format!("listing {}", tier.display()), e)),
    };
    let mut n = 0;
    for e in rd {
        let e = e.map_err(io(format!("listing {}", tier.display())))?;
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            n += crate::fsutil::sweep_tmp(&e.path())?;
        }
    }
    Ok(n)
}

/// One archive file as `strata archive ls` shows it, from its path and Parquet footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    pub path: PathBuf,
    pub tier: String,
    pub day: String,
    pub rows: u64,
    /// From the footer's `strata.series`; `None` for a file without it.
    pub series: Option<u64>,
    /// Oldest and newest timestamp (ms), from the column statistics.
    pub min_t: Option<i64>,
    pub max_t: Option<i64>,
    pub bytes: u64,
}

/// Every finished archive file under `root`, by tier, day and name. A file whose
/// footer cannot be read is an error naming it.
#[cfg(feature = "parquet")]
pub fn list(root: &Path) -> Result<Vec<ArchiveEntry>> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;

    let mut files = Vec::new();
    let dirs = |p: &Path| -> Result<Vec<PathBuf>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(p).map_err(io(format!("listing {}", p.display())))? {
            v.push(e.map_err(io(format!("listing {}", p.display())))?.path());
        }
        v.sort();
        Ok(v)
    };
    for tier in dirs(root)?.into_iter().filter(|p| p.is_dir()) {
        for day in dirs(&tier)?.into_iter().filter(|p| p.is_dir()) {
            files.extend(dirs(&day)?.into_iter().filter(|p| p.extension().is_some_and(|e| e == "parquet")));
        }
    }
    let part = |p: &Path, key: &str| {
        let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        name.strip_prefix(key).map_or(name.clone(), str::to_string)
    };
    let mut out = Vec::new();
    for path in files {
        let f = std::fs::File::open(&path).map_err(io(format!("opening {}", path.display())))?;
        let bytes = f.metadata().map_err(io(format!("reading {}", path.display())))?.len();
        let r = SerializedFileReader::new(f)
            .map_err(|e| Error::corruption(&path, 0, format!("not a readable Parquet file: {e}")))?;
        let meta = r.metadata();
        let fm = meta.file_metadata();
        let series = fm
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|k| k.key == KV_SERIES))
            .and_then(|k| k.value.as_deref()?.parse().ok());
        let ts_col = fm.schema_descr().columns().iter().position(|c| c.path().string() == "timestamp");
        let (mut min_t, mut max_t) = (None::<i64>, None::<i64>);
        for rg in meta.row_groups() {
            if let Some(Statistics::Int64(s)) = ts_col.and_then(|i| rg.column(i).statistics()) {
                if let Some(&m) = s.min_opt() {
                    min_t = Some(min_t.map_or(m, |x| x.min(m)));
                }
                if let Some(&m) = s.max_opt() {
                    max_t = Some(max_t.map_or(m, |x| x.max(m)));
                }
            }
        }
        let day_dir = path.parent().unwrap_or(root);
        out.push(ArchiveEntry {
            tier: part(day_dir.parent().unwrap_or(root), "tier="),
            day: part(day_dir, "date="),
            rows: u64::try_from(fm.num_rows()).unwrap_or(0),
            series,
            min_t,
            max_t,
            bytes,
            path,
        });
    }
    Ok(out)
}

#[cfg(feature = "parquet")]
mod imp {
    use std::fs::File;
    use std::io::BufWriter;
    use std::path::{Path, PathBuf};

    use super::{io, ArchivedFile};
    use crate::error::{Error, Result};
    use crate::fsutil;
    use crate::labels::Labels;
    use crate::sample::Sample;
    use crate::text::parquet::ParquetSink;

    pub fn supported(_root: &Path) -> Result<()> {
        Ok(())
    }

    /// One day's file, being written under its temporary name.
    pub struct DayFile {
        tmp: PathBuf,
        path: PathBuf,
        sink: Option<ParquetSink<BufWriter<File>>>,
        rows: u64,
        series: u64,
        segment: String,
    }

    fn pq(what: &Path) -> impl Fn(parquet::errors::ParquetError) -> Error + '_ {
        move |e| match e {
            parquet::errors::ParquetError::External(b) => match b.downcast::<std::io::Error>() {
                Ok(e) => Error::io(format!("writing {}", what.display()), *e),
                Err(b) => Error::io(format!("writing {}", what.display()), std::io::Error::other(b)),
            },
            e => Error::io(format!("writing {}", what.display()), std::io::Error::other(e)),
        }
    }

    impl DayFile {
        pub fn create(dir: &Path, name: &str) -> Result<DayFile> {
            if !dir.is_dir() {
                std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
                // The new directories' entries (day, tier, archive root) must be durable
                // before a file in them counts.
                for d in dir.ancestors().skip(1).take(3).filter(|d| !d.as_os_str().is_empty()) {
                    fsutil::sync_dir(d)?;
                }
            }
            let path = dir.join(name);
            let tmp = fsutil::tmp_path(&path);
            let opts = std::fs::OpenOptions::new().write(true).create(true).truncate(true).clone();
            let f = fsutil::create(&opts, &tmp).map_err(io(format!("creating {}", tmp.display())))?;
            let sink = ParquetSink::new(BufWriter::with_capacity(1 << 20, f)).map_err(pq(&tmp))?;
            let segment = name.trim_end_matches(".parquet").to_string();
            Ok(DayFile { tmp, path, sink: Some(sink), rows: 0, series: 0, segment })
        }

        pub fn push(&mut self, labels: &Labels, samples: &[Sample]) -> Result<()> {
            if let Some(s) = &mut self.sink {
                s.push(labels, samples).map_err(pq(&self.tmp))?;
                self.rows += samples.len() as u64;
                // A batch pushes each series once: one push, one series.
                self.series += 1;
            }
            Ok(())
        }

        pub fn finish(mut self, day: String) -> Result<ArchivedFile> {
            let sink = self.sink.take().ok_or_else(|| Error::InvalidArgument("archive file finished twice".into()))?;
            let kv = [
                (super::KV_SERIES, self.series.to_string()),
                (super::KV_SEGMENT, self.segment.clone()),
                (super::KV_TIER, "raw".to_string()),
            ];
            let w = sink.finish_with(&kv).map_err(pq(&self.tmp))?;
            let f = w.into_inner().map_err(|e| Error::io(format!("writing {}", self.tmp.display()), e.into_error()))?;
            fsutil::sync_all(&f).map_err(|e| fsutil::sync_error(self.tmp.display(), e))?;
            let bytes = f.metadata().map_err(io(format!("reading {}", self.tmp.display())))?.len();
            drop(f);
            fsutil::rename_durable(&self.tmp, &self.path)?;
            Ok(ArchivedFile { path: self.path.clone(), day, rows: self.rows, bytes })
        }
    }

    impl Drop for DayFile {
        /// A file not finished (an error, or a batch given up) leaves no temporary behind.
        fn drop(&mut self) {
            if self.sink.take().is_some() {
                let _ = std::fs::remove_file(&self.tmp);
            }
        }
    }
}

#[cfg(not(feature = "parquet"))]
mod imp {
    use std::path::Path;

    use super::ArchivedFile;
    use crate::error::{Error, Result};
    use crate::labels::Labels;
    use crate::sample::Sample;

    pub fn supported(root: &Path) -> Result<()> {
        Err(Error::InvalidArgument(format!(
            "cannot archive to {}: this build has no Parquet support (the `parquet` feature); \
             retention keeps the data instead of removing it unarchived",
            root.display()
        )))
    }

    /// Never created: `supported` refuses first.
    pub enum DayFile {}

    impl DayFile {
        pub fn create(_dir: &Path, _name: &str) -> Result<DayFile> {
            Err(Error::InvalidArgument("no Parquet support".into()))
        }
        pub fn push(&mut self, _labels: &Labels, _samples: &[Sample]) -> Result<()> {
            match *self {}
        }
        pub fn finish(self, _day: String) -> Result<ArchivedFile> {
            match self {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_name(0), "1970-01-01");
        assert_eq!(day_name(-1), "1969-12-31");
        assert_eq!(day_name(1_764_547_200_000 / DAY_MS), "2025-12-01");
        assert_eq!(file_name(0x12), "0000000000000012.parquet");
    }
}
