//! Reads: a snapshot of head, frozen heads and segments, merged per series in
//! time order with last-write-wins on equal timestamps.
//!
//! Sources are ranked by write order: segments by id (a later seal holds later
//! writes), then frozen heads oldest first, then the live head.

use std::ops::Range;
use std::sync::Arc;

use super::{now_ms, Inner, State};
use crate::codec::chunk::{decode_chunk, decode_chunk_range};
use crate::error::{Error, Result};
use crate::labels::{Labels, Matcher};
use crate::merge::merge_runs;
use crate::sample::Sample;
use crate::segment::Segment;
use crate::tier::StoredTier;

/// A consistent snapshot over `[start, end)`: later writes are not visible through it.
pub struct Querier {
    inner: Arc<Inner>,
    snap: Arc<State>,
    start: i64,
    end: i64,
}

impl Querier {
    pub(crate) fn new(inner: Arc<Inner>, range: Range<i64>) -> Querier {
        let snap = inner.snapshot();
        Querier { inner, snap, start: range.start, end: range.end }
    }

    /// Series matching every matcher, each with its samples in the range. Series
    /// without samples in the range are skipped.
    pub fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet<'_>> {
        if self.start > self.end {
            return Err(Error::InvalidTimeRange { start: self.start, end: self.end });
        }
        let ids = self.inner.index.select(matchers);
        Ok(SeriesSet { q: self, ids: ids.into_iter() })
    }

    /// Every series, with or without a metric name, each with its samples in the
    /// range (an export of everything). `select` needs a matcher that does not match
    /// the empty value; this is the explicit way to ask for all.
    pub fn select_all(&self) -> Result<SeriesSet<'_>> {
        if self.start > self.end {
            return Err(Error::InvalidTimeRange { start: self.start, end: self.end });
        }
        Ok(SeriesSet { q: self, ids: self.inner.index.all_ids().into_iter() })
    }

    /// Samples of one series id in the range, merged across sources; expired ones hidden.
    pub(crate) fn read_series(&self, id: u64) -> Result<Vec<Sample>> {
        let from = self.start.max(self.inner.retained_from(id, StoredTier::Raw, now_ms()));
        if from >= self.end {
            return Ok(Vec::new());
        }
        read_merged(&self.snap, id, from, self.end - 1)
    }
}

/// Iterator over selected series: `Result<(Labels, samples)>`, lazily read.
pub struct SeriesSet<'q> {
    q: &'q Querier,
    ids: std::vec::IntoIter<u64>,
}

impl Iterator for SeriesSet<'_> {
    type Item = Result<(Labels, std::vec::IntoIter<Sample>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let id = self.ids.next()?;
            let samples = match self.q.read_series(id) {
                Ok(s) => s,
                Err(e) => return Some(Err(e)),
            };
            if samples.is_empty() {
                continue;
            }
            let Some(labels) = self.q.inner.index.labels(id) else { continue };
            return Some(Ok((labels, samples.into_iter())));
        }
    }
}

/// Every source's samples for `id` in `[mint, maxt]`, merged.
pub(crate) fn read_merged(snap: &State, id: u64, mint: i64, maxt: i64) -> Result<Vec<Sample>> {
    let mut runs: Vec<Vec<Sample>> = Vec::new();
    for seg in &snap.tiers[0] {
        let info = seg.info();
        if info.max_t < mint || info.min_t > maxt {
            continue;
        }
        let mut v = Vec::new();
        read_segment(seg, id, mint, maxt, &mut v)?;
        if !v.is_empty() {
            runs.push(v);
        }
    }
    for head in snap.frozen.iter().chain(std::iter::once(&snap.head)) {
        let mut v = Vec::new();
        head.read(id, mint, maxt, &mut v);
        if !v.is_empty() {
            runs.push(v);
        }
    }
    Ok(merge_runs(runs))
}

/// Decodes the chunks of `id` in `seg` that overlap `[mint, maxt]`.
pub(crate) fn read_segment(seg: &Segment, id: u64, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
    let Some(entry) = seg.find(id) else { return Ok(()) };
    let path = &seg.info().path;
    seg.for_each_chunk(
        entry,
        |m| m.min_t <= maxt && m.max_t >= mint,
        |m, bytes| {
            let r = if m.min_t >= mint && m.max_t <= maxt {
                decode_chunk(bytes, out)
            } else if maxt == i64::MAX {
                // The range decoder's bound is exclusive and cannot express "through i64::MAX".
                let before = out.len();
                let r = decode_chunk(bytes, out);
                let tail = out.split_off(before);
                out.extend(tail.into_iter().filter(|s| s.ts >= mint));
                r
            } else {
                decode_chunk_range(bytes, mint, maxt + 1, out)
            };
            r.map_err(|e| chunk_error(path, id, m.min_t, e.0))
        },
    )
}

pub(super) fn chunk_error(path: &std::path::Path, id: u64, min_t: i64, reason: &str) -> Error {
    let min_t = crate::text::time::show_time(min_t);
    Error::corruption(path, 0, format!("chunk of series {id} starting at {min_t}: {reason}"))
}

/// The newest sample per matching series: the largest timestamp across sources,
/// the latest-written source on a tie. Chunk metadata carries each chunk's last
/// value, so no chunk is decoded.
pub(crate) fn latest(inner: &Inner, matchers: &[Matcher]) -> Result<Vec<(Labels, Sample)>> {
    let snap = inner.snapshot();
    let now = now_ms();
    let mut out = Vec::new();
    for id in inner.index.select(matchers) {
        // Sources come oldest write first, so a later one wins a tie.
        let mut best: Option<Sample> = None;
        let mut offer = |s: Sample| {
            if best.is_none_or(|b| s.ts >= b.ts) {
                best = Some(s);
            }
        };
        for seg in &snap.tiers[0] {
            if let Some(last) = seg.find(id).and_then(|e| e.chunks.iter().max_by_key(|c| c.meta.max_t)) {
                offer(Sample::new(last.meta.max_t, last.meta.last));
            }
        }
        for head in snap.frozen.iter().chain(std::iter::once(&snap.head)) {
            if let Some(s) = head.latest(id) {
                offer(s);
            }
        }
        if let (Some(s), Some(labels)) = (best, inner.index.labels(id)) {
            if s.ts >= inner.retention.read().min_ts(&labels, StoredTier::Raw, now) {
                out.push((labels, s));
            }
        }
    }
    Ok(out)
}
