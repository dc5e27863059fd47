//! Prometheus's HTTP query API (`/api/v1/query`, `query_range`, `series`, `labels`,
//! `label/<name>/values`, `metadata`, `status/*`, and the empty `rules`, `alerts`
//! and `query_exemplars`) over `strata::promql`, in Prometheus's JSON shapes, so
//! that Grafana, promtool and every Prometheus client can read Strata.
//!
//! Parameters follow Prometheus, not the rest of this server: a time is RFC 3339
//! or float seconds (never our magnitude rule), `step` and `timeout` a duration or
//! float seconds, and a POST's form body is merged with the query string (body
//! first, as Go's `Request.FormValue` reads it). See docs/SERVER.md.

mod format;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::promql::{Options, PromqlError};
use crate::server::body;
use crate::server::error::{ApiError, ErrorMessage};
use crate::server::exec::run_read;
use crate::server::metrics::QueryKind;
use crate::server::Shared;
use crate::text::jsonl::{write_json_object, write_json_string};
use crate::{Labels, Matcher};
use format::encode_value;

/// A failed request in Prometheus's shape: `{"status":"error","errorType":..,"error":..}`.
#[derive(Debug)]
pub(super) struct PromError {
    kind: &'static str,
    message: String,
}

impl PromError {
    fn bad_data(message: impl Into<String>) -> PromError {
        PromError { kind: "bad_data", message: message.into() }
    }

    fn param(name: &str, why: impl std::fmt::Display) -> PromError {
        PromError::bad_data(format!("invalid parameter \"{name}\": {why}"))
    }

    /// Prometheus's status for each errorType (web/api/v1's `respondError`).
    fn status(&self) -> StatusCode {
        match self.kind {
            "bad_data" => StatusCode::BAD_REQUEST,
            "execution" => StatusCode::UNPROCESSABLE_ENTITY,
            "timeout" | "canceled" | "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            "not_found" => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<PromqlError> for PromError {
    fn from(e: PromqlError) -> PromError {
        PromError { kind: e.kind.as_str(), message: e.message }
    }
}

impl From<ApiError> for PromError {
    /// A server-side failure (body limits, a panicked task) keeps its meaning.
    fn from(e: ApiError) -> PromError {
        let kind = match e.status.as_u16() {
            400 | 413 | 415 => "bad_data",
            422 => "execution",
            503 => "unavailable",
            _ => "internal",
        };
        PromError { kind, message: e.message }
    }
}

impl From<crate::Error> for PromError {
    fn from(e: crate::Error) -> PromError {
        if e.is_input_error() {
            PromError::bad_data(e.to_string())
        } else {
            PromError { kind: "internal", message: e.to_string() }
        }
    }
}

impl IntoResponse for PromError {
    fn into_response(self) -> Response {
        let mut out = String::with_capacity(self.message.len() + 64);
        out.push_str("{\"status\":\"error\",\"errorType\":\"");
        out.push_str(self.kind);
        out.push_str("\",\"error\":");
        write_json_string(&mut out, &self.message);
        out.push('}');
        let mut r = json(self.status(), out);
        r.extensions_mut().insert(ErrorMessage(self.message));
        r
    }
}

type PromResult = Result<Response, PromError>;

fn json(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    r
}

/// `{"status":"success","data":<data>}` around already encoded JSON.
fn success(data: &str) -> Response {
    let mut out = String::with_capacity(data.len() + 32);
    out.push_str("{\"status\":\"success\",\"data\":");
    out.push_str(data);
    out.push('}');
    json(StatusCode::OK, out)
}

/// A request's parameters: a POST's form body first, then the query string.
struct Form(Vec<(String, String)>);

impl Form {
    async fn read(
        st: &Shared,
        method: &Method,
        headers: &HeaderMap,
        query: Option<&str>,
        req: Body,
    ) -> Result<Form, PromError> {
        let mut pairs = Vec::new();
        if *method == Method::POST {
            let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            let bytes = body::read(&st.limits, headers, req, false).await?;
            if !bytes.is_empty() {
                if !ctype.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
                    return Err(PromError::bad_data(format!(
                        "expected a form body (Content-Type application/x-www-form-urlencoded), got {ctype:?}"
                    )));
                }
                pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
                    .map_err(|e| PromError::bad_data(format!("invalid form body: {e}")))?;
            }
        }
        let q = serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            .map_err(|e| PromError::bad_data(format!("invalid query string: {e}")))?;
        pairs.extend(q);
        Ok(Form(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    fn time(&self, key: &str) -> Result<Option<i64>, PromError> {
        self.get(key).map(|s| format::parse_time(s).map_err(|e| PromError::param(key, e))).transpose()
    }

    fn duration(&self, key: &str) -> Result<Option<i64>, PromError> {
        self.get(key).map(|s| format::parse_duration(s).map_err(|e| PromError::param(key, e))).transpose()
    }

    /// Evaluation options: the server's limits, with a shorter `timeout` if asked.
    fn options(&self, st: &Shared) -> Result<Options, PromError> {
        let mut timeout = st.limits.query_timeout;
        if let Some(ms) = self.duration("timeout")? {
            timeout = timeout.min(Duration::from_millis(ms.max(0).unsigned_abs()));
        }
        Ok(Options { max_samples: st.limits.query_max_samples, timeout: Some(timeout), ..Options::default() })
    }

    /// Every `match[]` as engine matchers.
    fn matches(&self) -> Result<Vec<Vec<Matcher>>, PromError> {
        self.all("match[]")
            .into_iter()
            .map(|s| crate::text::selector::parse_selector(s).map_err(|e| PromError::param("match[]", e)))
            .collect()
    }

    /// `start`..`end` (both inclusive) as the querier's half-open range; all time by default.
    fn range(&self) -> Result<std::ops::Range<i64>, PromError> {
        let s = self.time("start")?.unwrap_or(i64::MIN);
        let e = self.time("end")?.unwrap_or(i64::MAX).min(i64::MAX - 1);
        if e < s {
            return Err(PromError::param("end", "end timestamp must not be before start time"));
        }
        Ok(s..e + 1)
    }
}

/// Waits for one of `--query-max-concurrency` slots, at most the query's timeout.
async fn slot(st: &Shared, timeout: Duration) -> Result<tokio::sync::OwnedSemaphorePermit, PromError> {
    match tokio::time::timeout(timeout, st.promql_slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(_)) => Err(PromError { kind: "unavailable", message: "the server is shutting down".into() }),
        Err(_) => Err(PromError {
            kind: "timeout",
            message: format!(
                "query timed out waiting for one of {} concurrent query slots (--query-max-concurrency)",
                st.limits.query_max_concurrency
            ),
        }),
    }
}

/// `GET|POST /api/v1/query`: `query`, optional `time` (default now) and `timeout`.
pub(super) async fn query(
    State(st): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    req: Body,
) -> PromResult {
    let started = Instant::now();
    let f = Form::read(&st, &method, &headers, q.as_deref(), req).await?;
    let expr = f.get("query").ok_or_else(|| PromError::param("query", "missing query"))?.to_string();
    let t = f.time("time")?.unwrap_or_else(crate::server::time::now_ms);
    let opts = f.options(&st)?;
    let permit = slot(&st, opts.timeout.unwrap_or(st.limits.query_timeout)).await?;
    let db = st.db.clone();
    let res = run_read(move || Ok(db.promql_instant_with(&expr, t, &opts))).await?;
    drop(permit);
    st.metrics.query(QueryKind::Promql, started.elapsed());
    Ok(success(&encode_value(&res?)))
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step`, optional `timeout`.
pub(super) async fn query_range(
    State(st): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    req: Body,
) -> PromResult {
    let started = Instant::now();
    let f = Form::read(&st, &method, &headers, q.as_deref(), req).await?;
    let required = |key: &'static str| -> Result<i64, PromError> {
        f.time(key)?.ok_or_else(|| PromError::param(key, "cannot parse \"\" to a valid timestamp"))
    };
    let (start, end) = (required("start")?, required("end")?);
    let step = f.duration("step")?.ok_or_else(|| PromError::param("step", "cannot parse \"\" to a valid duration"))?;
    if end < start {
        return Err(PromError::param("end", "end timestamp must not be before start time"));
    }
    let expr = f.get("query").ok_or_else(|| PromError::param("query", "missing query"))?.to_string();
    let opts = f.options(&st)?;
    let permit = slot(&st, opts.timeout.unwrap_or(st.limits.query_timeout)).await?;
    let db = st.db.clone();
    let res = run_read(move || Ok(db.promql_range_with(&expr, start, end, step, &opts))).await?;
    drop(permit);
    st.metrics.query(QueryKind::Promql, started.elapsed());
    Ok(success(&encode_value(&res?)))
}

/// The label sets of the series that match any of `sels` and have a sample in `range`.
fn matching_series(
    st: &Shared,
    sels: Vec<Vec<Matcher>>,
    range: std::ops::Range<i64>,
) -> Result<Vec<Labels>, PromError> {
    let q = st.db.querier(range);
    let mut out: Vec<Labels> = Vec::new();
    if sels.is_empty() {
        for s in q.select_all()? {
            out.push(s?.0);
        }
    } else {
        for m in &sels {
            for s in q.select(m)? {
                out.push(s?.0);
            }
        }
    }
    sort_labels(&mut out);
    out.dedup();
    Ok(out)
}

fn sort_labels(v: &mut [Labels]) {
    v.sort_by(|a, b| a.iter().cmp(b.iter()));
}

/// `GET|POST /api/v1/series`: `match[]` (at least one), `start`, `end`.
pub(super) async fn series(
    State(st): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    req: Body,
) -> PromResult {
    let f = Form::read(&st, &method, &headers, q.as_deref(), req).await?;
    let sels = f.matches()?;
    if sels.is_empty() {
        return Err(PromError::bad_data("no match[] parameter provided"));
    }
    let range = f.range()?;
    let s = st.clone();
    let found = run_read(move || Ok(matching_series(&s, sels, range))).await??;
    let mut out = String::from("[");
    for (i, l) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_object(&mut out, l.iter());
    }
    out.push(']');
    Ok(success(&out))
}

/// `GET|POST /api/v1/labels`: label names of the series that match (all without `match[]`).
pub(super) async fn labels(
    State(st): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    req: Body,
) -> PromResult {
    let f = Form::read(&st, &method, &headers, q.as_deref(), req).await?;
    let (sels, range) = (f.matches()?, f.range()?);
    let s = st.clone();
    let found = run_read(move || Ok(matching_series(&s, sels, range))).await??;
    let names: std::collections::BTreeSet<&str> = found.iter().flat_map(|l| l.iter().map(|(k, _)| k)).collect();
    Ok(success(&format::string_array(names)))
}

/// `GET|POST /api/v1/label/<name>/values`: the label's values on the series that match.
pub(super) async fn label_values(
    State(st): State<Shared>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    req: Body,
) -> PromResult {
    if crate::labels::validate_name(&name).is_err() {
        return Err(PromError::bad_data(format!("invalid label name: \"{name}\"")));
    }
    let f = Form::read(&st, &method, &headers, q.as_deref(), req).await?;
    let (sels, range) = (f.matches()?, f.range()?);
    let s = st.clone();
    let found = run_read(move || Ok(matching_series(&s, sels, range))).await??;
    let values: std::collections::BTreeSet<&str> = found.iter().filter_map(|l| l.get(&name)).collect();
    Ok(success(&format::string_array(values)))
}

/// `GET /api/v1/metadata[?metric=&limit=&limit_per_metric=]`: the recorded metric
/// metadata, `{"<name>":[{"type":..,"help":..,"unit":..}]}` (one entry per metric:
/// Strata keeps one, last write wins). `limit` caps the metrics (a negative one,
/// or none, means all), as Prometheus does; `limit_per_metric` is accepted.
pub(super) async fn metadata(State(st): State<Shared>, RawQuery(q): RawQuery) -> PromResult {
    let f = Form::read(&st, &Method::GET, &HeaderMap::new(), q.as_deref(), Body::empty()).await?;
    let number = |key: &str| -> Result<i64, PromError> {
        f.get(key).map_or(Ok(-1), |s| {
            s.trim().parse::<i64>().map_err(|_| PromError::bad_data(format!("{key} must be a number")))
        })
    };
    // Strata holds one entry per metric, so any `limit_per_metric` (0 or less: no
    // limit, as in Prometheus) leaves it; the parameter is still checked.
    let (limit, _per_metric) = (number("limit")?, number("limit_per_metric")?);
    let all = match f.get("metric") {
        Some(name) => st.db.metadata(name).map(|m| (name.to_string(), m)).into_iter().collect(),
        None => st.db.all_metadata(),
    };
    let mut out = String::from("{");
    let take = if limit < 0 { usize::MAX } else { limit as usize };
    for (i, (name, m)) in all.iter().take(take).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(&mut out, name);
        out.push_str(":[{\"type\":");
        write_json_string(&mut out, m.kind.as_str());
        out.push_str(",\"help\":");
        write_json_string(&mut out, &m.help);
        out.push_str(",\"unit\":");
        write_json_string(&mut out, &m.unit);
        out.push_str("}]");
    }
    out.push('}');
    Ok(success(&out))
}

/// `GET /api/v1/status/buildinfo`: Grafana reads `data.version` to pick its dialect.
pub(super) async fn buildinfo() -> Response {
    let v = crate::server::VERSION;
    success(&format!(
        "{{\"version\":\"{v}\",\"revision\":\"\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}}"
    ))
}

/// `GET /api/v1/status/flags`: the query limits under Prometheus's flag names.
pub(super) async fn flags(State(st): State<Shared>) -> Response {
    let l = &st.limits;
    success(&format!(
        "{{\"query.lookback-delta\":\"5m\",\"query.max-concurrency\":\"{}\",\"query.max-samples\":\"{}\",\"query.timeout\":\"{}\"}}",
        l.query_max_concurrency,
        l.query_max_samples,
        crate::text::duration::format_duration(i64::try_from(l.query_timeout.as_millis()).unwrap_or(i64::MAX)),
    ))
}

/// `GET /api/v1/status/runtimeinfo`: the fields a client may show; Go's own are empty.
pub(super) async fn runtimeinfo(State(st): State<Shared>) -> Response {
    let started = crate::server::time::now_ms() - i64::try_from(st.started.elapsed().as_millis()).unwrap_or(0);
    let mut out = String::from("{\"startTime\":");
    write_json_string(&mut out, &crate::server::time::format_rfc3339(started));
    out.push_str(",\"CWD\":");
    write_json_string(&mut out, &st.db.path().display().to_string());
    out.push_str(
        ",\"reloadConfigSuccess\":true,\"lastConfigTime\":\"\",\"corruptionCount\":0,\"goroutineCount\":0,\
         \"GOMAXPROCS\":0,\"GOGC\":\"\",\"GODEBUG\":\"\",\"storageRetention\":",
    );
    write_json_string(&mut out, st.db.retention_policy().summary().to_string().trim_end());
    out.push('}');
    success(&out)
}

/// `/api/v1/query_exemplars`: Strata stores no exemplars.
pub(super) async fn exemplars() -> Response {
    success("[]")
}

/// `/api/v1/rules`: Strata evaluates no rules.
pub(super) async fn rules() -> Response {
    success("{\"groups\":[]}")
}

/// `/api/v1/alerts`: Strata fires no alerts.
pub(super) async fn alerts() -> Response {
    success("{\"alerts\":[]}")
}
