//! Seed 004 reads that need only the engine: `GET /metrics/list` and `GET /query/raw`.
//! (Aggregations, rollups and metric info come from the query layer; see `routes/mod.rs`.)

use std::fmt::Write;
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};

use super::{inclusive_range, Params};
use crate::server::batch::run_blocking;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::limits::Limits;
use crate::server::metrics::QueryKind;
use crate::server::time::format_rfc3339;
use crate::server::values::{json_str, json_value};
use crate::server::Shared;
use crate::{Db, Matcher, METRIC_NAME};

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 10_000;

/// `GET /metrics/list?page=1&page_size=100&search=cpu`: metric names with their
/// series counts, sorted by name; `search` is a case-insensitive substring.
pub(super) async fn list_metrics(State(st): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref())?;
    let page = p.usize("page")?.unwrap_or(1);
    let page_size = p.usize("page_size")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if page == 0 {
        return Err(ApiError::bad_request("page: pages are numbered from 1"));
    }
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!("page_size: must be between 1 and {MAX_PAGE_SIZE}")));
    }
    let search = p.get("search").map(str::to_lowercase).filter(|s| !s.is_empty());
    let db = st.db.clone();
    let mut names = run_blocking(move || Ok(db.series_per_value(METRIC_NAME))).await?;
    if let Some(s) = &search {
        names.retain(|(n, _)| n.to_lowercase().contains(s.as_str()));
    }
    let total = names.len();
    let metrics: Vec<Value> = names
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|(name, series)| json!({"metric_name": name, "series_count": series}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "metrics": metrics,
            "total": total,
            "page": page,
            "page_size": page_size,
            "total_pages": total.div_ceil(page_size),
            "search": search,
        }),
    ))
}

/// `GET /query/raw?metric_name=cpu&start_time=..&end_time=..&labels={"host":"a"}`:
/// every sample of the matching series in `[start_time, end_time]` (both inclusive,
/// both optional), series by series in time order.
pub(super) async fn raw(State(st): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let started = Instant::now();
    let p = Params::parse(q.as_deref())?;
    let name = p
        .get("metric_name")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing query parameter metric_name"))?
        .to_string();
    let (start, end) = (p.time("start_time")?, p.time("end_time")?);
    let range = inclusive_range(start, end)?;
    let mut matchers = vec![Matcher::eq(METRIC_NAME, name.clone())];
    if let Some(raw) = p.get("labels").filter(|s| !s.trim().is_empty()) {
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("labels: invalid JSON object: {e}")))?;
        let Value::Object(m) = v else {
            return Err(ApiError::bad_request("labels: expected a JSON object of name -> value"));
        };
        for (k, v) in m {
            let Value::String(v) = v else {
                return Err(ApiError::bad_request(format!("labels.{k}: expected a string")));
            };
            matchers.push(Matcher::eq(k, v));
        }
    }
    let db = st.db.clone();
    let limits = st.limits.clone();
    let header = {
        let mut h = String::from("{\"metric_name\":");
        json_str(&name, &mut h);
        let _ = write!(
            h,
            ",\"start_time\":{},\"end_time\":{},",
            start.map_or("null".into(), |t| format!("\"{}\"", format_rfc3339(t))),
            end.map_or("null".into(), |t| format!("\"{}\"", format_rfc3339(t))),
        );
        h
    };
    let out = run_blocking(move || render_raw(&db, range, &matchers, &limits, header)).await?;
    st.metrics.query(QueryKind::Raw, started.elapsed());
    let mut r = out.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// Reads under the range × series budget and renders the JSON by hand (values
/// that JSON cannot hold, NaN and ±Inf, become strings; see `values`).
fn render_raw(
    db: &Db,
    range: std::ops::Range<i64>,
    matchers: &[Matcher],
    limits: &Limits,
    mut out: String,
) -> Result<String, ApiError> {
    let q = db.querier(range);
    let mut data = String::new();
    let (mut count, mut series) = (0usize, 0usize);
    for item in q.select(matchers)? {
        let (labels, samples) = item?;
        series += 1;
        count += samples.len();
        if series > limits.max_query_series || count > limits.max_query_samples {
            return Err(limits.over_budget());
        }
        let mut lj = String::from("{");
        for (i, (k, v)) in labels.iter().filter(|(k, _)| *k != METRIC_NAME).enumerate() {
            if i > 0 {
                lj.push(',');
            }
            json_str(k, &mut lj);
            lj.push(':');
            json_str(v, &mut lj);
        }
        lj.push('}');
        for s in samples {
            if !data.is_empty() {
                data.push(',');
            }
            let _ = write!(data, "{{\"timestamp\":\"{}\",\"timestamp_ms\":{},\"value\":", format_rfc3339(s.ts), s.ts);
            json_value(s.value, &mut data);
            let _ = write!(data, ",\"labels\":{lj}}}");
        }
    }
    let _ = write!(out, "\"count\":{count},\"series_count\":{series},\"data\":[{data}]}}");
    Ok(out)
}
