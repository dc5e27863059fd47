//! `POST /metrics/ingest` (seed 004): one metric `{metric_name, value, timestamp, labels}`,
//! with optional metadata (`unit`, `type`, `description` or `help`), or a batch: a JSON
//! array of those, `{"metrics": [...]}`, or one object per line (NDJSON). Acceptance is
//! per item: an item that cannot be read or that the engine refuses is named (`"item": 2`,
//! or `"line": 3`) and the others are stored; only an unreadable document or a size
//! limit fails all. A repeated key or a label value that is not a string is refused.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::server::batch::Batch;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::limits::Limits;
use crate::server::metrics::Protocol;
use crate::server::time::{format_rfc3339, json_time, now_ms};
use crate::server::{body, values, Shared};
use crate::text::json_strict;
use crate::{MetadataUpdate, MetricKind, METRIC_NAME};

pub(super) async fn ingest(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("ndjson") || t.contains("jsonlines") || t.contains("json-seq"));
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    // Numbers past f64's range read as ±Inf, as in every text input (`values.rs`).
    let text = values::quote_huge_numbers(&bytes);
    let now = now_ms();
    let limits = &st.limits;
    let mut batch = Batch::new(limits);
    let mut single = None;
    match document(&text, ndjson)? {
        Doc::One(o) => match add(&mut batch, &o, now, limits) {
            Ok(added) => single = Some(added),
            Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => return Err(e),
            Err(e) => batch.refused.add_error(None, 1, e),
        },
        Doc::Items { path, items } => add_all(&mut batch, items, path, now, limits)?,
        Doc::Lines(lines) => {
            batch.positions("line");
            for (line, item) in lines {
                batch.at(line);
                match item.and_then(|o| add(&mut batch, &o, now, limits).map(drop)) {
                    Ok(()) => {}
                    Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
                        return Err(e.context(format_args!("line {line}")));
                    }
                    Err(e) => batch.refused.add_error(Some(line), 1, e.context(format_args!("line {line}"))),
                }
            }
        }
    }
    let n = batch.commit(&st, Protocol::Json).await?.into_result()?;
    let body = match single {
        Some((name, ts)) => json!({
            "status": "success",
            "metric_name": name,
            "timestamp": format_rfc3339(ts),
            "ingested": n,
        }),
        None => json!({"status": "success", "ingested": n}),
    };
    Ok(json_response(StatusCode::OK, &body))
}

type Item = Result<Map<String, Value>, ApiError>;

/// What an ingest body holds: one metric object, a list of them (an array or
/// `{"metrics": [...]}`), or newline-delimited objects.
enum Doc {
    One(Map<String, Value>),
    Items {
        path: &'static str,
        items: Vec<Item>,
    },
    /// `(line number from 1, object)`.
    Lines(Vec<(u64, Item)>),
}

fn document(text: &[u8], ndjson: bool) -> Result<Doc, ApiError> {
    // A body of several top-level values is newline-delimited, whatever its type says.
    let mut values = serde_json::Deserializer::from_slice(text).into_iter::<&RawValue>();
    let first = values.next();
    let several = first.as_ref().is_some_and(|f| f.is_ok()) && values.next().is_some();
    if ndjson || several {
        return Ok(Doc::Lines(lines(text)));
    }
    let raw =
        match first {
            Some(Ok(raw)) => raw,
            Some(Err(e)) => return Err(ApiError::bad_request(format!("invalid JSON: {e}"))),
            None => return Err(ApiError::bad_request(
                "empty body: expected a metric object, an array of them, {\"metrics\": [...]} or one object per line",
            )),
        };
    let item = |raw: &RawValue| -> Item {
        match json_strict::parse_unique(raw.get().as_bytes()) {
            Ok(Value::Object(o)) => Ok(o),
            Ok(_) => Err(ApiError::bad_request("expected an object")),
            Err(e) => Err(ApiError::bad_request(format!("invalid JSON: {e}"))),
        }
    };
    let list = |raw: &RawValue| -> Result<Vec<Item>, ApiError> {
        let items: Vec<&RawValue> = serde_json::from_str(raw.get()).map_err(|_| {
            ApiError::bad_request("\"metrics\" must be an array of {metric_name, value, timestamp, labels}")
        })?;
        Ok(items.into_iter().map(item).collect())
    };
    match raw.get().trim_start().as_bytes().first() {
        Some(b'[') => Ok(Doc::Items { path: "", items: list(raw)? }),
        Some(b'{') => {
            let entries = json_strict::object_entries(raw.get()).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
            match entries.iter().find(|(k, _)| k == "metrics") {
                Some((_, metrics)) if entries.len() == 1 => Ok(Doc::Items { path: "metrics", items: list(metrics)? }),
                Some(_) => Err(ApiError::bad_request("{\"metrics\": [...]} must have no other field")),
                None => item(raw).map(Doc::One),
            }
        }
        _ => Err(ApiError::bad_request(
            "expected an object {metric_name, value, timestamp, labels}, an array of them, {\"metrics\": [...]} or one object per line",
        )),
    }
}

/// Newline-delimited objects: each non-blank line is read on its own, so one bad
/// line is refused by number and the others are stored.
fn lines(text: &[u8]) -> Vec<(u64, Item)> {
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        let item = match json_strict::parse_unique(line) {
            Ok(Value::Object(o)) => Ok(o),
            Ok(_) => Err(ApiError::bad_request("expected an object")),
            Err(e) => Err(ApiError::bad_request(format!("invalid JSON: {e}"))),
        };
        out.push((i as u64 + 1, item));
    }
    out
}

/// Adds every item it can; an item that cannot be read is refused by index.
/// Only a request limit (413) fails the batch.
fn add_all(batch: &mut Batch, items: Vec<Item>, path: &str, now: i64, limits: &Limits) -> Result<(), ApiError> {
    batch.positions("item");
    for (i, item) in items.into_iter().enumerate() {
        batch.at(i as u64);
        match item.and_then(|o| add(batch, &o, now, limits).map(drop)) {
            Ok(()) => {}
            Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => return Err(e.context(format_args!("{path}[{i}]"))),
            Err(e) => batch.refused.add_error(Some(i as u64), 1, e.context(format_args!("{path}[{i}]"))),
        }
    }
    Ok(())
}

/// The fields a metric object may have; any other is refused, named.
const FIELDS: [&str; 8] = ["metric_name", "value", "timestamp", "labels", "unit", "type", "description", "help"];

/// Validates one metric object and adds it; returns its name and timestamp.
fn add(batch: &mut Batch, o: &Map<String, Value>, now: i64, limits: &Limits) -> Result<(String, i64), ApiError> {
    if let Some(k) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!("unknown field {k:?} (expected {})", FIELDS.join(", "))));
    }
    let name = match o.get("metric_name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(ApiError::bad_request("metric_name must be a non-empty string")),
        None => return Err(ApiError::bad_request("missing field metric_name")),
    };
    let value = match o.get("value") {
        None => return Err(ApiError::bad_request("missing field value")),
        Some(v) => values::from_json(v).ok_or_else(|| {
            ApiError::bad_request(format!("value: expected a number or \"NaN\", \"+Inf\", \"-Inf\", got {v}"))
        })?,
    };
    // Absent: now. A number is epoch seconds, ms, µs or ns by magnitude (`text::time`).
    let ts = json_time(o.get("timestamp"), now)
        .map_err(|e| ApiError::bad_request(format!("timestamp: {e}")))?
        .unwrap_or(now);
    let mut pairs = vec![(METRIC_NAME.to_string(), name.clone())];
    match o.get("labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                // A number is not turned into text: 8080, 8080.0 and 8.08e3 would be
                // three series, or one, depending on the client's printer.
                let Value::String(v) = v else {
                    return Err(ApiError::bad_request(format!(
                        "labels.{k}: expected a string, got {v} (quote it, e.g. \"{k}\": \"{}\")",
                        v.as_str().unwrap_or(&v.to_string())
                    )));
                };
                let v = v.clone();
                if k == METRIC_NAME {
                    return Err(ApiError::unprocessable("labels: __name__ is set by metric_name"));
                }
                pairs.push((k.clone(), v));
            }
        }
        Some(_) => return Err(ApiError::bad_request("labels must be an object of name -> value")),
    }
    let meta = metadata_of(o)?;
    let sid = batch.series_from(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), limits)?;
    batch.metadata(&name, meta)?;
    batch.push(sid, ts, value, limits)?;
    Ok((name, ts))
}

/// The `unit`, `type` and `description` (or `help`) of a metric object: the fields
/// given replace the stored ones, the others are kept.
fn metadata_of(o: &Map<String, Value>) -> Result<MetadataUpdate, ApiError> {
    let text = |key: &str| -> Result<Option<String>, ApiError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(ApiError::bad_request(format!("{key}: expected a string, got {v}"))),
        }
    };
    let help = match (text("description")?, text("help")?) {
        (Some(d), Some(h)) if d != h => {
            return Err(ApiError::bad_request("description and help differ; give one of them"));
        }
        (d, h) => d.or(h),
    };
    let kind = text("type")?.map(|t| t.parse::<MetricKind>().map_err(|e| ApiError::bad_request(format!("type: {e}"))));
    Ok(MetadataUpdate { kind: kind.transpose()?, unit: text("unit")?, help })
}
