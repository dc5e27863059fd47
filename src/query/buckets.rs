//! Every statistic of every step bucket at once: what `Db::buckets` returns.
//!
//! `Db::query` reduces each bucket to one number chosen by the aggregation; a
//! caller that shows several statistics of the same bucket (count, sum, min,
//! max, first, last, avg: `GET /query/rollup`) would otherwise run one query
//! per statistic, each on its own snapshot, and a write between two of them
//! could make the count and the sum of one bucket disagree. Here they come from
//! one read: each [`Bucket`] is one consistent view.

use super::eval::{fold_step_buckets, groups, pieces_data, prepare, Data, Grid};
use super::{Query, SeriesData, Tier};
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::rollup::Bucket;

/// What `Db::buckets` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketsResult {
    /// The tier that answered; never `Auto`.
    pub tier: Tier,
    /// Sorted by labels.
    pub series: Vec<BucketSeries>,
}

/// One series (or group, with `group_by`) and its non-empty step buckets in
/// time order. A bucket's `start` is its step start (the range start without a
/// step); `avg` is `sum / count`. A bucket on an edge of the range holds only
/// the samples inside the range.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSeries {
    pub labels: Labels,
    pub buckets: Vec<Bucket>,
}

/// Reduces `input` (as the engine read it for `q`, answered by `tier`) to step
/// buckets. The query's aggregation is not used; top-k, which ranks by one, is
/// refused.
pub(crate) fn evaluate_buckets(q: &Query, input: Vec<(Labels, SeriesData)>, tier: Tier) -> Result<BucketsResult> {
    q.validate()?;
    if q.top_k_limit().is_some() {
        return Err(Error::InvalidArgument(
            "top_k ranks series by one aggregation; buckets returns every statistic, so it takes no top_k".into(),
        ));
    }
    if tier == Tier::Auto {
        return Err(Error::InvalidArgument("the answering tier must be Raw, FiveMin or Hour, not Auto".into()));
    }
    let mut series = Vec::with_capacity(input.len());
    for (labels, data) in input {
        if let Some(d) = prepare(q, tier, &labels, data, false)? {
            series.push((labels, d));
        }
    }
    finish(q, series, tier)
}

/// `evaluate_buckets` for an unaligned range answered by a tier, from the
/// pieces the engine read (see `evaluate_pieces`).
pub(crate) fn evaluate_buckets_pieces(
    q: &Query,
    input: Vec<(Labels, Vec<Bucket>)>,
    tier: Tier,
) -> Result<BucketsResult> {
    if q.top_k_limit().is_some() {
        return Err(Error::InvalidArgument(
            "top_k ranks series by one aggregation; buckets returns every statistic, so it takes no top_k".into(),
        ));
    }
    finish(q, pieces_data(q, input, tier)?, tier)
}

fn finish(q: &Query, mut series: Vec<(Labels, Data)>, tier: Tier) -> Result<BucketsResult> {
    let grid = Grid { start: q.time_range().start, step: q.step_ms() };
    // Fixed member order, as in `evaluate`: float sums and first/last ties are deterministic.
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (labels, members) in groups(q, series)? {
        let mut buckets = Vec::new();
        fold_step_buckets(&members, grid, |b| buckets.push(*b));
        if !buckets.is_empty() {
            out.push(BucketSeries { labels, buckets });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(BucketsResult { tier, series: out })
}

#[cfg(test)]
mod tests;
