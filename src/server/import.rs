//! `POST /import[?format=auto|json|csv|prometheus|openmetrics]`: whatever
//! `GET /export` and `strata export` write, read by `crate::text::files` (the
//! reader `strata import` uses): JSON lines (VictoriaMetrics' form), CSV
//! (`series,timestamp,value`, or the `metric,labels,timestamp,value` of earlier
//! versions), Prometheus text with ms timestamps, OpenMetrics (their `# HELP`,
//! `# TYPE` and `# UNIT` lines are stored as metric metadata). Without `format`
//! (or with `auto`) the format is told from the body's first bytes, as
//! `strata import` tells it. JSON and CSV values come back bit for bit.
//!
//! The whole body is parsed first; a line that cannot be read is refused, named by
//! number, and the others are kept. They are committed in chunks of at most
//! `max_samples_per_request` samples and `max_series_per_request` series, so an
//! import larger than one write request is accepted; a sample the engine refuses
//! (older than retention, ...) is refused alone. Answers 204, or 400/422 naming the
//! refused points (`batch::Refusals`). If storage fails midway, the chunks before the
//! failure stay committed.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::batch::{Batch, Outcome, Refusals};
use super::error::{ApiError, ApiResult};
use super::limits::Limits;
use super::metrics::Protocol;
use super::routes::Params;
use super::{body, Shared};
use crate::text::files::{FileFormat, FileReader, ReadError};
use crate::{Db, Labels, MetadataUpdate};

pub(crate) async fn import(
    State(st): State<Shared>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    req: Body,
) -> ApiResult {
    let p = Params::parse(q.as_deref())?;
    let format = match p.get("format").map(str::trim) {
        None | Some("" | "auto") => None,
        Some(f) => Some(f.parse::<FileFormat>().map_err(|e| ApiError::bad_request(format!("format: {e} or auto")))?),
    };
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let limits = st.limits.clone();
    let db = st.db.clone();
    let out = st
        .writers
        .run(move || {
            let format = format.unwrap_or_else(|| FileFormat::detect(&bytes[..bytes.len().min(64 << 10)]));
            let (series, refused, metadata) = parse(&bytes, format, &limits);
            // `# HELP`, `# TYPE` and `# UNIT` lines, each checked when read.
            db.update_metadata(&metadata).map_err(ApiError::from)?;
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

/// Every line that reads, the refusals of those that do not, and the metadata lines.
fn parse(body: &[u8], format: FileFormat, limits: &Limits) -> (Vec<Series>, Refusals, Vec<(String, MetadataUpdate)>) {
    let mut out = Vec::new();
    let mut refused = Refusals::new(Some("line"));
    let mut reader = FileReader::new(format);
    let mut last: Option<Labels> = None;
    let mut lines = body.split(|&b| b == b'\n').peekable();
    while let Some(raw) = lines.next() {
        if lines.peek().is_none() && raw.is_empty() {
            break; // the final line break
        }
        let read = match std::str::from_utf8(raw) {
            Ok(text) => reader.read_line(text),
            Err(e) => {
                // Counted as a line all the same, so later line numbers stay right.
                let _ = reader.read_line("");
                let reason = format!("not valid UTF-8 (byte {})", e.valid_up_to() + 1);
                Err(ReadError { line: reader.lines(), reason, samples: 1, labels: false })
            }
        };
        match read {
            Ok(None) => {}
            Ok(Some((labels, samples))) => {
                let n = reader.lines();
                let points = samples.len() as u64;
                // The server's own limits (label count and lengths) on top of the engine's
                // rules, checked once per run of rows of one series (CSV, text formats).
                let checked = match &last {
                    Some(l) if *l == labels => Ok(labels),
                    _ => limits.labels(labels.iter()),
                };
                match checked {
                    Ok(labels) => {
                        last = Some(labels.clone());
                        out.push((labels, samples.iter().map(|s| (s.ts, s.value)).collect(), n));
                    }
                    Err(e) => refused.add_error(Some(n), points, e.context(format_args!("line {n}")).with("line", n)),
                }
            }
            Err(e) => refuse(&mut refused, e),
        }
    }
    if let Err(e) = reader.finish() {
        refuse(&mut refused, e);
    }
    (out, refused, reader.take_metadata())
}

/// Records a line that did not read: 422 when the engine's label rules refused
/// its series, 400 when it is malformed.
fn refuse(refused: &mut Refusals, e: ReadError) {
    let n = e.line;
    let err = if e.labels { ApiError::unprocessable(e.reason) } else { ApiError::bad_request(e.reason) };
    refused.add_error(Some(n), e.samples, err.context(format_args!("line {n}")).with("line", n));
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
        let (s, refused, _) = parse(body, FileFormat::Json, &l);
        assert!(refused.is_empty());
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].1[3].1.to_bits(), 0x7ff0_0000_0000_0002);
        let err = |body: &[u8], f: FileFormat| {
            let (s, r, _) = parse(body, f, &l);
            assert!(s.is_empty());
            r.into_error(0)
        };
        let json = FileFormat::Json;
        let e = err(b"\n{\"metric\":{\"__name__\":\"m\"},\"values\":[1],\"timestamps\":[]}", json);
        assert!(e.message.starts_with("line 2: 1 values but 0 timestamps"), "{}", e.message);
        assert_eq!(e.extra["line"], 2);
        let e = err(b"{\"metric\":{\"__name__\":\"m\"},\"values\":[\"x\"],\"timestamps\":[1]}", json);
        assert!(e.message.contains("values[0]"), "{}", e.message);
        let e = err(b"{\"metric\":{\"bad-name\":\"m\"},\"values\":[1,2],\"timestamps\":[1,2]}", json);
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.extra["refused"], 2);
        assert_eq!(err(b"{not json", json).status, StatusCode::BAD_REQUEST);
        let e = err(b"series,timestamp,value\n\"up\",noon,1\n", FileFormat::Csv);
        assert!(e.message.starts_with("line 2: column 2 (timestamp): invalid timestamp"), "{}", e.message);
        let e = err(b"# TYPE up gauge\n\xff 1 2\n", FileFormat::Prometheus);
        assert!(e.message.starts_with("line 2: not valid UTF-8"), "{}", e.message);
    }

    #[test]
    fn reads_every_export_format() {
        let l = Limits::default();
        for (body, f) in [
            (&b"series,timestamp,value\r\n\"up{a=\"\"x\"\"}\",1000,2\r\n"[..], FileFormat::Csv),
            (b"metric,labels,timestamp,value\nup,\"a=\"\"x\"\"\",1000,2\n", FileFormat::Csv),
            (b"# TYPE up gauge\nup{a=\"x\"} 2 1000\n", FileFormat::Prometheus),
            (b"# TYPE up gauge\nup{a=\"x\"} 2.0 1.000\n# EOF\n", FileFormat::OpenMetrics),
        ] {
            assert_eq!(FileFormat::detect(body), f);
            let (s, refused, _) = parse(body, f, &l);
            assert!(refused.is_empty(), "{f}");
            assert_eq!(s, vec![(Labels::metric("up", [("a", "x")]).unwrap(), vec![(1000, 2.0)], 2)], "{f}");
        }
    }
}
