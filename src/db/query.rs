//! `Db::query`: selects series, reads them from the chosen tier, and hands them
//! to the evaluator in `query/`.
//!
//! A rollup tier never lags the truth: for each series, buckets from the first
//! one that may hold data not yet rolled up (in a head, or in a segment the
//! downsampler has not reached) are computed from raw data instead of the tier.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::items::{read_items_with, CHUNK_ITEMS};
use super::qcache::{Idents, Key, RAW_BLOCK_MS, TIER_BLOCK_BUCKETS};
use super::querier::{chunk_error, read_merged};
use super::{now_ms, Db, Inner, State};
use crate::codec::chunk::decode_chunk_range;
use crate::error::Result;
use crate::labels::Labels;
use crate::merge::{merge_runs, Timed};
use crate::query::{
    choose_tier, evaluate_buckets, evaluate_buckets_pieces, evaluate_trusted, interior, Agg, BucketsResult, Query,
    QueryResult, SeriesData, Summary, Tier,
};
use crate::retention::oldest_retained;
use crate::rollup::{align, codec, rollup, rollup_into, Bucket, FIVE_MIN_MS};
use crate::sample::Sample;
use crate::tier::StoredTier;

/// A stretch `[a, b)` of an unaligned range and where it is read from.
#[derive(Clone, Copy)]
enum Span {
    /// Whole buckets of tier index `t` and width `w`.
    Tier(usize, i64, i64, i64),
    Raw(i64, i64),
}

/// Cuts `[lo, hi)` into the whole buckets of the first level `(t, width, floor)`
/// at or after its floor, and the rest, recursively, into those of the next
/// levels; what no level answers is raw. Spans come out in time order.
fn plan(lo: i64, hi: i64, levels: &[(usize, i64, i64)], out: &mut Vec<Span>) {
    if lo >= hi {
        return;
    }
    let Some((&(t, w, floor), rest)) = levels.split_first() else {
        out.push(Span::Raw(lo, hi));
        return;
    };
    match interior(&(lo.max(floor).min(hi)..hi), w) {
        Some(r) => {
            plan(lo, r.start, rest, out);
            out.push(Span::Tier(t, w, r.start, r.end));
            plan(r.end, hi, rest, out);
        }
        None => plan(lo, hi, rest, out),
    }
}

/// The samples of series `id` in `[mint, maxt]` the heads hold, appended to `out`,
/// each non-empty run's start noted in `starts`.
fn read_heads(snap: &State, id: u64, mint: i64, maxt: i64, out: &mut Vec<Sample>, starts: &mut Vec<usize>) {
    for head in snap.frozen.iter().chain(std::iter::once(&snap.head)) {
        let at = out.len();
        head.read(id, mint, maxt, out);
        if out.len() > at {
            starts.push(at);
        }
    }
}

/// Blocks one read takes through the query cache at most: a longer read (a wide
/// range over sparse data) is read directly rather than named block by block.
const MAX_CACHED_BLOCKS: i64 = 4096;

/// The part of `[a, hi]` (below the heads, so only segments hold data there) that
/// tier `t`'s segments cover, to read through the cache in blocks of `block` ms;
/// `None` when they cover none of it or it spans more than `MAX_CACHED_BLOCKS`.
/// Nothing lies outside it: the caller reads the range past `hi` itself.
fn cached_span(idents: &mut Idents, snap: &State, t: usize, block: i64, a: i64, hi: i64) -> Option<(i64, i64)> {
    let (min_t, max_t) = idents.tier_span(snap, t)?;
    let (lo, hi) = (a.max(min_t), hi.min(max_t));
    let blocks = (i128::from(hi) - i128::from(lo)) / i128::from(block.max(1));
    (lo <= hi && blocks < i128::from(MAX_CACHED_BLOCKS)).then_some((lo, hi))
}

/// The rollup columns an aggregation reads. Merging and combining keep count,
/// sum, min and max exact whatever the other columns hold; the others need all.
fn columns_for(agg: Agg) -> u16 {
    match agg {
        Agg::Count => codec::COL_COUNT,
        Agg::Sum | Agg::Avg => codec::COL_SUM,
        Agg::Min => codec::COL_MIN,
        Agg::Max => codec::COL_MAX,
        _ => codec::ALL_COLUMNS,
    }
}

/// Appends to `$out` the items of series `$id` in `[$mint, $maxt]` that tier
/// `$t`'s segments hold (and what `$heads` adds, newest last), merged newest-wins
/// where sources overlap, each chunk decoded by `$decode` through the cursors
/// `$slots` (one per segment of the tier, opened on first use). A macro, as the
/// segment's cursor type is its own.
macro_rules! read_chunks {
    ($snap:expr, $t:expr, $slots:expr, $id:expr, $mint:expr, $maxt:expr, $out:expr, $decode:expr, $heads:expr) => {{
        let (snap, id, mint, maxt, out) = ($snap, $id, $mint, $maxt, $out);
        let base = out.len();
        let mut starts: Vec<usize> = Vec::new();
        for (i, seg) in snap.tiers[$t].iter().enumerate() {
            let info = seg.info();
            if info.max_t < mint || info.min_t > maxt {
                continue;
            }
            let Some(entry) = seg.find(id) else { continue };
            if $slots[i].is_none() {
                $slots[i] = Some(seg.cursor()?);
            }
            let Some(cursor) = $slots[i].as_mut() else { continue };
            let at = out.len();
            cursor.for_each_chunk(
                &entry,
                |m| m.min_t <= maxt && m.max_t >= mint,
                |m, bytes| {
                    let before = out.len();
                    ($decode)(bytes, &mut *out).map_err(|e| chunk_error(&info.path, id, m.min_t, e))?;
                    if m.min_t < mint || m.max_t > maxt {
                        let tail = out.split_off(before);
                        out.extend(tail.into_iter().filter(|x| x.ts() >= mint && x.ts() <= maxt));
                    }
                    Ok(())
                },
            )?;
            if out.len() > at {
                starts.push(at);
            }
        }
        ($heads)(&mut *out, &mut starts);
        // Runs that ascend in time need no merge (the common case).
        if !starts.iter().skip(1).all(|&at| out[at - 1].ts() < out[at].ts()) {
            starts.push(out.len());
            let runs = starts.windows(2).map(|w| out[w[0]..w[1]].to_vec()).collect();
            out.truncate(base);
            out.extend(merge_runs(runs));
        }
    }};
}

impl Db {
    /// Per series (or group) and per step bucket, every statistic at once:
    /// count, sum, min, max, first, last (with their timestamps) and the counter
    /// increase, all read from ONE snapshot, so that `sum / count` is the mean
    /// of exactly the samples counted even while writers append. Selection,
    /// range, step, grouping and the tier rules are those of [`Db::query`]; the
    /// tier is chosen as for an aggregation the rollups can answer, and the
    /// query's aggregation is not used. `top_k` is refused.
    pub fn buckets(&self, q: &Query) -> Result<BucketsResult> {
        self.inner.buckets(q)
    }
}

/// How a query is read (`plan_read`): from which snapshot, at which clock, from which tier.
struct Plan {
    snap: Arc<State>,
    now: i64,
    avail: [Option<i64>; 3],
    tier: Tier,
    /// The range is not aligned to the tier `Auto` chose: read in pieces (see `read_pieces`).
    pieces: bool,
}

/// What `read_pieces` read, and what tells whether a cached final part of the
/// answer still holds (see `rcache.rs`).
pub(super) struct PiecesRead {
    /// Per series with pieces, its pieces in time order.
    pub series: Vec<(Labels, Vec<Bucket>)>,
    /// The highest floor of the coarsest level over every selected series: whole
    /// buckets of that level answer only from there on.
    pub floor: i64,
    /// The lowest bucket start over every selected series from which the coarsest
    /// level may not reflect the data yet (`fresh_from`).
    pub cut: i64,
}

/// The levels a range read in pieces for `tier` uses, coarsest first: each tier
/// as fine as or finer than `tier` that holds data, as (index, width).
pub(super) fn levels_for(tier: Tier, avail: [Option<i64>; 3]) -> Vec<(usize, i64)> {
    let mut levels = Vec::with_capacity(2);
    for t in [Tier::Hour, Tier::FiveMin] {
        let (Some(i), Some(w)) = (t.index(), t.resolution_ms()) else { continue };
        if w <= tier.resolution_ms().unwrap_or(0) && avail[i].is_some() {
            levels.push((i, w));
        }
    }
    levels
}

impl Inner {
    pub(crate) fn query(&self, q: &Query) -> Result<QueryResult> {
        let cols = columns_for(q.aggregation());
        let p = self.plan_read(q)?;
        if p.pieces {
            return self.query_pieces(q, &p.snap, p.now, p.tier, p.avail, cols);
        }
        evaluate_trusted(q, self.read_series(q, &p.snap, p.now, p.tier, cols)?, p.tier)
    }

    /// Every statistic of every step bucket, from one snapshot (see
    /// `query::BucketsResult`). The tier is chosen as for an aggregation the
    /// rollups can answer; the query's own aggregation is not used.
    pub(crate) fn buckets(&self, q: &Query) -> Result<BucketsResult> {
        let q = q.clone().agg(Agg::Count);
        let cols = codec::ALL_COLUMNS;
        let p = self.plan_read(&q)?;
        if p.pieces {
            let range = q.time_range();
            let levels = levels_for(p.tier, p.avail);
            let read = self.read_pieces(&q, &p.snap, p.now, p.avail, &levels, cols, &[(range.start, range.end)])?;
            return evaluate_buckets_pieces(&q, read.series, p.tier);
        }
        evaluate_buckets(&q, self.read_series(&q, &p.snap, p.now, p.tier, cols)?, p.tier)
    }

    /// Chooses the tier for `q` and whether its range is read in pieces: a range
    /// the tier `Auto` chose is not aligned to.
    fn plan_read(&self, q: &Query) -> Result<Plan> {
        q.validate()?;
        let snap = self.snapshot();
        let now = now_ms();
        let avail = self.tier_available_from(&snap, now);
        let tier = choose_tier(q, now, avail)?;
        let range = q.time_range();
        let pieces = tier.resolution_ms().is_some_and(|w| {
            q.requested_tier() == Tier::Auto && (range.start.rem_euclid(w) != 0 || range.end.rem_euclid(w) != 0)
        });
        Ok(Plan { snap, now, avail, tier, pieces })
    }

    /// Reads every selected series whole from `tier` (the rollup columns `cols`).
    fn read_series(
        &self,
        q: &Query,
        snap: &State,
        now: i64,
        tier: Tier,
        cols: u16,
    ) -> Result<Vec<(Labels, SeriesData)>> {
        let range = q.time_range();
        let (mint, maxt) = (range.start, range.end.saturating_sub(1));
        let mut input = Vec::new();
        let mut idents = Idents::default();
        let mut slots: Vec<Option<_>> = (0..snap.tiers[0].len()).map(|_| None).collect();
        // Label order: the order segments lay series out in, so pages decompress once.
        for id in self.index.select_in_label_order(q.matchers()) {
            let Some(labels) = self.index.labels(id) else { continue };
            let t = tier.index().unwrap_or(0);
            let floor = self.retention.read().min_ts(&labels, StoredTier::ALL[t], now);
            let from = mint.max(floor);
            let data = if t == 0 {
                let mut s = Vec::new();
                if from <= maxt {
                    let slots = &mut slots;
                    let mut direct = |lo: i64, hi: i64, out: &mut Vec<Sample>| -> Result<()> {
                        let end = hi.saturating_add(1);
                        let decode = |c: &[u8], o: &mut Vec<Sample>| -> std::result::Result<(), &'static str> {
                            // The range decoder's bound is exclusive and cannot express "through i64::MAX".
                            if end == i64::MAX {
                                crate::codec::chunk::decode_chunk(c, o).map_err(|e| e.0)
                            } else {
                                decode_chunk_range(c, lo, end, o).map_err(|e| e.0)
                            }
                        };
                        let heads = |o: &mut Vec<Sample>, st: &mut Vec<usize>| read_heads(snap, id, lo, hi, o, st);
                        read_chunks!(snap, 0, slots, id, lo, hi, out, decode, heads);
                        Ok(())
                    };
                    self.raw_through_cache(snap, &mut idents, id, (from, maxt), &mut direct, &mut s)?;
                }
                (!s.is_empty()).then_some(SeriesData::Raw(s))
            } else {
                let width = tier.resolution_ms().unwrap_or(1);
                // Buckets straddling the retention floor are hidden whole.
                // Past the last alignable bucket there is nothing to show.
                let from = if from > mint {
                    align(from, width).and_then(|a| a.checked_add(width)).unwrap_or(i64::MAX)
                } else {
                    mint
                };
                let b = self.tier_buckets(snap, (t, width), id, from, maxt, cols, &mut idents)?;
                (!b.is_empty()).then_some(SeriesData::Buckets { width_ms: width, buckets: b })
            };
            if let Some(d) = data {
                input.push((labels, d));
            }
        }
        Ok(input)
    }

    /// Per selected series, the pieces of the stretches `ranges` (ascending,
    /// disjoint, `[a, b)`) of an unaligned range in time order: the whole buckets of
    /// the first of `levels` (see `levels_for`) inside each, the whole buckets of the
    /// next level in what is left, and the raw samples of the ragged edges rolled
    /// up at the finest width used. Each level is used only from where it is
    /// retained and holds segments; below that, the next finer source answers.
    /// A stretch that starts and ends on bounds of every level gets the pieces
    /// the whole range would get there.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn read_pieces(
        &self,
        q: &Query,
        snap: &State,
        now: i64,
        avail: [Option<i64>; 3],
        levels: &[(usize, i64)],
        cols: u16,
        ranges: &[(i64, i64)],
    ) -> Result<PiecesRead> {
        let finest = levels.last().map_or(FIVE_MIN_MS, |l| l.1);
        // Decompression cursors per tier and segment, held across spans and series:
        // both ragged edges of a series usually lie in one page, and series read in
        // label order (the order segments lay them out) share pages, so a page is
        // decompressed once, not once per read.
        let mut cursors: [Vec<Option<_>>; 3] =
            std::array::from_fn(|t| (0..snap.tiers[t].len()).map(|_| None).collect());
        let mut read = PiecesRead { series: Vec::new(), floor: i64::MIN, cut: i64::MAX };
        if levels.is_empty() {
            read.floor = i64::MAX;
        }
        let mut spans = Vec::new();
        let mut idents = Idents::default();
        // Reused across series: the raw samples of one span, and how many pieces
        // the last series had (series of one query are alike, so one allocation each).
        let mut raw = Vec::new();
        let mut pieces_hint = 0;
        for id in self.index.select_in_label_order(q.matchers()) {
            let Some(labels) = self.index.labels(id) else { continue };
            let (floors, raw_floor) = {
                let p = self.retention.read();
                let floor = |t: usize| p.min_ts(&labels, StoredTier::ALL[t], now).max(avail[t].unwrap_or(i64::MAX));
                (levels.iter().map(|&(t, w)| (t, w, floor(t))).collect::<Vec<_>>(), floor(0))
            };
            // The first bucket (of width w) tier t may not reflect yet, once per tier.
            let mut cuts: [Option<i64>; 3] = [None; 3];
            let mut cut_of = |t: usize, w: i64| -> i64 {
                *cuts[t].get_or_insert_with(|| {
                    // A fresh sample whose bucket cannot be aligned makes every bucket come from raw.
                    self.fresh_from(snap, t, id).map_or(i64::MAX, |f| align(f, w).unwrap_or(i64::MIN))
                })
            };
            if let Some(&(t, w, f)) = floors.first() {
                read.floor = read.floor.max(f);
                read.cut = read.cut.min(cut_of(t, w));
            }
            spans.clear();
            for &(a, b) in ranges {
                plan(a, b, &floors, &mut spans);
            }
            let mut buckets: Vec<Bucket> = Vec::with_capacity(pieces_hint);
            for &span in &spans {
                let t = match span {
                    Span::Tier(t, ..) => t,
                    Span::Raw(..) => 0,
                };
                let slots = &mut cursors[t];
                match span {
                    Span::Tier(t, w, a, b) => {
                        let cut = cut_of(t, w);
                        if cut > a {
                            let upto = (b - 1).min(cut - 1);
                            let mut direct = |lo: i64, hi: i64, out: &mut Vec<Bucket>| -> Result<()> {
                                let decode =
                                    |b: &[u8], o: &mut Vec<Bucket>| codec::decode_columns(b, o, cols).map_err(|e| e.0);
                                let heads = |_: &mut Vec<Bucket>, _: &mut Vec<usize>| {};
                                read_chunks!(snap, t, slots, id, lo, hi, out, decode, heads);
                                Ok(())
                            };
                            self.tier_through_cache(
                                snap,
                                &mut idents,
                                (t, w),
                                id,
                                cols,
                                (a, upto, cut),
                                &mut direct,
                                &mut buckets,
                            )?;
                        }
                        if cut < b {
                            buckets.extend(rollup(&read_merged(snap, id, cut.max(a), b - 1)?, w)?);
                        }
                    }
                    Span::Raw(a, b) => {
                        let a = a.max(raw_floor);
                        if a < b {
                            raw.clear();
                            let mut direct = |lo: i64, hi: i64, out: &mut Vec<Sample>| -> Result<()> {
                                let end = hi.saturating_add(1);
                                let decode =
                                    |c: &[u8], o: &mut Vec<Sample>| decode_chunk_range(c, lo, end, o).map_err(|e| e.0);
                                let heads =
                                    |o: &mut Vec<Sample>, st: &mut Vec<usize>| read_heads(snap, id, lo, hi, o, st);
                                read_chunks!(snap, 0, slots, id, lo, hi, out, decode, heads);
                                Ok(())
                            };
                            self.raw_through_cache(snap, &mut idents, id, (a, b - 1), &mut direct, &mut raw)?;
                            rollup_into(&raw, finest, &mut buckets)?;
                        }
                    }
                }
            }
            pieces_hint = buckets.len();
            if !buckets.is_empty() {
                read.series.push((labels, buckets));
            }
        }
        Ok(read)
    }

    /// Appends tier `t`'s buckets (width `w`, rollup columns `cols`) of series `id`
    /// with a start in `[a, upto]`: whole cache blocks below `cut` (the first bucket
    /// the tier may not reflect yet) through the query cache, the rest with `direct`.
    #[allow(clippy::too_many_arguments)]
    fn tier_through_cache(
        &self,
        snap: &State,
        idents: &mut Idents,
        (t, w): (usize, i64),
        id: u64,
        cols: u16,
        (a, upto, cut): (i64, i64, i64),
        direct: &mut impl FnMut(i64, i64, &mut Vec<Bucket>) -> Result<()>,
        out: &mut Vec<Bucket>,
    ) -> Result<()> {
        let cache = &self.query_cache;
        let block = w.saturating_mul(TIER_BLOCK_BUCKETS);
        // A block is cached only if every bucket start in it lies below the cut.
        let below = if cache.enabled() { align(cut, block).map(|c| c.saturating_sub(1)) } else { None };
        let cached_hi = below.map_or(i64::MIN, |c| c.min(upto));
        if let Some((lo, hi)) = cached_span(idents, snap, t, block, a, cached_hi) {
            let key = |start| Key { id, tier: t as u8, cols, start };
            let ident = |lo, hi| idents.get(cache, snap, t, lo, hi);
            cache.read(block, lo, hi, key, ident, &mut *direct, out)?;
            if cached_hi < upto {
                direct(cached_hi + 1, upto, out)?;
            }
            return Ok(());
        }
        direct(a, upto, out)
    }

    /// Appends the raw samples of series `id` in `[a, b]`: whole 5-minute blocks
    /// before the heads' first sample of the series through the query cache, the
    /// rest (and everything when the cache is off) with `direct`.
    fn raw_through_cache(
        &self,
        snap: &State,
        idents: &mut Idents,
        id: u64,
        (a, b): (i64, i64),
        direct: &mut impl FnMut(i64, i64, &mut Vec<Sample>) -> Result<()>,
        out: &mut Vec<Sample>,
    ) -> Result<()> {
        let cache = &self.query_cache;
        let below = if cache.enabled() {
            let head_min = snap.frozen.iter().chain([&snap.head]).filter_map(|h| h.min_ts(id)).min();
            align(head_min.unwrap_or(i64::MAX), RAW_BLOCK_MS).map(|c| c.saturating_sub(1))
        } else {
            None
        };
        let cached_hi = below.map_or(i64::MIN, |c| c.min(b));
        if let Some((lo, hi)) = cached_span(idents, snap, 0, RAW_BLOCK_MS, a, cached_hi) {
            let key = |start| Key { id, tier: 0, cols: 0, start };
            let ident = |lo, hi| idents.get(cache, snap, 0, lo, hi);
            cache.read(RAW_BLOCK_MS, lo, hi, key, ident, &mut *direct, out)?;
            if cached_hi < b {
                direct(cached_hi + 1, b, out)?;
            }
            return Ok(());
        }
        direct(a, b, out)
    }

    /// Buckets of tier `t` for one series over `[mint, maxt]` (`mint` aligned).
    /// `tier` is the tier's index and bucket width; `cols` the rollup columns to decode.
    #[allow(clippy::too_many_arguments)]
    fn tier_buckets(
        &self,
        snap: &State,
        (t, width): (usize, i64),
        id: u64,
        mint: i64,
        maxt: i64,
        cols: u16,
        idents: &mut Idents,
    ) -> Result<Vec<Bucket>> {
        let fresh = self.fresh_from(snap, t, id);
        // A fresh sample whose bucket cannot be aligned makes every bucket come from raw.
        let cut = fresh.map_or(i64::MAX, |f| align(f, width).unwrap_or(i64::MIN));
        let mut buckets = Vec::new();
        if cut > mint {
            let mut direct = |lo: i64, hi: i64, out: &mut Vec<Bucket>| -> Result<()> {
                let b = self.stored_buckets(snap, t, id, lo, hi, cols)?;
                if out.is_empty() {
                    *out = b;
                } else {
                    out.extend_from_slice(&b);
                }
                Ok(())
            };
            let span = (mint, maxt.min(cut - 1), cut);
            self.tier_through_cache(snap, idents, (t, width), id, cols, span, &mut direct, &mut buckets)?;
        }
        if cut <= maxt {
            let raw = read_merged(snap, id, cut.max(mint), maxt)?;
            buckets.extend(rollup(&raw, width)?);
        }
        Ok(buckets)
    }

    /// The buckets tier `t`'s segments hold for series `id` with a start in
    /// `[mint, upto]`, newest version of each, decoding the rollup columns `cols`.
    pub(super) fn stored_buckets(
        &self,
        snap: &State,
        t: usize,
        id: u64,
        mint: i64,
        upto: i64,
        cols: u16,
    ) -> Result<Vec<Bucket>> {
        // Segments of a compacted tier usually hold disjoint, ascending time
        // ranges: read them into one vector and merge only if runs overlap.
        let mut buckets: Vec<Bucket> = Vec::new();
        let mut starts = Vec::new();
        let segs: Vec<_> = snap.tiers[t].iter().filter(|s| s.info().min_t <= upto && s.info().max_t >= mint).collect();
        // Chunk metadata bounds the count: reserving it spares the regrowth copies.
        let most: usize = segs
            .iter()
            .filter_map(|s| s.find(id))
            .flat_map(|e| e.chunks)
            .filter(|c| c.min_t <= upto && c.max_t >= mint)
            .map(|c| (c.count as usize).min(CHUNK_ITEMS))
            .sum();
        buckets.reserve(most);
        for s in segs {
            starts.push(buckets.len());
            read_items_with(s, id, mint, upto, &mut buckets, |b, out| {
                codec::decode_columns(b, out, cols).map_err(|e| e.0)
            })?;
        }
        let ascending =
            starts.iter().skip(1).all(|&i| i == 0 || i == buckets.len() || buckets[i - 1].start < buckets[i].start);
        if !ascending {
            starts.push(buckets.len());
            let runs = starts.windows(2).map(|w| buckets[w[0]..w[1]].to_vec()).collect();
            buckets = merge_runs(runs);
        }
        Ok(buckets)
    }

    /// The oldest timestamp of series `id` that tier `t` may not reflect yet.
    pub(super) fn fresh_from(&self, snap: &State, t: usize, id: u64) -> Option<i64> {
        let mut fresh: Option<i64> = None;
        let mut see = |ts: i64| fresh = Some(fresh.map_or(ts, |f: i64| f.min(ts)));
        for h in snap.frozen.iter().chain([&snap.head]) {
            if let Some(ts) = h.min_ts(id) {
                see(ts);
            }
        }
        for tier in &snap.tiers[..t] {
            for s in tier.iter().filter(|s| !s.rolled.load(Ordering::Acquire)) {
                if let Some(c) = s.find(id).and_then(|e| e.chunks.first()) {
                    see(c.min_t);
                }
            }
        }
        fresh
    }

    /// Per tier, the oldest timestamp it holds that retention still shows.
    pub(super) fn tier_available_from(&self, snap: &State, now: i64) -> [Option<i64>; 3] {
        let policy = self.retention.read();
        let mut out = [None; 3];
        for (t, slot) in out.iter_mut().enumerate() {
            let mut oldest = snap.tiers[t].iter().map(|s| s.info().min_t).min();
            if t == 0 {
                let heads = snap.frozen.iter().chain([&snap.head]).filter_map(|h| h.time_range()).map(|r| r.0);
                oldest = oldest.into_iter().chain(heads).min();
            }
            let floor = oldest_retained(now, policy.longest(StoredTier::ALL[t]));
            *slot = oldest.map(|o| o.max(floor));
        }
        out
    }

    /// count/min/max/avg/p50/p95/p99 of each matching series' raw samples in the range.
    pub(crate) fn summaries(&self, q: &Query) -> Result<Vec<(Labels, Summary)>> {
        let raw = self.query(&q.clone().agg(crate::query::Agg::Raw).tier(Tier::Raw))?;
        Ok(raw.series.into_iter().map(|s| (s.labels, Summary::of(&s.points))).collect())
    }

    /// Raw samples of one series visible now (retention applied), for metric info.
    pub(crate) fn visible_raw(&self, snap: &State, id: u64, labels: &Labels) -> Result<Vec<Sample>> {
        let floor = self.retention.read().min_ts(labels, StoredTier::Raw, now_ms());
        read_merged(snap, id, floor, i64::MAX)
    }
}
