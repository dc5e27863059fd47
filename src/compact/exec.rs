//! The compaction executor: the maintenance pass (downsample, merge per the planner,
//! apply retention), and the merge itself: segments of one tier into one, resolving
//! duplicates by write order and dropping expired data, then one manifest
//! publication that swaps them and the unlinking of the inputs.
//!
//! Crash safety: the output is renamed into place before the manifest names it,
//! and the inputs are unlinked only after the manifest stops naming them. A crash
//! between the steps leaves an unlisted file, which open deletes; the data is in
//! exactly one listed place at every moment.

use std::sync::Arc;

use super::{plan_compactions, Plan, SegmentMeta};
use crate::db::items::{read_items, write_series, Item};
use crate::db::publish::record_of;
use crate::db::{now_ms, Inner, LiveSegment};
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::manifest::FLAG_ROLLED_UP;
use crate::merge::merge_runs;
use crate::retention::archive::{ArchiveBatch, ArchivedFile};
use crate::retention::{log_drop, DropKind, SegmentDrop};
use crate::rollup::Bucket;
use crate::sample::Sample;
use crate::tier::StoredTier;

/// What a maintenance pass changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Rollup segments written by the downsampler.
    pub rollups_written: usize,
    /// Merges run, and the segments they consumed.
    pub merges: usize,
    pub segments_merged: usize,
    /// Items (samples or buckets) read by merges and written back.
    pub items_in: u64,
    pub items_out: u64,
    /// Segments dropped whole because every rule's retention had passed.
    pub segments_expired: usize,
    /// Segments rewritten without their expired part.
    pub segments_trimmed: usize,
    /// Segments dropped to respect the disk cap.
    pub segments_over_cap: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Every segment retention removed or trimmed, with what it held and why.
    pub removed: Vec<SegmentDrop>,
    /// Items the merges did not write back: duplicates resolved by write order, and
    /// data past retention.
    pub merge_items_dropped: u64,
    /// Archive files written (or rewritten) before raw data left the store, when the
    /// policy has an archive directory.
    pub archived: Vec<ArchivedFile>,
    /// Removals not carried out because their archive could not be written; the data
    /// they would have removed is still stored.
    pub archive_errors: Vec<String>,
}

impl CompactionReport {
    /// Rows and bytes of the archive files written.
    pub fn archived_totals(&self) -> (u64, u64) {
        self.archived.iter().fold((0, 0), |(r, b), f| (r + f.rows, b + f.bytes))
    }

    /// Records a removal refused because its archive failed, or passes another error on.
    pub(crate) fn archive_failed(&mut self, e: Error, inner: &Inner) -> Result<()> {
        match e {
            Error::Archive { .. } => {
                log::error!("{}: {e}", inner.dir.display());
                inner.removals.count_archive_failure();
                self.archive_errors.push(e.to_string());
                Ok(())
            }
            e => Err(e),
        }
    }
}

/// What one merge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    pub inputs: usize,
    pub items_in: u64,
    pub items_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Items left out because they were past their series' retention (a deletion, which
    /// the pass reports); the rest of `items_in - items_out` are duplicates resolved by
    /// write order.
    pub expired: u64,
    /// Archive files that received the expired raw samples before the merge was published.
    pub archived: Vec<ArchivedFile>,
}

impl Inner {
    /// Runs a full pass: downsample, merge per the planner, then apply retention.
    pub(crate) fn maintain(&self) -> Result<CompactionReport> {
        let _pass = self.maintain_lock.lock();
        let mut r = CompactionReport { bytes_before: self.disk_bytes(), ..Default::default() };
        r.rollups_written = self.downsample()?;
        if r.rollups_written > 0 {
            log::info!("{}: downsampled: {} rollup segments written", self.dir.display(), r.rollups_written);
        }
        let metas = self.segment_metas();
        for plan in plan_compactions(&metas, &self.opts.compaction) {
            let keep = |id: u64| self.retained_from(id, plan.tier, now_ms());
            let out = match plan.tier {
                StoredTier::Raw => self.merge_segments::<Sample>(plan.tier, &plan.inputs, plan.output_level, &keep),
                _ => self.merge_segments::<Bucket>(plan.tier, &plan.inputs, plan.output_level, &keep),
            };
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    r.archive_failed(e, self)?;
                    continue;
                }
            };
            self.record_archived(&mut r, &out.archived);
            log::info!(
                "{}: merged {} {} segments {} into one of level {}: {} items in, {} out ({} past retention, {} duplicates), {} -> {} bytes",
                self.dir.display(),
                out.inputs,
                plan.tier,
                ids_text(&plan.inputs),
                plan.output_level,
                out.items_in,
                out.items_out,
                out.expired,
                out.items_in.saturating_sub(out.items_out + out.expired),
                out.bytes_in,
                out.bytes_out
            );
            if out.expired > 0 {
                let inputs: Vec<&SegmentMeta> = metas.iter().filter(|m| plan.inputs.contains(&m.id)).collect();
                r.removed.push(self.merge_drop(&plan, &inputs, &out));
            }
            r.merges += 1;
            r.merge_items_dropped += out.items_in - out.items_out;
            r.segments_merged += out.inputs;
            r.items_in += out.items_in;
            r.items_out += out.items_out;
        }
        self.apply_retention_into(&mut r)?;
        r.bytes_after = self.disk_bytes();
        Ok(r)
    }

    /// Merges the segments `ids` (all of tier `tier`) into one of `level`. Items of a
    /// series older than `keep_from(series)` are dropped. The output keeps the highest
    /// rank of its inputs; the caller guarantees no other overlapping segment lies
    /// between their ranks (the planner's invariant).
    pub(crate) fn merge_segments<T: Item>(
        &self,
        tier: StoredTier,
        ids: &[u64],
        level: u8,
        keep_from: &dyn Fn(u64) -> i64,
    ) -> Result<MergeOutcome> {
        let _one = self.compact_lock.lock();
        let snap = self.snapshot();
        let inputs: Vec<Arc<LiveSegment>> =
            snap.tiers[tier.index()].iter().filter(|s| ids.contains(&s.info().id)).cloned().collect();
        if inputs.len() != ids.len() || inputs.is_empty() {
            return Err(Error::InvalidArgument(format!("segments {ids:?} are not all live in tier {tier}")));
        }
        let rank = inputs.iter().map(|s| s.rank).max().unwrap_or(0);
        let rolled = {
            let m = self.manifest.lock();
            m.segments.iter().filter(|r| ids.contains(&r.id)).all(|r| r.flags & FLAG_ROLLED_UP != 0)
        };
        let mut out = MergeOutcome { inputs: inputs.len(), ..Default::default() };
        for s in &inputs {
            out.items_in += s.info().samples;
            out.bytes_in += s.info().file_size;
        }

        // Series in label order, as the output's pages will hold them: a selector's
        // series then share pages, and inputs written so are read sequentially.
        // Ids first, so a series in several inputs is looked up once.
        let mut sids: Vec<u64> = inputs.iter().flat_map(|s| s.series().map(|e| e.id)).collect();
        sids.sort_unstable();
        sids.dedup();
        let mut series =
            sids.into_iter().map(|id| Ok((self.series_labels(id)?, id))).collect::<Result<Vec<(Labels, u64)>>>()?;
        series.sort_unstable();
        // Raw data past retention goes to the archive, if there is one, before the
        // merge is published; the batch is named by the first input.
        let archive_root = if tier == StoredTier::Raw { self.archive_root() } else { None };
        let mut batch: Option<ArchiveBatch> = None;
        let archive_err =
            |root: &std::path::Path, e: Error| Error::Archive { dir: root.to_path_buf(), cause: e.into() };
        let (id, _) = self.allocate_segment(false);
        let mut w = self.segment_writer(id, tier)?;
        let mut buf = Vec::new();
        for (labels, sid) in series {
            let floor = keep_from(sid);
            let mut runs: Vec<Vec<T>> = Vec::with_capacity(inputs.len());
            let mut gone: Vec<Vec<T>> = Vec::new();
            for s in &inputs {
                let mut v = Vec::new();
                if floor > i64::MIN {
                    read_items(s, sid, i64::MIN, floor - 1, &mut v)?;
                    out.expired += v.len() as u64;
                    if archive_root.is_some() && !v.is_empty() {
                        gone.push(std::mem::take(&mut v));
                    }
                    v.clear();
                }
                read_items(s, sid, floor, i64::MAX, &mut v)?;
                runs.push(v);
            }
            if let (Some(root), false) = (&archive_root, gone.is_empty()) {
                let samples: Vec<Sample> = merge_runs(gone).iter().filter_map(Item::as_sample).collect();
                if batch.is_none() {
                    let first = ids.iter().copied().min().unwrap_or(id);
                    let min_t = inputs.iter().map(|s| s.info().min_t).min().unwrap_or(0);
                    let max_t = inputs.iter().map(|s| s.info().max_t).max().unwrap_or(0);
                    batch = Some(ArchiveBatch::new(root, first, min_t, max_t).map_err(|e| archive_err(root, e))?);
                }
                if let Some(b) = &mut batch {
                    b.push(&labels, &samples).map_err(|e| archive_err(root, e))?;
                }
            }
            let merged = merge_runs(runs);
            if merged.is_empty() {
                continue;
            }
            write_series(&mut w, sid, &labels, &merged, &mut buf)?;
            out.items_out += merged.len() as u64;
        }
        if let (Some(b), Some(root)) = (batch, &archive_root) {
            // Durable before the manifest stops naming the inputs; on failure the
            // writer's drop discards the output and nothing changes.
            out.archived = b.finish().map_err(|e| archive_err(root, e))?;
        }
        let live = if out.items_out == 0 {
            w.abort();
            None
        } else {
            let seg = self.finish_segment(w)?;
            out.bytes_out = seg.info().file_size;
            Some(Arc::new(LiveSegment::new(seg, rank, level, rolled)))
        };
        self.publish(|m| {
            m.segments.retain(|r| !ids.contains(&r.id));
            if let Some(s) = &live {
                let mut rec = record_of(s);
                rec.flags = if rolled { FLAG_ROLLED_UP } else { 0 };
                m.segments.push(rec);
            }
        })?;
        {
            let mut st = self.state.write();
            *st = Arc::new(st.with_segments(ids, live.into_iter().collect()));
        }
        self.unlink_segments(&inputs);
        Ok(out)
    }

    /// The policy's archive directory, resolved against the data directory.
    pub(crate) fn archive_root(&self) -> Option<std::path::PathBuf> {
        self.retention.read().archive_dir_in(&self.dir)
    }

    /// Adds archive files to the report, the counters and the log.
    pub(crate) fn record_archived(&self, r: &mut CompactionReport, files: &[ArchivedFile]) {
        for f in files {
            log::info!("{}: archived {} rows ({} bytes) to {}", self.dir.display(), f.rows, f.bytes, f.path.display());
            self.removals.count_archived(f);
            r.archived.push(f.clone());
        }
    }

    pub(crate) fn segment_metas(&self) -> Vec<SegmentMeta> {
        self.snapshot()
            .segments()
            .map(|s| {
                let i = s.info();
                SegmentMeta {
                    id: i.id,
                    rank: s.rank,
                    tier: i.tier,
                    level: s.level,
                    min_t: i.min_t,
                    max_t: i.max_t,
                    samples: i.samples,
                    bytes: i.file_size,
                }
            })
            .collect()
    }
}

impl Inner {
    /// The report of the data past retention that a merge left out: one entry, named by
    /// the merge's first input, counted and logged like retention's own removals.
    fn merge_drop(&self, plan: &Plan, inputs: &[&SegmentMeta], out: &MergeOutcome) -> SegmentDrop {
        let d = SegmentDrop {
            segment: plan.inputs.first().copied().unwrap_or(0),
            tier: plan.tier,
            kind: DropKind::Trimmed,
            min_t: inputs.iter().map(|m| m.min_t).min().unwrap_or(plan.window.0),
            max_t: inputs.iter().map(|m| m.max_t).max().unwrap_or(plan.window.1),
            items: out.items_in,
            bytes: out.bytes_in,
            items_removed: Some(out.expired),
            reason: format!(
                "{} data past its retention, left out when merging segments {}",
                plan.tier,
                ids_text(&plan.inputs)
            ),
        };
        self.removals.count(&d, 0);
        log_drop(&self.dir, &d);
        d
    }
}

fn ids_text(ids: &[u64]) -> String {
    ids.iter().map(|id| format!("{id:016x}")).collect::<Vec<_>>().join(", ")
}
