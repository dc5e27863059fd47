//! The evaluation core: per-series data in, result series out.
//!
//! Every aggregation except Raw/Stddev/Quantile goes through the same path:
//! each series' data becomes one [`Bucket`] per step bucket (raw samples via
//! [`Bucket::from_samples`], tier buckets via [`Bucket::merge`]), a group's
//! series are folded with [`Bucket::combine`], and the point value is read off
//! the bucket. Raw input and tier input thus meet in the same structure, which
//! is what makes tier answers equal raw answers over aligned buckets.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::summary::{population_stddev, quantile_of};
use super::{Agg, Query, QueryResult, RankBy, ResultSeries, Tier};
use crate::error::{Error, Result};
use crate::labels::{Labels, METRIC_NAME};
use crate::rollup::{align, check_buckets, Bucket};
use crate::sample::Sample;

/// One series' data over the query range, as the engine read it.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesData {
    /// Samples sorted by strictly increasing ts: merged across sources and
    /// deduplicated (last write wins) by the engine. Samples outside the query
    /// range are ignored.
    Raw(Vec<Sample>),
    /// Rollup buckets of `width_ms`, sorted, already merged across sources
    /// (one bucket per start). Buckets starting outside the range are ignored.
    Buckets { width_ms: i64, buckets: Vec<Bucket> },
}

/// Whether `agg` must read raw samples: Raw, Stddev and Quantile cannot be
/// answered from rollup buckets (they keep no samples and no sum of squares).
pub fn needs_raw(agg: Agg) -> bool {
    matches!(agg, Agg::Raw | Agg::Stddev | Agg::Quantile(_))
}

/// Maps a timestamp to its result point's timestamp.
#[derive(Clone, Copy)]
pub(super) struct Grid {
    pub(super) start: i64,
    pub(super) step: Option<i64>,
}

impl Grid {
    pub(super) fn key(&self, ts: i64) -> i64 {
        match self.step {
            // validate() checked that the range start aligns without overflow,
            // and every ts here is >= the range start, so this never falls back.
            Some(step) => align(ts, step).unwrap_or(self.start),
            None => self.start,
        }
    }

    /// The first timestamp after the bucket that starts at `key`.
    fn end(&self, key: i64) -> i64 {
        match self.step {
            Some(step) => key.saturating_add(step),
            None => i64::MAX,
        }
    }
}

/// Input after checks, restricted to the range; never empty.
pub(super) enum Data {
    Samples(Vec<Sample>),
    Buckets(Vec<Bucket>),
}

/// Evaluates `q` over `input` (one entry per selected series), answered by
/// `tier_answered` (never `Auto`). See `docs/QUERY.md` for the semantics.
///
/// Errors (`Error::InvalidArgument`) when the query is invalid, samples are not
/// strictly increasing, or bucket input does not fit: buckets for a tier whose
/// width differs from `width_ms`, an aggregation that needs raw samples, a step
/// that is not a multiple of the width, range edges not multiples of the width,
/// or buckets failing [`check_buckets`] at that width.
pub fn evaluate(q: &Query, input: Vec<(Labels, SeriesData)>, tier_answered: Tier) -> Result<QueryResult> {
    evaluate_with(q, input, tier_answered, true)
}

/// `evaluate` for input the engine built itself: samples merged and sorted,
/// buckets that passed `check_buckets` when their chunk was decoded, so the
/// per-item checks are skipped (they cost a division per bucket).
pub(crate) fn evaluate_trusted(q: &Query, input: Vec<(Labels, SeriesData)>, tier: Tier) -> Result<QueryResult> {
    evaluate_with(q, input, tier, false)
}

fn evaluate_with(q: &Query, input: Vec<(Labels, SeriesData)>, tier_answered: Tier, check: bool) -> Result<QueryResult> {
    q.validate()?;
    if tier_answered == Tier::Auto {
        return Err(Error::InvalidArgument("the answering tier must be Raw, FiveMin or Hour, not Auto".into()));
    }
    let mut series = Vec::with_capacity(input.len());
    for (labels, data) in input {
        if let Some(d) = prepare(q, tier_answered, &labels, data, check)? {
            series.push((labels, d));
        }
    }
    finish(q, series, tier_answered)
}

/// `evaluate` for an unaligned range answered by a tier: per series, the pieces
/// the engine read in time order, each inside one step bucket and after the
/// previous one: rollup buckets of the tier and of finer tiers, and buckets it
/// made from the raw samples of the ragged edges. Merging them with
/// [`Bucket::merge`] is exact, as for whole tier buckets.
pub(crate) fn evaluate_pieces(q: &Query, input: Vec<(Labels, Vec<Bucket>)>, tier: Tier) -> Result<QueryResult> {
    finish(q, pieces_data(q, input, tier)?, tier)
}

/// Checks what `evaluate_pieces` and `evaluate_buckets_pieces` share and wraps the pieces.
pub(super) fn pieces_data(q: &Query, input: Vec<(Labels, Vec<Bucket>)>, tier: Tier) -> Result<Vec<(Labels, Data)>> {
    q.validate()?;
    if tier.resolution_ms().is_none() || needs_raw(q.aggregation()) {
        return Err(Error::InvalidArgument(format!(
            "tier pieces answer only rollup aggregations from a rollup tier, not Agg::{:?} from {tier:?}",
            q.aggregation()
        )));
    }
    Ok(input.into_iter().filter(|(_, b)| !b.is_empty()).map(|(l, b)| (l, Data::Buckets(b))).collect())
}

/// Groups, reduces, orders and cuts prepared series.
fn finish(q: &Query, mut series: Vec<(Labels, Data)>, tier_answered: Tier) -> Result<QueryResult> {
    let range = q.time_range();
    let grid = Grid { start: range.start, step: q.step_ms() };
    // Fixed member order: makes float sums and first/last ties deterministic.
    series.sort_by(|a, b| a.0.cmp(&b.0));

    let agg = q.aggregation();
    let mut out: Vec<ResultSeries> = Vec::new();
    if agg == Agg::Raw {
        for (labels, data) in series {
            // prepare() only lets samples through for Agg::Raw.
            if let Data::Samples(s) = data {
                out.push(ResultSeries { labels, points: raw_points(s, grid) });
            }
        }
    } else {
        let secs = rate_secs(q);
        for (labels, members) in groups(q, series)? {
            let points = match agg {
                Agg::Stddev | Agg::Quantile(_) => population_points(&members, grid, agg),
                _ => bucket_points(&members, grid, agg, secs),
            };
            out.push(ResultSeries { labels, points });
        }
    }
    Ok(order_and_cut(q, out, tier_answered))
}

/// Seconds a Rate divides by: the step, or the whole range.
pub(super) fn rate_secs(q: &Query) -> f64 {
    let range = q.time_range();
    let width = q.step_ms().map_or(i128::from(range.end) - i128::from(range.start), i128::from);
    width as f64 / 1000.0
}

/// Drops empty result series, sorts the rest by labels and keeps the top k.
pub(super) fn order_and_cut(q: &Query, mut out: Vec<ResultSeries>, tier_answered: Tier) -> QueryResult {
    out.retain(|s| !s.points.is_empty());
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    if let Some(k) = q.top_k_limit() {
        let by = q.ranking();
        let mut ranked: Vec<(f64, ResultSeries)> = out.into_iter().map(|s| (rank_value(&s.points, by), s)).collect();
        let bottom = q.ranks_bottom();
        ranked.sort_by(|a, b| rank(a.0, b.0, bottom).then_with(|| a.1.labels.cmp(&b.1.labels)));
        ranked.truncate(k);
        out = ranked.into_iter().map(|(_, s)| s).collect();
    }
    QueryResult { tier: tier_answered, series: out }
}

/// Checks one input series and cuts it to the range; `None` when nothing is left.
pub(super) fn prepare(q: &Query, tier: Tier, labels: &Labels, data: SeriesData, check: bool) -> Result<Option<Data>> {
    let range = q.time_range();
    let bad = |m: String| Err(Error::InvalidArgument(format!("series {labels}: {m}")));
    match data {
        SeriesData::Raw(mut samples) => {
            if let Some(i) = samples.windows(2).position(|w| w[0].ts >= w[1].ts).filter(|_| check) {
                return bad(format!(
                    "samples must be sorted by strictly increasing timestamp (ts {} is followed by {})",
                    samples[i].ts,
                    samples[i + 1].ts
                ));
            }
            let lo = samples.partition_point(|s| s.ts < range.start);
            let hi = samples.partition_point(|s| s.ts < range.end);
            samples.truncate(hi);
            samples.drain(..lo);
            Ok((!samples.is_empty()).then_some(Data::Samples(samples)))
        }
        SeriesData::Buckets { width_ms, mut buckets } => {
            let agg = q.aggregation();
            if needs_raw(agg) {
                return bad(format!("Agg::{agg:?} needs raw samples, not rollup buckets"));
            }
            if tier.resolution_ms() != Some(width_ms) {
                return bad(format!("{width_ms} ms buckets cannot answer for tier {tier:?}"));
            }
            if let Some(step) = q.step_ms() {
                if step % width_ms != 0 {
                    return bad(format!("step {step} ms is not a multiple of the {width_ms} ms buckets"));
                }
            }
            if range.start.rem_euclid(width_ms) != 0 || range.end.rem_euclid(width_ms) != 0 {
                return bad(format!(
                    "range [{}, {}) is not aligned to the {width_ms} ms buckets; use raw samples",
                    range.start, range.end
                ));
            }
            if check {
                if let Err((i, why)) = check_buckets(&buckets, Some(width_ms)) {
                    return bad(format!("bucket {i}: {why}"));
                }
            }
            // Sorted by start (checked above, or guaranteed by the engine): cut, don't filter.
            let lo = buckets.partition_point(|b| b.start < range.start);
            let hi = buckets.partition_point(|b| b.start < range.end);
            buckets.truncate(hi);
            buckets.drain(..lo);
            Ok((!buckets.is_empty()).then_some(Data::Buckets(buckets)))
        }
    }
}

/// Splits series (sorted by labels) into result groups, each with its labels
/// and its members in label order. Without group_by every series is a group.
pub(super) fn groups(q: &Query, series: Vec<(Labels, Data)>) -> Result<Vec<(Labels, Vec<Data>)>> {
    let Some(names) = q.grouping() else {
        return Ok(series.into_iter().map(|(l, d)| (l, vec![d])).collect());
    };
    type Key = Vec<(String, String)>;
    let mut by_key: BTreeMap<Key, (Vec<Labels>, Vec<Data>)> = BTreeMap::new();
    for (labels, data) in series {
        let key: Key = group_key(names, &labels);
        let e = by_key.entry(key).or_default();
        e.0.push(labels);
        e.1.push(data);
    }
    let mut out = Vec::with_capacity(by_key.len());
    for (pairs, (members, data)) in by_key {
        out.push((group_labels(names, pairs, &members)?, data));
    }
    Ok(out)
}

/// The values of the grouping labels `names` that `labels` carries.
pub(super) fn group_key(names: &[String], labels: &Labels) -> Vec<(String, String)> {
    names.iter().filter_map(|n| labels.get(n).map(|v| (n.clone(), v.to_string()))).collect()
}

/// A group's labels: its key's pairs, and the metric name when every member (in
/// label order, at least one) has the same one.
pub(super) fn group_labels<'a>(
    names: &[String],
    mut pairs: Vec<(String, String)>,
    members: impl IntoIterator<Item = &'a Labels> + Clone,
) -> Result<Labels> {
    let Some(first) = members.clone().into_iter().next() else {
        return Err(Error::InvalidArgument(format!("group_by {names:?}: a group without members")));
    };
    let name = first.metric_name();
    if !names.iter().any(|n| n == METRIC_NAME) && name.is_some() && members.into_iter().all(|m| m.metric_name() == name)
    {
        pairs.push((METRIC_NAME.to_string(), name.unwrap_or_default().to_string()));
    }
    Labels::from_pairs(pairs).map_err(|_| {
        Error::InvalidArgument(format!(
            "group_by {names:?}: series such as {first} carry none of these labels and the group shares no \
             metric name, so its result would have no labels; group by a label they carry"
        ))
    })
}

/// Calls `emit` with each step bucket of one series, in time order. Streaming
/// keeps a query over many series from holding a second copy of every bucket.
pub(super) fn for_each_step_bucket(d: &Data, grid: Grid, mut emit: impl FnMut(&Bucket)) {
    match d {
        Data::Samples(samples) => {
            // One division per bucket, not per sample: samples are sorted.
            let mut i = 0;
            while let Some(first) = samples.get(i) {
                let key = grid.key(first.ts);
                let end = grid.end(key);
                let mut b = Bucket::empty(key);
                while let Some(s) = samples.get(i).filter(|s| s.ts < end || end == i64::MAX) {
                    b.push(*s);
                    i += 1;
                }
                emit(&b);
            }
        }
        Data::Buckets(buckets) => {
            // Buckets are sorted: a new step bucket starts only past the current one's end.
            let mut cur: Option<Bucket> = None;
            let mut end = i64::MIN;
            for b in buckets {
                match cur.as_mut() {
                    Some(o) if b.start < end => o.merge(b),
                    _ => {
                        if let Some(done) = cur.take() {
                            emit(&done);
                        }
                        let key = grid.key(b.start);
                        end = grid.end(key);
                        cur = Some(Bucket { start: key, ..*b });
                    }
                }
            }
            if let Some(done) = cur {
                emit(&done);
            }
        }
    }
}

fn bucket_points(members: &[Data], grid: Grid, agg: Agg, secs: f64) -> Vec<Sample> {
    let mut out = Vec::new();
    if let [Data::Buckets(b)] = members {
        // One point per step the buckets span, at most one per bucket: the capacity
        // stays with the result, so a coarse step must not reserve per bucket.
        let span = b.last().map_or(0, |l| l.start).saturating_sub(b.first().map_or(0, |f| f.start));
        let steps = grid.step.map_or(1, |s| usize::try_from(span / s.max(1)).unwrap_or(0).saturating_add(1));
        out.reserve(b.len().min(steps));
    }
    fold_step_buckets(members, grid, |b| out.push(Sample::new(b.start, bucket_value(agg, b, secs))));
    out
}

/// Calls `emit` with each non-empty step bucket of a group, its members folded
/// together with [`Bucket::combine`], in time order.
pub(super) fn fold_step_buckets(members: &[Data], grid: Grid, mut emit: impl FnMut(&Bucket)) {
    if let [only] = members {
        for_each_step_bucket(only, grid, |b| {
            if b.count > 0 {
                emit(b);
            }
        });
        return;
    }
    // Each member's buckets are sorted by start: a stable sort of the concatenation
    // keeps member order within a start, then equal starts fold together.
    let mut all: Vec<Bucket> = Vec::new();
    for d in members {
        for_each_step_bucket(d, grid, |b| all.push(*b));
    }
    all.sort_by_key(|b| b.start);
    for run in all.chunk_by(|a, b| a.start == b.start) {
        let mut acc = Bucket::empty(run[0].start);
        for b in run {
            acc.combine(b);
        }
        if acc.count > 0 {
            emit(&acc);
        }
    }
}

/// The point value of a non-empty (possibly group-combined) bucket.
pub(super) fn bucket_value(agg: Agg, b: &Bucket, secs: f64) -> f64 {
    match agg {
        Agg::Avg => b.sum / b.count as f64,
        Agg::Sum => b.sum,
        Agg::Min => b.min,
        Agg::Max => b.max,
        Agg::Count => b.count as f64,
        Agg::First => b.first,
        Agg::Last => b.last,
        Agg::Increase => b.increase,
        Agg::Rate => b.increase / secs,
        // Not routed here (raw-only aggregations).
        Agg::Raw | Agg::Stddev | Agg::Quantile(_) => f64::NAN,
    }
}

/// Stddev and Quantile: all member values of a step bucket as one population.
fn population_points(members: &[Data], grid: Grid, agg: Agg) -> Vec<Sample> {
    let mut acc: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for d in members {
        if let Data::Samples(samples) = d {
            for s in samples {
                acc.entry(grid.key(s.ts)).or_default().push(s.value);
            }
        }
    }
    acc.into_iter()
        .map(|(ts, values)| {
            let v = match agg {
                Agg::Quantile(q) => quantile_of(&values, q),
                _ => population_stddev(&values),
            };
            Sample::new(ts, v)
        })
        .collect()
}

/// Agg::Raw: every sample without a step, else the last sample of each step
/// bucket, with its own timestamp.
fn raw_points(samples: Vec<Sample>, grid: Grid) -> Vec<Sample> {
    if grid.step.is_none() {
        return samples;
    }
    samples.chunk_by(|a, b| grid.key(a.ts) == grid.key(b.ts)).filter_map(|run| run.last().copied()).collect()
}

fn mean(points: &[Sample]) -> f64 {
    points.iter().map(|p| p.value).sum::<f64>() / points.len() as f64
}

/// The statistic a series is ranked by (see [`RankBy`]).
fn rank_value(points: &[Sample], by: RankBy) -> f64 {
    let values = || points.iter().map(|p| p.value).filter(|v| !v.is_nan());
    match by {
        RankBy::Mean => mean(points),
        RankBy::Sum => points.iter().map(|p| p.value).sum(),
        RankBy::Max => values().reduce(f64::max).unwrap_or(f64::NAN),
        RankBy::Min => values().reduce(f64::min).unwrap_or(f64::NAN),
        RankBy::Last => points.last().map_or(f64::NAN, |p| p.value),
    }
}

/// Larger first (smaller first for `bottom`); NaN after everything either way.
fn rank(a: f64, b: f64, bottom: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) if bottom => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}
