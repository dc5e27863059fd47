//! What InfluxDB clients (Telegraf's `influxdb` and `influxdb_v2` outputs, the
//! `influx` CLI) call besides `/write` and `/api/v2/write`: `GET /ping`,
//! `GET /api/v2/health`, and `/query?q=CREATE DATABASE …`.
//!
//! Strata holds one database: the `db` (v1) and `bucket`/`org` (v2) of a write are
//! accepted and not stored, so `CREATE DATABASE` succeeds without creating anything.
//! Other InfluxQL is refused by name; Strata's query languages are PromQL and `/query`.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::query;
use crate::server::body;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::Shared;

/// The InfluxDB version clients are told; 1.8 is the last 1.x line whose write and
/// ping behaviour Strata follows.
const INFLUX_VERSION: &str = "1.8.10";

/// `GET|HEAD /ping`: 204 and the version headers (InfluxDB 1.x); `?verbose=true`
/// answers 200 with the version in JSON, as InfluxDB does.
pub(super) async fn ping(State(st): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let verbose = super::Params::parse(q.as_deref()).ok().and_then(|p| p.get("verbose").map(|v| v == "true"));
    let mut r = if verbose == Some(true) {
        json_response(StatusCode::OK, &json!({"version": INFLUX_VERSION}))
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if st.db.wal_stats().poisoned.is_some() {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = r.headers_mut();
    h.insert("x-influxdb-version", HeaderValue::from_static(INFLUX_VERSION));
    h.insert("x-influxdb-build", HeaderValue::from_static("OSS"));
    r
}

/// `GET /api/v2/health` in InfluxDB 2's shape; `fail` (503) once writes are refused.
pub(super) async fn health_v2(State(st): State<Shared>) -> Response {
    let version = env!("CARGO_PKG_VERSION");
    match st.db.wal_stats().poisoned {
        None => json_response(
            StatusCode::OK,
            &json!({"name": "strata", "message": "ready for queries and writes", "status": "pass", "checks": [], "version": version}),
        ),
        Some(cause) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"name": "strata", "message": cause, "status": "fail", "checks": [], "version": version}),
        ),
    }
}

/// `GET /query?q=…`: InfluxQL.
pub(super) async fn query_get(RawQuery(q): RawQuery) -> ApiResult {
    influxql(&super::Params::parse(q.as_deref())?)
}

/// `POST /query`: InfluxQL when the request carries `q` (in the query string or a
/// form body, as InfluxDB clients send it), otherwise seed 004's JSON query.
pub(super) async fn query_post(st: State<Shared>, RawQuery(q): RawQuery, headers: HeaderMap, req: Body) -> ApiResult {
    let params = super::Params::parse(q.as_deref())?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if params.get("q").is_some() {
        return influxql(&params);
    }
    if !form {
        return query::aggregate(st, RawQuery(q), headers, req).await;
    }
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let form = std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("form body is not UTF-8"))?;
    let form = super::Params::parse(Some(form))?;
    if form.get("q").is_none() {
        return Err(ApiError::bad_request("missing parameter q (an InfluxQL statement)"));
    }
    influxql(&form)
}

/// Answers the statements of `q` as InfluxDB does: one result per statement.
fn influxql(params: &super::Params) -> ApiResult {
    let q = params.get("q").unwrap_or("");
    let statements: Vec<&str> = q.split(';').map(str::trim).filter(|s| !s.is_empty()).collect();
    if statements.is_empty() {
        return Err(ApiError::bad_request("missing parameter q (an InfluxQL statement)"));
    }
    let mut results = Vec::new();
    for (i, s) in statements.iter().enumerate() {
        create_database(s)?;
        results.push(json!({"statement_id": i}));
    }
    Ok(json_response(StatusCode::OK, &json!({"results": results})))
}

/// Checks `CREATE DATABASE name [WITH …]`; any other statement is refused by name.
fn create_database(stmt: &str) -> Result<(), ApiError> {
    let words: Vec<&str> = stmt.split_whitespace().collect();
    let is_create =
        words.len() >= 3 && words[0].eq_ignore_ascii_case("create") && words[1].eq_ignore_ascii_case("database");
    if !is_create {
        let shown: String = stmt.chars().take(80).collect();
        return Err(ApiError::bad_request(format!(
            "InfluxQL statement {shown:?} is not supported: Strata accepts only CREATE DATABASE here \
             (query with PromQL at /api/v1/query, or POST /query with a JSON body)"
        )));
    }
    let rest = stmt.trim_start()[words[0].len()..].trim_start()[words[1].len()..].trim_start();
    let name = if let Some(quoted) = rest.strip_prefix('"') {
        let mut end = None;
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end =
            end.ok_or_else(|| ApiError::bad_request(format!("CREATE DATABASE: unterminated name in {stmt:?}")))?;
        &quoted[..end]
    } else {
        rest.split_whitespace().next().unwrap_or("")
    };
    if name.is_empty() {
        return Err(ApiError::bad_request(format!("CREATE DATABASE: missing database name in {stmt:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_create_database_and_refuses_other_statements() {
        for ok in [
            "CREATE DATABASE \"telegraf\"",
            "create database telegraf",
            "CREATE DATABASE \"a \\\" b\" WITH DURATION 1d",
        ] {
            assert!(create_database(ok).is_ok(), "{ok}");
        }
        for bad in
            ["SHOW DATABASES", "SELECT * FROM cpu", "CREATE DATABASE \"x", "CREATE DATABASE \"\"", "DROP DATABASE x"]
        {
            assert_eq!(create_database(bad).unwrap_err().status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert!(create_database("SHOW DATABASES").unwrap_err().message.contains("\"SHOW DATABASES\" is not supported"));
    }
}
