//! `POST /metrics/ingest` (seed 004): one metric `{metric_name, value, timestamp, labels}`,
//! with optional metadata (`unit`, `type`, `description` or `help`), or a batch as a JSON array of those or `{"metrics": [...]}`. Acceptance is per
//! item: an item that cannot be read or that the engine refuses is named (`"item": 2`)
//! and the others are stored; only an unreadable document or a size limit fails all.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::server::batch::Batch;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::limits::Limits;
use crate::server::metrics::Protocol;
use crate::server::time::{format_rfc3339, json_time, now_ms};
use crate::server::{body, values, Shared};
use crate::{MetadataUpdate, MetricKind, METRIC_NAME};

pub(super) async fn ingest(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    // Numbers past f64's range read as ±Inf, as in every text input (`values.rs`).
    let doc: Value = serde_json::from_slice(&values::quote_huge_numbers(&bytes))
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let now = now_ms();
    let limits = &st.limits;
    let mut batch = Batch::new(limits);
    let single =
        match &doc {
            Value::Object(o) if !o.contains_key("metrics") => match add(&mut batch, o, now, limits) {
                Ok((name, ts)) => Some((name, ts)),
                Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => return Err(e),
                Err(e) => {
                    batch.refused.add_error(None, 1, e);
                    None
                }
            },
            Value::Object(o) => {
                let items = o.get("metrics").and_then(Value::as_array).ok_or_else(|| {
                    ApiError::bad_request("\"metrics\" must be an array of {metric_name, value, timestamp, labels}")
                })?;
                add_all(&mut batch, items, "metrics", now, limits)?;
                None
            }
            Value::Array(items) => {
                add_all(&mut batch, items, "", now, limits)?;
                None
            }
            _ => return Err(ApiError::bad_request(
                "expected an object {metric_name, value, timestamp, labels}, an array of them, or {\"metrics\": [...]}",
            )),
        };
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

/// Adds every item it can; an item that cannot be read is refused by index.
/// Only a request limit (413) fails the batch.
fn add_all(batch: &mut Batch, items: &[Value], path: &str, now: i64, limits: &Limits) -> Result<(), ApiError> {
    batch.positions("item");
    for (i, item) in items.iter().enumerate() {
        batch.at(i as u64);
        let added = match item.as_object() {
            Some(o) => add(batch, o, now, limits).map(drop),
            None => Err(ApiError::bad_request("expected an object")),
        };
        match added {
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
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(ApiError::bad_request(format!("labels.{k}: expected a string"))),
                };
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
