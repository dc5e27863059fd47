//! Exact aggregates of one series over many closed windows `[lo, hi]`, read
//! from the rollup tiers where they hold the same samples raw data does.
//!
//! A window is cut into pieces: whole hours from the 1 h tier, whole 5-minute
//! buckets from the 5 m tier in the rest, and raw samples for the ragged edges.
//! A bucket is used only when it is *trusted* and *usable*:
//! - trusted: at or after the tier's retention floor and its oldest segment (a
//!   segment dropped for the disk cap leaves no hole that reads as "no data"),
//!   and before the first bucket the tier may not reflect yet (`fresh_from`).
//!   A trusted slot without a bucket holds no sample.
//! - usable: its `sum` is not NaN, so it holds no NaN and no staleness marker
//!   (rollups count both; PromQL's range functions leave markers out), and,
//!   when min (max) is asked for, its min (max) is not a zero, whose sign the
//!   bucket cannot order the way a first-wins scan does.
//!
//! A ragged edge inside a trusted 5-minute bucket needs no raw read when the
//! bucket's first and last sample times settle it: no sample there, all of the
//! bucket's, or only its first (an edge ending on it, as the closed end of an
//! aligned window does) or only its last sample, whose values rollups keep bit
//! for bit. Everything else is read raw, each raw chunk decoded at most once per call.
//! The 5-minute tier is read only when the hourly one leaves something open, and
//! not at all for a series whose raw edges would decode nearly all its chunks.
//! Every window's raw samples are then exactly those raw evaluation sees, and
//! count, min and max are bit-exact. Sums are Neumaier-compensated over the
//! pieces in time order (a bucket is one addend), so they agree with raw
//! summation up to rounding; a window whose magnitudes could overflow in some
//! order is recomputed from raw alone.

use std::sync::Arc;

use super::querier::chunk_error;
use super::{now_ms, Db, Inner, State};
use crate::codec::chunk::{decode_chunk, decode_chunk_range};
use crate::error::Result;
use crate::labels::{Labels, Matcher};
use crate::merge::merge_runs;
use crate::rollup::{align, codec, Bucket, FIVE_MIN_MS, HOUR_MS};
use crate::sample::Sample;
use crate::tier::StoredTier;

const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Which aggregates a caller reads; the others are left NaN. Asking for fewer
/// lets more buckets be used (a zero min does not matter to a sum).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Need {
    pub sum: bool,
    pub avg: bool,
    pub min: bool,
    pub max: bool,
}

/// The aggregate of one window's samples (staleness markers left out).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowAgg {
    pub count: u64,
    /// Neumaier-compensated sum.
    pub sum: f64,
    /// The first smallest (largest) value, NaN values skipped unless all are NaN.
    pub min: f64,
    pub max: f64,
    /// Prometheus's incremental mean when the window is all raw, `sum / count` otherwise.
    pub avg: f64,
}

/// One series' window aggregates and what reading them cost.
pub(crate) struct SeriesWindows {
    pub labels: Labels,
    pub aggs: Vec<WindowAgg>,
    /// Raw samples decoded and kept plus buckets read: what the caller accounts for.
    pub loaded: usize,
    /// Buckets that stood in for raw samples, over all windows (what tests check).
    #[cfg_attr(not(test), allow(dead_code))]
    pub buckets_used: usize,
}

/// Reads window aggregates of selected series, all from one snapshot.
pub(crate) struct WindowReader<'a> {
    inner: &'a Inner,
    snap: Arc<State>,
    now: i64,
    windows: &'a [(i64, i64)],
    need: Need,
    /// Oldest bucket start held by the 5 m and 1 h tiers' segments.
    tier_oldest: [Option<i64>; 2],
}

impl Db {
    /// A reader of `windows` (closed, in ms, any order) over one snapshot.
    pub(crate) fn window_reader<'a>(&'a self, windows: &'a [(i64, i64)], need: Need) -> WindowReader<'a> {
        let inner = &*self.inner;
        let snap = inner.snapshot();
        let oldest = |t: usize| snap.tiers[t].iter().map(|s| s.info().min_t).min();
        let tier_oldest = [oldest(1), oldest(2)];
        WindowReader { inner, snap, now: now_ms(), windows, need, tier_oldest }
    }
}

/// One tier's buckets for a series and the bucket starts it can vouch for.
struct Level {
    width: i64,
    /// Bucket starts the tier vouches for, `[from, to)`, and those read, `[read.0, read.1]`.
    from: i128,
    to: i128,
    read: (i128, i128),
    buckets: Vec<Bucket>,
}

impl Level {
    fn none(width: i64) -> Level {
        Level { width, from: i128::MAX, to: i128::MIN, read: (i128::MAX, i128::MIN), buckets: Vec::new() }
    }

    /// Whether the bucket starting at `s` was read and the tier vouches for it:
    /// then no bucket there means no sample.
    fn knows(&self, s: i128) -> bool {
        self.from <= s && s < self.to && self.read.0 <= s && s <= self.read.1
    }

    /// Whether the whole bucket starting at `c` fits in `[c, hi]` and is known.
    fn covers(&self, c: i128, hi: i128) -> bool {
        let w = i128::from(self.width);
        c.rem_euclid(w) == 0 && c + w - 1 <= hi && self.knows(c)
    }

    fn find(&self, start: i128) -> Option<usize> {
        self.buckets.binary_search_by(|b| i128::from(b.start).cmp(&start)).ok()
    }
}

/// A series' labels, its windows clipped to the raw retention floor, and the
/// 5-minute and hourly tiers' floors.
type Clipped = (Labels, Vec<(i64, i64)>, [i64; 2]);

/// What a bucket says of a ragged edge inside it.
enum Edge {
    /// No sample there.
    Empty,
    /// All the samples of the hourly (`true`) or 5-minute bucket are there, by index.
    Whole(bool, usize),
    /// Only its first (`true`) or last sample is there.
    One(bool, bool, usize),
}

/// A piece of a window, in time order.
#[derive(Clone, Copy)]
enum Piece {
    /// A bucket of the 1 h (`true`) or 5 m tier, by index.
    Bucket(bool, usize),
    /// Raw samples in `[a, b]`.
    Raw(i64, i64),
    /// The first (`true`) or last sample of a bucket of the 1 h (`true`) or 5 m
    /// tier, by index: all a ragged edge holds when it ends on the bucket's first
    /// sample or starts on its last.
    Sample(bool, bool, usize),
}

impl WindowReader<'_> {
    /// Series ids in label order, the order raw PromQL evaluation reads them in.
    pub(crate) fn select(&self, matchers: &[Matcher]) -> Vec<u64> {
        self.inner.index.select_in_label_order(matchers)
    }

    /// The aggregates of series `id` over every window; `None` if the series is gone.
    pub(crate) fn read(&self, id: u64) -> Result<Option<SeriesWindows>> {
        let Some((labels, clipped, floors)) = self.clipped(id) else { return Ok(None) };
        let mut loaded = 0;
        // The hourly tier is small: read it whenever a window holds a 5-minute bucket
        // (its first and last samples settle many ragged edges). The 5-minute tier
        // only if some window cannot do without it.
        let hour = self.level(id, 2, floors[1], &clipped, &mut loaded)?;
        let mut five = Level::none(FIVE_MIN_MS);
        let mut pieces: Vec<Piece> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(clipped.len());
        for pass in 0..2 {
            pieces.clear();
            spans.clear();
            let mut complete = true;
            for &(lo, hi) in &clipped {
                let start = pieces.len();
                complete &= self.plan(lo, hi, (pass == 1).then_some(&five), &hour, &mut pieces);
                spans.push((start, pieces.len()));
            }
            if complete {
                break;
            }
            if self.edges_decode_everything(id, &clipped)? {
                // The raw edges alone decode every chunk: the 5-minute tier would add
                // its own pages and save nothing.
                pieces.clear();
                spans.clear();
                for &(lo, hi) in &clipped {
                    spans.push((pieces.len(), pieces.len() + usize::from(lo <= hi)));
                    if lo <= hi {
                        pieces.push(Piece::Raw(lo, hi));
                    }
                }
                break;
            }
            five = self.level(id, 1, floors[0], &clipped, &mut loaded)?;
        }
        let levels = [five, hour];

        let mut intervals: Vec<(i64, i64)> =
            pieces.iter().filter_map(|p| if let Piece::Raw(a, b) = *p { Some((a, b)) } else { None }).collect();
        let raw = self.read_raw(id, &mut intervals, &mut loaded)?;

        let mut aggs = Vec::with_capacity(clipped.len());
        let mut buckets_used = 0;
        let mut redo = Vec::new();
        for (w, &(a, b)) in spans.iter().enumerate() {
            let mut acc = Acc::new(self.need);
            for p in &pieces[a..b] {
                match *p {
                    Piece::Bucket(h, i) => acc.bucket(&levels[usize::from(h)].buckets[i]),
                    Piece::Raw(lo, hi) => acc.samples(window_of(&raw, lo, hi)),
                    Piece::Sample(h, first, i) => {
                        let b = &levels[usize::from(h)].buckets[i];
                        let s = if first { Sample::new(b.first_ts, b.first) } else { Sample::new(b.last_ts, b.last) };
                        if s.value.to_bits() != STALE_NAN_BITS {
                            acc.samples(&[s]);
                        }
                    }
                }
            }
            buckets_used += acc.buckets;
            if acc.buckets > 0 && (self.need.sum || self.need.avg) && !acc.bounded() {
                redo.push(w);
            }
            aggs.push(acc.finish());
        }
        if !redo.is_empty() {
            // Values near f64::MAX: raw summation order decides whether it overflows, so follow it.
            let mut intervals: Vec<(i64, i64)> = redo.iter().map(|&w| clipped[w]).filter(|(lo, hi)| lo <= hi).collect();
            let raw = self.read_raw(id, &mut intervals, &mut loaded)?;
            for w in redo {
                let (lo, hi) = clipped[w];
                let mut acc = Acc::new(self.need);
                if lo <= hi {
                    acc.samples(window_of(&raw, lo, hi));
                }
                aggs[w] = acc.finish();
            }
        }
        Ok(Some(SeriesWindows { labels, aggs, loaded, buckets_used }))
    }

    /// Tier `t`'s trusted buckets over the windows long enough to hold one.
    fn level(&self, id: u64, t: usize, floor: i64, windows: &[(i64, i64)], loaded: &mut usize) -> Result<Level> {
        let width = if t == 1 { FIVE_MIN_MS } else { HOUR_MS };
        let w = i128::from(width);
        let up =
            |x: i64, w: i128| i128::from(x).div_euclid(w) * w + if i128::from(x).rem_euclid(w) == 0 { 0 } else { w };
        // Only windows that hold a whole 5-minute bucket can use a tier at all.
        let five = i128::from(FIVE_MIN_MS);
        let holding = windows.iter().filter(|(lo, hi)| up(*lo, five) + five - 1 <= i128::from(*hi));
        let (Some(lo), Some(hi)) = (holding.clone().map(|x| x.0).min(), holding.map(|x| x.1).max()) else {
            return Ok(Level::none(width));
        };
        let Some(oldest) = self.tier_oldest[t - 1] else { return Ok(Level::none(width)) };
        let from = up(floor, w).max(up(oldest, w));
        let fresh = self.inner.fresh_from(&self.snap, t, id);
        let to = fresh.map_or(i128::MAX, |f| align(f, width).map_or(i128::MIN, i128::from));
        // From the bucket holding the earliest window start: its ragged edge may be settled too.
        let read = (from.max(i128::from(lo).div_euclid(w) * w), (to - 1).min(i128::from(hi)));
        if read.0 > read.1 {
            return Ok(Level::none(width));
        }
        let cols = codec::COL_COUNT
            | codec::COL_SUM
            | codec::COL_MIN
            | codec::COL_MAX
            | codec::COL_FIRST
            | codec::COL_LAST
            | codec::COL_FIRST_TS
            | codec::COL_LAST_TS;
        // The read range lies inside i64: between the aligned `from`/`lo` (at most `hi`) and `hi`.
        let buckets = self.inner.stored_buckets(&self.snap, t, id, read.0 as i64, read.1 as i64, cols)?;
        *loaded += buckets.len();
        Ok(Level { width, from, to, read, buckets })
    }

    /// Cuts `[lo, hi]` into pieces: whole usable hours, whole usable 5-minute
    /// buckets, ragged edges the buckets settle, and raw stretches (adjacent ones
    /// joined). With `five` absent, false as soon as the 5-minute tier could help.
    fn plan(&self, lo: i64, hi: i64, five: Option<&Level>, hour: &Level, out: &mut Vec<Piece>) -> bool {
        let (mut c, hi) = (i128::from(lo), i128::from(hi));
        let (w, h) = (i128::from(FIVE_MIN_MS), i128::from(HOUR_MS));
        // Every bound pushed lies in `[lo, hi]`, so inside i64. A raw stretch joins
        // the one before only within this window: `out` holds earlier windows'
        // pieces too, and a piece is summed into its own window alone.
        let first = out.len();
        let raw = |out: &mut Vec<Piece>, a: i128, b: i128| {
            let mine = out.len() > first;
            match out.last_mut() {
                Some(Piece::Raw(_, end)) if mine && i128::from(*end) + 1 == a => *end = b as i64,
                _ => out.push(Piece::Raw(a as i64, b as i64)),
            }
        };
        let none = Level::none(FIVE_MIN_MS);
        let five_or_none = five.unwrap_or(&none);
        while c <= hi {
            if hour.covers(c, hi) {
                match hour.find(c) {
                    None => {
                        c += h;
                        continue;
                    }
                    Some(i) if self.usable(&hour.buckets[i]) => {
                        out.push(Piece::Bucket(true, i));
                        c += h;
                        continue;
                    }
                    Some(_) => {}
                }
            }
            if c.rem_euclid(w) == 0 && c + w - 1 <= hi {
                if five.is_none() {
                    return false;
                }
                if five_or_none.covers(c, hi) {
                    match five_or_none.find(c) {
                        Some(i) if self.usable(&five_or_none.buckets[i]) => out.push(Piece::Bucket(false, i)),
                        Some(_) => raw(out, c, c + w - 1),
                        None => {}
                    }
                    c += w;
                    continue;
                }
            }
            // A ragged edge: up to the next 5-minute boundary, or to the end when no
            // tier can help any more.
            let beyond = c >= five_or_none.to && c >= hour.to && five.is_some();
            let end = if beyond { hi } else { hi.min(c.div_euclid(w) * w + w - 1) };
            let settled = match self.edge(hour, true, c, end) {
                Some(e) => Some(e),
                None if five.is_none() && !beyond => return false,
                None => self.edge(five_or_none, false, c, end),
            };
            match settled {
                Some(Edge::Empty) => {}
                Some(Edge::Whole(h, i)) => out.push(Piece::Bucket(h, i)),
                Some(Edge::One(h, first, i)) => out.push(Piece::Sample(h, first, i)),
                None => raw(out, c, end),
            }
            c = end + 1;
        }
        true
    }

    /// What the known bucket of `level` holding `[c, end]` tells of its samples
    /// there, from its first and last sample times; `None` when only raw samples can.
    fn edge(&self, level: &Level, is_hour: bool, c: i128, end: i128) -> Option<Edge> {
        let w = i128::from(level.width);
        let s = c.div_euclid(w) * w;
        if !level.knows(s) || end >= s + w {
            return None;
        }
        let Some(i) = level.find(s) else { return Some(Edge::Empty) };
        let b = &level.buckets[i];
        let (f, l) = (i128::from(b.first_ts), i128::from(b.last_ts));
        Some(if l < c || f > end {
            Edge::Empty
        } else if f >= c && l <= end {
            if !self.usable(b) {
                return None;
            }
            Edge::Whole(is_hour, i)
        } else if f == end {
            Edge::One(is_hour, true, i)
        } else if l == c {
            Edge::One(is_hour, false, i)
        } else {
            return None;
        })
    }

    /// Whether raw evaluation is the cheaper way to answer series `id`: the
    /// windows' ragged edges alone would decode most of its raw chunks, so the
    /// tiers would only add their own reads (metadata only; nothing is decoded).
    /// As [`WindowReader::read`] decides it: the hourly tier cannot settle every
    /// window alone, and the edges decode most chunks.
    pub(crate) fn raw_is_cheaper(&self, id: u64) -> Result<bool> {
        let Some((_, clipped, floors)) = self.clipped(id) else { return Ok(false) };
        let hour = self.level(id, 2, floors[1], &clipped, &mut 0)?;
        let mut pieces = Vec::new();
        let mut complete = true;
        for &(lo, hi) in &clipped {
            complete &= self.plan(lo, hi, None, &hour, &mut pieces);
        }
        Ok(!complete && self.edges_decode_everything(id, &clipped)?)
    }

    /// Series `id`'s labels, the windows as raw evaluation sees them (nothing
    /// below the raw retention floor) and the 5-minute and hourly tiers' floors.
    fn clipped(&self, id: u64) -> Option<Clipped> {
        let labels = self.inner.index.labels(id)?;
        let (raw_floor, floors) = {
            let p = self.inner.retention.read();
            let f = |t| p.min_ts(&labels, t, self.now);
            (f(StoredTier::Raw), [f(StoredTier::FiveMin), f(StoredTier::Hour)])
        };
        let clipped = self.windows.iter().map(|&(lo, hi)| (lo.max(raw_floor), hi)).collect();
        Some((labels, clipped, floors))
    }

    /// Whether the ragged edges of `windows` (what lies outside their whole
    /// 5-minute buckets) meet the raw chunks of series `id` holding 3/4 of its
    /// samples there, out of 8 chunks or more.
    fn edges_decode_everything(&self, id: u64, windows: &[(i64, i64)]) -> Result<bool> {
        let w = i128::from(FIVE_MIN_MS);
        let mut edges: Vec<(i64, i64)> = Vec::new();
        for &(lo, hi) in windows.iter().filter(|(lo, hi)| lo <= hi) {
            let (l, h) = (i128::from(lo), i128::from(hi));
            let first = l.div_euclid(w) * w + if l.rem_euclid(w) == 0 { 0 } else { w };
            let after = (h + 1).div_euclid(w) * w;
            if first >= after {
                edges.push((lo, hi));
                continue;
            }
            // `first - 1` and `after` lie in `[lo, hi]` here.
            if l < first {
                edges.push((lo, (first - 1) as i64));
            }
            if after <= h {
                edges.push((after as i64, hi));
            }
        }
        edges.sort_unstable();
        let (Some(&(lo, _)), Some(hi)) = (edges.first(), edges.iter().map(|e| e.1).max()) else { return Ok(false) };
        let (mut met, mut all, mut chunks) = (0usize, 0usize, 0usize);
        for seg in &self.snap.tiers[0] {
            let Some(entry) = seg.find(id) else { continue };
            for m in entry.chunks.iter().filter(|m| m.min_t <= hi && m.max_t >= lo) {
                let n = m.count as usize;
                all += n;
                chunks += 1;
                let i = edges.partition_point(|e| e.1 < m.min_t);
                met += if edges.get(i).is_some_and(|e| e.0 <= m.max_t) { n } else { 0 };
            }
        }
        // Chunks holding most samples (short ones at seals may fall between edges) are as
        // good as all. Over a few chunks either way costs little: use the tiers then.
        Ok(chunks >= 8 && met * 4 >= all * 3)
    }

    fn usable(&self, b: &Bucket) -> bool {
        let zero_extreme = (self.need.min && b.min == 0.0) || (self.need.max && b.max == 0.0);
        !b.sum.is_nan() && !zero_extreme
    }

    /// Raw samples of `id` in the union of `intervals` (sorted and joined here),
    /// merged across sources, staleness markers removed. Each chunk is decoded once.
    fn read_raw(&self, id: u64, intervals: &mut [(i64, i64)], loaded: &mut usize) -> Result<Vec<Sample>> {
        intervals.sort_unstable();
        let mut joined: Vec<(i64, i64)> = Vec::with_capacity(intervals.len());
        for &(a, b) in intervals.iter() {
            match joined.last_mut() {
                Some(last) if i128::from(a) <= i128::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => joined.push((a, b)),
            }
        }
        let (Some(&(mint, _)), Some(&(_, maxt))) = (joined.first(), joined.last()) else { return Ok(Vec::new()) };
        let mut runs: Vec<Vec<Sample>> = Vec::new();
        for seg in &self.snap.tiers[0] {
            let info = seg.info();
            if info.max_t < mint || info.min_t > maxt {
                continue;
            }
            let Some(entry) = seg.find(id) else { continue };
            let mut v = Vec::new();
            seg.for_each_chunk(
                &entry,
                |m| overlapping(&joined, m.min_t, m.max_t).is_some(),
                |m, bytes| {
                    let (i, j) = overlapping(&joined, m.min_t, m.max_t).unwrap_or((0, 0));
                    let (a, b) = (joined[i].0, joined[j - 1].1);
                    let before = v.len();
                    let r = match b.checked_add(1) {
                        Some(end) if a > m.min_t || b < m.max_t => decode_chunk_range(bytes, a, end, &mut v),
                        _ => decode_chunk(bytes, &mut v),
                    };
                    r.map_err(|e| chunk_error(&info.path, id, m.min_t, e.0))?;
                    keep_inside(&mut v, before, &joined[i..j]);
                    Ok(())
                },
            )?;
            runs.push(v);
        }
        for head in self.snap.frozen.iter().chain(std::iter::once(&self.snap.head)) {
            let mut v = Vec::new();
            for &(a, b) in &joined {
                head.read(id, a, b, &mut v);
            }
            runs.push(v);
        }
        let mut out = merge_runs(runs);
        *loaded += out.len();
        out.retain(|s| s.value.to_bits() != STALE_NAN_BITS);
        Ok(out)
    }
}

/// The indices `i..j` of the sorted, disjoint `intervals` that meet `[a, b]`, if any.
fn overlapping(intervals: &[(i64, i64)], a: i64, b: i64) -> Option<(usize, usize)> {
    let i = intervals.partition_point(|iv| iv.1 < a);
    let j = intervals.partition_point(|iv| iv.0 <= b);
    (i < j).then_some((i, j))
}

/// Drops the samples of `v[from..]` (sorted) outside the sorted, disjoint `intervals`.
fn keep_inside(v: &mut Vec<Sample>, from: usize, intervals: &[(i64, i64)]) {
    let mut k = 0;
    let mut w = from;
    for r in from..v.len() {
        let s = v[r];
        while k < intervals.len() && intervals[k].1 < s.ts {
            k += 1;
        }
        if k < intervals.len() && intervals[k].0 <= s.ts {
            v[w] = s;
            w += 1;
        }
    }
    v.truncate(w);
}

fn window_of(raw: &[Sample], lo: i64, hi: i64) -> &[Sample] {
    let a = raw.partition_point(|s| s.ts < lo);
    let b = raw.partition_point(|s| s.ts <= hi);
    &raw[a..b.max(a)]
}

/// Neumaier-compensated summation step: the new sum and compensation.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() { c + ((sum - t) + inc) } else { c + ((inc - t) + sum) };
    (t, c)
}

/// Folds the pieces of one window in time order.
struct Acc {
    need: Need,
    count: u64,
    sum: f64,
    comp: f64,
    min: Option<f64>,
    max: Option<f64>,
    /// Prometheus's incremental mean and its compensation, while every piece is raw.
    mean: f64,
    mean_c: f64,
    /// An upper bound of the sum of magnitudes (of bucket pieces and raw samples).
    abs_bound: f64,
    buckets: usize,
}

impl Acc {
    fn new(need: Need) -> Acc {
        Acc {
            need,
            count: 0,
            sum: 0.0,
            comp: 0.0,
            min: None,
            max: None,
            mean: 0.0,
            mean_c: 0.0,
            abs_bound: 0.0,
            buckets: 0,
        }
    }

    /// First-wins extremes: a later value replaces only a strictly better one or a NaN.
    fn extremes(&mut self, lo: f64, hi: f64) {
        if self.need.min {
            self.min = Some(match self.min {
                Some(m) if !(lo < m || m.is_nan()) => m,
                _ => lo,
            });
        }
        if self.need.max {
            self.max = Some(match self.max {
                Some(m) if !(hi > m || m.is_nan()) => m,
                _ => hi,
            });
        }
    }

    /// Only what `need` asks for is computed: `count`, the sum and mean only for
    /// `sum`/`avg`, the extremes only for `min`/`max`.
    fn samples(&mut self, w: &[Sample]) {
        if self.need.sum || self.need.avg {
            for s in w {
                let v = s.value;
                // The incremental mean divides by the count so far.
                self.count += 1;
                (self.sum, self.comp) = kahan_inc(v, self.sum, self.comp);
                self.abs_bound += v.abs();
                if self.need.avg && self.buckets == 0 {
                    self.mean_step(v);
                }
            }
        } else {
            self.count += w.len() as u64;
        }
        if self.need.min || self.need.max {
            for s in w {
                self.extremes(s.value, s.value);
            }
        }
    }

    /// Prometheus 2.42's `avg_over_time` step: an infinite mean stays unless a NaN or
    /// the opposite infinity comes.
    fn mean_step(&mut self, v: f64) {
        let n = self.count as f64;
        if self.mean.is_infinite() && !(v.is_nan() || (v.is_infinite() && (self.mean > 0.0) != (v > 0.0))) {
            return;
        }
        (self.mean, self.mean_c) = kahan_inc(v / n - self.mean / n, self.mean, self.mean_c);
    }

    /// Whether no partial sum, in any order, can overflow (false for NaN or infinities too).
    fn bounded(&self) -> bool {
        self.abs_bound.partial_cmp(&(f64::MAX / 4.0)).is_some_and(|o| o.is_le())
    }

    fn bucket(&mut self, b: &Bucket) {
        self.buckets += 1;
        self.count += b.count;
        (self.sum, self.comp) = kahan_inc(b.sum, self.sum, self.comp);
        self.abs_bound += b.count as f64 * b.min.abs().max(b.max.abs());
        self.extremes(b.min, b.max);
    }

    fn finish(&self) -> WindowAgg {
        let sum = if self.sum.is_infinite() { self.sum } else { self.sum + self.comp };
        let avg = if self.buckets > 0 {
            sum / self.count as f64
        } else if self.mean.is_infinite() {
            self.mean
        } else {
            self.mean + self.mean_c
        };
        WindowAgg { count: self.count, sum, min: self.min.unwrap_or(f64::NAN), max: self.max.unwrap_or(f64::NAN), avg }
    }
}
