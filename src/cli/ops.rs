//! The engine calls behind `strata query`, `strata compact` and `strata
//! retention`: each subcommand parses its arguments into a request here and
//! formats the report that comes back.

use std::time::{Duration, Instant};

use strata::retention::SegmentDrop;
use strata::{Agg, Db, Labels, Matcher, Sample, Tier};

use super::{CliError, CliResult};

/// A query as `strata query` parsed it. Times in ms; `end` is inclusive.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub matchers: Vec<Matcher>,
    pub start: i64,
    pub end: i64,
    pub step: Option<i64>,
    /// With a quantile's q resolved (`--agg p99`, or `--agg quantile --quantile 0.99`).
    pub agg: Agg,
    /// `Some` (even empty: one group of everything) groups the result.
    pub group_by: Option<Vec<String>>,
    /// The k of `--top-k` or `--bottom-k`.
    pub top_k: Option<usize>,
    /// `--bottom-k`: keep the lowest-ranked.
    pub bottom: bool,
    pub rank_by: strata::RankBy,
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
    let mut q = strata::Query::new()
        .select(req.matchers.iter().cloned())
        .range_inclusive(req.start..=req.end)
        .agg(req.agg)
        .tier(req.tier);
    if let Some(step) = req.step {
        let ms = u64::try_from(step).map_err(|_| CliError::new("--step must be positive"))?;
        q = q.step(Duration::from_millis(ms));
    }
    if let Some(g) = &req.group_by {
        q = q.group_by(g.iter().cloned());
    }
    if let Some(k) = req.top_k {
        q = if req.bottom { q.bottom_k(k) } else { q.top_k(k) }.rank_by(req.rank_by);
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
    /// Samples the head held and the seal wrote to a segment first.
    pub sealed_samples: u64,
    /// Rollup segments the downsampler wrote.
    pub rollups_written: usize,
    /// What retention removed (or, in a dry run, would remove).
    pub removed: Vec<SegmentDrop>,
    /// Archive files written before raw data was removed, and removals skipped
    /// because their archive could not be written.
    pub archived: Vec<strata::retention::archive::ArchivedFile>,
    pub archive_errors: Vec<String>,
}

/// Plans compaction and, unless `req.dry_run`, runs it (downsampling first, then the
/// merges, then retention, as the background worker does).
pub fn compact(db: &Db, req: &CompactRequest) -> CliResult<CompactReport> {
    let t = Instant::now();
    // Seal the head first, so that what is compacted is everything written so far.
    let sealed_samples = if req.dry_run {
        0
    } else {
        let held = db.stats().map_err(|e| CliError::new(e.to_string()))?.head_samples;
        db.flush().map_err(|e| CliError::new(format!("sealing the head: {e}")))?;
        held
    };
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
    report.sealed_samples = sealed_samples;
    if req.dry_run {
        report.removed = db.retention_plan().drops;
    } else {
        let done = db.compact().map_err(|e| CliError::new(format!("compaction: {e}")))?;
        report.removed = done.removed;
        report.archived = done.archived;
        report.archive_errors = done.archive_errors;
        report.rollups_written = done.rollups_written;
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
