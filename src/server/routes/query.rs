//! `POST /query`: a query through the query layer (`db.query`), seed 004's
//! `{metric_name, start_time, end_time, labels, function}` and the extensions
//! (`selector`, `quantile`, `step`, `group_by`, `top_k`, `tier`).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use super::read_params::{
    bad, body_time, bucket_count, check_budget, closed, label_matchers, labels_json, num, parse_agg, parse_step,
    parse_tier, point_json, source_name, tier_name, time_fields,
};
use crate::server::body;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::exec::run_read;
use crate::server::metrics::QueryKind;
use crate::server::time::now_ms;
use crate::server::Shared;
use crate::text::duration::format_duration;
use crate::{Agg, Matcher, Query, Tier, METRIC_NAME};

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
    out.insert("function".into(), json!(r.agg.name()));
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
