//! The engine layers that are being built alongside the CLI: the query layer
//! (`db.query(&strata::Query)`), compaction and retention.
//!
//! Each has exactly one function here, which the subcommands call with their
//! parsed arguments and whose result they format. Until the layer lands the
//! function returns a clear error; wiring it up means editing only that function.

use strata::{Db, Labels, Matcher, Sample};

use super::{fail, CliResult};

/// How `strata query` combines samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Agg {
    /// Every sample as stored (no step)
    Raw,
    Avg,
    Sum,
    Min,
    Max,
    Count,
    First,
    Last,
    /// Per-second increase of a counter, reset-aware
    Rate,
    /// Increase of a counter over each step, reset-aware
    Increase,
    Stddev,
    /// The --quantile (phi) of each step's values
    Quantile,
}

/// Which stored resolution a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Tier {
    /// Choose by step and by what each tier still holds
    Auto,
    Raw,
    #[value(name = "5m")]
    FiveMin,
    #[value(name = "1h")]
    OneHour,
}

/// A query as `strata query` parsed it. Times in ms; `end` is inclusive.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub matchers: Vec<Matcher>,
    pub start: i64,
    pub end: i64,
    pub step: Option<i64>,
    pub agg: Agg,
    pub quantile: Option<f64>,
    pub group_by: Vec<String>,
    pub top_k: Option<usize>,
    pub tier: Tier,
}

/// One output series of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// PLUG-IN POINT for the query layer: build a `strata::Query` from `req`, call
/// `db.query(&q)` and convert its series. Only raw reads without step, grouping or
/// top-k reach the engine today, through `db.querier` in `query.rs`.
pub fn query(_db: &Db, req: &QueryRequest) -> CliResult<Vec<ResultSeries>> {
    use clap::ValueEnum;
    let agg = req.agg.to_possible_value().map_or(String::new(), |v| v.get_name().to_string());
    let q = req.quantile.map_or(String::new(), |q| format!(" --quantile {q}"));
    fail(format!(
        "this query (--agg {agg}{q}{}{}{}) needs the query layer, which is not in this build yet; \
         only --agg raw without --step, --group-by, --top-k or a --tier other than raw/auto works for now",
        req.step.map_or(String::new(), |s| format!(" --step {}", super::times::format_duration(s))),
        if req.group_by.is_empty() { String::new() } else { format!(" --group-by {}", req.group_by.join(",")) },
        req.top_k.map_or(String::new(), |k| format!(" --top-k {k}")),
    ))
}

/// What `strata compact` asks for.
#[derive(Debug, Clone, Default)]
pub struct CompactRequest {
    /// Plan only: report what would be merged, write nothing.
    pub dry_run: bool,
}

/// One merge of the compaction: input segment ids and the output.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub inputs: Vec<u64>,
    pub output: Option<u64>,
    pub level: u8,
    pub min_t: i64,
    pub max_t: i64,
    pub samples: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// What a compaction did (or would do, when planned only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompactReport {
    pub merges: Vec<Merge>,
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub seconds: f64,
}

/// PLUG-IN POINT for compaction: plan (pure, over segment metadata) and, unless
/// `req.dry_run`, execute the merges, then fill in the report.
pub fn compact(_db: &Db, req: &CompactRequest) -> CliResult<CompactReport> {
    let what = if req.dry_run { "planning a compaction" } else { "compaction" };
    fail(format!("{what} is not in this build yet: the compactor is being written; nothing was changed"))
}

/// Retention settings given on the command line; `None` keeps the engine's default.
#[derive(Debug, Clone, Default)]
pub struct RetentionRequest {
    pub raw_ms: Option<i64>,
    pub tier_5m_ms: Option<i64>,
    pub tier_1h_ms: Option<i64>,
    pub max_disk_bytes: Option<u64>,
    /// Delete what has expired; otherwise only report it.
    pub apply: bool,
}

/// A segment (or part of one) that retention drops.
#[derive(Debug, Clone, PartialEq)]
pub struct Expired {
    pub segment: u64,
    pub tier: u8,
    pub min_t: i64,
    pub max_t: i64,
    pub samples: u64,
    pub bytes: u64,
    /// Why: "raw older than 7d", "disk cap", ...
    pub reason: String,
}

/// What retention dropped (or would drop).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionReport {
    pub expired: Vec<Expired>,
    /// Oldest timestamp kept per tier (raw, 5m, 1h) after retention.
    pub cutoffs: [Option<i64>; 3],
    pub applied: bool,
}

/// PLUG-IN POINT for retention: evaluate the policy and, when `req.apply`, drop
/// the expired data, then fill in the report.
pub fn retention(_db: &Db, req: &RetentionRequest) -> CliResult<RetentionReport> {
    let d = |v: Option<i64>| v.map_or("default".to_string(), super::times::format_duration);
    let cap = req.max_disk_bytes.map_or("none".to_string(), super::human::bytes);
    fail(format!(
        "retention (raw {}, 5m {}, 1h {}, disk cap {cap}{}) is not in this build yet: the retention policy is \
         being written; nothing was changed",
        d(req.raw_ms),
        d(req.tier_5m_ms),
        d(req.tier_1h_ms),
        if req.apply { ", apply" } else { ", report only" }
    ))
}
