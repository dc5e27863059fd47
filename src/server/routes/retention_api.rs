//! The JSON shape of a retention policy on the admin API, both ways, and of what
//! retention removes. Durations are text (`7d`, `36h`, `forever`); a rule's label
//! matchers are one selector (`{env="dev"}`), the same grammar as `match[]`.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::retention::{human_duration, RetentionSummary, SegmentDrop};
use crate::server::error::ApiError;
use crate::server::time::format_rfc3339;
use crate::text::duration::parse_duration;
use crate::text::selector;
use crate::{RetentionPolicy, RetentionRule, TierDurations};

fn tiers_json(d: &TierDurations) -> Value {
    json!({"raw": human_duration(d.raw), "5m": human_duration(d.five_min), "1h": human_duration(d.hour)})
}

pub(crate) fn policy_json(s: &RetentionSummary) -> Value {
    let rules: Vec<Value> = s
        .rules
        .iter()
        .map(|r| {
            json!({"name": r.name, "metric": r.metric_glob, "matchers": format!("{{{}}}", r.matchers.join(",")),
                "priority": r.priority, "durations": tiers_json(&r.durations), "series": r.matching_series})
        })
        .collect();
    json!({"defaults": tiers_json(&s.defaults), "max_disk_bytes": s.max_disk_bytes, "archive_dir": s.archive_dir,
        "rules": rules})
}

pub(crate) fn drops_json(drops: &[SegmentDrop]) -> Value {
    drops
        .iter()
        .map(|d| {
            json!({"segment": d.segment, "tier": d.tier.name(),
                "action": d.kind.as_str(), "min_t": format_rfc3339(d.min_t), "max_t": format_rfc3339(d.max_t),
                "items": d.items, "items_removed": d.items_removed, "bytes": d.bytes, "reason": d.reason})
        })
        .collect()
}

/// Archive files a retention pass wrote before removing raw data.
pub(crate) fn archived_json(files: &[crate::retention::archive::ArchivedFile]) -> Value {
    files
        .iter()
        .map(|f| json!({"path": f.path.display().to_string(), "day": f.day, "rows": f.rows, "bytes": f.bytes}))
        .collect()
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::bad_request(m)
}

/// Refuses keys this shape does not have, naming them.
fn known_keys(o: &Map<String, Value>, what: &str, keys: &[&str]) -> Result<(), ApiError> {
    match o.keys().find(|k| !keys.contains(&k.as_str())) {
        Some(k) => Err(bad(format!("{what}: unknown field {k:?} (expected {})", keys.join(", ")))),
        None => Ok(()),
    }
}

/// A duration (`"7d"`, `"1h30m"`, `"1y"`, see `text::duration`), or `"forever"` / null.
fn keep(v: &Value, what: &str) -> Result<Duration, ApiError> {
    let s = match v {
        Value::Null => return Ok(TierDurations::FOREVER),
        Value::String(s) => s.trim(),
        _ => return Err(bad(format!("{what}: expected a duration such as \"7d\" or \"forever\""))),
    };
    if s == "forever" {
        return Ok(TierDurations::FOREVER);
    }
    match parse_duration(s).map_err(|e| bad(format!("{what}: {e}")))? {
        0 => Err(bad(format!("{what}: must be positive (or \"forever\")"))),
        ms => Ok(Duration::from_millis(ms.unsigned_abs())),
    }
}

/// `{"raw": "7d", "5m": "30d", "1h": "forever"}`; a tier not given is `base`'s.
fn tiers(v: Option<&Value>, base: TierDurations, what: &str) -> Result<TierDurations, ApiError> {
    let Some(v) = v else { return Ok(base) };
    let o = v.as_object().ok_or_else(|| bad(format!("{what}: expected an object with raw, 5m, 1h")))?;
    known_keys(o, what, &["raw", "5m", "1h"])?;
    let get = |k: &str, d: Duration| o.get(k).map_or(Ok(d), |v| keep(v, &format!("{what}.{k}")));
    Ok(TierDurations::new(get("raw", base.raw)?, get("5m", base.five_min)?, get("1h", base.hour)?))
}

pub(crate) fn parse_rule(v: &Value) -> Result<RetentionRule, ApiError> {
    let o = v.as_object().ok_or_else(|| bad("rule: expected a JSON object"))?;
    known_keys(o, "rule", &["name", "metric", "matchers", "priority", "durations", "series"])?;
    let name = o.get("name").and_then(Value::as_str).ok_or_else(|| bad("rule: name (a string) is required"))?;
    let metric = match o.get("metric") {
        None => "*",
        Some(m) => m.as_str().ok_or_else(|| bad("rule.metric: expected a glob string"))?,
    };
    let matchers = match o.get("matchers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.trim() == "{}" || s.trim().is_empty() => Vec::new(),
        Some(Value::String(s)) => selector::parse_selector(s).map_err(|e| bad(format!("rule.matchers: {e}")))?,
        Some(_) => return Err(bad("rule.matchers: expected a selector string such as {env=\"dev\"}")),
    };
    let priority = match o.get("priority") {
        None => 0,
        Some(p) => p
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| bad("rule.priority: expected a 32-bit integer"))?,
    };
    if o.get("durations").is_none() {
        return Err(bad("rule.durations: required, e.g. {\"raw\": \"1d\"} (tiers not given keep data forever)"));
    }
    let d = tiers(o.get("durations"), TierDurations::forever(), "rule.durations")?;
    Ok(RetentionRule::new(name, metric, matchers, priority, d)?)
}

/// A whole policy: `{"preset": "tiered"|"forever", "defaults": {...}, "max_disk_bytes":
/// n|null, "rules": [...]}`; `defaults` overrides the preset's tiers.
pub(crate) fn parse_policy(v: &Value) -> Result<RetentionPolicy, ApiError> {
    let o = v.as_object().ok_or_else(|| bad("retention: expected a JSON object"))?;
    known_keys(o, "retention", &["preset", "defaults", "max_disk_bytes", "archive_dir", "rules", "would_remove"])?;
    let base = match o.get("preset").map(|p| p.as_str()) {
        None => TierDurations::forever(),
        Some(Some("forever")) => TierDurations::forever(),
        Some(Some("tiered")) => TierDurations::tiered(),
        Some(_) => return Err(bad("preset: expected \"forever\" or \"tiered\"")),
    };
    let mut p = RetentionPolicy::new(tiers(o.get("defaults"), base, "defaults")?)?;
    p = p.with_max_disk_bytes(match o.get("max_disk_bytes") {
        None | Some(Value::Null) => None,
        Some(n) => Some(n.as_u64().ok_or_else(|| bad("max_disk_bytes: expected a whole number of bytes or null"))?),
    });
    p = p.with_archive_dir(match o.get("archive_dir") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if !d.is_empty() => Some(d.into()),
        Some(_) => return Err(bad("archive_dir: expected a directory path (relative to the data directory) or null")),
    })?;
    if let Some(rules) = o.get("rules") {
        let rules = rules.as_array().ok_or_else(|| bad("rules: expected an array"))?;
        for r in rules {
            p.add_rule(parse_rule(r)?)?;
        }
    }
    Ok(p)
}

/// Prometheus API time: RFC 3339, or Unix seconds with an optional fraction, read
/// by the one rule of `text::time` (which tells larger epoch units by magnitude).
pub(crate) fn prom_time(s: &str, now: i64) -> Result<i64, ApiError> {
    crate::server::time::parse_timestamp(s, now).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_round_trip_through_json() {
        let body = json!({"defaults": {"raw": "7d", "5m": "30d"}, "max_disk_bytes": 1000,
            "rules": [{"name": "dbg", "metric": "debug_*", "matchers": "{env=\"dev\"}", "priority": 3,
                "durations": {"raw": "1d"}}]});
        let p = parse_policy(&body).unwrap();
        assert_eq!(p.default_durations().hour, TierDurations::FOREVER);
        let back = parse_policy(&policy_json(&p.summary())).unwrap();
        assert_eq!(back, p);
        assert_eq!(parse_policy(&json!({"preset": "tiered"})).unwrap(), RetentionPolicy::tiered());
        let archived = parse_policy(&json!({"preset": "tiered", "archive_dir": "arch"})).unwrap();
        assert_eq!(archived.archive_dir(), Some(std::path::Path::new("arch")));
        assert_eq!(policy_json(&archived.summary())["archive_dir"], "arch");
        assert_eq!(parse_policy(&policy_json(&archived.summary())).unwrap(), archived);
        assert_eq!(policy_json(&RetentionPolicy::tiered().summary())["archive_dir"], Value::Null);
    }

    #[test]
    fn bad_bodies_name_the_field() {
        for (body, needle) in [
            (json!({"defaults": {"raw": "0d"}}), "defaults.raw"),
            (json!({"retention": 1}), "unknown field"),
            (json!({"rules": [{"name": "x", "durations": {"raw": "1q"}}]}), "rule.durations.raw"),
            (json!({"rules": [{"name": "x"}]}), "rule.durations"),
            (json!({"preset": "weekly"}), "preset"),
            (json!({"archive_dir": 3}), "archive_dir"),
            (json!({"archive_dir": ""}), "archive_dir"),
        ] {
            let e = parse_policy(&body).unwrap_err();
            assert!(format!("{e:?}").contains(needle), "{body}: {e:?}");
        }
        assert_eq!(prom_time("1700000000.5", 0).unwrap(), 1_700_000_000_500);
        assert!(prom_time("soon", 0).is_err());
    }
}
