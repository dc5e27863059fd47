//! `Db::query`: selects series, reads them from the chosen tier, and hands them
//! to the evaluator in `query/`.
//!
//! A rollup tier never lags the truth: for each series, buckets from the first
//! one that may hold data not yet rolled up (in a head, or in a segment the
//! downsampler has not reached) are computed from raw data instead of the tier.

use std::sync::atomic::Ordering;

use super::items::{read_items_with, CHUNK_ITEMS};
use super::querier::read_merged;
use super::{now_ms, Db, Inner, State};
use crate::error::Result;
use crate::labels::Labels;
use crate::merge::merge_runs;
use crate::query::{
    choose_tier, evaluate_buckets, evaluate_trusted, Agg, BucketsResult, Query, QueryResult, SeriesData, Summary, Tier,
};
use crate::retention::oldest_retained;
use crate::rollup::{align, codec, rollup, Bucket};
use crate::sample::Sample;
use crate::tier::StoredTier;

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

impl Inner {
    pub(crate) fn query(&self, q: &Query) -> Result<QueryResult> {
        let (tier, input) = self.read_input(q, columns_for(q.aggregation()))?;
        evaluate_trusted(q, input, tier)
    }

    /// Every statistic of every step bucket, from one snapshot (see
    /// `query::BucketsResult`). The tier is chosen as for an aggregation the
    /// rollups can answer; the query's own aggregation is not used.
    pub(crate) fn buckets(&self, q: &Query) -> Result<BucketsResult> {
        let q = q.clone().agg(Agg::Count);
        let (tier, input) = self.read_input(&q, codec::ALL_COLUMNS)?;
        evaluate_buckets(&q, input, tier)
    }

    /// Chooses the tier for `q` and reads every selected series from it (the
    /// rollup columns `cols`), all from one snapshot.
    fn read_input(&self, q: &Query, cols: u16) -> Result<(Tier, Vec<(Labels, SeriesData)>)> {
        q.validate()?;
        let snap = self.snapshot();
        let now = now_ms();
        let tier = choose_tier(q, now, self.tier_available_from(&snap, now))?;
        let range = q.time_range();
        let (mint, maxt) = (range.start, range.end.saturating_sub(1));
        let mut input = Vec::new();
        // Label order: the order segments lay series out in, so pages decompress once.
        for id in self.index.select_in_label_order(q.matchers()) {
            let Some(labels) = self.index.labels(id) else { continue };
            let t = tier.index().unwrap_or(0);
            let floor = self.retention.read().min_ts(&labels, StoredTier::ALL[t], now);
            let from = mint.max(floor);
            let data = if t == 0 {
                let s = read_merged(&snap, id, from, maxt)?;
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
                let b = self.tier_buckets(&snap, (t, width), id, from, maxt, cols)?;
                (!b.is_empty()).then_some(SeriesData::Buckets { width_ms: width, buckets: b })
            };
            if let Some(d) = data {
                input.push((labels, d));
            }
        }
        Ok((tier, input))
    }

    /// Buckets of tier `t` for one series over `[mint, maxt]` (`mint` aligned).
    /// `tier` is the tier's index and bucket width; `cols` the rollup columns to decode.
    fn tier_buckets(
        &self,
        snap: &State,
        (t, width): (usize, i64),
        id: u64,
        mint: i64,
        maxt: i64,
        cols: u16,
    ) -> Result<Vec<Bucket>> {
        let fresh = self.fresh_from(snap, t, id);
        // A fresh sample whose bucket cannot be aligned makes every bucket come from raw.
        let cut = fresh.map_or(i64::MAX, |f| align(f, width).unwrap_or(i64::MIN));
        let mut buckets =
            if cut > mint { self.stored_buckets(snap, t, id, mint, maxt.min(cut - 1), cols)? } else { Vec::new() };
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
            .flat_map(|e| &e.chunks)
            .filter(|c| c.meta.min_t <= upto && c.meta.max_t >= mint)
            .map(|c| (c.meta.count as usize).min(CHUNK_ITEMS))
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
                    see(c.meta.min_t);
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
