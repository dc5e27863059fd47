//! The router: which handler serves which path, and the layers around them.
//! Handlers parse their own query strings and bodies so that every error,
//! including a malformed parameter, is a JSON `{"error": ...}` naming it.

mod admin;
mod catalog;
mod health;
mod influx;
mod ingest;
mod prom_api;
mod query;
mod raw;
mod read_params;
mod retention_api;
mod rollup;
mod summary;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post};
use axum::Router;

use super::error::ApiError;
use super::{auth, export, import, line_protocol, metrics, otlp, remote_read, remote_write, stream, Shared};

pub(crate) fn router(state: Shared) -> Router {
    let protected = Router::new()
        // Seed 004: health, status, ingest, discovery, raw reads.
        .route("/", get(health::root))
        .route("/db/status", get(health::db_status))
        .route("/metrics/ingest", post(ingest::ingest))
        .route("/metrics/list", get(catalog::list_metrics))
        .route("/query/raw", get(raw::raw))
        // Seed 004 endpoints served by the query layer (`db.query`).
        // InfluxQL (`q=CREATE DATABASE …`) for InfluxDB clients, else seed 004's JSON query.
        .route("/query", get(influx::query_get).post(influx::query_post))
        .route("/query/rollup", get(rollup::rollup))
        .route("/query/summary", get(summary::summary))
        .route("/rollups", get(catalog::rollups))
        .route("/metrics/{metric_name}/info", get(catalog::metric_info))
        // Ecosystem write and read paths.
        .route("/api/v1/write", post(remote_write::write))
        .route("/api/v1/read", post(remote_read::read))
        .route("/write", post(line_protocol::write))
        .route("/api/v2/write", post(line_protocol::write))
        // OpenTelemetry metrics (OTLP/HTTP), at Prometheus' and VictoriaMetrics' paths.
        .route("/api/v1/otlp/v1/metrics", post(otlp::write))
        .route("/opentelemetry/v1/metrics", post(otlp::write))
        .route("/export", get(export::export))
        .route("/import", post(import::import))
        .route("/stream", get(stream::stream))
        .route("/metrics", get(metrics::handler))
        .route("/backup", post(admin::backup))
        .route("/admin/flush", post(admin::flush))
        .route("/admin/compact", post(admin::compact))
        .route("/admin/retention", get(admin::get_retention).put(admin::put_retention))
        .route("/admin/retention/apply", post(admin::apply_retention))
        .route("/admin/retention/rules", post(admin::add_rule))
        .route("/admin/retention/rules/{name}", delete(admin::remove_rule))
        // Prometheus's query API (GET, or POST with a form body as Grafana sends).
        .route("/api/v1/query", get(prom_api::query).post(prom_api::query))
        .route("/api/v1/query_range", get(prom_api::query_range).post(prom_api::query_range))
        .route("/api/v1/series", get(prom_api::series).post(prom_api::series))
        .route("/api/v1/labels", get(prom_api::labels).post(prom_api::labels))
        .route("/api/v1/label/{name}/values", get(prom_api::label_values))
        .route("/api/v1/metadata", get(prom_api::metadata))
        .route("/api/v1/status/buildinfo", get(prom_api::buildinfo))
        .route("/api/v1/status/flags", get(prom_api::flags))
        .route("/api/v1/status/runtimeinfo", get(prom_api::runtimeinfo))
        .route("/api/v1/query_exemplars", get(prom_api::exemplars).post(prom_api::exemplars))
        .route("/api/v1/rules", get(prom_api::rules))
        .route("/api/v1/alerts", get(prom_api::alerts))
        .route("/api/v1/admin/tsdb/delete_series", post(admin::delete_series).put(admin::delete_series))
        .route_layer(from_fn_with_state(state.clone(), auth::require));
    Router::new()
        .route("/health", get(health::health))
        // Open, as in InfluxDB: clients probe them before they authenticate.
        .route("/ping", get(influx::ping))
        .route("/api/v2/health", get(influx::health_v2))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), metrics::track))
        // Bodies are read by `body::read` under `Limits`, never by axum's extractors.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

/// A parsed query string: repeated keys kept, in order, and the request's `now`,
/// read once so that every relative time of one request has the same anchor.
pub(crate) struct Params(Vec<(String, String)>, i64);

impl Params {
    pub fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
        Ok(Params(pairs, super::time::now_ms()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (and of `key[]`, the PHP-style spelling some clients send).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key || k.strip_suffix("[]") == Some(key)).map(|(_, v)| v.as_str())
    }

    /// The request's `now` (ms), the anchor of its relative times.
    pub fn now(&self) -> i64 {
        self.1
    }

    /// An optional time parameter, in any form of `text::time` (`now-1h`, RFC 3339,
    /// epoch seconds or ms by magnitude).
    pub fn time(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key).filter(|s| !s.trim().is_empty()) {
            None => Ok(None),
            Some(s) => super::time::parse_timestamp(s, self.1)
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("{key}: {e}"))),
        }
    }

    /// An optional positive integer parameter.
    pub fn usize(&self, key: &str) -> Result<Option<usize>, ApiError> {
        match self.get(key).filter(|s| !s.trim().is_empty()) {
            None => Ok(None),
            Some(s) => s
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("{key}: expected a non-negative integer, got {s:?}"))),
        }
    }
}

/// `[start, end]` inclusive as the half-open `[start, end + 1)` the querier takes.
pub(crate) fn inclusive_range(start: Option<i64>, end: Option<i64>) -> Result<std::ops::Range<i64>, ApiError> {
    let (s, e) = (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
    if s > e {
        let (s, e) = (super::time::show_time(s), super::time::show_time(e));
        return Err(ApiError::bad_request(format!("start {s} is after end {e}")));
    }
    Ok(s..e.saturating_add(1))
}
