//! `GET /export?match=<selector>&start=&end=&format=json|csv|prometheus`: every
//! sample of the selected series, streamed series by series from one snapshot
//! (never the whole result in memory), gzip-compressed when the client accepts it.
//! Without `match`, every series is exported, including those without a metric name.
//!
//! Formats (values as in `values`: shortest round-trip numbers; NaN and ±Inf spelled out):
//! - `json` (default): JSON lines as VictoriaMetrics writes them, one series per line:
//!   `{"metric":{"__name__":"cpu","host":"a"},"values":[1.5,"NaN"],"timestamps":[1000,2000]}`;
//!   `POST /import` reads it back bit for bit.
//! - `csv`: header `metric,labels,timestamp,value`, labels as `host="a",region="b"`.
//! - `prometheus`: text exposition, `cpu{host="a"} 1.5 1000` per sample; a series
//!   without a name is written `{host="a"} 1.5 1000`.

use std::collections::HashSet;
use std::fmt::Write;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::chunks::{self, Sink};
use super::error::{ApiError, ApiResult};
use super::metrics::QueryKind;
use super::routes::{inclusive_range, Params};
use super::values::{json_str, prom_label_value};
use super::Shared;
use crate::text::selector;
use crate::text::value::{write_json_value, write_value};
use crate::{Labels, Matcher, Sample, METRIC_NAME};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Prometheus,
    OpenMetrics,
}

pub(crate) async fn export(State(st): State<Shared>, RawQuery(q): RawQuery, headers: HeaderMap) -> ApiResult {
    let started = Instant::now();
    let p = Params::parse(q.as_deref())?;
    // No `match` at all exports everything; an empty `match=` is still an error.
    let selectors = if p.all("match").next().is_none() { Vec::new() } else { selectors(&p)? };
    let range = inclusive_range(p.time("start")?, p.time("end")?)?;
    let format = match p.get("format").unwrap_or("json") {
        "" | "json" | "jsonl" => Format::Json,
        "csv" => Format::Csv,
        "prometheus" | "text" => Format::Prometheus,
        "openmetrics" => Format::OpenMetrics,
        other => {
            return Err(ApiError::bad_request(format!(
                "format: unknown format {:?} (use json, csv, prometheus or openmetrics)",
                super::limits::prefix(other)
            )))
        }
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
    let ctype = match format {
        Format::Json => "application/x-ndjson",
        Format::Csv => "text/csv; charset=utf-8",
        Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(r)
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
        sink.buf.push_str("metric,labels,timestamp,value\n");
    }
    let q = st.db.querier(range);
    // With several selectors a series may match more than one; send it once.
    let mut seen: HashSet<Labels> = HashSet::new();
    let picks: Vec<Option<&Vec<Matcher>>> =
        if selectors.is_empty() { vec![None] } else { selectors.iter().map(Some).collect() };
    for sel in picks {
        let set = match sel.map_or_else(|| q.select_all(), |m| q.select(m)) {
            Ok(s) => s,
            Err(e) => {
                sink.fail(std::io::Error::other(e.to_string()));
                return;
            }
        };
        for item in set {
            let (labels, samples) = match item {
                Ok(x) => x,
                Err(e) => {
                    sink.fail(std::io::Error::other(e.to_string()));
                    return;
                }
            };
            if selectors.len() > 1 && !seen.insert(labels.clone()) {
                continue;
            }
            let ok = match format {
                Format::Json => json_series(&labels, samples.as_slice(), &mut sink),
                Format::Csv => csv_series(&labels, samples.as_slice(), &mut sink),
                Format::Prometheus => prom_series(&labels, samples.as_slice(), &mut sink, false),
                Format::OpenMetrics if labels.metric_name().is_none_or(str::is_empty) => {
                    // The format has no spelling for it: end the stream with an error, never drop it.
                    let msg =
                        format!("series {labels} has no metric name, which OpenMetrics cannot hold; use format=json");
                    sink.fail(std::io::Error::other(msg));
                    return;
                }
                Format::OpenMetrics => prom_series(&labels, samples.as_slice(), &mut sink, true),
            };
            if !ok || sink.closed() {
                return;
            }
        }
    }
    if format == Format::OpenMetrics {
        sink.buf.push_str("# EOF\n");
    }
    sink.finish();
}

/// `{"metric":{...},"values":[...],"timestamps":[...]}` + newline.
fn json_series(labels: &Labels, samples: &[Sample], sink: &mut Sink) -> bool {
    sink.buf.push_str("{\"metric\":{");
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            sink.buf.push(',');
        }
        json_str(k, &mut sink.buf);
        sink.buf.push(':');
        json_str(v, &mut sink.buf);
    }
    sink.buf.push_str("},\"values\":[");
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            sink.buf.push(',');
        }
        write_json_value(&mut sink.buf, s.value);
        if !sink.maybe_flush() {
            return false;
        }
    }
    sink.buf.push_str("],\"timestamps\":[");
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            sink.buf.push(',');
        }
        let _ = write!(sink.buf, "{}", s.ts);
        if !sink.maybe_flush() {
            return false;
        }
    }
    sink.buf.push_str("]}\n");
    sink.maybe_flush()
}

/// `metric,"host=""a""",ts,value` lines; the labels field is always quoted.
fn csv_series(labels: &Labels, samples: &[Sample], sink: &mut Sink) -> bool {
    let mut prefix = String::new();
    csv_field(labels.metric_name().unwrap_or(""), &mut prefix);
    prefix.push(',');
    let mut rest = String::new();
    for (i, (k, v)) in labels.iter().filter(|(k, _)| *k != METRIC_NAME).enumerate() {
        if i > 0 {
            rest.push(',');
        }
        rest.push_str(k);
        rest.push('=');
        prom_label_value(v, &mut rest);
    }
    csv_field(&rest, &mut prefix);
    for s in samples {
        let _ = write!(sink.buf, "{prefix},{},", s.ts);
        write_value(&mut sink.buf, s.value);
        sink.buf.push('\n');
        if !sink.maybe_flush() {
            return false;
        }
    }
    true
}

/// RFC 4180: quoted, with quotes doubled, whenever the field holds a separator or quote.
fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r']) || s.is_empty() {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// `name{a="b"} value ts` lines.
/// Prometheus text (ms timestamps) or, with `seconds`, OpenMetrics (`1700000000.500`).
fn prom_series(labels: &Labels, samples: &[Sample], sink: &mut Sink, seconds: bool) -> bool {
    let mut prefix = String::from(labels.metric_name().unwrap_or(""));
    prefix.push('{');
    for (i, (k, v)) in labels.iter().filter(|(k, _)| *k != METRIC_NAME).enumerate() {
        if i > 0 {
            prefix.push(',');
        }
        prefix.push_str(k);
        prefix.push('=');
        prom_label_value(v, &mut prefix);
    }
    prefix.push_str("} ");
    for s in samples {
        sink.buf.push_str(&prefix);
        write_value(&mut sink.buf, s.value);
        if seconds {
            let ms = s.ts.unsigned_abs();
            let _ = writeln!(sink.buf, " {}{}.{:03}", if s.ts < 0 { "-" } else { "" }, ms / 1000, ms % 1000);
        } else {
            let _ = writeln!(sink.buf, " {}", s.ts);
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

    #[test]
    fn csv_quotes() {
        let mut s = String::new();
        csv_field("a\"b,c", &mut s);
        assert_eq!(s, "\"a\"\"b,c\"");
    }
}
