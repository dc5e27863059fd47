//! `POST /import`: the JSON lines `/export?format=json` writes (VictoriaMetrics'
//! form), one series per line: `{"metric":{...},"values":[...],"timestamps":[...]}`.
//! Values are numbers or the strings of `values` (`"NaN"`, `"+Inf"`, `"NaN(0x...)"`),
//! so an export imports back bit for bit.
//!
//! The whole body is parsed first; a line that cannot be read is refused, named by
//! number, and the others are kept. They are committed in chunks of at most
//! `max_samples_per_request` samples and `max_series_per_request` series, so an
//! import larger than one write request is accepted; a sample the engine refuses
//! (older than retention, ...) is refused alone. Answers 204, or 400/422 naming the
//! refused points (`batch::Refusals`). If storage fails midway, the chunks before the
//! failure stay committed.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::batch::{Batch, Outcome, Refusals};
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
    let out = st
        .writers
        .run(move || {
            let (series, refused) = parse(&bytes, &limits);
            commit_chunks(&db, series, refused, &limits)
        })
        .await?;
    st.metrics.ingested(Protocol::Import, out.stored as u64);
    let n = out.into_result()?;
    let mut r: Response = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(HeaderName::from_static("x-strata-samples"), HeaderValue::from(n));
    Ok(r)
}

/// A line's series, its samples, and its line number.
type Series = (Labels, Vec<(i64, f64)>, u64);

/// Every line that reads, and the refusals of those that do not.
fn parse(body: &[u8], limits: &Limits) -> (Vec<Series>, Refusals) {
    let mut out = Vec::new();
    let mut refused = Refusals::new(Some("line"));
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let n = (i + 1) as u64;
        match parse_line(raw, limits) {
            Ok((labels, samples)) => out.push((labels, samples, n)),
            Err((e, points)) => refused.add_error(Some(n), points, e.context(format_args!("line {n}")).with("line", n)),
        }
    }
    (out, refused)
}

/// Why a line was refused, and how many samples it held (1 when unknown).
type LineError = (ApiError, u64);

/// One line's series and samples, or why not.
fn parse_line(raw: &[u8], limits: &Limits) -> Result<(Labels, Vec<(i64, f64)>), LineError> {
    // Numbers past f64's range read as ±Inf, as in every text input (`values.rs`).
    let line: Line = serde_json::from_slice(&values::quote_huge_numbers(raw))
        .map_err(|e| (ApiError::bad_request(format!("invalid JSON line: {e}")), 1))?;
    let points = line.values.len().max(line.timestamps.len()) as u64;
    if line.values.len() != line.timestamps.len() {
        let m = format!("{} values but {} timestamps", line.values.len(), line.timestamps.len());
        return Err((ApiError::bad_request(m), points));
    }
    let labels = limits.labels(line.metric).map_err(|e| (e, points))?;
    let mut samples = Vec::with_capacity(line.values.len());
    for (j, (v, ts)) in line.values.into_iter().zip(line.timestamps).enumerate() {
        let v = match v {
            Value::Num(n) => n,
            Value::Str(s) => crate::text::value::parse_value(&s).map_err(|_| {
                let m = format!("values[{j}]: {:?} is not a number", super::limits::prefix(&s));
                (ApiError::bad_request(m), points)
            })?,
        };
        samples.push((ts, v));
    }
    Ok((labels, samples))
}

/// Commits in chunks that each respect the per-request limits; refusals of every
/// chunk join those of parsing.
fn commit_chunks(db: &Db, series: Vec<Series>, mut refused: Refusals, limits: &Limits) -> Result<Outcome, ApiError> {
    let mut stored = 0;
    let mut batch = Batch::new(limits);
    batch.positions("line");
    for (labels, samples, line) in series {
        batch.at(line);
        for part in samples.chunks(limits.max_samples_per_request.max(1)) {
            if batch.len() + part.len() > limits.max_samples_per_request
                || batch.series_count() >= limits.max_series_per_request
            {
                let out = batch.commit_blocking(db)?;
                stored += out.stored;
                refused.extend(out.refused);
                batch = Batch::new(limits);
                batch.positions("line");
                batch.at(line);
            }
            let sid = batch.series(labels.clone(), limits)?;
            for &(ts, v) in part {
                batch.push(sid, ts, v, limits)?;
            }
        }
    }
    let out = batch.commit_blocking(db)?;
    stored += out.stored;
    refused.extend(out.refused);
    Ok(Outcome { stored, refused })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_export_lines_and_names_bad_ones() {
        let l = Limits::default();
        let body = b"{\"metric\":{\"__name__\":\"m\",\"a\":\"b\"},\"values\":[1.5,\"NaN\",\"-Inf\",\"NaN(0x7ff0000000000002)\"],\"timestamps\":[1,2,3,4]}\n\n";
        let (s, refused) = parse(body, &l);
        assert!(refused.is_empty());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1[3].1.to_bits(), 0x7ff0_0000_0000_0002);
        let err = |body: &[u8]| {
            let (s, r) = parse(body, &l);
            assert!(s.is_empty());
            r.into_error(0)
        };
        let e = err(b"\n{\"metric\":{\"__name__\":\"m\"},\"values\":[1],\"timestamps\":[]}");
        assert!(e.message.starts_with("line 2: 1 values but 0 timestamps"), "{}", e.message);
        assert_eq!(e.extra["line"], 2);
        let e = err(b"{\"metric\":{\"__name__\":\"m\"},\"values\":[\"x\"],\"timestamps\":[1]}");
        assert!(e.message.contains("values[0]"), "{}", e.message);
        let e = err(b"{\"metric\":{\"bad-name\":\"m\"},\"values\":[1,2],\"timestamps\":[1,2]}");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.extra["refused"], 2);
        assert_eq!(err(b"{not json").status, StatusCode::BAD_REQUEST);
    }
}
