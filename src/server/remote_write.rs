//! Prometheus remote write v1, `POST /api/v1/write`: a snappy block holding a
//! protobuf `WriteRequest`. Answers 204; any bad series rejects the whole request
//! (Prometheus does not retry a 4xx, so a batch is never half stored).
//!
//! Before prost allocates anything, a scan of the raw protobuf counts series,
//! labels per series and samples against the limits: a small message of empty
//! labels would otherwise decode into many times its size in `String`s.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use prost::Message;

use super::batch::Batch;
use super::body::{self, Encoding};
use super::error::{ApiError, ApiResult};
use super::limits::Limits;
use super::metrics::Protocol;
use super::prompb::{Label, WriteRequest};
use super::Shared;
use crate::Db;

pub(crate) async fn write(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let raw = snappy_body(&st, &headers, req).await?;
    let limits = st.limits.clone();
    let db = st.db.clone();
    // Decode, resolve and commit in one blocking task: one hop off the runtime per request.
    let n = st
        .writers
        .run(move || {
            let batch = to_batch(decode(&raw, &limits)?, &limits, Some(&db))?;
            Ok(batch.commit_blocking(&db)?)
        })
        .await?;
    st.metrics.ingested(Protocol::RemoteWrite, n as u64);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Reads a remote-protocol body: snappy as the protocol requires (a missing
/// `Content-Encoding` is taken to mean snappy too).
pub(crate) async fn snappy_body(st: &Shared, headers: &HeaderMap, req: Body) -> Result<axum::body::Bytes, ApiError> {
    match body::content_encoding(headers)? {
        Encoding::Snappy | Encoding::Identity => body::read_raw(&st.limits, headers, req).await,
        Encoding::Gzip => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "remote write/read bodies must be snappy-compressed protobuf",
        )),
    }
}

/// A request body as sent (a snappy block) to the decoded request, refusing it
/// past the limits before prost allocates anything. Fuzzed (`fuzz/`).
pub(crate) fn decode(raw: &[u8], limits: &Limits) -> Result<WriteRequest, ApiError> {
    let buf = body::unsnappy(raw, limits.max_decompressed_bytes)?;
    prescan(&buf, limits)?;
    WriteRequest::decode(buf.as_slice())
        .map_err(|e| ApiError::bad_request(format!("invalid WriteRequest protobuf: {e}")))
}

/// With `db`, series the engine already holds are resolved without building labels.
pub(crate) fn to_batch(req: WriteRequest, limits: &Limits, db: Option<&Db>) -> Result<Batch, ApiError> {
    let samples = req.timeseries.iter().map(|t| t.samples.len()).sum();
    let mut batch = Batch::for_db(db, limits, samples);
    for (i, ts) in req.timeseries.into_iter().enumerate() {
        let sid = batch
            .series_from(ts.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())), limits)
            .map_err(|e| e.context(format_args!("timeseries[{i}] {}", describe(&ts.labels))))?;
        for s in ts.samples {
            batch.push(sid, s.timestamp, s.value.unwrap_or(0.0), limits)?;
        }
    }
    Ok(batch)
}

/// A short `name{a="b"}` rendering of raw labels for error messages.
fn describe(labels: &[Label]) -> String {
    let name = labels.iter().find(|l| l.name == crate::METRIC_NAME).map_or("", |l| l.value.as_str());
    let rest: Vec<String> = labels
        .iter()
        .filter(|l| l.name != crate::METRIC_NAME)
        .take(8)
        .map(|l| format!("{}={:?}", super::limits::prefix(&l.name), super::limits::prefix(&l.value)))
        .collect();
    format!("{}{{{}}}", super::limits::prefix(name), rest.join(","))
}

/// Counts what decoding would allocate and refuses it past the limits.
fn prescan(buf: &[u8], limits: &Limits) -> Result<(), ApiError> {
    let (mut series, mut samples) = (0usize, 0usize);
    let mut top = Wire { buf, pos: 0 };
    while !top.done() {
        let (field, wt) = top.key()?;
        if field != 1 || wt != 2 {
            top.skip(wt)?;
            continue;
        }
        series += 1;
        if series > limits.max_series_per_request {
            return Err(limits.too_many_series());
        }
        let mut ts = Wire { buf: top.bytes()?, pos: 0 };
        let mut labels = 0usize;
        while !ts.done() {
            let (f, w) = ts.key()?;
            ts.skip(w)?;
            if f == 1 && w == 2 {
                labels += 1;
                if labels > limits.max_labels_per_series {
                    return Err(ApiError::unprocessable(format!(
                        "timeseries[{}] has more than {} labels (max_labels_per_series)",
                        series - 1,
                        limits.max_labels_per_series
                    )));
                }
            } else if f == 2 && w == 2 {
                samples += 1;
                if samples > limits.max_samples_per_request {
                    return Err(limits.too_many_samples());
                }
            }
        }
    }
    Ok(())
}

/// A bounds-checked protobuf wire reader (just enough to walk fields).
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| malformed("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    fn key(&mut self) -> Result<(u64, u8), ApiError> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let len = usize::try_from(self.varint()?).map_err(|_| malformed("length out of range"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| malformed("field runs past the end"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn skip(&mut self, wire_type: u8) -> Result<(), ApiError> {
        let n = match wire_type {
            0 => return self.varint().map(drop),
            1 => 8,
            2 => return self.bytes().map(drop),
            5 => 4,
            _ => return Err(malformed("unsupported wire type")),
        };
        self.pos =
            self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| malformed("truncated field"))?;
        Ok(())
    }
}

fn malformed(why: &str) -> ApiError {
    ApiError::bad_request(format!("invalid WriteRequest protobuf: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::prompb::{Sample, TimeSeries};

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
        let ok =
            WriteRequest { timeseries: vec![ts(&[("__name__", "a")], 3), ts(&[("__name__", "b"), ("x", "1")], 2)] };
        assert!(prescan(&ok.encode_to_vec(), &limits).is_ok());
        let too_many_samples = WriteRequest { timeseries: vec![ts(&[("__name__", "a")], 6)] };
        assert_eq!(
            prescan(&too_many_samples.encode_to_vec(), &limits).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let too_many_series = WriteRequest { timeseries: vec![ts(&[("a", "1")], 0); 3] };
        assert_eq!(
            prescan(&too_many_series.encode_to_vec(), &limits).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        let too_many_labels = WriteRequest { timeseries: vec![ts(&[("a", "1"), ("b", "1"), ("c", "1")], 1)] };
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
    fn a_bad_series_rejects_the_request() {
        let limits = Limits::default();
        let req = WriteRequest { timeseries: vec![ts(&[("__name__", "ok")], 1), ts(&[("__name__", "bad name")], 1)] };
        let e = to_batch(req, &limits, None).err().unwrap();
        assert!(e.message.starts_with("timeseries[1] bad name{}"), "{}", e.message);
    }
}
