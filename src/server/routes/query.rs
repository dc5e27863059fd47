//! `POST /query`: a query through the query layer (`db.query`), seed 004's
//! `{metric_name, start_time, end_time, labels, function}` and the extensions
//! (`selector`, `quantile`, `step`, `group_by`, `top_k`/`bottom_k` with `rank_by`, `tier`).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use serde_json::{Map, Value};

use super::read_params::{
    bad, body_time, bucket_count, check_budget, closed, label_matchers, parse_agg, parse_step, parse_tier, source_name,
    tier_name,
};
use super::Params;
use crate::server::body;
use crate::server::error::{ApiError, ApiResult};
use crate::server::exec::run_read;
use crate::server::metrics::QueryKind;
use crate::server::time::now_ms;
use crate::server::values::{json_answer, json_array, json_labels, json_str, JsonObject};
use crate::server::Shared;
use crate::text::duration::format_duration;
use crate::text::value::{push_i64, write_json_value};
use crate::{Agg, Matcher, Query, QueryResult, RankBy, Tier, METRIC_NAME};

const QUERY_FIELDS: [&str; 14] = [
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
    "bottom_k",
    "rank_by",
    "tier",
    "format",
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
    /// The k of `top_k` or `bottom_k`.
    top_k: Option<usize>,
    /// `bottom_k` was given: keep the lowest-ranked.
    bottom: bool,
    rank_by: RankBy,
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
        let k_of = |key: &str| match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(k) if k >= 1 => Ok(Some(usize::try_from(k).unwrap_or(usize::MAX))),
                _ => Err(bad(format!("{key}: expected a positive integer, got {v}"))),
            },
        };
        let (top_k, bottom) = match (k_of("top_k")?, k_of("bottom_k")?) {
            (Some(_), Some(_)) => return Err(bad("bottom_k: give either top_k or bottom_k")),
            (Some(k), None) => (Some(k), false),
            (None, Some(k)) => (Some(k), true),
            (None, None) => (None, false),
        };
        let rank_by = match o.get("rank_by") {
            None | Some(Value::Null) => RankBy::default(),
            Some(_) if top_k.is_none() => return Err(bad("rank_by: applies to top_k or bottom_k")),
            Some(Value::String(r)) => r.parse::<RankBy>().map_err(|e| bad(format!("rank_by: {e}")))?,
            Some(v) => return Err(bad(format!("rank_by: expected mean, max, min, last or sum, got {v}"))),
        };
        let tier = match o.get("tier") {
            None | Some(Value::Null) => Tier::Auto,
            Some(Value::String(t)) => parse_tier(t)?,
            Some(_) => return Err(bad("tier: expected auto, raw, 5m or 1h")),
        };
        Ok(AggRequest {
            metric_name,
            selector,
            labels,
            matchers,
            start,
            end,
            agg,
            step,
            group_by,
            top_k,
            bottom,
            rank_by,
            tier,
        })
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
            q = if self.bottom { q.bottom_k(k) } else { q.top_k(k) }.rank_by(self.rank_by);
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
pub(super) async fn aggregate(
    State(st): State<Shared>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    req: Body,
) -> ApiResult {
    let started = Instant::now();
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let Value::Object(o) = doc else {
        return Err(bad("expected a JSON object {metric_name, start_time, end_time, labels, function}"));
    };
    let r = AggRequest::parse(&o)?;
    let format = request_format(o.get("format"), query.as_deref())?;
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
    let body = encode_answer(&r, &res, total, format);
    let resp = json_answer(body);
    st.metrics.query(QueryKind::Query, started.elapsed());
    Ok(resp)
}

/// How points are written: `full` objects (`{"timestamp", "timestamp_ms",
/// "value"}`, the default) or `compact` pairs (`[ts_ms, value]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum PointFormat {
    #[default]
    Full,
    Compact,
}

impl PointFormat {
    pub(super) fn parse(s: &str) -> Result<PointFormat, ApiError> {
        match s.trim() {
            "" | "full" => Ok(PointFormat::Full),
            "compact" => Ok(PointFormat::Compact),
            other => Err(bad(format!("format: unknown format {other:?}; expected full or compact"))),
        }
    }

    /// One point, as a JSON object or a `[ts_ms, value]` pair.
    pub(super) fn point(self, out: &mut String, ts: i64, v: f64) {
        match self {
            PointFormat::Full => {
                let mut o = JsonObject::new(out);
                o.time("timestamp", "timestamp_ms", Some(ts));
                o.num("value", Some(v));
                o.end();
            }
            PointFormat::Compact => {
                out.push('[');
                push_i64(out, ts);
                out.push(',');
                write_json_value(out, v);
                out.push(']');
            }
        }
    }

    /// Bytes a point takes about, to size the answer's buffer once.
    pub(super) fn point_bytes(self) -> usize {
        match self {
            PointFormat::Full => 80,
            PointFormat::Compact => 24,
        }
    }
}

/// The `format` of a request: the body's field or the query string's parameter
/// (which must agree when both are given).
fn request_format(body: Option<&Value>, query: Option<&str>) -> Result<PointFormat, ApiError> {
    let from_body = match body {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(PointFormat::parse(s)?),
        Some(_) => return Err(bad("format: expected \"full\" or \"compact\"")),
    };
    let p = Params::parse(query)?;
    let from_query = p.get("format").map(PointFormat::parse).transpose()?;
    match (from_body, from_query) {
        (Some(a), Some(b)) if a != b => {
            Err(bad("format: the body's format and the query string's format parameter disagree"))
        }
        (a, b) => Ok(a.or(b).unwrap_or_default()),
    }
}

/// The answer to `POST /query`, written straight into one buffer (keys in the
/// byte order the answer has always had).
fn encode_answer(r: &AggRequest, res: &QueryResult, total: Option<Option<f64>>, format: PointFormat) -> String {
    let points: usize = res.series.iter().map(|s| s.points.len()).sum();
    let mut out = String::with_capacity(512 + res.series.len() * 128 + points * format.point_bytes());
    let mut o = JsonObject::new(&mut out);
    let k = r.top_k.map(|k| i64::try_from(k).unwrap_or(i64::MAX));
    if r.bottom {
        o.int("bottom_k", k);
    }
    o.time("end_time", "end_time_ms", Some(r.end));
    if format == PointFormat::Compact {
        o.str("format", "compact");
    }
    o.str("function", r.agg.name());
    if let Some(g) = &r.group_by {
        json_array(o.key("group_by"), g, |out, name| json_str(out, name));
    }
    // The request's own labels object, echoed (parsed, so normalised).
    o.key("labels").push_str(&r.labels.to_string());
    o.opt_str("metric_name", r.metric_name.as_deref());
    if let Agg::Quantile(qv) = r.agg {
        o.num("quantile", Some(qv));
    }
    if r.top_k.is_some() {
        o.str("rank_by", r.rank_by.name());
    }
    o.str("requested_tier", tier_name(r.tier));
    if let Some(sel) = &r.selector {
        o.str("selector", sel);
    }
    let single = r.single_value();
    json_array(o.key("series"), &res.series, |w, s| {
        let mut so = JsonObject::new(w);
        json_labels(so.key("labels"), &s.labels);
        so.opt_str("metric_name", s.labels.metric_name());
        if single {
            so.num("value", s.points.first().map(|p| p.value));
        } else {
            json_array(so.key("points"), &s.points, |pts, p| format.point(pts, p.ts, p.value));
        }
        so.end();
    });
    o.int("series_count", Some(res.series.len() as i64));
    o.str("source", source_name(res.tier));
    o.time("start_time", "start_time_ms", Some(r.start));
    o.opt_str("step", r.step.map(format_duration).as_deref());
    o.int("step_ms", r.step);
    o.str("tier", tier_name(res.tier));
    if !r.bottom && k.is_some() {
        o.int("top_k", k);
    }
    if let Some(v) = total {
        o.num("value", v);
    }
    o.end();
    out
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
