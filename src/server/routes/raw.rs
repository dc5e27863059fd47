//! `GET /query/raw`: every sample of the matching series, straight from the
//! engine's querier (no query layer), rendered by hand.

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
use crate::server::time::format_rfc3339;
use crate::server::Shared;
use crate::text::jsonl::{write_json_object, write_json_string};
use crate::text::value::write_json_value;
use crate::{Db, Matcher, METRIC_NAME};

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
    matchers.extend(labels_param(&p)?);
    let db = st.db.clone();
    let limits = st.limits.clone();
    let header = {
        let mut h = String::from("{\"metric_name\":");
        write_json_string(&mut h, &name);
        let _ = write!(
            h,
            ",\"start_time\":{},\"end_time\":{},",
            start.map_or("null".into(), |t| format!("\"{}\"", format_rfc3339(t))),
            end.map_or("null".into(), |t| format!("\"{}\"", format_rfc3339(t))),
        );
        h
    };
    let out = run_read(move || render_raw(&db, range, &matchers, &limits, header)).await?;
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
        let mut lj = String::new();
        write_json_object(&mut lj, labels.iter().filter(|(k, _)| *k != METRIC_NAME));
        for s in samples {
            if !data.is_empty() {
                data.push(',');
            }
            let _ = write!(data, "{{\"timestamp\":\"{}\",\"timestamp_ms\":{},\"value\":", format_rfc3339(s.ts), s.ts);
            write_json_value(&mut data, s.value);
            let _ = write!(data, ",\"labels\":{lj}}}");
        }
    }
    let _ = write!(out, "\"count\":{count},\"series_count\":{series},\"data\":[{data}]}}");
    Ok(out)
}
