//! `Db::backup`: a consistent snapshot of a live database.
//!
//! Sealed segments never change, so they are hard-linked (copied across file
//! systems). While the seal and maintenance locks are held the set of published
//! segments and the WAL floor cannot change; writers keep committing meanwhile.
//! The WAL is made durable first, so every sample acknowledged before the call is
//! in a WAL file that is copied (or in a listed segment). The manifest is written
//! last: a crash midway leaves no MANIFEST, which `Db::open` refuses.
//!
//! An in-memory database has no WAL to copy: the head is sealed first, so every
//! sample acknowledged before the call is in a segment, and the segments' bytes
//! are written out as files.

use std::fs::{self, File, OpenOptions};
use std::path::Path;

use super::{Db, SEGMENT_DIR, WAL_DIR};
use crate::error::{Error, Result};
use crate::fsutil::{self, rename_durable, sync_dir};
use crate::manifest::FILE_NAME as MANIFEST;
use crate::segment;
use crate::wal;

/// What a backup wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupReport {
    pub segments_linked: u64,
    pub segments_copied: u64,
    pub segment_bytes: u64,
    pub wal_files: u64,
    pub wal_bytes: u64,
    /// Samples in the copied raw segments (the copied WAL holds the rest).
    pub samples_in_segments: u64,
}

impl Db {
    /// Writes a consistent snapshot into `dest`, which must not exist or be empty.
    /// Every sample acknowledged before the call is in the snapshot; `Db::open(dest)`
    /// serves it. Writers are not blocked.
    pub fn backup(&self, dest: &Path) -> Result<BackupReport> {
        self.inner.check_writable()?;
        match fs::read_dir(dest) {
            Ok(rd) => {
                if rd.into_iter().next().is_some() {
                    return Err(Error::InvalidArgument(format!("{} is not empty", dest.display())));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("reading {}", dest.display()), e)),
        }
        let inner = &self.inner;
        let in_memory = self.is_in_memory();
        if in_memory {
            inner.seal()?;
        }
        let _no_seal = inner.seal_lock.lock();
        let _no_maintenance = inner.compact_lock.lock();
        inner.wal.sync().inspect_err(|e| inner.poison(e))?;
        let manifest = inner.manifest.lock().clone();
        // With both locks held the published segments are the manifest's.
        let live = inner.snapshot();
        let (seg_dst, wal_dst) = (dest.join(SEGMENT_DIR), dest.join(WAL_DIR));
        for d in [&seg_dst, &wal_dst] {
            fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let mut r = BackupReport::default();
        for rec in &manifest.segments {
            let name = segment::file_name(rec.id);
            let (from, to) = (inner.segment_dir().join(&name), seg_dst.join(&name));
            if in_memory {
                let seg = live.segments().find(|s| s.info().id == rec.id).ok_or_else(|| {
                    Error::InvalidArgument(format!("segment {:016x} is in the manifest but not in memory", rec.id))
                })?;
                write_synced(&to, seg.bytes())?;
                r.segments_copied += 1;
            } else if fs::hard_link(&from, &to).is_ok() {
                r.segments_linked += 1;
            } else {
                copy_synced(&from, &to)?;
                r.segments_copied += 1;
            }
            r.segment_bytes += rec.file_size;
            if rec.tier == crate::StoredTier::Raw {
                r.samples_in_segments += rec.samples;
            }
        }
        // Files below the floor are already in segments. The newest file may be
        // appended to while it is copied; replay of the copy cuts any torn tail,
        // which holds only samples acknowledged after this call began.
        let wal_files = if in_memory { Vec::new() } else { wal::list_segments(&inner.wal_dir())? };
        for (seq, from) in wal_files {
            if seq >= manifest.wal_floor {
                r.wal_bytes += copy_synced(&from, &wal_dst.join(wal::segment_file_name(seq)))?;
                r.wal_files += 1;
            }
        }
        sync_dir(&seg_dst)?;
        sync_dir(&wal_dst)?;
        // The snapshot keeps the policy, so opening it never applies another.
        crate::retention::store_settings(dest, &inner.retention.read().clone())?;
        // A superset of what the copied WAL files change; replaying them changes nothing.
        inner.copy_metadata_to(dest)?;
        let tmp = dest.join(format!("{MANIFEST}.tmp"));
        write_synced(&tmp, &manifest.encode())?;
        rename_durable(&tmp, &dest.join(MANIFEST))?;
        Ok(r)
    }
}

/// Creates (or replaces) `path` with `bytes` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fsutil::create(OpenOptions::new().write(true).create(true).truncate(true), path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    fsutil::write_all(&mut f, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    fsutil::sync_all(&f).map_err(|e| fsutil::sync_error(path.display(), e))
}

fn copy_synced(from: &Path, to: &Path) -> Result<u64> {
    let n = fs::copy(from, to).map_err(|e| Error::io(format!("copying {} to {}", from.display(), to.display()), e))?;
    File::open(to).and_then(|f| fsutil::sync_all(&f)).map_err(|e| fsutil::sync_error(to.display(), e))?;
    Ok(n)
}
