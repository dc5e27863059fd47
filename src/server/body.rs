//! Reading request bodies under the limits: the size is capped before reading
//! (`Content-Length`) and while reading, reading has a deadline, and decompression
//! stops at `max_decompressed_bytes` (snappy's declared size is checked before
//! any allocation: RELIABILITY item 9).

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use flate2::read::MultiGzDecoder;

use super::error::ApiError;
use super::limits::Limits;

/// How a body is compressed, from `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Identity,
    Gzip,
    Zstd,
    Snappy,
}

pub(crate) fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(v) = headers.get(header::CONTENT_ENCODING) else { return Ok(Encoding::Identity) };
    let v = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "zstd" => Ok(Encoding::Zstd),
        "snappy" => Ok(Encoding::Snappy),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding {:?} (use gzip, zstd, snappy or none)", super::limits::prefix(other)),
        )),
    }
}

/// Reads the raw body, at most `max_body_bytes`, within `body_read_timeout`.
pub(crate) async fn read_raw(limits: &Limits, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let max = limits.max_body_bytes;
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()) {
        let len: u64 = len.trim().parse().map_err(|_| ApiError::bad_request("invalid Content-Length"))?;
        if len > max as u64 {
            return Err(body_too_large(max));
        }
    }
    match tokio::time::timeout(limits.body_read_timeout, axum::body::to_bytes(body, max)).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {:?}", limits.body_read_timeout),
        )),
        Ok(Err(e)) => {
            // `to_bytes` reports the limit through a boxed error; anything else is a broken upload.
            let too_big = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_big {
                Err(body_too_large(max))
            } else {
                Err(ApiError::bad_request(format!("reading the request body: {e}")))
            }
        }
        Ok(Ok(b)) => Ok(b),
    }
}

fn body_too_large(max: usize) -> ApiError {
    ApiError::too_large(format!("request body is larger than {max} bytes (max_body_bytes)"))
}

/// Reads the body and undoes its `Content-Encoding` (gzip or none; snappy only where
/// `allow_snappy`), all under the limits. Runs decompression on the blocking pool.
pub(crate) async fn read(
    limits: &Limits,
    headers: &HeaderMap,
    body: Body,
    allow_snappy: bool,
) -> Result<Bytes, ApiError> {
    let enc = content_encoding(headers)?;
    let raw = read_raw(limits, headers, body).await?;
    let max = limits.max_decompressed_bytes;
    match enc {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => blocking(move || gunzip(&raw, max)).await,
        Encoding::Zstd => blocking(move || unzstd(&raw, max)).await,
        Encoding::Snappy if allow_snappy => blocking(move || unsnappy(&raw, max)).await,
        Encoding::Snappy => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Encoding snappy is only accepted by the Prometheus remote endpoints",
        )),
    }
}

async fn blocking(f: impl FnOnce() -> Result<Vec<u8>, ApiError> + Send + 'static) -> Result<Bytes, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("decompression task failed: {e}")))?
        .map(Bytes::from)
}

/// Decompresses gzip (all members), refusing output beyond `max` bytes.
pub(crate) fn gunzip(raw: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(max).min(1 << 20));
    let mut dec = MultiGzDecoder::new(raw).take(max as u64 + 1);
    dec.read_to_end(&mut out).map_err(|e| ApiError::bad_request(format!("invalid gzip body: {e}")))?;
    if out.len() > max {
        return Err(decompressed_too_large(max));
    }
    Ok(out)
}

/// Decompresses zstd (all frames), refusing output beyond `max` bytes.
pub(crate) fn unzstd(raw: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    let bad = |e: std::io::Error| ApiError::bad_request(format!("invalid zstd body: {e}"));
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(max).min(1 << 20));
    zstd::stream::read::Decoder::new(raw).map_err(bad)?.take(max as u64 + 1).read_to_end(&mut out).map_err(bad)?;
    if out.len() > max {
        return Err(decompressed_too_large(max));
    }
    Ok(out)
}

/// Decompresses a snappy block (the remote-write framing), checking the declared
/// length against `max` before allocating anything.
pub(crate) fn unsnappy(raw: &[u8], max: usize) -> Result<Vec<u8>, ApiError> {
    let declared =
        snap::raw::decompress_len(raw).map_err(|e| ApiError::bad_request(format!("invalid snappy body: {e}")))?;
    if declared > max {
        return Err(decompressed_too_large(max).with("declared_bytes", declared as u64));
    }
    snap::raw::Decoder::new()
        .decompress_vec(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid snappy body: {e}")))
}

fn decompressed_too_large(max: usize) -> ApiError {
    ApiError::too_large(format!("request body decompresses to more than {max} bytes (max_decompressed_bytes)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn snappy_bomb_is_refused_before_allocating() {
        // A varint declaring ~4 GiB followed by nothing.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let e = unsnappy(&bomb, 1 << 20).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let ok = snap::raw::Encoder::new().compress_vec(b"hello hello hello").unwrap();
        assert_eq!(unsnappy(&ok, 100).unwrap(), b"hello hello hello");
        assert_eq!(unsnappy(b"\x05abc", 100).unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn gzip_output_is_capped() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(gunzip(&gz, (1 << 20) - 1).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(gunzip(b"not gzip", 100).unwrap_err().status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn zstd_output_is_capped() {
        let z = zstd::encode_all(&vec![b'a'; 1 << 20][..], 3).unwrap();
        assert_eq!(unzstd(&z, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(unzstd(&z, (1 << 20) - 1).unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(unzstd(b"not zstd", 100).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
