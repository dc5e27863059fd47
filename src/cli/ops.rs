//! The engine calls behind `strata query`, `strata compact` and `strata
//! retention`: each subcommand parses its arguments into a request here and
//! formats the report that comes back.

use std::time::{Duration, Instant};

use strata::retention::{expired_segments, over_disk_cap, partially_expired};
use strata::{Db, Labels, Matcher, RetentionPolicy, Sample, TierDurations};

use super::{CliError, CliResult};

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

/// Runs a query through the engine's query layer.
pub fn query(db: &Db, req: &QueryRequest) -> CliResult<Vec<ResultSeries>> {
    let agg = match req.agg {
        Agg::Raw => strata::Agg::Raw,
        Agg::Avg => strata::Agg::Avg,
        Agg::Sum => strata::Agg::Sum,
        Agg::Min => strata::Agg::Min,
        Agg::Max => strata::Agg::Max,
        Agg::Count => strata::Agg::Count,
        Agg::First => strata::Agg::First,
        Agg::Last => strata::Agg::Last,
        Agg::Rate => strata::Agg::Rate,
        Agg::Increase => strata::Agg::Increase,
        Agg::Stddev => strata::Agg::Stddev,
        Agg::Quantile => strata::Agg::Quantile(req.quantile.unwrap_or(0.99)),
    };
    let tier = match req.tier {
        Tier::Auto => strata::Tier::Auto,
        Tier::Raw => strata::Tier::Raw,
        Tier::FiveMin => strata::Tier::FiveMin,
        Tier::OneHour => strata::Tier::Hour,
    };
    let mut q = strata::Query::new()
        .select(req.matchers.iter().cloned())
        .range(req.start..req.end.saturating_add(1))
        .agg(agg)
        .tier(tier);
    if let Some(step) = req.step {
        let ms = u64::try_from(step).map_err(|_| CliError::new("--step must be positive"))?;
        q = q.step(Duration::from_millis(ms));
    }
    if !req.group_by.is_empty() {
        q = q.group_by(req.group_by.iter().cloned());
    }
    if let Some(k) = req.top_k {
        q = q.top_k(k);
    }
    let r = db.query(&q).map_err(|e| CliError::new(format!("query: {e}")))?;
    Ok(r.series.into_iter().map(|s| ResultSeries { labels: s.labels, samples: s.points }).collect())
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

/// Plans compaction and, unless `req.dry_run`, runs it (downsampling first, then the
/// merges, then retention, as the background worker does).
pub fn compact(db: &Db, req: &CompactRequest) -> CliResult<CompactReport> {
    let t = Instant::now();
    let before = db.segments();
    let plans = db.compaction_plan();
    let merges = plans
        .iter()
        .map(|p| {
            let inputs: Vec<_> = before.iter().filter(|m| p.inputs.contains(&m.id)).collect();
            Merge {
                inputs: p.inputs.clone(),
                output: None,
                level: p.output_level,
                min_t: inputs.iter().map(|m| m.min_t).min().unwrap_or(p.window.0),
                max_t: inputs.iter().map(|m| m.max_t).max().unwrap_or(p.window.1),
                samples: inputs.iter().map(|m| m.samples).sum(),
                bytes_in: inputs.iter().map(|m| m.bytes).sum(),
                bytes_out: 0,
            }
        })
        .collect();
    let bytes_before = before.iter().map(|m| m.bytes).sum();
    let mut report = CompactReport {
        merges,
        segments_before: before.len(),
        bytes_before,
        bytes_after: bytes_before,
        ..Default::default()
    };
    report.segments_after = before.len();
    if !req.dry_run {
        db.compact().map_err(|e| CliError::new(format!("compaction: {e}")))?;
        let after = db.segments();
        // Outputs are the new segments; attribute each to the merge whose window holds it.
        let fresh: Vec<_> = after.iter().filter(|m| !before.iter().any(|b| b.id == m.id)).collect();
        for (m, p) in report.merges.iter_mut().zip(&plans) {
            if let Some(o) = fresh.iter().find(|o| o.tier == p.tier && o.min_t >= p.window.0 && o.max_t <= p.window.1) {
                m.output = Some(o.id);
                m.bytes_out = o.bytes;
            }
        }
        report.segments_after = after.len();
        report.bytes_after = after.iter().map(|m| m.bytes).sum();
    }
    report.seconds = t.elapsed().as_secs_f64();
    Ok(report)
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

/// Evaluates retention (the engine's defaults, overridden per tier by `req`) and,
/// when `req.apply`, drops what has expired.
pub fn retention(db: &Db, req: &RetentionRequest) -> CliResult<RetentionReport> {
    let current = db.retention_policy();
    let d = |ms: Option<i64>, dflt: Duration| -> CliResult<Duration> {
        match ms {
            None => Ok(dflt),
            Some(v) if v > 0 => Ok(Duration::from_millis(v as u64)),
            Some(_) => Err(CliError::new("retention durations must be positive")),
        }
    };
    let base = *current.default_durations();
    let durations =
        TierDurations::new(d(req.raw_ms, base.raw)?, d(req.tier_5m_ms, base.five_min)?, d(req.tier_1h_ms, base.hour)?);
    let mut policy = RetentionPolicy::new(durations).map_err(|e| CliError::new(e.to_string()))?;
    for rule in current.rules() {
        policy.add_rule(rule.clone()).map_err(|e| CliError::new(e.to_string()))?;
    }
    let policy = policy.with_max_disk_bytes(req.max_disk_bytes.or(current.max_disk_bytes()));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |t| t.as_millis() as i64);
    let metas = db.segments();
    let longest = policy.longest_all();
    let mut report = RetentionReport { applied: req.apply, ..Default::default() };
    for t in 0..3u8 {
        let keep = policy.longest(t);
        report.cutoffs[usize::from(t)] =
            (keep != TierDurations::FOREVER).then(|| strata::retention::oldest_retained(now, keep));
    }
    let describe = |id: u64, reason: String| {
        metas.iter().find(|m| m.id == id).map(|m| Expired {
            segment: id,
            tier: m.tier,
            min_t: m.min_t,
            max_t: m.max_t,
            samples: m.samples,
            bytes: m.bytes,
            reason,
        })
    };
    let names = ["raw", "5m", "1h"];
    for id in expired_segments(&metas, &longest, now) {
        let tier = metas.iter().find(|m| m.id == id).map_or(0, |m| usize::from(m.tier.min(2)));
        report.expired.extend(describe(id, format!("{} data past its retention", names[tier])));
    }
    for id in partially_expired(&metas, &longest, now) {
        report.expired.extend(describe(id, "partly past its retention (rewritten without it)".into()));
    }
    if let Some(cap) = policy.max_disk_bytes() {
        let wal = db.stats().map_err(|e| CliError::new(e.to_string()))?.wal_bytes;
        for id in over_disk_cap(&metas, wal, cap) {
            if !report.expired.iter().any(|e| e.segment == id) {
                report.expired.extend(describe(id, "over the disk cap".into()));
            }
        }
    }
    if req.apply {
        db.set_retention(policy);
        db.apply_retention().map_err(|e| CliError::new(format!("retention: {e}")))?;
    }
    Ok(report)
}
