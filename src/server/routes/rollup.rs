//! `GET /query/rollup`: per series, per window bucket, count, sum, avg, min,
//! max, first and last, all from one `Db::buckets` read.

use std::ops::Range;
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use serde_json::Value;

use super::read_params::{
    bad, bucket_count, check_budget, half_open, labels_param, required_time, source_name, tier_name,
};
use super::Params;
use crate::rollup::{Bucket, FIVE_MIN_MS, HOUR_MS};
use crate::server::error::{ApiError, ApiResult};
use crate::server::exec::run_read;
use crate::server::limits::Limits;
use crate::server::metrics::QueryKind;
use crate::server::values::{json_answer, json_array, json_labels, JsonObject};
use crate::server::Shared;
use crate::{Db, Labels, Matcher, Query, Tier, METRIC_NAME};

/// The rollup windows `/query/rollup` serves: `1m` computed from raw samples,
/// `5m` and `1h` from their tiers.
pub(super) const WINDOWS: [(&str, i64); 3] = [("1m", 60_000), ("5m", FIVE_MIN_MS), ("1h", HOUR_MS)];

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
    let labels = p.get("labels").and_then(|l| serde_json::from_str::<Value>(l).ok()).unwrap_or(Value::Null);
    let mut out = String::with_capacity(512 + series.len() * 128 + total * 200);
    let mut o = JsonObject::new(&mut out);
    o.int("bucket_count", Some(total as i64));
    o.time("end_time", "end_time_ms", Some(range.end));
    // The request's labels parameter, echoed (parsed, so normalised).
    o.key("labels").push_str(&labels.to_string());
    o.str("metric_name", &name);
    json_array(o.key("series"), &series, |w, (labels, rows)| {
        let mut so = JsonObject::new(w);
        json_array(so.key("buckets"), rows, bucket_json);
        json_labels(so.key("labels"), labels);
        so.end();
    });
    o.int("series_count", Some(series.len() as i64));
    o.str("source", source_name(tier));
    o.time("start_time", "start_time_ms", Some(range.start));
    o.str("tier", tier_name(tier));
    o.str("window", &window);
    o.int("window_ms", Some(width));
    o.end();
    let resp = json_answer(out);
    st.metrics.query(QueryKind::Rollup, started.elapsed());
    Ok(resp)
}

/// One window bucket's statistics as a JSON object.
fn bucket_json(out: &mut String, b: &Bucket) {
    let mut o = JsonObject::new(out);
    o.num("avg", Some(b.sum / b.count as f64));
    o.int("count", Some(i64::try_from(b.count).unwrap_or(i64::MAX)));
    o.num("first", Some(b.first));
    o.num("last", Some(b.last));
    o.num("max", Some(b.max));
    o.num("min", Some(b.min));
    o.num("sum", Some(b.sum));
    o.time("timestamp", "timestamp_ms", Some(b.start));
    o.end();
}

type RollupSeries = Vec<(Labels, Vec<Bucket>)>;

/// Every statistic of every window bucket from one `Db::buckets` call: one
/// snapshot, so each bucket's count, sum, min, max, first and last describe the
/// same samples. Windows finer than every stored tier are answered from raw
/// samples, the others by the tier `Auto` picks for this step.
fn rollup_rows(
    db: &Db,
    matchers: Vec<Matcher>,
    range: Range<i64>,
    width: i64,
    limits: &Limits,
) -> Result<(Tier, RollupSeries), ApiError> {
    let q = Query::new().select(matchers).range(range).step(Duration::from_millis(width.unsigned_abs()));
    let res = db.buckets(&q)?;
    let buckets = res.series.iter().flat_map(|s| &s.buckets);
    // A window finer than every tier reads raw samples: those are what the budget bounds.
    let points = if width < FIVE_MIN_MS {
        buckets.map(|b| usize::try_from(b.count).unwrap_or(usize::MAX)).fold(0, usize::saturating_add)
    } else {
        buckets.count()
    };
    check_budget(limits, res.series.len(), points)?;
    Ok((res.tier, res.series.into_iter().map(|s| (s.labels, s.buckets)).collect()))
}
