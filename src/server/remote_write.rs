//! Prometheus remote write v1, `POST /api/v1/write`: a snappy block holding a
//! protobuf `WriteRequest`, whose `metadata` (type, help and unit per metric
//! family) is stored as metric metadata. Answers 204. Acceptance is per series and sample: a
//! series with invalid labels, or a sample the engine refuses, is named in a 4xx
//! answer and the rest is stored (Prometheus drops a batch answered 4xx and retries
//! on 5xx, so input errors are never 5xx and a retry could not store them anyway).
//!
//! Before anything is built, a scan of the raw protobuf counts series, labels
//! per series and samples against the limits; then `WriteView` decodes it with
//! every label borrowed from the buffer (`remote_wire.rs`), so a series the
//! engine already holds costs no allocation at all.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

use super::batch::Batch;
use super::body::{self, Encoding};
use super::error::{ApiError, ApiResult};
use super::limits::Limits;
use super::metrics::Protocol;
pub(crate) use super::remote_wire::{prescan, WriteView};
use super::Shared;
use crate::{Db, MetricKind, MetricMetadata};

pub(crate) async fn write(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let raw = snappy_body(&st, &headers, req).await?;
    let limits = st.limits.clone();
    let db = st.db.clone();
    // Decode, resolve and commit in one blocking task: one hop off the runtime per request.
    let n = st
        .writers
        .run(move || {
            let buf = body::unsnappy(&raw, limits.max_decompressed_bytes)?;
            let hint = prescan(&buf, &limits)?;
            let batch = to_batch(&WriteView::parse(&buf, hint)?, &limits, Some(&db))?;
            Ok(batch.commit_blocking(&db)?)
        })
        .await?;
    st.metrics.ingested(Protocol::RemoteWrite, n.stored as u64);
    n.into_result()?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Reads a remote-protocol body: snappy as the protocol requires (a missing
/// `Content-Encoding` is taken to mean snappy too).
pub(crate) async fn snappy_body(st: &Shared, headers: &HeaderMap, req: Body) -> Result<axum::body::Bytes, ApiError> {
    match body::content_encoding(headers)? {
        Encoding::Snappy | Encoding::Identity => body::read_raw(&st.limits, headers, req).await,
        Encoding::Gzip | Encoding::Zstd => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "remote write/read bodies must be snappy-compressed protobuf",
        )),
    }
}

/// The decompressed body, as the server reads it (for the fuzz target).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn unsnappy(raw: &[u8], limits: &Limits) -> Result<Vec<u8>, ApiError> {
    body::unsnappy(raw, limits.max_decompressed_bytes)
}

/// A request body as sent (a snappy block) to prost's decoded request, refusing it
/// past the limits before prost allocates anything. The server reads requests with
/// `WriteView` instead; the fuzz target holds the two to the same answers.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode(raw: &[u8], limits: &Limits) -> Result<super::prompb::WriteRequest, ApiError> {
    use prost::Message;
    let buf = body::unsnappy(raw, limits.max_decompressed_bytes)?;
    prescan(&buf, limits)?;
    super::prompb::WriteRequest::decode(buf.as_slice())
        .map_err(|e| ApiError::bad_request(format!("invalid WriteRequest protobuf: {e}")))
}

/// With `db`, series the engine already holds are resolved without building labels.
/// A series whose labels are refused is recorded in `batch.refused` with its samples;
/// only a request limit (413) fails the whole request.
pub(crate) fn to_batch(req: &WriteView<'_>, limits: &Limits, db: Option<&Db>) -> Result<Batch, ApiError> {
    let samples = req.iter().map(|(_, s)| s.len()).sum();
    let mut batch = Batch::for_db(db, limits, samples);
    batch.positions("timeseries");
    for (i, (labels, samples)) in req.iter().enumerate() {
        batch.at(i as u64);
        let sid = match batch.series_from(labels.iter().copied(), limits) {
            Ok(sid) => sid,
            Err(e) => {
                let e = e.context(format_args!("timeseries[{i}] {}", describe(labels)));
                if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                    return Err(e);
                }
                batch.refused.add_error(Some(i as u64), samples.len() as u64, e);
                continue;
            }
        };
        for &(ts, v) in samples {
            batch.push(sid, ts, v, limits)?;
        }
    }
    // Metadata replaces the whole entry of its family (type, help and unit), as sent.
    for (i, &(code, name, help, unit)) in req.metadata.iter().enumerate() {
        let kind = u8::try_from(code).ok().and_then(MetricKind::from_code);
        let added = match kind {
            None => Err(ApiError::bad_request(format!("unknown metric type {code}"))),
            Some(kind) => batch.metadata(name, MetricMetadata::new(kind, unit, help).into()),
        };
        if let Err(e) = added {
            batch.refused.add_error(None, 0, e.context(format_args!("metadata[{i}] {name:?}")));
        }
    }
    Ok(batch)
}

/// A short `name{a="b"}` rendering of raw labels for error messages.
fn describe(labels: &[(&str, &str)]) -> String {
    let name = labels.iter().find(|l| l.0 == crate::METRIC_NAME).map_or("", |l| l.1);
    let rest: Vec<String> = labels
        .iter()
        .filter(|l| l.0 != crate::METRIC_NAME)
        .take(8)
        .map(|(k, v)| format!("{}={:?}", super::limits::prefix(k), super::limits::prefix(v)))
        .collect();
    format!("{}{{{}}}", super::limits::prefix(name), rest.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    use crate::server::prompb::{Label, Sample, TimeSeries, WriteRequest};

    fn ts(labels: &[(&str, &str)], n: usize) -> TimeSeries {
        TimeSeries {
            labels: labels.iter().map(|(k, v)| Label { name: k.to_string(), value: v.to_string() }).collect(),
            samples: (0..n).map(|i| Sample { value: Some(i as f64), timestamp: i as i64 }).collect(),
        }
    }

    #[test]
    fn prescan_counts_like_the_decoder() {
        let limits = Limits {
            max_series_per_request: 2,
            max_samples_per_request: 5,
            max_labels_per_series: 2,
            ..Limits::default()
        };
        let ok = WriteRequest {
            timeseries: vec![ts(&[("__name__", "a")], 3), ts(&[("__name__", "b"), ("x", "1")], 2)],
            ..Default::default()
        };
        assert!(prescan(&ok.encode_to_vec(), &limits).is_ok());
        let too_many_samples = WriteRequest { timeseries: vec![ts(&[("__name__", "a")], 6)], ..Default::default() };
        assert_eq!(
            prescan(&too_many_samples.encode_to_vec(), &limits).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let too_many_series = WriteRequest { timeseries: vec![ts(&[("a", "1")], 0); 3], ..Default::default() };
        assert_eq!(
            prescan(&too_many_series.encode_to_vec(), &limits).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let too_many_labels =
            WriteRequest { timeseries: vec![ts(&[("a", "1"), ("b", "1"), ("c", "1")], 1)], ..Default::default() };
        assert_eq!(
            prescan(&too_many_labels.encode_to_vec(), &limits).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let bytes = ok.encode_to_vec();
        for cut in 0..bytes.len() {
            let _ = prescan(&bytes[..cut], &limits);
        }
        assert!(prescan(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], &limits).is_err());
    }

    #[test]
    fn a_bad_series_is_refused_and_the_rest_kept() {
        let limits = Limits::default();
        let req = WriteRequest {
            timeseries: vec![ts(&[("__name__", "ok")], 1), ts(&[("__name__", "bad name")], 3)],
            ..Default::default()
        };
        let buf = req.encode_to_vec();
        let b = to_batch(&WriteView::parse(&buf, (0, 0)).unwrap(), &limits, None).unwrap();
        assert_eq!((b.len(), b.refused.points()), (1, 3));
        let e = b.refused.into_error(1);
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.message, "partial write: 3 of 4 points refused");
        let first = &e.extra["refused_points"][0];
        assert_eq!(first["timeseries"], 1);
        assert_eq!(first["points"], 3);
        assert!(first["reason"].as_str().unwrap().starts_with("timeseries[1] bad name{}"), "{first}");
    }
}
