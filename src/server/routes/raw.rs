//! `GET /query/raw`: every sample of the matching series, straight from the
//! engine's querier (no query layer), rendered by hand.

use std::fmt::Write;
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;

use super::query::PointFormat;
use super::read_params::labels_param;
use super::{inclusive_range, Params};
use crate::server::error::{ApiError, ApiResult};
use crate::server::exec::run_read;
use crate::server::limits::Limits;
use crate::server::metrics::QueryKind;
use crate::server::values::json_time;
use crate::server::Shared;
use crate::text::jsonl::{write_json_object, write_json_string};
use crate::text::value::write_json_value;
use crate::{Db, Matcher, METRIC_NAME};

/// `GET /query/raw?metric_name=cpu&start_time=..&end_time=..&labels={"host":"a"}`:
/// every sample of the matching series in `[start_time, end_time]` (both inclusive,
/// both optional), series by series in time order. `format=compact` answers
/// `series: [{labels, points: [[ts_ms, value], ...]}]` instead of `data`.
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
    matchers.extend(labels_param(&p)?);
    let db = st.db.clone();
    let limits = st.limits.clone();
    let format = PointFormat::parse(p.get("format").unwrap_or(""))?;
    let header = {
        let mut h = String::from("{\"metric_name\":");
        write_json_string(&mut h, &name);
        for (key, t) in [("start_time", start), ("end_time", end)] {
            let _ = write!(h, ",\"{key}\":");
            match t {
                Some(t) => json_time(&mut h, t),
                None => h.push_str("null"),
            }
        }
        if format == PointFormat::Compact {
            h.push_str(",\"format\":\"compact\"");
        }
        h.push(',');
        h
    };
    let out = run_read(move || render_raw(&db, range, &matchers, &limits, format, header)).await?;
    st.metrics.query(QueryKind::Raw, started.elapsed());
    let mut r = out.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// Reads under the range × series budget, then writes the JSON into one buffer
/// (values that JSON cannot hold, NaN and ±Inf, become strings; see `values`).
fn render_raw(
    db: &Db,
    range: std::ops::Range<i64>,
    matchers: &[Matcher],
    limits: &Limits,
    format: PointFormat,
    mut out: String,
) -> Result<String, ApiError> {
    let q = db.querier(range);
    let mut read = Vec::new();
    let mut count = 0usize;
    for item in q.select(matchers)? {
        let (labels, samples) = item?;
        count += samples.len();
        if read.len() >= limits.max_query_series || count > limits.max_query_samples {
            return Err(limits.over_budget());
        }
        read.push((labels, samples));
    }
    out.reserve(
        64 + read.len() * 96 + count * format.point_bytes() + count * if format == PointFormat::Full { 40 } else { 0 },
    );
    let _ = write!(out, "\"count\":{count},\"series_count\":{},", read.len());
    match format {
        PointFormat::Full => {
            out.push_str("\"data\":[");
            let mut first = true;
            for (labels, samples) in &read {
                let mut lj = String::new();
                write_json_object(&mut lj, labels.iter().filter(|(k, _)| *k != METRIC_NAME));
                for s in samples.as_slice() {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str("{\"timestamp\":");
                    json_time(&mut out, s.ts);
                    let _ = write!(out, ",\"timestamp_ms\":{},\"value\":", s.ts);
                    write_json_value(&mut out, s.value);
                    out.push_str(",\"labels\":");
                    out.push_str(&lj);
                    out.push('}');
                }
            }
        }
        PointFormat::Compact => {
            out.push_str("\"series\":[");
            for (i, (labels, samples)) in read.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"labels\":");
                write_json_object(&mut out, labels.iter().filter(|(k, _)| *k != METRIC_NAME));
                out.push_str(",\"points\":[");
                for (j, s) in samples.as_slice().iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    format.point(&mut out, s.ts, s.value);
                }
                out.push_str("]}");
            }
        }
    }
    out.push_str("]}");
    Ok(out)
}
