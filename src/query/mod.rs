//! The query layer: a [`Query`] description, the pure evaluation core that turns
//! per-series data into results ([`evaluate`]), the tier choice ([`choose_tier`])
//! and range summaries ([`Summary`]). Nothing here reads files or touches a
//! `Db`: the engine resolves matchers, reads raw samples or rollup buckets for
//! the chosen tier, and hands them to [`evaluate`]. Semantics: `docs/QUERY.md`.

mod buckets;
mod eval;
mod names;
mod parts;
mod summary;
mod tier;

#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

use std::ops::{Range, RangeInclusive};
use std::time::Duration;

pub(crate) use buckets::{evaluate_buckets, evaluate_buckets_pieces};
pub use buckets::{BucketSeries, BucketsResult};
pub use eval::{evaluate, needs_raw, SeriesData};
pub(crate) use eval::{evaluate_pieces, evaluate_trusted};
pub use names::ParseNameError;
pub(crate) use parts::{finish_parts, group_parts, group_parts_keeping, Parts};
pub use summary::{quantile_sorted, Summary, SummaryReport};
pub use tier::choose_tier;
pub(crate) use tier::interior;

use crate::error::{Error, Result};
use crate::labels::{Labels, Matcher};
use crate::rollup::{align, FIVE_MIN_MS, HOUR_MS};
use crate::sample::Sample;

/// How the samples of a result series (or group) are reduced per step bucket.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Agg {
    /// The samples themselves; with a step, the last sample of each bucket.
    #[default]
    Raw,
    Avg,
    Sum,
    Min,
    Max,
    Count,
    First,
    Last,
    /// Counter increase per second over the bucket, reset-aware, not extrapolated.
    Rate,
    /// Counter increase over the bucket, reset-aware, not extrapolated.
    Increase,
    /// Population standard deviation.
    Stddev,
    /// Exact quantile in `[0, 1]`, linear interpolation between closest ranks.
    Quantile(f64),
}

/// Which stored resolution answers a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Tier {
    /// Let [`choose_tier`] pick by step, alignment and what each tier holds.
    #[default]
    Auto,
    Raw,
    /// 5-minute rollup buckets.
    FiveMin,
    /// 1-hour rollup buckets.
    Hour,
}

impl Tier {
    /// The concrete tiers, finest first; `Tier::ALL[i].index() == Some(i)`.
    pub const ALL: [Tier; 3] = [Tier::Raw, Tier::FiveMin, Tier::Hour];

    /// Bucket width in ms: `None` for `Raw` (and `Auto`), 300 000 for
    /// `FiveMin`, 3 600 000 for `Hour`.
    pub fn resolution_ms(self) -> Option<i64> {
        match self {
            Tier::Auto | Tier::Raw => None,
            Tier::FiveMin => Some(FIVE_MIN_MS),
            Tier::Hour => Some(HOUR_MS),
        }
    }

    /// 0 for `Raw`, 1 for `FiveMin`, 2 for `Hour` (the segment header's tier
    /// byte and the index into `choose_tier`'s availability array); `None` for
    /// `Auto`, which is not a stored tier.
    pub fn index(self) -> Option<usize> {
        match self {
            Tier::Auto => None,
            Tier::Raw => Some(0),
            Tier::FiveMin => Some(1),
            Tier::Hour => Some(2),
        }
    }

    /// The inverse of [`Tier::index`].
    pub fn from_index(i: usize) -> Option<Tier> {
        Tier::ALL.get(i).copied()
    }
}

/// A query: which series, which range, how to reduce them. Built with consuming
/// setters; read by the engine through the getters.
#[derive(Debug, Clone, Default)]
pub struct Query {
    matchers: Vec<Matcher>,
    range: Range<i64>,
    step: Option<Duration>,
    agg: Agg,
    group_by: Option<Vec<String>>,
    top_k: Option<usize>,
    /// With `top_k`: keep the smallest instead of the largest.
    bottom: bool,
    rank_by: RankBy,
    tier: Tier,
}

/// The statistic of a result series' points that `top_k`/`bottom_k` rank by.
/// NaN points make `Mean` and `Sum` NaN and are skipped by `Max` and `Min`; a
/// series whose statistic is NaN ranks after every other, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RankBy {
    #[default]
    Mean,
    Max,
    Min,
    Last,
    Sum,
}

impl RankBy {
    pub const ALL: [RankBy; 5] = [RankBy::Mean, RankBy::Max, RankBy::Min, RankBy::Last, RankBy::Sum];

    pub fn name(self) -> &'static str {
        match self {
            RankBy::Mean => "mean",
            RankBy::Max => "max",
            RankBy::Min => "min",
            RankBy::Last => "last",
            RankBy::Sum => "sum",
        }
    }
}

impl std::str::FromStr for RankBy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<RankBy, String> {
        let t = s.trim().to_ascii_lowercase();
        let t = if t == "avg" { "mean".to_string() } else { t };
        RankBy::ALL
            .into_iter()
            .find(|r| r.name() == t)
            .ok_or_else(|| format!("unknown ranking statistic {s:?} (expected mean, max, min, last or sum)"))
    }
}

impl Query {
    /// An empty query: no matchers, range `0..0` (invalid until [`Query::range`]
    /// is called), no step, `Agg::Raw`, no grouping, no top-k, `Tier::Auto`.
    pub fn new() -> Query {
        Query::default()
    }

    /// Adds matchers; a series must match all of them.
    pub fn select(mut self, matchers: impl IntoIterator<Item = Matcher>) -> Query {
        self.matchers.extend(matchers);
        self
    }

    /// The half-open time range `[start, end)` in ms since the epoch.
    pub fn range(mut self, range: Range<i64>) -> Query {
        self.range = range;
        self
    }

    /// The closed range `[start, end]` in ms, both ends inclusive: the half-open
    /// `[start, end + 1)`. This is the one rule by which the CLI's `--start`/`--end`
    /// and the server's `start_time`/`end_time` become a query; the range is never
    /// widened to whole steps, so a step bucket on an edge of the range holds only
    /// the samples inside it. A range whose `end + 1` is not on a bucket boundary
    /// is answered from raw samples (see [`choose_tier`]).
    pub fn range_inclusive(self, range: RangeInclusive<i64>) -> Query {
        let (start, end) = range.into_inner();
        self.range(start..end.saturating_add(1))
    }

    /// Buckets the result by `step` (a whole number of ms, at least 1 ms).
    pub fn step(mut self, step: Duration) -> Query {
        self.step = Some(step);
        self
    }

    pub fn agg(mut self, agg: Agg) -> Query {
        self.agg = agg;
        self
    }

    /// Groups series by these label names (kept sorted and deduplicated). An
    /// empty list puts every selected series into one group.
    pub fn group_by<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Query {
        let mut v: Vec<String> = labels.into_iter().map(Into::into).collect();
        v.sort();
        v.dedup();
        self.group_by = Some(v);
        self
    }

    /// Keeps only the `k` result series whose points rank highest by
    /// [`Query::rank_by`] (the mean by default), highest first.
    pub fn top_k(mut self, k: usize) -> Query {
        self.top_k = Some(k);
        self.bottom = false;
        self
    }

    /// Keeps only the `k` result series that rank lowest, lowest first. The last
    /// of `top_k` and `bottom_k` called is the one that holds.
    pub fn bottom_k(mut self, k: usize) -> Query {
        self.top_k = Some(k);
        self.bottom = true;
        self
    }

    /// The statistic `top_k` and `bottom_k` rank by.
    pub fn rank_by(mut self, by: RankBy) -> Query {
        self.rank_by = by;
        self
    }

    pub fn tier(mut self, tier: Tier) -> Query {
        self.tier = tier;
        self
    }

    // ------------------------------------------------------------ getters

    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    pub fn time_range(&self) -> Range<i64> {
        self.range.clone()
    }

    pub fn step_duration(&self) -> Option<Duration> {
        self.step
    }

    /// The step in ms; `None` when no step is set or it is not a positive
    /// whole number of ms that fits an i64 (which [`Query::validate`] rejects).
    pub fn step_ms(&self) -> Option<i64> {
        let d = self.step?;
        if d.subsec_nanos() % 1_000_000 != 0 {
            return None;
        }
        i64::try_from(d.as_millis()).ok().filter(|&ms| ms > 0)
    }

    pub fn aggregation(&self) -> Agg {
        self.agg
    }

    /// The grouping label names, sorted; `None` when not grouping.
    pub fn grouping(&self) -> Option<&[String]> {
        self.group_by.as_deref()
    }

    /// How many series `top_k` or `bottom_k` keeps.
    pub fn top_k_limit(&self) -> Option<usize> {
        self.top_k
    }

    /// Whether a `top_k_limit` keeps the lowest-ranked series (`bottom_k`).
    pub fn ranks_bottom(&self) -> bool {
        self.bottom
    }

    pub fn ranking(&self) -> RankBy {
        self.rank_by
    }

    /// The tier asked for (possibly `Auto`); see [`choose_tier`] for the one used.
    pub fn requested_tier(&self) -> Tier {
        self.tier
    }

    /// Checks everything that does not depend on stored data; every problem is
    /// an `Error::InvalidArgument` naming it.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.matchers.is_empty() {
            return bad("query selects nothing: add at least one matcher with Query::select".into());
        }
        let Range { start, end } = self.range;
        if start >= end {
            return bad(format!(
                "query range start {start} must be before end {end} (the range is [start, end), set by Query::range)"
            ));
        }
        if let Some(d) = self.step {
            let Some(step) = self.step_ms() else {
                return bad(format!("step {d:?} must be a whole number of milliseconds, at least 1 ms"));
            };
            if align(start, step).is_none() {
                let start = crate::text::time::show_time(start);
                return bad(format!("range start {start} cannot be aligned to the {step} ms step"));
            }
        }
        if let Agg::Quantile(q) = self.agg {
            if !(0.0..=1.0).contains(&q) {
                return bad(format!("quantile must be in [0, 1], got {q}"));
            }
        }
        if self.top_k == Some(0) {
            return bad("top_k must be at least 1".into());
        }
        if let Some(names) = &self.group_by {
            if self.agg == Agg::Raw {
                return bad("Agg::Raw returns samples per series and cannot be grouped; pick an aggregation".into());
            }
            for name in names {
                // Reuses the label name rules; "x" is also a valid metric name.
                if let Err(e) = Labels::from_pairs([(name.as_str(), "x")]) {
                    return bad(format!("group_by label {name:?}: {e}"));
                }
            }
        }
        Ok(())
    }
}

/// What a query returns.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    /// The tier that answered; never `Auto`.
    pub tier: Tier,
    /// Sorted by labels, or by rank with top-k.
    pub series: Vec<ResultSeries>,
}

/// One result series: its labels (full series labels, or the group's labels)
/// and its points sorted by timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSeries {
    pub labels: Labels,
    pub points: Vec<Sample>,
}
