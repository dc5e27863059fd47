//! Maintenance: downsampling, compaction and retention, in that order.
//!
//! Downsampling runs first so that compaction and expiry only ever touch data that
//! is already in the next tier. Retention works at two grains: whole segments past
//! every rule's retention are dropped from the manifest; segments that straddle
//! the boundary are rewritten without the expired part.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::archive::{self, ArchiveBatch, ArchivedFile};
use super::{DropKind, SegmentDrop};
use crate::compact::CompactionReport;
use crate::db::items::read_items;
use crate::db::{Inner, LiveSegment};
use crate::error::{Error, Result};
use crate::rollup::Bucket;
use crate::sample::Sample;
use crate::text::time::format_rfc3339 as rfc3339;
use crate::tier::StoredTier;

/// What retention and deletion have removed since open, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemovalStats {
    /// Segments removed whole or trimmed by retention.
    pub segments: u64,
    /// Raw samples and rollup buckets removed by retention.
    pub samples: u64,
    pub buckets: u64,
    /// Segment bytes freed by retention.
    pub bytes: u64,
    /// Samples and buckets removed by `Db::delete`.
    pub deleted_samples: u64,
    pub deleted_buckets: u64,
    /// Archive files written before retention removed raw data, and their rows and bytes.
    pub archived_files: u64,
    pub archived_rows: u64,
    pub archived_bytes: u64,
    /// Removals not carried out because the archive could not be written.
    pub archive_failures: u64,
}

#[derive(Default)]
pub(crate) struct RemovalCounters {
    segments: AtomicU64,
    samples: AtomicU64,
    buckets: AtomicU64,
    bytes: AtomicU64,
    pub deleted_samples: AtomicU64,
    pub deleted_buckets: AtomicU64,
    archived_files: AtomicU64,
    archived_rows: AtomicU64,
    archived_bytes: AtomicU64,
    archive_failures: AtomicU64,
}

impl RemovalCounters {
    pub fn get(&self) -> RemovalStats {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RemovalStats {
            segments: g(&self.segments),
            samples: g(&self.samples),
            buckets: g(&self.buckets),
            bytes: g(&self.bytes),
            deleted_samples: g(&self.deleted_samples),
            deleted_buckets: g(&self.deleted_buckets),
            archived_files: g(&self.archived_files),
            archived_rows: g(&self.archived_rows),
            archived_bytes: g(&self.archived_bytes),
            archive_failures: g(&self.archive_failures),
        }
    }

    pub(crate) fn count_archived(&self, f: &ArchivedFile) {
        self.archived_files.fetch_add(1, Ordering::Relaxed);
        self.archived_rows.fetch_add(f.rows, Ordering::Relaxed);
        self.archived_bytes.fetch_add(f.bytes, Ordering::Relaxed);
    }

    pub(crate) fn count_archive_failure(&self) {
        self.archive_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count(&self, d: &SegmentDrop, bytes_freed: u64) {
        self.segments.fetch_add(1, Ordering::Relaxed);
        let n = d.items_removed.unwrap_or(0);
        match d.tier {
            StoredTier::Raw => self.samples.fetch_add(n, Ordering::Relaxed),
            StoredTier::FiveMin | StoredTier::Hour => self.buckets.fetch_add(n, Ordering::Relaxed),
        };
        self.bytes.fetch_add(bytes_freed, Ordering::Relaxed);
    }
}

impl Inner {
    /// Carries out a retention plan, recording and logging every removal in `r`. With
    /// an archive directory, raw data is archived before each removal; a removal whose
    /// archive fails is skipped (reported in `r.archive_errors`), the rest go on.
    pub(crate) fn apply_retention_into(&self, r: &mut CompactionReport) -> Result<()> {
        if let Some(root) = self.archive_root() {
            match archive::sweep(&root) {
                Ok(0) => {}
                Ok(n) => {
                    log::info!("{}: removed {n} partial archive files under {}", self.dir.display(), root.display())
                }
                Err(e) => log::warn!("{}: cleaning partial archive files: {e}", self.dir.display()),
            }
        }
        let plan = self.retention_plan();
        for mut d in plan.drops {
            let done = match d.kind {
                DropKind::Expired | DropKind::OverDiskCap => self.drop_segments(&[d.segment]),
                DropKind::Trimmed => {
                    let now = plan.now_ms;
                    let keep = |sid: u64| self.retained_from(sid, d.tier, now);
                    let level = self.level_of(d.segment);
                    let out = match d.tier {
                        StoredTier::Raw => self.merge_segments::<Sample>(d.tier, &[d.segment], level, &keep),
                        _ => self.merge_segments::<Bucket>(d.tier, &[d.segment], level, &keep),
                    };
                    out.map(|out| {
                        d.items_removed = Some(out.items_in - out.items_out);
                        (1, out.bytes_in.saturating_sub(out.bytes_out), out.archived)
                    })
                }
            };
            let (n, freed, files) = match done {
                Ok(x) => x,
                Err(e) => {
                    r.archive_failed(e, self)?;
                    continue;
                }
            };
            match d.kind {
                DropKind::Expired => r.segments_expired += n,
                DropKind::OverDiskCap => r.segments_over_cap += n,
                DropKind::Trimmed => r.segments_trimmed += n,
            }
            self.record_archived(r, &files);
            self.removals.count(&d, freed);
            log_drop(&self.dir, &d);
            r.removed.push(d);
        }
        Ok(())
    }

    fn level_of(&self, id: u64) -> u8 {
        self.snapshot().segments().find(|s| s.info().id == id).map_or(0, |s| s.level)
    }

    /// Removes segments from the manifest in one publication, then unlinks them: how
    /// many, the bytes freed, and the archive files their raw data went to first.
    fn drop_segments(&self, ids: &[u64]) -> Result<(usize, u64, Vec<ArchivedFile>)> {
        if ids.is_empty() {
            return Ok((0, 0, Vec::new()));
        }
        let _one = self.compact_lock.lock();
        let snap = self.snapshot();
        let gone: Vec<Arc<LiveSegment>> = snap.segments().filter(|s| ids.contains(&s.info().id)).cloned().collect();
        let mut files = Vec::new();
        if let Some(root) = self.archive_root() {
            for s in gone.iter().filter(|s| s.info().tier == StoredTier::Raw) {
                let f = archive_segment(self, s, &root)
                    .map_err(|e| Error::Archive { dir: root.clone(), cause: e.into() })?;
                files.extend(f);
            }
        }
        let gone_ids: Vec<u64> = gone.iter().map(|s| s.info().id).collect();
        self.publish(|m| m.segments.retain(|r| !gone_ids.contains(&r.id)))?;
        {
            let mut st = self.state.write();
            *st = Arc::new(st.with_segments(&gone_ids, Vec::new()));
        }
        self.unlink_segments(&gone);
        Ok((gone.len(), gone.iter().map(|s| s.info().file_size).sum(), files))
    }
}

/// Writes every sample of a raw segment to the archive, durably.
fn archive_segment(db: &Inner, s: &LiveSegment, root: &std::path::Path) -> Result<Vec<ArchivedFile>> {
    let info = s.info();
    let mut batch = ArchiveBatch::new(root, info.id, info.min_t, info.max_t)?;
    let mut v: Vec<Sample> = Vec::new();
    for e in s.series() {
        v.clear();
        read_items(s, e.id, i64::MIN, i64::MAX, &mut v)?;
        batch.push(&db.series_labels(e.id)?, &v)?;
    }
    batch.finish()
}

pub(crate) fn log_drop(dir: &std::path::Path, d: &SegmentDrop) {
    let what = if d.tier.is_rollup() { "buckets" } else { "samples" };
    log::info!(
        "{}: retention {} segment {:016x} ({} tier, {} .. {}): removed {} of {} {what}, {} bytes: {}",
        dir.display(),
        d.kind.as_str(),
        d.segment,
        d.tier,
        rfc3339(d.min_t),
        rfc3339(d.max_t),
        d.items_removed.unwrap_or(0),
        d.items,
        d.bytes,
        d.reason
    );
}
