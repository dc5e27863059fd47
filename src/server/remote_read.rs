//! Prometheus remote read, `POST /api/v1/read`: a snappy `ReadRequest` in, a snappy
//! `ReadResponse` of sampled series out (`Content-Type: application/x-protobuf`,
//! `Content-Encoding: snappy`). Only the SAMPLES response type is offered; the whole
//! response is built in memory, so it is bounded by `max_query_samples`/`max_query_series`.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use prost::Message;

use super::error::{ApiError, ApiResult};
use super::exec::run_read;
use super::limits::Limits;
use super::metrics::QueryKind;
use super::prompb::{self, Label, QueryResult, ReadRequest, ReadResponse, TimeSeries};
use super::remote_write::snappy_body;
use super::{body, Shared};
use crate::{Db, Matcher};

pub(crate) async fn read(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let started = Instant::now();
    let raw = snappy_body(&st, &headers, req).await?;
    let limits = st.limits.clone();
    let db = st.db.clone();
    let out = run_read(move || {
        let buf = body::unsnappy(&raw, limits.max_decompressed_bytes)?;
        let req = ReadRequest::decode(buf.as_slice())
            .map_err(|e| ApiError::bad_request(format!("invalid ReadRequest protobuf: {e}")))?;
        let accepted = &req.accepted_response_types;
        if !accepted.is_empty() && !accepted.contains(&prompb::RESPONSE_TYPE_SAMPLES) {
            return Err(ApiError::bad_request(
                "only the SAMPLES response type is supported; accept it in accepted_response_types",
            ));
        }
        let resp = answer(&db, &req, &limits)?;
        snap::raw::Encoder::new()
            .compress_vec(&resp.encode_to_vec())
            .map_err(|e| ApiError::internal(format!("compressing the response: {e}")))
    })
    .await?;
    st.metrics.query(QueryKind::RemoteRead, started.elapsed());
    let mut r = out.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    Ok(r)
}

fn answer(db: &Db, req: &ReadRequest, limits: &Limits) -> Result<ReadResponse, ApiError> {
    let (mut samples, mut series) = (0usize, 0usize);
    let mut results = Vec::with_capacity(req.queries.len());
    for (qi, q) in req.queries.iter().enumerate() {
        let matchers = q
            .matchers
            .iter()
            .map(matcher)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.context(format_args!("queries[{qi}]")))?;
        if q.start_timestamp_ms > q.end_timestamp_ms {
            return Err(ApiError::bad_request(format!(
                "queries[{qi}]: start {} is after end {}",
                crate::text::time::show_time(q.start_timestamp_ms),
                crate::text::time::show_time(q.end_timestamp_ms)
            )));
        }
        // Both bounds are inclusive in the protocol; the querier's end is exclusive.
        let querier = db.querier(q.start_timestamp_ms..q.end_timestamp_ms.saturating_add(1));
        let mut timeseries = Vec::new();
        for item in querier.select(&matchers)? {
            let (labels, points) = item?;
            series += 1;
            samples += points.len();
            if samples > limits.max_query_samples || series > limits.max_query_series {
                return Err(limits.over_budget());
            }
            timeseries.push(TimeSeries {
                // `Labels` are sorted by name, as the protocol wants.
                labels: labels.iter().map(|(k, v)| Label { name: k.to_string(), value: v.to_string() }).collect(),
                samples: points.map(|s| prompb::Sample { value: Some(s.value), timestamp: s.ts }).collect(),
            });
        }
        results.push(QueryResult { timeseries });
    }
    Ok(ReadResponse { results })
}

fn matcher(m: &prompb::LabelMatcher) -> Result<Matcher, ApiError> {
    let (name, value) = (m.name.clone(), m.value.clone());
    match m.r#type {
        0 => Ok(Matcher::eq(name, value)),
        1 => Ok(Matcher::ne(name, value)),
        2 => Matcher::regex(name, value).map_err(|e| ApiError::bad_request(e.to_string())),
        3 => Matcher::not_regex(name, value).map_err(|e| ApiError::bad_request(e.to_string())),
        t => Err(ApiError::bad_request(format!("unknown matcher type {t}"))),
    }
}
