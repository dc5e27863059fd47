//! What the read endpoints share: their parameters (`labels`, times, `step`,
//! `function`, `tier`) and the pieces of their JSON answers.

use std::ops::Range;

use serde_json::{Map, Value};

use super::Params;
use crate::server::error::ApiError;
use crate::server::limits::Limits;
use crate::server::time::{format_rfc3339, json_time};
use crate::text::duration::parse_duration;
use crate::{Agg, Matcher, Tier};

pub(super) fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// The `labels` query parameter: a JSON object of exact matches (`{"host":"a"}`).
pub(super) fn labels_param(p: &Params) -> Result<Vec<Matcher>, ApiError> {
    match p.get("labels").filter(|s| !s.trim().is_empty()) {
        None => Ok(Vec::new()),
        Some(raw) => {
            let v: Value = serde_json::from_str(raw).map_err(|e| bad(format!("labels: invalid JSON object: {e}")))?;
            label_matchers(&v)
        }
    }
}

/// A JSON object of label name -> value as exact matchers; `null` means none.
pub(super) fn label_matchers(v: &Value) -> Result<Vec<Matcher>, ApiError> {
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
pub(super) fn half_open(start: i64, end: i64) -> Result<Range<i64>, ApiError> {
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
pub(super) fn closed(start: i64, end: i64) -> Result<(i64, i64), ApiError> {
    if start > end {
        return Err(bad(format!(
            "start_time {} is after end_time {} (both ends are inclusive)",
            format_rfc3339(start),
            format_rfc3339(end)
        )));
    }
    Ok((start, end))
}

pub(super) fn required_time(p: &Params, key: &str) -> Result<i64, ApiError> {
    p.time(key)?.ok_or_else(|| bad(format!("missing query parameter {key} (RFC 3339, an epoch number or now-1h)")))
}

/// A time field of a JSON body (`server::time::json_time`), relative to the request's `now`.
pub(super) fn body_time(o: &Map<String, Value>, key: &str, now: i64) -> Result<i64, ApiError> {
    json_time(o.get(key), now)
        .map_err(|e| bad(format!("{key}: {e}")))?
        .ok_or_else(|| bad(format!("{key}: required (RFC 3339, an epoch number or now-1h)")))
}

pub(super) fn parse_step(v: &Value) -> Result<i64, ApiError> {
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

/// The `function` field with the optional `quantile` field: any name
/// `Agg::from_str` reads (`avg`, `p99`, `quantile:0.99`, ...), or `quantile`
/// with its q in the `quantile` field.
pub(super) fn parse_agg(name: &str, quantile: Option<&Value>) -> Result<Agg, ApiError> {
    let q = match quantile.filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(v.as_f64().ok_or_else(|| bad("quantile: expected a number in [0, 1]"))?),
    };
    Agg::with_quantile(name, q).map_err(|e| match q {
        None => bad(format!("function: {e} (or give the quantile field, e.g. \"quantile\": 0.99)")),
        Some(_) => bad(format!("function {:?} with quantile: {e}", name.trim())),
    })
}

pub(super) fn parse_tier(s: &str) -> Result<Tier, ApiError> {
    s.parse::<Tier>().map_err(|e| bad(format!("tier: {e}")))
}

/// `raw`, `5m`, `1h` (`auto` only for a request that has not been answered).
pub(super) fn tier_name(t: Tier) -> &'static str {
    t.name()
}

/// Where an answer came from, in the seed's words: `raw`, `rollup_5m`, `rollup_1h`.
pub(super) fn source_name(t: Tier) -> &'static str {
    match t {
        Tier::Auto | Tier::Raw => "raw",
        Tier::FiveMin => "rollup_5m",
        Tier::Hour => "rollup_1h",
    }
}

pub(super) fn time_fields(m: &mut Map<String, Value>, key: &str, ts: Option<i64>) {
    m.insert(key.to_string(), ts.map_or(Value::Null, |t| Value::String(format_rfc3339(t))));
    m.insert(format!("{key}_ms"), ts.map_or(Value::Null, Value::from));
}

/// How many step buckets `range` spans (aligned to the step since the epoch).
pub(super) fn bucket_count(range: &Range<i64>, step: i64) -> i128 {
    let first = i128::from(range.start.div_euclid(step));
    let last = i128::from((range.end - 1).div_euclid(step));
    last - first + 1
}

/// The answer exceeds `max_query_samples` points or `max_query_series` series.
pub(super) fn check_budget(limits: &Limits, series: usize, points: usize) -> Result<(), ApiError> {
    if series > limits.max_query_series || points > limits.max_query_samples {
        return Err(limits.over_budget());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_and_tier_use_the_library_names() {
        let q = |v: f64| Some(Value::from(v));
        assert_eq!(parse_agg("p99", None).unwrap(), Agg::Quantile(0.99));
        assert_eq!(parse_agg("quantile", q(0.5).as_ref()).unwrap(), Agg::Quantile(0.5));
        assert_eq!(parse_agg("Mean", Some(&Value::Null)).unwrap(), Agg::Avg);
        let e = parse_agg("quantile", None).unwrap_err().message;
        assert!(e.contains("quantile:0.99") && e.contains("\"quantile\": 0.99"), "{e}");
        assert!(parse_agg("sum", q(0.5).as_ref()).unwrap_err().message.contains("only applies"));
        assert!(parse_agg("quantile", Some(&Value::from("x"))).unwrap_err().message.contains("expected a number"));
        assert!(parse_agg("median", None).unwrap_err().message.starts_with("function: unknown aggregation"));
        assert_eq!(parse_tier("1H").unwrap(), Tier::Hour);
        assert!(parse_tier("2h").unwrap_err().message.starts_with("tier: unknown tier"));
    }
}
