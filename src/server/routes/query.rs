//! Seed 004 reads: `GET /query/raw` straight from the engine; `POST /query` and
//! `GET /query/rollup` through the query layer (`db.query`). The parsing and JSON
//! helpers here are shared with the discovery endpoints in `catalog.rs`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::ops::Range;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Map, Value};

use super::{inclusive_range, Params};
use crate::rollup::{FIVE_MIN_MS, HOUR_MS};
use crate::server::body;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::exec::run_read;
use crate::server::limits::Limits;
use crate::server::metrics::QueryKind;
use crate::server::time::{format_rfc3339, json_time, now_ms};
use crate::server::values::json_str;
use crate::server::Shared;
use crate::text::duration::{format_duration, parse_duration};
use crate::text::value::write_json_value;
use crate::{Agg, Db, Labels, Matcher, Query, Tier, METRIC_NAME};

/// `GET /query/raw?metric_name=cpu&start_time=..&end_time=..&labels={"host":"a"}`:
/// every sample of the matching series in `[start_time, end_time]` (both inclusive,
/// both optional), series by series in time order.
pub(super) async fn raw(State(st): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let started = Instant::now();
    let p = Params::parse(q.as_deref())?;
    let name = p
        .get("metric_name")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("missing query parameter metric_name"))?
        .to_string();
    let (start, end) = (p.time("start_time")?, p.time("end_time")?);
    let range = inclusive_range(start, end)?;
    let mut matchers = vec![Matcher::eq(METRIC_NAME, name.clone())];
    matchers.extend(labels_param(&p)?);
    let db = st.db.clone();
    let limits = st.limits.clone();
    let header = {
        let mut h = String::from("{\"metric_name\":");
        json_str(&name, &mut h);
        let _ = write!(
            h,
            ",\"start_time\":{},\"end_time\":{},",
            start.map_or("null".into(), |t| format!("\"{}\"", format_rfc3339(t))),
            end.map_or("null".into(), |t| format!("\"{}\"", format_rfc3339(t))),
        );
        h
    };
    let out = run_read(move || render_raw(&db, range, &matchers, &limits, header)).await?;
    st.metrics.query(QueryKind::Raw, started.elapsed());
    let mut r = out.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// Reads under the range × series budget and renders the JSON by hand (values
/// that JSON cannot hold, NaN and ±Inf, become strings; see `values`).
fn render_raw(
    db: &Db,
    range: std::ops::Range<i64>,
    matchers: &[Matcher],
    limits: &Limits,
    mut out: String,
) -> Result<String, ApiError> {
    let q = db.querier(range);
    let mut data = String::new();
    let (mut count, mut series) = (0usize, 0usize);
    for item in q.select(matchers)? {
        let (labels, samples) = item?;
        series += 1;
        count += samples.len();
        if series > limits.max_query_series || count > limits.max_query_samples {
            return Err(limits.over_budget());
        }
        let mut lj = String::from("{");
        for (i, (k, v)) in labels.iter().filter(|(k, _)| *k != METRIC_NAME).enumerate() {
            if i > 0 {
                lj.push(',');
            }
            json_str(k, &mut lj);
            lj.push(':');
            json_str(v, &mut lj);
        }
        lj.push('}');
        for s in samples {
            if !data.is_empty() {
                data.push(',');
            }
            let _ = write!(data, "{{\"timestamp\":\"{}\",\"timestamp_ms\":{},\"value\":", format_rfc3339(s.ts), s.ts);
            write_json_value(&mut data, s.value);
            let _ = write!(data, ",\"labels\":{lj}}}");
        }
    }
    let _ = write!(out, "\"count\":{count},\"series_count\":{series},\"data\":[{data}]}}");
    Ok(out)
}

// ------------------------------------------------------------------ shared pieces

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// The `labels` query parameter: a JSON object of exact matches (`{"host":"a"}`).
fn labels_param(p: &Params) -> Result<Vec<Matcher>, ApiError> {
    match p.get("labels").filter(|s| !s.trim().is_empty()) {
        None => Ok(Vec::new()),
        Some(raw) => {
            let v: Value = serde_json::from_str(raw).map_err(|e| bad(format!("labels: invalid JSON object: {e}")))?;
            label_matchers(&v)
        }
    }
}

/// A JSON object of label name -> value as exact matchers; `null` means none.
fn label_matchers(v: &Value) -> Result<Vec<Matcher>, ApiError> {
    let m = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Object(m) => m,
        _ => return Err(bad("labels: expected a JSON object of name -> value")),
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(v) => Ok(Matcher::eq(k.clone(), v.clone())),
            _ => Err(bad(format!("labels.{k}: expected a string"))),
        })
        .collect()
}

/// `[start, end)` for the query layer: `start_time` inclusive, `end_time` exclusive,
/// so that ranges on bucket boundaries can be answered from the rollup tiers.
fn half_open(start: i64, end: i64) -> Result<Range<i64>, ApiError> {
    if start >= end {
        return Err(bad(format!(
            "start_time {} must be before end_time {} (the range is [start_time, end_time))",
            format_rfc3339(start),
            format_rfc3339(end)
        )));
    }
    Ok(start..end)
}

/// `[start_time, end_time]`, both inclusive, for `POST /query`: the same rule as
/// `strata query --start --end` (`Query::range_inclusive`), never widened to steps.
fn closed(start: i64, end: i64) -> Result<(i64, i64), ApiError> {
    if start > end {
        return Err(bad(format!(
            "start_time {} is after end_time {} (both ends are inclusive)",
            format_rfc3339(start),
            format_rfc3339(end)
        )));
    }
    Ok((start, end))
}

fn required_time(p: &Params, key: &str) -> Result<i64, ApiError> {
    p.time(key)?.ok_or_else(|| bad(format!("missing query parameter {key} (RFC 3339, an epoch number or now-1h)")))
}

/// A time field of a JSON body (`server::time::json_time`), relative to the request's `now`.
fn body_time(o: &Map<String, Value>, key: &str, now: i64) -> Result<i64, ApiError> {
    json_time(o.get(key), now)
        .map_err(|e| bad(format!("{key}: {e}")))?
        .ok_or_else(|| bad(format!("{key}: required (RFC 3339, an epoch number or now-1h)")))
}

fn parse_step(v: &Value) -> Result<i64, ApiError> {
    let hint = "expected a duration such as \"5m\", \"300s\", \"1h\" or a number of milliseconds";
    let ms = match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| bad(format!("step: {n} is not a whole number; {hint}")))?,
        // A string of digits is milliseconds, like a JSON number.
        Value::String(s) if !s.trim().is_empty() && s.trim().bytes().all(|b| b.is_ascii_digit()) => {
            s.trim().parse().map_err(|_| bad(format!("step: {s:?} is too large; {hint}")))?
        }
        Value::String(s) => parse_duration(s).map_err(|e| bad(format!("step: {e}; {hint}")))?,
        _ => return Err(bad(format!("step: {hint}"))),
    };
    if ms <= 0 {
        return Err(bad(format!("step: must be positive, got {ms} ms")));
    }
    Ok(ms)
}

fn parse_agg(name: &str, quantile: Option<&Value>) -> Result<Agg, ApiError> {
    let agg = match name.trim().to_ascii_lowercase().as_str() {
        "avg" | "mean" => Agg::Avg,
        "sum" => Agg::Sum,
        "min" => Agg::Min,
        "max" => Agg::Max,
        "count" => Agg::Count,
        "rate" => Agg::Rate,
        "raw" => Agg::Raw,
        "first" => Agg::First,
        "last" => Agg::Last,
        "increase" => Agg::Increase,
        "stddev" => Agg::Stddev,
        "quantile" => {
            let q = quantile
                .filter(|v| !v.is_null())
                .ok_or_else(|| bad("quantile: required with function quantile (e.g. 0.99)"))?
                .as_f64()
                .ok_or_else(|| bad("quantile: expected a number in [0, 1]"))?;
            if !(0.0..=1.0).contains(&q) {
                return Err(bad(format!("quantile: must be in [0, 1], got {q}")));
            }
            return Ok(Agg::Quantile(q));
        }
        other => {
            return Err(bad(format!(
                "function: unknown function {other:?}; expected one of avg, sum, min, max, count, rate, raw, \
                 first, last, increase, stddev, quantile"
            )))
        }
    };
    if quantile.is_some_and(|v| !v.is_null()) {
        return Err(bad("quantile: only allowed with function quantile"));
    }
    Ok(agg)
}

fn agg_name(agg: Agg) -> &'static str {
    match agg {
        Agg::Raw => "raw",
        Agg::Avg => "avg",
        Agg::Sum => "sum",
        Agg::Min => "min",
        Agg::Max => "max",
        Agg::Count => "count",
        Agg::First => "first",
        Agg::Last => "last",
        Agg::Rate => "rate",
        Agg::Increase => "increase",
        Agg::Stddev => "stddev",
        Agg::Quantile(_) => "quantile",
    }
}

fn parse_tier(s: &str) -> Result<Tier, ApiError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Tier::Auto),
        "raw" => Ok(Tier::Raw),
        "5m" => Ok(Tier::FiveMin),
        "1h" => Ok(Tier::Hour),
        other => Err(bad(format!("tier: unknown tier {other:?}; expected auto, raw, 5m or 1h"))),
    }
}

/// `raw`, `5m`, `1h` (`auto` only for a request that has not been answered).
pub(super) fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Auto => "auto",
        Tier::Raw => "raw",
        Tier::FiveMin => "5m",
        Tier::Hour => "1h",
    }
}

/// Where an answer came from, in the seed's words: `raw`, `rollup_5m`, `rollup_1h`.
pub(super) fn source_name(t: Tier) -> &'static str {
    match t {
        Tier::Auto | Tier::Raw => "raw",
        Tier::FiveMin => "rollup_5m",
        Tier::Hour => "rollup_1h",
    }
}

/// A value as JSON: a number, or `"NaN"`, `"+Inf"`, `"-Inf"` as everywhere else.
fn num(v: f64) -> Value {
    if v.is_finite() {
        Value::from(v)
    } else {
        let mut s = String::new();
        write_json_value(&mut s, v);
        serde_json::from_str(&s).unwrap_or(Value::Null)
    }
}

pub(super) fn time_fields(m: &mut Map<String, Value>, key: &str, ts: Option<i64>) {
    m.insert(key.to_string(), ts.map_or(Value::Null, |t| Value::String(format_rfc3339(t))));
    m.insert(format!("{key}_ms"), ts.map_or(Value::Null, Value::from));
}

/// The labels of a result series without `__name__`, as a JSON object.
fn labels_json(l: &Labels) -> Value {
    Value::Object(l.iter().filter(|(k, _)| *k != METRIC_NAME).map(|(k, v)| (k.to_string(), json!(v))).collect())
}

fn point_json(ts: i64, v: f64) -> Value {
    json!({"timestamp": format_rfc3339(ts), "timestamp_ms": ts, "value": num(v)})
}

/// How many step buckets `range` spans (aligned to the step since the epoch).
pub(super) fn bucket_count(range: &Range<i64>, step: i64) -> i128 {
    let first = i128::from(range.start.div_euclid(step));
    let last = i128::from((range.end - 1).div_euclid(step));
    last - first + 1
}

/// The answer exceeds `max_query_samples` points or `max_query_series` series.
fn check_budget(limits: &Limits, series: usize, points: usize) -> Result<(), ApiError> {
    if series > limits.max_query_series || points > limits.max_query_samples {
        return Err(limits.over_budget());
    }
    Ok(())
}

// ------------------------------------------------------------------ POST /query

const QUERY_FIELDS: [&str; 11] = [
    "metric_name",
    "selector",
    "labels",
    "start_time",
    "end_time",
    "function",
    "quantile",
    "step",
    "group_by",
    "top_k",
    "tier",
];

/// A parsed `POST /query` body.
struct AggRequest {
    metric_name: Option<String>,
    selector: Option<String>,
    labels: Value,
    matchers: Vec<Matcher>,
    /// Both inclusive.
    start: i64,
    end: i64,
    agg: Agg,
    step: Option<i64>,
    group_by: Option<Vec<String>>,
    top_k: Option<usize>,
    tier: Tier,
}

impl AggRequest {
    fn parse(o: &Map<String, Value>) -> Result<AggRequest, ApiError> {
        if let Some(k) = o.keys().find(|k| !QUERY_FIELDS.contains(&k.as_str())) {
            return Err(bad(format!("unknown field {k:?}; expected {}", QUERY_FIELDS.join(", "))));
        }
        let string = |key: &str| -> Result<Option<String>, ApiError> {
            match o.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
                Some(Value::String(_)) => Err(bad(format!("{key}: must not be empty"))),
                Some(_) => Err(bad(format!("{key}: expected a string"))),
            }
        };
        let metric_name = string("metric_name")?;
        let selector = string("selector")?;
        let labels = o.get("labels").cloned().unwrap_or(Value::Null);
        let matchers = match (&metric_name, &selector) {
            (Some(name), None) => {
                let mut m = vec![Matcher::eq(METRIC_NAME, name.clone())];
                m.extend(label_matchers(&labels)?);
                m
            }
            (None, Some(sel)) => {
                if !labels.is_null() {
                    return Err(bad("labels: put label matchers into the selector when using one"));
                }
                crate::text::selector::parse_selector(sel).map_err(|e| bad(format!("selector: {e}")))?
            }
            (Some(_), Some(_)) => return Err(bad("selector: give either metric_name (with labels) or selector")),
            (None, None) => return Err(bad("metric_name: required (or a selector)")),
        };
        let now = now_ms();
        let (start, end) = closed(body_time(o, "start_time", now)?, body_time(o, "end_time", now)?)?;
        let agg = match o.get("function") {
            None | Some(Value::Null) => parse_agg("avg", o.get("quantile"))?,
            Some(Value::String(f)) => parse_agg(f, o.get("quantile"))?,
            Some(_) => return Err(bad("function: expected a string such as \"avg\"")),
        };
        let step = o.get("step").filter(|v| !v.is_null()).map(parse_step).transpose()?;
        let group_by = match o.get("group_by") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .map(|v| v.as_str().map(str::to_string).ok_or_else(|| bad("group_by: expected label names")))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(_) => return Err(bad("group_by: expected an array of label names")),
        };
        if group_by.is_some() && agg == Agg::Raw {
            return Err(bad("group_by: function raw returns samples per series and cannot be grouped"));
        }
        let top_k = match o.get("top_k") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(k) if k >= 1 => Some(usize::try_from(k).unwrap_or(usize::MAX)),
                _ => return Err(bad(format!("top_k: expected a positive integer, got {v}"))),
            },
        };
        let tier = match o.get("tier") {
            None | Some(Value::Null) => Tier::Auto,
            Some(Value::String(t)) => parse_tier(t)?,
            Some(_) => return Err(bad("tier: expected auto, raw, 5m or 1h")),
        };
        Ok(AggRequest { metric_name, selector, labels, matchers, start, end, agg, step, group_by, top_k, tier })
    }

    fn query(&self, group_by: Option<&[String]>, top_k: Option<usize>) -> Query {
        let mut q = Query::new()
            .select(self.matchers.clone())
            .range_inclusive(self.start..=self.end)
            .agg(self.agg)
            .tier(self.tier);
        if let Some(s) = self.step {
            q = q.step(Duration::from_millis(s.unsigned_abs()));
        }
        if let Some(g) = group_by {
            q = q.group_by(g.iter().cloned());
        }
        if let Some(k) = top_k {
            q = q.top_k(k);
        }
        q
    }

    /// One value per result series: no step, and an aggregation.
    fn single_value(&self) -> bool {
        self.step.is_none() && self.agg != Agg::Raw
    }
}

/// `POST /query` with `{metric_name, start_time, end_time, labels, function}` (seed 004)
/// and optionally `quantile`, `step`, `group_by`, `top_k`, `tier`, or a `selector`
/// instead of `metric_name` + `labels`. See docs/SERVER.md for the answer.
pub(super) async fn aggregate(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let started = Instant::now();
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let Value::Object(o) = doc else {
        return Err(bad("expected a JSON object {metric_name, start_time, end_time, labels, function}"));
    };
    let r = AggRequest::parse(&o)?;
    let q = r.query(r.group_by.as_deref(), r.top_k);
    q.validate().map_err(|e| bad(e.to_string()))?;
    let limits = st.limits.clone();
    if let Some(step) = r.step {
        if bucket_count(&q.time_range(), step) > limits.max_query_samples as i128 {
            return Err(limits.over_budget());
        }
    }
    // The seed's single answer: the aggregate over every selected series as one
    // population (`group_by: []`), when the request neither steps nor groups.
    let whole = (r.single_value() && r.group_by.is_none()).then(|| r.query(Some(&[]), None));
    let db = st.db.clone();
    let (res, total) = run_read(move || {
        let res = db.query(&q)?;
        check_budget(&limits, res.series.len(), res.series.iter().map(|s| s.points.len()).sum())?;
        let total = match whole {
            None => None,
            Some(_) if res.series.is_empty() => Some(None),
            Some(_) if res.series.len() == 1 && q.top_k_limit().is_none() => {
                Some(res.series[0].points.first().map(|p| p.value))
            }
            Some(w) => match db.query(&w) {
                Ok(all) => Some(all.series.first().and_then(|s| s.points.first()).map(|p| p.value)),
                // Series of different metrics without a common label: no single group.
                Err(e) if e.is_input_error() => Some(None),
                Err(e) => return Err(e.into()),
            },
        };
        Ok((res, total))
    })
    .await?;
    let single = r.single_value();
    let series: Vec<Value> = res
        .series
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert("metric_name".into(), s.labels.metric_name().map_or(Value::Null, |n| json!(n)));
            m.insert("labels".into(), labels_json(&s.labels));
            if single {
                m.insert("value".into(), s.points.first().map_or(Value::Null, |p| num(p.value)));
            } else {
                m.insert("points".into(), s.points.iter().map(|p| point_json(p.ts, p.value)).collect());
            }
            Value::Object(m)
        })
        .collect();
    let mut out = Map::new();
    out.insert("metric_name".into(), json!(r.metric_name));
    if let Some(sel) = &r.selector {
        out.insert("selector".into(), json!(sel));
    }
    out.insert("labels".into(), r.labels.clone());
    out.insert("function".into(), json!(agg_name(r.agg)));
    if let Agg::Quantile(qv) = r.agg {
        out.insert("quantile".into(), json!(qv));
    }
    time_fields(&mut out, "start_time", Some(r.start));
    time_fields(&mut out, "end_time", Some(r.end));
    out.insert("step".into(), r.step.map_or(Value::Null, |s| json!(format_duration(s))));
    out.insert("step_ms".into(), json!(r.step));
    if let Some(g) = &r.group_by {
        out.insert("group_by".into(), json!(g));
    }
    if let Some(k) = r.top_k {
        out.insert("top_k".into(), json!(k));
    }
    out.insert("requested_tier".into(), json!(tier_name(r.tier)));
    out.insert("tier".into(), json!(tier_name(res.tier)));
    out.insert("source".into(), json!(source_name(res.tier)));
    if let Some(v) = total {
        out.insert("value".into(), v.map_or(Value::Null, num));
    }
    out.insert("series_count".into(), json!(series.len()));
    out.insert("series".into(), Value::Array(series));
    let resp = json_response(StatusCode::OK, &Value::Object(out));
    st.metrics.query(QueryKind::Query, started.elapsed());
    Ok(resp)
}

// ------------------------------------------------------------------ GET /query/rollup

/// The rollup windows `/query/rollup` serves: `1m` computed from raw samples,
/// `5m` and `1h` from their tiers.
pub(super) const WINDOWS: [(&str, i64); 3] = [("1m", 60_000), ("5m", FIVE_MIN_MS), ("1h", HOUR_MS)];

/// One output bucket: count, sum, min, max, first, last.
type Row = (u64, f64, f64, f64, f64, f64);

/// `GET /query/rollup?metric_name=cpu&start_time=..&end_time=..&labels={..}&window=5m`:
/// per series, per window bucket: count, sum, avg, min, max, first, last.
pub(super) async fn rollup(State(st): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let started = Instant::now();
    let p = Params::parse(q.as_deref())?;
    let name = p
        .get("metric_name")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("missing query parameter metric_name"))?
        .to_string();
    let range = half_open(required_time(&p, "start_time")?, required_time(&p, "end_time")?)?;
    let window = p.get("window").filter(|s| !s.trim().is_empty()).unwrap_or("5m").trim().to_string();
    let width = WINDOWS
        .iter()
        .find(|(w, _)| *w == window)
        .map(|(_, ms)| *ms)
        .ok_or_else(|| bad(format!("window: unknown window {window:?}; expected 1m, 5m or 1h")))?;
    let mut matchers = vec![Matcher::eq(METRIC_NAME, name.clone())];
    matchers.extend(labels_param(&p)?);
    let limits = st.limits.clone();
    if bucket_count(&range, width) > limits.max_query_samples as i128 {
        return Err(limits.over_budget());
    }
    let db = st.db.clone();
    let r2 = range.clone();
    let (tier, series) = run_read(move || rollup_rows(&db, matchers, r2, width, &limits)).await?;
    let total: usize = series.iter().map(|(_, rows)| rows.len()).sum();
    let series: Vec<Value> = series
        .into_iter()
        .map(|(labels, rows)| {
            let buckets: Vec<Value> = rows
                .into_iter()
                .map(|(ts, (count, sum, min, max, first, last))| {
                    json!({
                        "timestamp": format_rfc3339(ts),
                        "timestamp_ms": ts,
                        "count": count,
                        "sum": num(sum),
                        "avg": num(sum / count as f64),
                        "min": num(min),
                        "max": num(max),
                        "first": num(first),
                        "last": num(last),
                    })
                })
                .collect();
            json!({"labels": labels_json(&labels), "buckets": buckets})
        })
        .collect();
    let mut out = Map::new();
    out.insert("metric_name".into(), json!(name));
    out.insert("labels".into(), p.get("labels").and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null));
    out.insert("window".into(), json!(window));
    out.insert("window_ms".into(), json!(width));
    time_fields(&mut out, "start_time", Some(range.start));
    time_fields(&mut out, "end_time", Some(range.end));
    out.insert("tier".into(), json!(tier_name(tier)));
    out.insert("source".into(), json!(source_name(tier)));
    out.insert("series_count".into(), json!(series.len()));
    out.insert("bucket_count".into(), json!(total));
    out.insert("series".into(), Value::Array(series));
    let resp = json_response(StatusCode::OK, &Value::Object(out));
    st.metrics.query(QueryKind::Rollup, started.elapsed());
    Ok(resp)
}

type RollupSeries = Vec<(Labels, Vec<(i64, Row)>)>;

fn rollup_rows(
    db: &Db,
    matchers: Vec<Matcher>,
    range: Range<i64>,
    width: i64,
    limits: &Limits,
) -> Result<(Tier, RollupSeries), ApiError> {
    let base = Query::new().select(matchers).range(range);
    if width < FIVE_MIN_MS {
        // Finer than any stored tier: bucket the raw samples here.
        let res = db.query(&base.agg(Agg::Raw).tier(Tier::Raw))?;
        check_budget(limits, res.series.len(), res.series.iter().map(|s| s.points.len()).sum())?;
        let mut out = Vec::with_capacity(res.series.len());
        for s in res.series {
            let rows = crate::rollup::rollup(&s.points, width)?
                .into_iter()
                .map(|b| (b.start, (b.count, b.sum, b.min, b.max, b.first, b.last)))
                .collect();
            out.push((s.labels, rows));
        }
        return Ok((Tier::Raw, out));
    }
    // One query per aggregate, each answered by the tier `Auto` picks for this step.
    let step = base.step(Duration::from_millis(width.unsigned_abs())).tier(Tier::Auto);
    let counts = db.query(&step.clone().agg(Agg::Count))?;
    check_budget(limits, counts.series.len(), counts.series.iter().map(|s| s.points.len()).sum())?;
    let mut series: Vec<(Labels, BTreeMap<i64, Row>)> = counts
        .series
        .into_iter()
        .map(|s| {
            let rows =
                s.points.iter().map(|p| (p.ts, (p.value as u64, f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN)));
            (s.labels, rows.collect())
        })
        .collect();
    let pos: BTreeMap<String, usize> = series.iter().enumerate().map(|(i, (l, _))| (l.to_string(), i)).collect();
    for agg in [Agg::Sum, Agg::Min, Agg::Max, Agg::First, Agg::Last] {
        for s in db.query(&step.clone().agg(agg))?.series {
            let Some(&i) = pos.get(&s.labels.to_string()) else { continue };
            for p in s.points {
                if let Some(row) = series[i].1.get_mut(&p.ts) {
                    match agg {
                        Agg::Sum => row.1 = p.value,
                        Agg::Min => row.2 = p.value,
                        Agg::Max => row.3 = p.value,
                        Agg::First => row.4 = p.value,
                        _ => row.5 = p.value,
                    }
                }
            }
        }
    }
    Ok((counts.tier, series.into_iter().map(|(l, rows)| (l, rows.into_iter().collect())).collect()))
}
