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
            Ok(DayFile { tmp, path, sink: Some(sink), rows: 0 })
        }

        pub fn push(&mut self, labels: &Labels, samples: &[Sample]) -> Result<()> {
            if let Some(s) = &mut self.sink {
                s.push(labels, samples).map_err(pq(&self.tmp))?;
                self.rows += samples.len() as u64;
            }
            Ok(())
        }

        pub fn finish(mut self, day: String) -> Result<ArchivedFile> {
            let sink = self.sink.take().ok_or_else(|| Error::InvalidArgument("archive file finished twice".into()))?;
            let w = sink.finish().map_err(pq(&self.tmp))?;
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
