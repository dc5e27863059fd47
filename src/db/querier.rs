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
use crate::segment::{ChunkCursor, Segment};
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

    /// Series matching every matcher, each with its samples in the range, in label
    /// order: the order segments lay series out in (so a scan decompresses each
    /// page once) and the order Prometheus reads series in (which decides
    /// `topk`/`bottomk` ties and the order of unsorted answers). Series without
    /// samples in the range are skipped.
    pub fn select(&self, matchers: &[Matcher]) -> Result<SeriesSet<'_>> {
        Ok(self.series_of(self.select_ids(matchers)?))
    }

    /// The labels of series `id`.
    pub(crate) fn labels(&self, id: u64) -> Option<Labels> {
        self.inner.index.labels(id)
    }

    /// The ids [`Querier::select`] reads, in its order.
    pub(crate) fn select_ids(&self, matchers: &[Matcher]) -> Result<Vec<u64>> {
        if self.start > self.end {
            return Err(Error::InvalidTimeRange { start: self.start, end: self.end });
        }
        Ok(self.inner.index.select_in_label_order(matchers))
    }

    /// A set reading exactly `ids`, in the order given.
    pub(crate) fn series_of(&self, ids: Vec<u64>) -> SeriesSet<'_> {
        SeriesSet { q: self, ids: ids.into_iter(), readers: ChunkReaders::default() }
    }

    /// Every series, with or without a metric name, each with its samples in the
    /// range (an export of everything), in label order. `select` needs a matcher that does not match
    /// the empty value; this is the explicit way to ask for all.
    pub fn select_all(&self) -> Result<SeriesSet<'_>> {
        if self.start > self.end {
            return Err(Error::InvalidTimeRange { start: self.start, end: self.end });
        }
        let mut all: Vec<(Labels, u64)> =
            self.inner.index.all_ids().into_iter().filter_map(|id| Some((self.inner.index.labels(id)?, id))).collect();
        all.sort_unstable();
        Ok(self.series_of(all.into_iter().map(|(_, id)| id).collect()))
    }

    /// Samples of series `id` in the range, merged across sources, expired ones
    /// hidden, into `out` (cleared first), so that a scan over
    /// many series reuses one buffer instead of allocating and faulting in each,
    /// and one decompressed page per segment (`readers`).
    pub(crate) fn read_series_into<'a>(
        &'a self,
        id: u64,
        out: &mut Vec<Sample>,
        readers: &mut ChunkReaders<'a>,
    ) -> Result<()> {
        out.clear();
        let from = self.start.max(self.inner.retained_from(id, StoredTier::Raw, now_ms()));
        if from >= self.end {
            return Ok(());
        }
        read_merged_with(&self.snap, id, from, self.end - 1, out, readers)
    }

    /// The newest sample of series `id` in the range, as [`Querier::read_series`]
    /// would end (the latest-written source wins a tie). A segment chunk that
    /// ends inside the range gives it from its metadata without being decoded.
    pub(crate) fn newest<'a>(
        &'a self,
        id: u64,
        scratch: &mut Vec<Sample>,
        readers: &mut ChunkReaders<'a>,
    ) -> Result<Option<Sample>> {
        let mint = self.start.max(self.inner.retained_from(id, StoredTier::Raw, now_ms()));
        let maxt = self.end - 1;
        if mint > maxt {
            return Ok(None);
        }
        let mut best: Option<Sample> = None;
        // Sources come in rank order, so a later one wins a tie.
        let mut offer = |s: Sample| {
            if best.is_none_or(|b| s.ts >= b.ts) {
                best = Some(s);
            }
        };
        for (i, seg) in self.snap.tiers[0].iter().enumerate() {
            let info = seg.info();
            if info.max_t < mint || info.min_t > maxt {
                continue;
            }
            let Some(entry) = seg.find(id) else { continue };
            // A series' chunks in a segment are disjoint: the one starting last
            // by `maxt` holds the newest sample there.
            let Some(c) = entry.chunks.iter().filter(|c| c.min_t <= maxt).max_by_key(|c| c.min_t) else {
                continue;
            };
            if c.max_t < mint {
                continue;
            }
            if c.max_t <= maxt {
                offer(Sample::new(c.max_t, c.last));
                continue;
            }
            scratch.clear();
            read_segment_with(seg, readers.get(i, seg)?, id, c.min_t.max(mint), maxt, scratch)?;
            if let Some(&s) = scratch.last() {
                offer(s);
            }
        }
        for head in self.snap.frozen.iter().chain(std::iter::once(&self.snap.head)) {
            scratch.clear();
            head.read(id, mint, maxt, scratch);
            if let Some(&s) = scratch.last() {
                offer(s);
            }
        }
        Ok(best)
    }
}

/// Iterator over selected series: `Result<(Labels, samples)>`, lazily read.
pub struct SeriesSet<'q> {
    q: &'q Querier,
    ids: std::vec::IntoIter<u64>,
    readers: ChunkReaders<'q>,
}

/// One chunk cursor per raw segment of a snapshot, held across series: reading
/// series in the order their chunks lie decompresses each page once. Owned by
/// one thread; each thread of a parallel scan has its own.
#[derive(Default)]
pub(crate) struct ChunkReaders<'a> {
    cursors: Vec<Option<ChunkCursor<'a>>>,
}

impl<'a> ChunkReaders<'a> {
    /// The cursor of raw segment `i` of the snapshot, which is `seg`.
    fn get(&mut self, i: usize, seg: &'a Segment) -> Result<&mut ChunkCursor<'a>> {
        if self.cursors.len() <= i {
            self.cursors.resize_with(i + 1, || None);
        }
        let slot = &mut self.cursors[i];
        if slot.is_none() {
            *slot = Some(seg.cursor()?);
        }
        Ok(slot.as_mut().expect("set above"))
    }
}

impl SeriesSet<'_> {
    /// The next series' labels and newest sample in the range ([`Querier::newest`]).
    pub(crate) fn next_newest(&mut self, scratch: &mut Vec<Sample>) -> Option<Result<(Labels, Sample)>> {
        loop {
            let id = self.ids.next()?;
            let s = match self.q.newest(id, scratch, &mut self.readers) {
                Ok(Some(s)) => s,
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            };
            let Some(labels) = self.q.inner.index.labels(id) else { continue };
            return Some(Ok((labels, s)));
        }
    }
}

impl Iterator for SeriesSet<'_> {
    type Item = Result<(Labels, std::vec::IntoIter<Sample>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let id = self.ids.next()?;
            let mut samples = Vec::new();
            if let Err(e) = self.q.read_series_into(id, &mut samples, &mut self.readers) {
                return Some(Err(e));
            }
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
    let mut out = Vec::new();
    read_merged_into(snap, id, mint, maxt, &mut out)?;
    Ok(out)
}

/// [`read_merged`] appended to `out` (which must be empty). Each source is read
/// straight into `out`, in rank order; only when two sources' runs overlap in
/// time are the runs split out again and merged (last write wins).
pub(crate) fn read_merged_into(snap: &State, id: u64, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
    read_merged_with(snap, id, mint, maxt, out, &mut ChunkReaders::default())
}

/// [`read_merged_into`] through `readers`, cursors held across calls.
pub(crate) fn read_merged_with<'a>(
    snap: &'a State,
    id: u64,
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
    readers: &mut ChunkReaders<'a>,
) -> Result<()> {
    debug_assert!(out.is_empty());
    // Where each non-empty run starts in `out`.
    let mut starts: Vec<usize> = Vec::new();
    for (i, seg) in snap.tiers[0].iter().enumerate() {
        let info = seg.info();
        if info.max_t < mint || info.min_t > maxt {
            continue;
        }
        let at = out.len();
        read_segment_with(seg, readers.get(i, seg)?, id, mint, maxt, out)?;
        if out.len() > at {
            starts.push(at);
        }
    }
    for head in snap.frozen.iter().chain(std::iter::once(&snap.head)) {
        let at = out.len();
        head.read(id, mint, maxt, out);
        if out.len() > at {
            starts.push(at);
        }
    }
    // Runs in rank order that also ascend in time need no merge (the common case).
    if starts.iter().skip(1).all(|&at| out[at - 1].ts < out[at].ts) {
        return Ok(());
    }
    let mut runs: Vec<Vec<Sample>> = Vec::with_capacity(starts.len());
    for (i, &at) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(out.len());
        runs.push(out[at..end].to_vec());
    }
    *out = merge_runs(runs);
    Ok(())
}

/// Decodes the chunks of `id` in `seg` (read through `cursor`, one of `seg`'s)
/// that overlap `[mint, maxt]`.
fn read_segment_with(
    seg: &Segment,
    cursor: &mut ChunkCursor<'_>,
    id: u64,
    mint: i64,
    maxt: i64,
    out: &mut Vec<Sample>,
) -> Result<()> {
    let Some(entry) = seg.find(id) else { return Ok(()) };
    let path = &seg.info().path;
    cursor.for_each_chunk(
        &entry,
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
    // Segments newest data first (the later written first on a tie): once a
    // series' newest sample so far is past a segment's end, neither that segment
    // nor any after it can give a newer one, so most series look at one segment.
    let mut segs: Vec<_> = snap.tiers[0].iter().collect();
    segs.sort_by_key(|s| std::cmp::Reverse((s.info().max_t, s.rank)));
    for id in inner.index.select(matchers) {
        // (sample, rank of its segment): a tie goes to the later written.
        let mut best: Option<(Sample, u64)> = None;
        for seg in &segs {
            if best.is_some_and(|(b, _)| b.ts > seg.info().max_t) {
                break;
            }
            if let Some(last) = seg.find(id).and_then(|e| e.chunks.iter().max_by_key(|c| c.max_t)) {
                let s = Sample::new(last.max_t, last.last);
                if best.is_none_or(|(b, r)| s.ts > b.ts || (s.ts == b.ts && seg.rank > r)) {
                    best = Some((s, seg.rank));
                }
            }
        }
        let mut best = best.map(|(s, _)| s);
        // Heads hold later writes than every segment, oldest head first.
        let mut offer = |s: Sample| {
            if best.is_none_or(|b| s.ts >= b.ts) {
                best = Some(s);
            }
        };
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
