//! `strata dashboard --url`: the dashboard's [`Snapshot`] built from a running
//! server's HTTP API instead of a data directory (which the server has locked).
//!
//! - summary: `GET /db/status`; the ingest rate from the growth of
//!   `strata_ingested_samples_total` (`GET /metrics`) between refreshes, and from
//!   the data (samples in the last 5 minutes) until there are two readings;
//! - metric names: `GET /metrics/list`;
//! - sparklines: `POST /query`, `avg` of every series of the metric as one group,
//!   stepped 1 min over the last hour and 15 min over the last day;
//! - the selected metric's summary: `GET /query/summary` over the summary window;
//! - top series and selector alerts: `POST /query` with `count` and `last` over the
//!   last 5 minutes; expression alerts: `POST /api/v1/query` at the window's end.
//!
//! Windows end where the local dashboard's do: at the newest sample, or now.
//! Nothing the server sends is trusted to be well formed: a missing or odd field
//! is an error message or an absent value, never a panic.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use strata::{Matcher, METRIC_NAME};

use super::alert::{value_pairs, Alert, Target};
use super::prom;
use super::source::{
    alert_state, Buckets, MetricSummary, Snapshot, TopSeries, DAY_BUCKETS, HOUR_BUCKETS, MINUTE, RATE_WINDOW, TOP,
};
use crate::cli::promql::{api_request, read_api_answer, Eval};
use crate::cli::remote::encode;
use crate::cli::{fail, summary, CliError, CliResult};

/// Answers larger than this are refused rather than buffered (the server's own
/// query budget normally stops far earlier).
const MAX_BODY: u64 = 256 << 20;
const PAGE_SIZE: usize = 10_000;

/// A server to read from, and what the live ingest rate needs between refreshes.
pub struct HttpSource {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
    /// The ingest counter at the previous refresh, and when it was read.
    ingested: Option<(f64, Instant)>,
}

/// One series (or group) of a `POST /query` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySeries {
    /// Prometheus notation, as the local dashboard shows series.
    pub series: String,
    /// The single value of an unstepped query.
    pub value: Option<f64>,
    /// `(timestamp_ms, value)` of a stepped query.
    pub points: Vec<(i64, f64)>,
}

impl HttpSource {
    /// `url` is the server's base, `http://host:port`; the token, if any, is read from a file.
    pub fn new(url: &str, token_file: Option<&Path>) -> CliResult<HttpSource> {
        let base = url.trim().trim_end_matches('/').to_string();
        if base.starts_with("https://") {
            return fail(format!("{base}: https is not supported; use http:// (or a local TLS-terminating proxy)"));
        }
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return fail(format!("invalid --url {url:?}: expected http://HOST:PORT, e.g. http://127.0.0.1:9464"));
        }
        let token = match token_file {
            None => None,
            Some(p) => {
                let t = std::fs::read_to_string(p)
                    .map_err(|e| CliError::new(format!("reading token file {}: {e}", p.display())))?;
                Some(t.trim().to_string()).filter(|t| !t.is_empty())
            }
        };
        // Status codes are handled here so that the server's JSON error can be shown.
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(15)))
            .build();
        Ok(HttpSource { agent: config.into(), base, token, ingested: None })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    fn get(&self, path: &str) -> CliResult<String> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        self.answer("GET", path, req.call())
    }

    fn post_json(&self, path: &str, body: &Value) -> CliResult<Value> {
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let text = self.answer("POST", path, req.send(body.to_string().as_bytes()))?;
        self.json(path, &text)
    }

    /// `POST path` with a form body; the answer's status and text, whatever the status.
    fn post_form(&self, path: &str, form: &str) -> CliResult<(u16, String)> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.post(&url).header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = req
            .send(form.as_bytes())
            .map_err(|e| CliError::new(format!("cannot reach the server at {}: POST {url}: {e}", self.base)))?;
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| CliError::new(format!("POST {url}: reading the answer: {e}")))?;
        Ok((resp.status().as_u16(), text))
    }

    fn get_json(&self, path: &str) -> CliResult<Value> {
        let text = self.get(path)?;
        self.json(path, &text)
    }

    fn json(&self, path: &str, text: &str) -> CliResult<Value> {
        serde_json::from_str(text).map_err(|e| {
            CliError::new(format!("{}{path}: the answer is not JSON ({e}); is this a Strata server?", self.base))
        })
    }

    /// The body of a 2xx answer, or an error naming the URL and what went wrong.
    fn answer(
        &self,
        method: &str,
        path: &str,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> CliResult<String> {
        let url = format!("{}{path}", self.base);
        let mut resp =
            resp.map_err(|e| CliError::new(format!("cannot reach the server at {}: {method} {url}: {e}", self.base)))?;
        let status = resp.status();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| CliError::new(format!("{method} {url}: reading the answer: {e}")))?;
        if status.is_success() {
            return Ok(text);
        }
        Err(CliError::new(status_message(method, &url, status.as_u16(), &text)))
    }

    /// Metric names with their series counts, sorted by name.
    pub fn metrics(&self) -> CliResult<Vec<(String, usize)>> {
        let mut out = Vec::new();
        for page in 1.. {
            let v = self.get_json(&format!("/metrics/list?page={page}&page_size={PAGE_SIZE}"))?;
            let Some(list) = v.get("metrics").and_then(Value::as_array) else {
                return fail(format!("{}/metrics/list: the answer has no \"metrics\" array", self.base));
            };
            for m in list {
                if let Some(name) = m.get("metric_name").and_then(Value::as_str) {
                    let n = m.get("series_count").and_then(Value::as_u64).unwrap_or(0);
                    out.push((name.to_string(), usize::try_from(n).unwrap_or(usize::MAX)));
                }
            }
            let pages = v.get("total_pages").and_then(Value::as_u64).unwrap_or(0);
            if list.is_empty() || page >= pages {
                break;
            }
        }
        Ok(out)
    }

    /// `POST /query` over `[start, end)`; `extra` adds fields such as `step`.
    pub fn query(
        &self,
        selector: &str,
        start: i64,
        end: i64,
        function: &str,
        extra: Value,
    ) -> CliResult<Vec<QuerySeries>> {
        let mut body = json!({"selector": selector, "start_time": start, "end_time": end, "function": function});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        let v = self.post_json("/query", &body)?;
        let Some(series) = v.get("series").and_then(Value::as_array) else {
            return fail(format!("{}/query: the answer has no \"series\" array", self.base));
        };
        Ok(series.iter().map(query_series).collect())
    }

    /// Collects a snapshot; `selected` indexes the metric names (wrapped).
    pub fn collect(&mut self, alerts: &[Alert], selected: usize, window: i64, now: i64) -> CliResult<Snapshot> {
        let status = self.get_json("/db/status")?;
        let u = |path: &[&str]| path.iter().try_fold(&status, |v, k| v.get(k)).and_then(Value::as_u64).unwrap_or(0);
        let newest = status.get("newest_ms").and_then(Value::as_i64);
        let end = newest.map_or(now, |n| n.min(now)) + 1;
        let metrics = self.metrics()?;
        let selected = if metrics.is_empty() { 0 } else { selected % metrics.len() };
        let raw_samples = u(&["segment_samples", "raw"]);
        let mut snap = Snapshot {
            dir: self.base.clone(),
            window_end: end,
            stale: end < now - RATE_WINDOW,
            series: u(&["series"]),
            samples: u(&["samples"]),
            disk_bytes: ["raw", "5m", "1h"].iter().map(|t| u(&["disk_bytes", t])).sum(),
            bytes_per_sample: (raw_samples > 0).then(|| u(&["disk_bytes", "raw"]) as f64 / raw_samples as f64),
            head_bytes: u(&["head", "bytes"]),
            wal_bytes: u(&["wal", "disk_bytes"]),
            metrics,
            selected,
            ..Default::default()
        };
        // A database that refuses writes still answers reads: say so, show the rest.
        if status.get("status").and_then(Value::as_str) == Some("read_only") {
            let why = status.get("error").and_then(Value::as_str).unwrap_or("unknown cause");
            snap.error = Some(format!("the server's database is read-only: {why}"));
        }
        if let Some(name) = snap.selected_metric().map(str::to_string) {
            (snap.hour, snap.day) = self.sparklines(&name, end)?;
            // Both times inclusive, in ms.
            let path = format!(
                "/query/summary?metric_name={}&start_time={}&end_time={}",
                encode(&name),
                end - window,
                end - 1
            );
            let r = summary::read_report(&self.get_json(&path)?)?;
            snap.summary = Some(MetricSummary { window, series: r.series.len(), stats: r.overall });
        }
        let data_rate;
        (snap.top, data_rate) = self.top_series(end)?;
        snap.rate = self.ingest_rate().unwrap_or(data_rate);
        snap.alerts = alerts
            .iter()
            .map(|a| match &a.target {
                Target::Latest(m) => {
                    let latest = self.query(&selector_text(m), end - RATE_WINDOW, end, "last", json!({}))?;
                    Ok(alert_state(a, Ok(latest.into_iter().filter_map(|s| Some((s.series, s.value?))).collect())))
                }
                // A query the server refuses is this alert's error; an unreachable server fails the refresh.
                Target::Expr(e) => {
                    let (path, form) = api_request(e, Eval::Instant(end - 1));
                    let (status, text) = self.post_form(path, &form)?;
                    let v = read_api_answer(path, status, &text).map_err(|e| e.to_string());
                    Ok(alert_state(a, v.and_then(value_pairs)))
                }
            })
            .collect::<CliResult<_>>()?;
        Ok(snap)
    }

    /// Samples per second committed since the previous refresh, by the server's
    /// ingest counter; `None` on the first reading, when `/metrics` cannot be read,
    /// or when the counter went back (a restarted server): the data rate stands in.
    fn ingest_rate(&mut self) -> Option<f64> {
        let text = self.get("/metrics").ok()?;
        let total = prom::sum(&prom::parse(&text), "strata_ingested_samples_total")?;
        let at = Instant::now();
        let prev = self.ingested.replace((total, at));
        let (before, then) = prev?;
        let secs = at.duration_since(then).as_secs_f64();
        (secs > 0.0 && total >= before).then(|| (total - before) / secs)
    }

    fn sparklines(&self, metric: &str, end: i64) -> CliResult<(Buckets, Buckets)> {
        let sel = selector_text(&[Matcher::eq(METRIC_NAME, metric)]);
        let hour = self.stepped_mean(&sel, end, MINUTE, HOUR_BUCKETS)?;
        let day = self.stepped_mean(&sel, end, 15 * MINUTE, DAY_BUCKETS)?;
        Ok((hour, day))
    }

    /// `n` buckets of `step` ending with the one that holds `end - 1`: the server
    /// aligns buckets to the step since the epoch, so the window is aligned too.
    fn stepped_mean(&self, selector: &str, end: i64, step: i64, n: usize) -> CliResult<Buckets> {
        let start = (end - 1).div_euclid(step) * step - (n as i64 - 1) * step;
        let series = self.query(selector, start, end, "avg", json!({"step": step, "group_by": []}))?;
        Ok(place_points(series.first().map_or(&[][..], |s| &s.points), start, step, n))
    }

    /// Per-series sample counts and latest values over the rate window: the top
    /// series by rate (ties: highest latest value) and the total rate.
    fn top_series(&self, end: i64) -> CliResult<(Vec<TopSeries>, f64)> {
        let all = r#"{__name__=~".+"}"#;
        let counts = self.query(all, end - RATE_WINDOW, end, "count", json!({}))?;
        let last: HashMap<String, f64> = self
            .query(all, end - RATE_WINDOW, end, "last", json!({}))?
            .into_iter()
            .filter_map(|s| Some((s.series, s.value?)))
            .collect();
        Ok(rank(counts, &last))
    }
}

/// Counts per series into ranked [`TopSeries`] and the total samples per second.
fn rank(counts: Vec<QuerySeries>, last: &HashMap<String, f64>) -> (Vec<TopSeries>, f64) {
    let secs = (RATE_WINDOW / 1000) as f64;
    let mut total = 0.0;
    let mut all: Vec<TopSeries> = counts
        .into_iter()
        .map(|s| {
            let n = s.value.filter(|v| v.is_finite()).unwrap_or(0.0);
            total += n;
            let last = last.get(&s.series).copied().unwrap_or(f64::NAN);
            TopSeries { series: s.series, rate: n / secs, last }
        })
        .collect();
    all.sort_by(|a, b| b.rate.total_cmp(&a.rate).then(b.last.total_cmp(&a.last)));
    all.truncate(TOP);
    (all, total / secs)
}

/// Points at their bucket index from `start`; non-finite values and points
/// outside the window are left out.
fn place_points(points: &[(i64, f64)], start: i64, step: i64, n: usize) -> Buckets {
    let mut out = vec![None; n];
    for &(ts, v) in points.iter().filter(|(_, v)| v.is_finite()) {
        if ts < start {
            continue;
        }
        if let Some(b) = usize::try_from((ts - start) / step).ok().and_then(|i| out.get_mut(i)) {
            *b = Some(v);
        }
    }
    out
}

/// One element of an answer's `series`, named as the local dashboard names series.
fn query_series(s: &Value) -> QuerySeries {
    let name = s.get("metric_name").and_then(Value::as_str).unwrap_or("");
    let mut pairs: Vec<(&str, &str)> = s
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default())).collect())
        .unwrap_or_default();
    // As `Labels` prints: sorted by name, empty values dropped, values Debug-quoted.
    pairs.sort_unstable();
    let body: Vec<String> = pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={v:?}")).collect();
    let series = format!("{name}{{{}}}", body.join(","));
    let points = s
        .get("points")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter().filter_map(|p| Some((p.get("timestamp_ms")?.as_i64()?, json_number(p.get("value")?)?))).collect()
        })
        .unwrap_or_default();
    QuerySeries { series, value: s.get("value").and_then(json_number), points }
}

/// A value as the server writes it: a number, or `"NaN"`, `"+Inf"`, `"-Inf"`,
/// `"NaN(0x...)"` (JSON has no such numbers).
pub fn json_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => strata::text::value::parse_value(s).ok(),
        _ => None,
    }
}

/// Matchers as a selector the server parses back to the same matchers, in the
/// canonical notation: `cpu{host=~"a.*"}`.
pub fn selector_text(matchers: &[Matcher]) -> String {
    strata::text::selector::selector_string(matchers)
}

/// What a non-2xx answer means for the user: the server's `{"error"}` text and a hint.
fn status_message(method: &str, url: &str, status: u16, body: &str) -> String {
    let detail = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect::<String>().trim().to_string());
    let hint = match status {
        401 => " (the server wants a token: pass --token-file, or check the token)",
        404 => " (is this a Strata server?)",
        500..=599 => " (a server-side failure; see the server's log)",
        _ => "",
    };
    format!("{method} {url} answered {status}: {detail}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_query_series_and_special_values() {
        let v = json!({"metric_name": "cpu", "labels": {"host": "a", "dc": "x\"y"}, "value": "NaN",
            "points": [{"timestamp_ms": 60000, "value": 1.5}, {"timestamp_ms": 120000, "value": "+Inf"},
                       {"timestamp_ms": "bad", "value": 2}, {"value": 3}]});
        let s = query_series(&v);
        assert_eq!(s.series, "cpu{dc=\"x\\\"y\",host=\"a\"}");
        assert!(s.value.is_some_and(f64::is_nan));
        assert_eq!(s.points, vec![(60000, 1.5), (120000, f64::INFINITY)]);
        let empty = query_series(&json!("not an object"));
        assert_eq!((empty.series.as_str(), empty.value, empty.points.len()), ("{}", None, 0));
        assert_eq!(json_number(&json!("-Inf")), Some(f64::NEG_INFINITY));
        assert!(json_number(&json!("NaN(0x7ff0000000000002)")).is_some_and(f64::is_nan));
        assert_eq!(json_number(&json!("x")), None);
        assert_eq!(json_number(&Value::Null), None);
    }

    #[test]
    fn writes_selectors_the_server_reads_back() {
        let m = vec![
            Matcher::eq(METRIC_NAME, "cpu"),
            Matcher::regex("host", r"a\.b|c").unwrap(),
            Matcher::ne("dc", "q\"\n"),
            Matcher::not_regex("z", "x").unwrap(),
        ];
        assert_eq!(selector_text(&m), r#"cpu{host=~"a\\.b|c",dc!="q\"\n",z!~"x"}"#);
        let back = strata::text::selector::parse_selector(&selector_text(&m)).unwrap();
        let fields = |v: &[Matcher]| v.iter().map(|m| (m.name.clone(), m.op, m.value.clone())).collect::<Vec<_>>();
        assert_eq!(fields(&back), fields(&m));
    }

    #[test]
    fn places_points_in_their_buckets() {
        let b = place_points(&[(0, 1.0), (120, 2.0), (180, f64::NAN), (240, 9.0), (-60, 5.0)], 0, 60, 4);
        assert_eq!(b, vec![Some(1.0), None, Some(2.0), None]);
    }

    #[test]
    fn ranks_series_by_rate_then_latest_value() {
        let q = |s: &str, n: f64| QuerySeries { series: s.into(), value: Some(n), points: Vec::new() };
        let last = HashMap::from([("a{}".to_string(), 1.0), ("b{}".to_string(), 5.0)]);
        let (top, total) = rank(vec![q("a{}", 30.0), q("b{}", 30.0), q("c{}", 60.0)], &last);
        let names: Vec<&str> = top.iter().map(|t| t.series.as_str()).collect();
        assert_eq!(names, ["c{}", "b{}", "a{}"]);
        assert_eq!((top[0].rate, total), (0.2, 0.4));
        assert!(top[0].last.is_nan());
    }

    #[test]
    fn explains_error_statuses() {
        let m = status_message("GET", "http://h:1/db/status", 401, r#"{"error": "missing bearer token"}"#);
        assert_eq!(m, "GET http://h:1/db/status answered 401: missing bearer token (the server wants a token: pass --token-file, or check the token)");
        assert!(status_message("POST", "u", 503, "<html>down</html>").contains("503: <html>down</html> (a server-side"));
    }

    #[test]
    fn refuses_urls_it_cannot_use() {
        assert!(HttpSource::new("https://x:1", None).err().is_some_and(|e| e.to_string().contains("https")));
        assert!(HttpSource::new("127.0.0.1:9464", None).err().is_some_and(|e| e.to_string().contains("http://HOST")));
        assert_eq!(
            HttpSource::new("http://127.0.0.1:9464/", None).map(|s| s.url().to_string()).ok().as_deref(),
            Some("http://127.0.0.1:9464")
        );
    }
}
