//! `GET /query/summary`: count, min, max, avg, p50, p95 and p99 of the raw samples
//! in a range, per series and over all of them together (seed 001's summary
//! statistics), exactly: the percentiles come from every sample, never a tier.

use std::fmt::Write;
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;

use super::read_params::labels_param;
use super::{inclusive_range, Params};
use crate::server::error::{ApiError, ApiResult};
use crate::server::exec::run_read;
use crate::server::limits::Limits;
use crate::server::metrics::QueryKind;
use crate::server::values::json_time;
use crate::server::Shared;
use crate::text::jsonl::{write_json_object, write_json_string};
use crate::text::selector::parse_selector;
use crate::text::value::write_json_value;
use crate::{Db, Labels, Matcher, Summary, SummaryReport, METRIC_NAME};

/// `?metric_name=cpu&start_time=..&end_time=..&labels={"host":"a"}` (or
/// `selector=cpu{host=~"a|b"}`, alone or with them): both times optional and inclusive.
pub(super) async fn summary(State(st): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let started = Instant::now();
    let p = Params::parse(q.as_deref())?;
    let name = p.get("metric_name").filter(|s| !s.is_empty()).map(str::to_string);
    let selector = p.get("selector").filter(|s| !s.trim().is_empty());
    let mut matchers = match selector {
        Some(s) => parse_selector(s).map_err(|e| ApiError::bad_request(format!("selector: {e}")))?,
        None => Vec::new(),
    };
    match &name {
        Some(n) => matchers.push(Matcher::eq(METRIC_NAME, n.clone())),
        None if selector.is_none() => {
            return Err(ApiError::bad_request("missing query parameter metric_name (or selector)"));
        }
        None => {}
    }
    matchers.extend(labels_param(&p)?);
    let (start, end) = (p.time("start_time")?, p.time("end_time")?);
    let range = inclusive_range(start, end)?;
    let mut head = String::from("{\"metric_name\":");
    match &name {
        Some(n) => write_json_string(&mut head, n),
        None => head.push_str("null"),
    }
    if let Some(s) = selector {
        head.push_str(",\"selector\":");
        write_json_string(&mut head, s);
    }
    for (key, t) in [("start_time", start), ("end_time", end)] {
        let _ = write!(head, ",\"{key}\":");
        match t {
            Some(t) => json_time(&mut head, t),
            None => head.push_str("null"),
        }
    }
    let (db, limits) = (st.db.clone(), st.limits.clone());
    let out = run_read(move || render(&db, range, &matchers, &limits, head)).await?;
    st.metrics.query(QueryKind::Summary, started.elapsed());
    let mut r = out.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// Reads the series under the range × series budget of buffered reads, then summarises.
fn render(
    db: &Db,
    range: std::ops::Range<i64>,
    matchers: &[Matcher],
    limits: &Limits,
    mut out: String,
) -> Result<String, ApiError> {
    let q = db.querier(range);
    let mut read: Vec<(Labels, Vec<crate::Sample>)> = Vec::new();
    let mut count = 0usize;
    for item in q.select(matchers)? {
        let (labels, samples) = item?;
        count += samples.len();
        if read.len() >= limits.max_query_series || count > limits.max_query_samples {
            return Err(limits.over_budget());
        }
        read.push((labels, samples.collect()));
    }
    let report = SummaryReport::of(&read);
    let _ = write!(out, ",\"series_count\":{},\"overall\":", report.series.len());
    write_summary(&mut out, &report.overall);
    out.push_str(",\"series\":[");
    for (i, (labels, s)) in report.series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"metric_name\":");
        match labels.metric_name() {
            Some(n) => write_json_string(&mut out, n),
            None => out.push_str("null"),
        }
        out.push_str(",\"labels\":");
        write_json_object(&mut out, labels.iter().filter(|(k, _)| *k != METRIC_NAME));
        out.push_str(",\"summary\":");
        write_summary(&mut out, s);
        out.push('}');
    }
    out.push_str("]}");
    Ok(out)
}

/// `{"count", "min", "max", "avg", "p50", "p95", "p99"}`; NaN (no sample) as `"NaN"`.
fn write_summary(out: &mut String, s: &Summary) {
    let _ = write!(out, "{{\"count\":{}", s.count);
    for (k, v) in [("min", s.min), ("max", s.max), ("avg", s.avg), ("p50", s.p50), ("p95", s.p95), ("p99", s.p99)] {
        let _ = write!(out, ",\"{k}\":");
        write_json_value(out, v);
    }
    out.push('}');
}
