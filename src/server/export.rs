//! `GET /export?match=<selector>&start=&end=&format=json|csv|prometheus`: every
//! sample of the selected series, streamed series by series from one snapshot
//! (never the whole result in memory), gzip-compressed when the client accepts it.
//! Without `match`, every series is exported, including those without a metric name.
//!
//! Formats, written by `crate::text::files`, the writers `strata export` uses, so
//! that `POST /import` and `strata import` read every one of them back:
//! - `json` (default): JSON lines as VictoriaMetrics writes them, one series per line
//!   (a series past 10 000 samples continues on the next line):
//!   `{"metric":{"__name__":"cpu","host":"a"},"values":[1.5,"NaN"],"timestamps":[1000,2000]}`;
//! - `csv`: header `series,timestamp,value`, `"cpu{host=""a""}",1000,1.5`;
//! - `prometheus`: text exposition, `cpu{host="a"} 1.5 1000` per sample; a series
//!   without a name is written `{host="a"} 1.5 1000`;
//! - `openmetrics`: as `prometheus` with timestamps in seconds and a final `# EOF`.
//!
//! JSON lines and CSV keep every value bit for bit; the text formats write every NaN
//! as `NaN` (they have no spelling for a payload such as the stale marker).

use std::collections::HashSet;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::chunks::{self, Sink};
use super::error::{ApiError, ApiResult};
use super::metrics::QueryKind;
use super::routes::{inclusive_range, Params};
use super::Shared;
use crate::text::csv::{write_csv_rows, CSV_HEADER};
use crate::text::files::{write_openmetrics, write_prometheus, FileFormat as Format, MetadataLines, OPENMETRICS_EOF};
use crate::text::jsonl::{write_json_lines, JSON_LINE_MAX_SAMPLES};
use crate::text::parquet::{Drain, ParquetSink};
use crate::text::selector;
use crate::{Labels, Matcher, Sample};

/// Samples written between two chances to flush, in the row formats.
const ROWS_PER_FLUSH: usize = 1024;

pub(crate) async fn export(State(st): State<Shared>, RawQuery(q): RawQuery, headers: HeaderMap) -> ApiResult {
    let started = Instant::now();
    let p = Params::parse(q.as_deref())?;
    // No `match` at all exports everything; an empty `match=` is still an error.
    let selectors = if p.all("match").next().is_none() { Vec::new() } else { selectors(&p)? };
    let range = inclusive_range(p.time("start")?, p.time("end")?)?;
    if p.get("format") == Some("parquet") {
        return Ok(parquet_export(st, selectors, range, started));
    }
    let format = match p.get("format").unwrap_or("json") {
        "" => Format::Json,
        f => f.parse::<Format>().map_err(|_| {
            ApiError::bad_request(format!(
                "format: unknown format {:?} (use json, csv, prometheus, openmetrics or parquet)",
                super::limits::prefix(f)
            ))
        })?,
    };
    let gzip = accepts_gzip(&headers);
    let (sink, body) = chunks::channel();
    let sink = sink.gzip(gzip);
    let state = st.clone();
    tokio::task::spawn_blocking(move || {
        produce(&state, &selectors, range, format, sink);
        state.metrics.query(QueryKind::Export, started.elapsed());
    });
    let mut r: Response = Body::new(body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(r)
}

/// `format=parquet`: one row per sample (docs/format/parquet-export.md), streamed a
/// series at a time; never gzip, as Parquet compresses its columns itself.
fn parquet_export(st: Shared, selectors: Vec<Vec<Matcher>>, range: std::ops::Range<i64>, started: Instant) -> Response {
    let (mut sink, body) = chunks::channel();
    tokio::task::spawn_blocking(move || {
        let drain = Drain::default();
        let mut pq = match ParquetSink::new(drain.clone()) {
            Ok(p) => p,
            Err(e) => {
                sink.fail(std::io::Error::other(e.to_string()));
                return;
            }
        };
        let finished = for_each_series(&st, &selectors, range, &mut sink, |labels, samples, sink| {
            match pq.push(labels, samples) {
                Ok(()) => sink.send_bytes(drain.take()),
                Err(e) => sink.fail(std::io::Error::other(e.to_string())),
            }
        });
        if finished {
            match pq.finish() {
                Ok(_) => {
                    sink.send_bytes(drain.take());
                }
                Err(e) => {
                    sink.fail(std::io::Error::other(e.to_string()));
                }
            }
        }
        st.metrics.query(QueryKind::Export, started.elapsed());
    });
    let mut r: Response = Body::new(body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apache.parquet"));
    r
}

/// Every `match` (or `match[]`) parameter as parsed matchers; at least one is required.
pub(crate) fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let sels = p
        .all("match")
        .map(|s| selector::parse_selector(s).map_err(|e| ApiError::bad_request(format!("match: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if sels.is_empty() {
        return Err(ApiError::bad_request("missing query parameter match (a selector such as cpu{host=\"a\"})"));
    }
    Ok(sels)
}

/// Whether `Accept-Encoding` lists gzip without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |item| {
            let mut parts = item.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let zero = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0)));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !zero
        },
    )
}

/// Writes the series to the sink, stopping early when the client goes away.
fn produce(st: &Shared, selectors: &[Vec<Matcher>], range: std::ops::Range<i64>, format: Format, mut sink: Sink) {
    if format == Format::Csv {
        sink.buf.push_str(CSV_HEADER);
    }
    // Text formats: each family's HELP/TYPE/UNIT lines before its first series.
    let mut meta = MetadataLines::default();
    let finished = for_each_series(st, selectors, range, &mut sink, |labels, samples, sink| {
        meta.before_series(&mut sink.buf, format, labels, |n| st.db.metadata(n));
        write_series(format, labels, samples, sink) && !sink.closed()
    });
    if !finished {
        return;
    }
    if format == Format::OpenMetrics {
        sink.buf.push_str(OPENMETRICS_EOF);
    }
    sink.finish();
}

/// Calls `f` for every selected series (each once, whatever selectors it matches);
/// false when `f` or a read stopped it (the sink then holds the error).
fn for_each_series(
    st: &Shared,
    selectors: &[Vec<Matcher>],
    range: std::ops::Range<i64>,
    sink: &mut Sink,
    mut f: impl FnMut(&Labels, &[Sample], &mut Sink) -> bool,
) -> bool {
    let q = st.db.querier(range);
    // With several selectors a series may match more than one; send it once.
    let mut seen: HashSet<Labels> = HashSet::new();
    let picks: Vec<Option<&Vec<Matcher>>> =
        if selectors.is_empty() { vec![None] } else { selectors.iter().map(Some).collect() };
    for sel in picks {
        let set = match sel.map_or_else(|| q.select_all(), |m| q.select(m)) {
            Ok(s) => s,
            Err(e) => return sink.fail(std::io::Error::other(e.to_string())),
        };
        for item in set {
            let (labels, samples) = match item {
                Ok(x) => x,
                Err(e) => return sink.fail(std::io::Error::other(e.to_string())),
            };
            if selectors.len() > 1 && !seen.insert(labels.clone()) {
                continue;
            }
            if !f(&labels, samples.as_slice(), sink) {
                return false;
            }
        }
    }
    true
}

/// ended (the client went away, or a series the format cannot hold failed it).
fn write_series(format: Format, labels: &Labels, samples: &[Sample], sink: &mut Sink) -> bool {
    let per = if format == Format::Json { JSON_LINE_MAX_SAMPLES } else { ROWS_PER_FLUSH };
    for part in samples.chunks(per) {
        match format {
            Format::Json => write_json_lines(&mut sink.buf, labels, part),
            Format::Csv => write_csv_rows(&mut sink.buf, labels, part),
            Format::Prometheus => {
                write_prometheus(&mut sink.buf, labels, part);
            }
            Format::OpenMetrics => {
                if !write_openmetrics(&mut sink.buf, labels, part) {
                    // The format has no spelling for it: end the stream with an error, never drop it.
                    let msg = format!(
                        "series {labels} has no metric name that OpenMetrics can write bare, which it needs; \
                         use format=json"
                    );
                    sink.fail(std::io::Error::other(msg));
                    return false;
                }
            }
        }
        if !sink.maybe_flush() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&m)
        };
        assert!(h("gzip"));
        assert!(h("deflate, gzip;q=0.5"));
        assert!(h("*"));
        assert!(!h("gzip;q=0"));
        assert!(!h("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
