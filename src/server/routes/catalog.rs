//! Seed 004 discovery: `GET /metrics/list`, `GET /rollups` and
//! `GET /metrics/{name}/info` (`db.metrics`, `db.stats`, `db.metric_info`, and the
//! query layer for a metric's buckets per window).

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::read_params::{bucket_count, source_name, tier_name, time_fields};
use super::rollup::WINDOWS;
use super::Params;
use crate::db::MetricInfo;
use crate::rollup::FIVE_MIN_MS;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::exec::run_read;
use crate::server::limits::Limits;
use crate::server::time::now_ms;
use crate::server::Shared;
use crate::text::duration::format_duration;
use crate::{Agg, Db, Matcher, Query, Tier, TierDurations, METRIC_NAME};

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 10_000;

/// `type`, `unit` and `description` of a metric: `unknown`, "" and "" when none was recorded.
fn metadata_fields(m: &mut Map<String, Value>, meta: Option<crate::MetricMetadata>) {
    let meta = meta.unwrap_or_default();
    m.insert("type".into(), json!(meta.kind.as_str()));
    m.insert("unit".into(), json!(meta.unit));
    m.insert("description".into(), json!(meta.help));
}

/// `GET /metrics/list?page=1&page_size=100&search=cpu`: metric names with their
/// series counts, sorted by name; `search` is a case-insensitive substring.
pub(super) async fn list_metrics(State(st): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref())?;
    let page = p.usize("page")?.unwrap_or(1);
    let page_size = p.usize("page_size")?.unwrap_or(DEFAULT_PAGE_SIZE);
    if page == 0 {
        return Err(ApiError::bad_request("page: pages are numbered from 1"));
    }
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return Err(ApiError::bad_request(format!("page_size: must be between 1 and {MAX_PAGE_SIZE}")));
    }
    let search = p.get("search").map(str::to_lowercase).filter(|s| !s.is_empty());
    let db = st.db.clone();
    let mut names = run_read(move || Ok(db.series_per_value(METRIC_NAME))).await?;
    if let Some(s) = &search {
        names.retain(|(n, _)| n.to_lowercase().contains(s.as_str()));
    }
    let total = names.len();
    let metrics: Vec<Value> = names
        .into_iter()
        .skip((page - 1).saturating_mul(page_size))
        .take(page_size)
        .map(|(name, series)| {
            let mut m = Map::new();
            m.insert("metric_name".into(), json!(name));
            m.insert("series_count".into(), json!(series));
            metadata_fields(&mut m, st.db.metadata(&name));
            Value::Object(m)
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "metrics": metrics,
            "total": total,
            "page": page,
            "page_size": page_size,
            "total_pages": total.div_ceil(page_size),
            "search": search,
        }),
    ))
}

// ------------------------------------------------------------------ GET /rollups

/// A retention duration as text (`7d`) and ms; `forever` / null when unbounded.
fn retention_fields(m: &mut Map<String, Value>, d: Duration) {
    match i64::try_from(d.as_millis()).ok().filter(|_| d != TierDurations::FOREVER) {
        Some(ms) if ms > 0 => {
            m.insert("retention".into(), json!(format_duration(ms)));
            m.insert("retention_ms".into(), json!(ms));
            time_fields(m, "retained_from", Some(now_ms().saturating_sub(ms)));
        }
        _ => {
            m.insert("retention".into(), json!("forever"));
            m.insert("retention_ms".into(), Value::Null);
            time_fields(m, "retained_from", None);
        }
    }
}

/// `GET /rollups[?metric_name=cpu]`: the stored tiers (raw, 5m, 1h) with their
/// resolution, default retention, samples or buckets and bytes on disk, and the
/// time span held; with `metric_name`, also that metric's buckets per window.
pub(super) async fn rollups(State(st): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref())?;
    let metric = p.get("metric_name").filter(|s| !s.is_empty()).map(str::to_string);
    let db = st.db.clone();
    let limits = st.limits.clone();
    let (stats, retention, per_metric) = run_read(move || {
        let stats = db.stats()?;
        let retention = db.retention_summary();
        let per_metric = match metric {
            None => None,
            Some(name) => {
                let info = db.metric_info(&name)?.ok_or_else(|| unknown_metric(&name))?;
                let buckets = metric_buckets(&db, &info, &limits)?;
                Some((info, buckets))
            }
        };
        Ok((stats, retention, per_metric))
    })
    .await?;
    let mut tiers = Vec::new();
    for (t, tier) in Tier::ALL.iter().enumerate() {
        let mut m = Map::new();
        m.insert("tier".into(), json!(tier_name(*tier)));
        m.insert("source".into(), json!(source_name(*tier)));
        m.insert("resolution".into(), json!(tier.resolution_ms().map_or("raw".to_string(), format_duration)));
        m.insert("resolution_ms".into(), json!(tier.resolution_ms()));
        retention_fields(&mut m, retention.defaults.get(crate::StoredTier::ALL[t]));
        if t == 0 {
            m.insert("samples".into(), json!(stats.samples()));
            m.insert("segment_samples".into(), json!(stats.segment_samples[0]));
            m.insert("head_samples".into(), json!(stats.head_samples));
            m.insert("head_samples_written".into(), json!(stats.head_samples_written));
        } else {
            m.insert("buckets".into(), json!(stats.segment_samples[t]));
        }
        m.insert("disk_bytes".into(), json!(stats.disk_bytes[t]));
        tiers.push(Value::Object(m));
    }
    let windows: Vec<Value> = WINDOWS
        .iter()
        .map(|(w, ms)| {
            let from = if *ms < FIVE_MIN_MS { "raw" } else { w };
            json!({"window": w, "window_ms": ms, "computed_from": from})
        })
        .collect();
    let mut out = Map::new();
    out.insert("rollups".into(), Value::Array(tiers));
    out.insert("windows".into(), Value::Array(windows));
    out.insert("retention_rules".into(), json!(retention.rules.len()));
    out.insert("max_disk_bytes".into(), json!(retention.max_disk_bytes));
    time_fields(&mut out, "oldest", stats.oldest);
    time_fields(&mut out, "newest", stats.newest);
    if let Some((info, buckets)) = per_metric {
        let mut m = Map::new();
        m.insert("metric_name".into(), json!(info.name));
        m.insert("series_count".into(), json!(info.series));
        m.insert("sample_count".into(), json!(info.samples));
        time_fields(&mut m, "first_timestamp", info.first_ts);
        time_fields(&mut m, "last_timestamp", info.last_ts);
        m.insert("buckets".into(), Value::Object(buckets));
        out.insert("metric".into(), Value::Object(m));
    }
    Ok(json_response(StatusCode::OK, &Value::Object(out)))
}

/// Per window (5m, 1h), how many (series, bucket) pairs the metric fills.
fn metric_buckets(db: &Db, info: &MetricInfo, limits: &Limits) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for tier in [Tier::FiveMin, Tier::Hour] {
        let (Some(first), Some(last), Some(w)) = (info.first_ts, info.last_ts, tier.resolution_ms()) else {
            out.insert(tier_name(tier).into(), json!(0));
            continue;
        };
        let range = first.div_euclid(w) * w..last.div_euclid(w).saturating_mul(w).saturating_add(w);
        if bucket_count(&range, w) > limits.max_query_samples as i128 {
            out.insert(tier_name(tier).into(), Value::Null);
            continue;
        }
        let q = Query::new()
            .select([Matcher::eq(METRIC_NAME, info.name.clone())])
            .range(range)
            .step(Duration::from_millis(w.unsigned_abs()))
            .agg(Agg::Count)
            .tier(tier);
        let n: usize = db.query(&q)?.series.iter().map(|s| s.points.len()).sum();
        out.insert(tier_name(tier).into(), json!(n));
    }
    Ok(out)
}

fn unknown_metric(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("metric {name:?} not found")).with("metric_name", name)
}

// ------------------------------------------------------------------ GET /metrics/{name}/info

/// `GET /metrics/{metric_name}/info`: series count, label names with their values,
/// first and last timestamp and sample count; 404 when no series has that name.
pub(super) async fn metric_info(State(st): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let db = st.db.clone();
    let n = name.clone();
    let (info, meta) = run_read(move || Ok((db.metric_info(&n)?, db.metadata(&n)))).await?;
    // A metric whose series are all gone keeps its metadata, and is described by it.
    let info = match (info, &meta) {
        (Some(info), _) => info,
        (None, Some(_)) => MetricInfo {
            name: name.clone(),
            series: 0,
            labels: Default::default(),
            first_ts: None,
            last_ts: None,
            samples: 0,
        },
        (None, None) => return Err(unknown_metric(&name)),
    };
    let labels: Map<String, Value> = info.labels.iter().map(|(k, vs)| (k.clone(), json!(vs))).collect();
    let mut out = Map::new();
    out.insert("metric_name".into(), json!(info.name));
    metadata_fields(&mut out, meta);
    out.insert("series_count".into(), json!(info.series));
    out.insert("label_names".into(), json!(info.labels.keys().collect::<Vec<_>>()));
    out.insert("labels".into(), Value::Object(labels));
    time_fields(&mut out, "first_timestamp", info.first_ts);
    time_fields(&mut out, "last_timestamp", info.last_ts);
    out.insert("sample_count".into(), json!(info.samples));
    Ok(json_response(StatusCode::OK, &Value::Object(out)))
}
