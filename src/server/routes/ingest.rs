//! `POST /metrics/ingest` (seed 004): one metric `{metric_name, value, timestamp, labels}`,
//! or a batch as a JSON array of those or `{"metrics": [...]}`. The whole request is
//! validated before anything is stored.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::server::batch::Batch;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::limits::Limits;
use crate::server::metrics::Protocol;
use crate::server::time::{format_rfc3339, now_ms, parse_timestamp};
use crate::server::{body, values, Shared};
use crate::METRIC_NAME;

pub(super) async fn ingest(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let now = now_ms();
    let limits = &st.limits;
    let mut batch = Batch::new(limits);
    let single =
        match &doc {
            Value::Object(o) if !o.contains_key("metrics") => {
                let (name, ts) = add(&mut batch, o, now, limits)?;
                Some((name, ts))
            }
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
    let n = batch.commit(&st, Protocol::Json).await?;
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

fn add_all(batch: &mut Batch, items: &[Value], path: &str, now: i64, limits: &Limits) -> Result<(), ApiError> {
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let o = item.as_object().ok_or_else(|| ApiError::bad_request(format!("{at}: expected an object")))?;
        add(batch, o, now, limits).map_err(|e| e.context(&at))?;
    }
    Ok(())
}

/// Validates one metric object and adds it; returns its name and timestamp.
fn add(batch: &mut Batch, o: &Map<String, Value>, now: i64, limits: &Limits) -> Result<(String, i64), ApiError> {
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
    let ts = match o.get("timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => parse_timestamp(s).map_err(|e| ApiError::bad_request(format!("timestamp: {e}")))?,
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| ApiError::bad_request(format!("timestamp: {n} is not an integer of milliseconds")))?,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "timestamp: expected an RFC 3339 string or epoch milliseconds, got {v}"
            )))
        }
    };
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
    let sid = batch.series_from(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), limits)?;
    batch.push(sid, ts, value, limits)?;
    Ok((name, ts))
}
