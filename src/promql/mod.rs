//! PromQL over the engine: expressions are parsed by the `promql-parser` crate and
//! evaluated here over [`crate::Querier`], with the semantics of Prometheus 2.42
//! (the version CI runs against). See `docs/PROMQL.md` for what is supported and
//! where the answers differ from Prometheus 3.
//!
//! Entry points: [`crate::Db::promql_instant`] and [`crate::Db::promql_range`] with
//! default [`Options`], or the `_with` variants to set the lookback delta, the
//! sample limit and a deadline. [`check`] parses an expression without evaluating it.
//!
//! Errors are a [`PromqlError`], separate from [`crate::Error`]: its [`ErrorKind`]
//! is Prometheus's `errorType` (`bad_data`, `execution`, `timeout`, `internal`), so
//! an HTTP layer can answer in Prometheus's shape. Storage errors become `internal`.

mod aggregate;
mod binary;
mod check;
mod db;
mod eval;
mod functions;
mod guard;
mod metric;
mod range_fns;
mod scan;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tier_tests;
mod tiers;

use std::fmt;
use std::time::{Duration, Instant};

pub use check::{check, Checked};
pub use metric::Metric;

/// The most points one series may have in a range query's answer, as in Prometheus's API.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// How a query is evaluated. `Default` gives Prometheus's defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// How far back an instant selector looks for a sample (Prometheus's `--query.lookback-delta`).
    pub lookback_delta_ms: i64,
    /// Most samples a query may load from storage and from subqueries
    /// (Prometheus's `--query.max-samples`).
    pub max_samples: usize,
    /// Wall-clock time the evaluation may take; `None` for no limit.
    pub timeout: Option<Duration>,
    /// Step of a subquery written without one (`x[1h:]`): Prometheus's global evaluation interval.
    pub default_subquery_step_ms: i64,
    /// Answer `count`/`sum`/`avg`/`min`/`max`/`present_over_time` of a selector
    /// from the rollup tiers where they hold the same samples (the answer is
    /// raw evaluation's; see docs/PROMQL.md). `false` always reads raw samples.
    pub use_tiers: bool,
    /// Threads a selector's series are read and evaluated on: 0 for one per
    /// core, 1 to stay on the calling thread.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Some(Duration::from_secs(120)),
            default_subquery_step_ms: 60 * 1000,
            use_tiers: true,
            threads: 0,
        }
    }
}

/// One element of an instant vector: labels, evaluation time (ms) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub metric: Metric,
    pub t: i64,
    pub v: f64,
}

/// One series of a matrix: labels and `(time ms, value)` points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub metric: Metric,
    pub points: Vec<(i64, f64)>,
}

/// A query's answer, in Prometheus's four result types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Vector(Vec<InstantSample>),
    /// Series sorted by labels (a range query's answer, or an instant query of a range vector).
    Matrix(Vec<RangeSeries>),
    Scalar(i64, f64),
    String(i64, String),
}

impl Value {
    /// Prometheus's `resultType`: `vector`, `matrix`, `scalar` or `string`.
    pub fn result_type(&self) -> &'static str {
        match self {
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
            Value::Scalar(..) => "scalar",
            Value::String(..) => "string",
        }
    }
}

/// Prometheus's `errorType` of a failed query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The expression or its parameters are wrong (parse errors, type errors, limits on the request).
    BadData,
    /// Evaluation failed (too many samples, many-to-many matching, duplicate label sets).
    Execution,
    /// The deadline passed.
    Timeout,
    /// Storage failed underneath the query.
    Internal,
}

impl ErrorKind {
    /// The string Prometheus's API puts in `errorType`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A failed query: its kind and Prometheus's message.
#[derive(Debug, Clone, PartialEq)]
pub struct PromqlError {
    pub kind: ErrorKind,
    pub message: String,
}

impl PromqlError {
    pub fn bad_data(message: impl Into<String>) -> Self {
        PromqlError { kind: ErrorKind::BadData, message: message.into() }
    }
    pub fn execution(message: impl Into<String>) -> Self {
        PromqlError { kind: ErrorKind::Execution, message: message.into() }
    }
    pub(crate) fn timeout() -> Self {
        PromqlError { kind: ErrorKind::Timeout, message: "query timed out in expression evaluation".into() }
    }
    pub(crate) fn too_many_samples() -> Self {
        PromqlError::execution("query processing would load too many samples into memory in query execution")
    }
    pub(crate) fn unsupported(what: &str) -> Self {
        PromqlError::bad_data(format!("{what} is not supported"))
    }
}

impl fmt::Display for PromqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for PromqlError {}

impl From<crate::Error> for PromqlError {
    fn from(e: crate::Error) -> Self {
        PromqlError { kind: ErrorKind::Internal, message: e.to_string() }
    }
}

pub type Result<T> = std::result::Result<T, PromqlError>;

/// Checks a range query's parameters as Prometheus's API does.
pub(crate) fn check_range(start_ms: i64, end_ms: i64, step_ms: i64) -> Result<()> {
    if end_ms < start_ms {
        return Err(PromqlError::bad_data("end timestamp must not be before start time"));
    }
    if step_ms <= 0 {
        return Err(PromqlError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms) > i128::from(MAX_POINTS_PER_SERIES) {
        return Err(PromqlError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    Ok(())
}

pub(crate) fn deadline(opts: &Options) -> Option<Instant> {
    opts.timeout.map(|d| Instant::now() + d)
}
