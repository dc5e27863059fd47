//! `POST /import`: the JSON lines `/export?format=json` writes (VictoriaMetrics'
//! form), one series per line: `{"metric":{...},"values":[...],"timestamps":[...]}`.
//! Values are numbers or the strings of `values` (`"NaN"`, `"+Inf"`, `"NaN(0x...)"`),
//! so an export imports back bit for bit.
//!
//! The whole body is parsed and validated first (a bad line rejects it, naming the
//! line, with nothing stored). It is then committed in chunks of at most
//! `max_samples_per_request` samples and `max_series_per_request` series, so an
//! import larger than one write request is accepted; if storage fails midway, the
//! chunks before the failure stay committed. Answers 204.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::batch::Batch;
use super::error::{ApiError, ApiResult};
use super::limits::Limits;
use super::metrics::Protocol;
use super::{body, values, Shared};
use crate::{Db, Labels};

#[derive(Deserialize)]
struct Line {
    metric: BTreeMap<String, String>,
    values: Vec<Value>,
    timestamps: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Value {
    Num(f64),
    Str(String),
}

pub(crate) async fn import(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let limits = st.limits.clone();
    let db = st.db.clone();
    let n = st
        .writers
        .run(move || {
            let series = parse(&bytes, &limits)?;
            commit_chunks(&db, series, &limits)
        })
        .await?;
    st.metrics.ingested(Protocol::Import, n as u64);
    let mut r: Response = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(HeaderName::from_static("x-strata-samples"), HeaderValue::from(n));
    Ok(r)
}

type Series = (Labels, Vec<(i64, f64)>);

fn parse(body: &[u8], limits: &Limits) -> Result<Vec<Series>, ApiError> {
    let mut out = Vec::new();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let at = |e: ApiError| e.context(format_args!("line {}", i + 1)).with("line", (i + 1) as u64);
        let line: Line =
            serde_json::from_slice(raw).map_err(|e| at(ApiError::bad_request(format!("invalid JSON line: {e}"))))?;
        if line.values.len() != line.timestamps.len() {
            return Err(at(ApiError::bad_request(format!(
                "{} values but {} timestamps",
                line.values.len(),
                line.timestamps.len()
            ))));
        }
        let labels = limits.labels(line.metric).map_err(at)?;
        let mut samples = Vec::with_capacity(line.values.len());
        for (j, (v, ts)) in line.values.into_iter().zip(line.timestamps).enumerate() {
            let v = match v {
                Value::Num(n) => n,
                Value::Str(s) => values::parse_value_str(&s).ok_or_else(|| {
                    at(ApiError::bad_request(format!("values[{j}]: {:?} is not a number", super::limits::prefix(&s))))
                })?,
            };
            samples.push((ts, v));
        }
        out.push((labels, samples));
    }
    Ok(out)
}

/// Commits in chunks that each respect the per-request limits.
fn commit_chunks(db: &Db, series: Vec<Series>, limits: &Limits) -> Result<usize, ApiError> {
    let mut total = 0;
    let mut batch = Batch::new(limits);
    for (labels, samples) in series {
        for part in samples.chunks(limits.max_samples_per_request.max(1)) {
            if batch.len() + part.len() > limits.max_samples_per_request
                || batch.series_count() >= limits.max_series_per_request
            {
                total += batch.commit_blocking(db)?;
                batch = Batch::new(limits);
            }
            let sid = batch.series(labels.clone(), limits)?;
            for &(ts, v) in part {
                batch.push(sid, ts, v, limits)?;
            }
        }
    }
    total += batch.commit_blocking(db)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_export_lines_and_names_bad_ones() {
        let l = Limits::default();
        let body = b"{\"metric\":{\"__name__\":\"m\",\"a\":\"b\"},\"values\":[1.5,\"NaN\",\"-Inf\",\"NaN(0x7ff0000000000002)\"],\"timestamps\":[1,2,3,4]}\n\n";
        let s = parse(body, &l).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1[3].1.to_bits(), 0x7ff0_0000_0000_0002);
        let e = parse(b"\n{\"metric\":{\"__name__\":\"m\"},\"values\":[1],\"timestamps\":[]}", &l).err().unwrap();
        assert!(e.message.starts_with("line 2: 1 values but 0 timestamps"), "{}", e.message);
        let e = parse(b"{\"metric\":{\"__name__\":\"m\"},\"values\":[\"x\"],\"timestamps\":[1]}", &l).err().unwrap();
        assert!(e.message.contains("values[0]"), "{}", e.message);
        let e = parse(b"{\"metric\":{\"bad-name\":\"m\"},\"values\":[],\"timestamps\":[]}", &l).err().unwrap();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(parse(b"{not json", &l).is_err());
    }
}
