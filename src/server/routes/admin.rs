//! Admin endpoints: `POST /backup`, `POST /admin/flush`, `POST /admin/compact`,
//! `GET|PUT /admin/retention` and its rules, and Prometheus's
//! `/api/v1/admin/tsdb/delete_series`. All sit behind the auth token when one is set.
//!
//! `POST /backup`: a consistent snapshot of the live database (`Db::backup`).
//!
//! Clients never name a path: snapshots go into a new timestamped directory under
//! the operator's `--backup-dir`, so nothing a request carries reaches the file
//! system. Without a backup directory the endpoint answers 403 saying how to enable it.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use super::{retention_api, Params};
use crate::server::body;
use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::exec::{run_blocking, run_read};
use crate::server::time::{format_rfc3339, now_ms, show_time};
use crate::server::Shared;

pub(super) async fn backup(State(st): State<Shared>) -> ApiResult {
    let Some(root) = st.backup_dir.clone() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "backups are disabled: start the server with --backup-dir DIR to allow POST /backup",
        ));
    };
    let db = st.db.clone();
    let (dest, report) = run_blocking(move || {
        let name = format_rfc3339(now_ms()).replace(':', "-");
        let mut dest = root.join(&name);
        let mut n = 1;
        while dest.exists() {
            dest = root.join(format!("{name}.{n}"));
            n += 1;
        }
        let report = db.backup(&dest)?;
        Ok((dest, report))
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "status": "success",
            "path": dest.display().to_string(),
            "segments_linked": report.segments_linked,
            "segments_copied": report.segments_copied,
            "segment_bytes": report.segment_bytes,
            "wal_files": report.wal_files,
            "wal_bytes": report.wal_bytes,
            "samples_in_segments": report.samples_in_segments,
        }),
    ))
}

/// `POST /admin/flush`: seals the head into a segment now.
pub(super) async fn flush(State(st): State<Shared>) -> ApiResult {
    let db = st.db.clone();
    let (samples, series, segments) = run_blocking(move || {
        let before = db.stats()?;
        db.flush()?;
        let after = db.stats()?;
        Ok((before.head_samples, before.head_series, after.segments.saturating_sub(before.segments)))
    })
    .await?;
    log::info!("POST /admin/flush: sealed {samples} samples of {series} series");
    Ok(json_response(
        StatusCode::OK,
        &json!({"status": "success", "sealed_samples": samples, "sealed_series": series, "segments_added": segments}),
    ))
}

/// `POST /admin/compact`: seals the head, then downsamples, merges and applies the
/// recorded retention, reporting everything it removed.
pub(super) async fn compact(State(st): State<Shared>) -> ApiResult {
    let db = st.db.clone();
    let (sealed, r) = run_blocking(move || {
        let sealed = db.stats()?.head_samples;
        db.flush()?;
        Ok((sealed, db.compact()?))
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "status": "success",
            "sealed_samples": sealed,
            "rollups_written": r.rollups_written,
            "merges": r.merges,
            "segments_merged": r.segments_merged,
            "merge_items_dropped": r.merge_items_dropped,
            "segments_expired": r.segments_expired,
            "segments_trimmed": r.segments_trimmed,
            "segments_over_cap": r.segments_over_cap,
            "removed": retention_api::drops_json(&r.removed),
            "archived": retention_api::archived_json(&r.archived),
            "archive_errors": r.archive_errors,
            "bytes_before": r.bytes_before,
            "bytes_after": r.bytes_after,
        }),
    ))
}

/// `GET /admin/retention`: the recorded policy, and what applying it now would remove.
pub(super) async fn get_retention(State(st): State<Shared>) -> ApiResult {
    let db = st.db.clone();
    let (summary, plan) = run_read(move || Ok((db.retention_summary(), db.retention_plan()))).await?;
    let mut body = retention_api::policy_json(&summary);
    body["would_remove"] = retention_api::drops_json(&plan.drops);
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST /admin/retention/apply`: applies the recorded retention now, nothing else.
pub(super) async fn apply_retention(State(st): State<Shared>) -> ApiResult {
    let db = st.db.clone();
    let r = run_blocking(move || Ok(db.apply_retention()?)).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"status": "success", "removed": retention_api::drops_json(&r.removed),
            "archived": retention_api::archived_json(&r.archived), "archive_errors": r.archive_errors,
            "bytes_before": r.bytes_before, "bytes_after": r.bytes_after}),
    ))
}

/// `PUT /admin/retention`: records a whole new policy (the same shape GET returns, or
/// `{"preset": "tiered"}`); it applies from the next maintenance pass.
pub(super) async fn put_retention(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let policy = retention_api::parse_policy(&doc)?;
    let db = st.db.clone();
    let (old, summary) = run_blocking(move || {
        let old = db.retention_policy();
        db.set_retention(policy)?;
        Ok((old, db.retention_summary()))
    })
    .await?;
    log::info!("PUT /admin/retention: retention was [{old}]");
    Ok(json_response(StatusCode::OK, &retention_api::policy_json(&summary)))
}

/// `POST /admin/retention/rules`: adds one rule (recorded before it applies).
pub(super) async fn add_rule(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let rule = retention_api::parse_rule(&doc)?;
    let db = st.db.clone();
    let summary = run_blocking(move || {
        db.add_retention_rule(rule)?;
        Ok(db.retention_summary())
    })
    .await?;
    Ok(json_response(StatusCode::OK, &retention_api::policy_json(&summary)))
}

/// `DELETE /admin/retention/rules/{name}`.
pub(super) async fn remove_rule(State(st): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let db = st.db.clone();
    let n = name.clone();
    let (found, summary) = run_blocking(move || Ok((db.remove_retention_rule(&n)?, db.retention_summary()))).await?;
    if !found {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no retention rule named {name:?}")));
    }
    Ok(json_response(StatusCode::OK, &retention_api::policy_json(&summary)))
}

/// `POST|PUT /api/v1/admin/tsdb/delete_series?match[]=…&start=…&end=…`, as Prometheus:
/// times in RFC 3339 or (float) Unix seconds (by the one epoch rule of `text::time`,
/// so milliseconds and relative times are read too), both inclusive and unbounded by default.
/// The parameters may also come as a form body (`application/x-www-form-urlencoded`),
/// as Prometheus reads them; both sets count. Answers what it removed.
pub(super) async fn delete_series(
    State(st): State<Shared>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    req: Body,
) -> ApiResult {
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let form = if bytes.is_empty() {
        None
    } else {
        let ctype = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !ctype.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
            return Err(ApiError::bad_request(format!(
                "expected the parameters in the query string or a form body \
                 (Content-Type application/x-www-form-urlencoded), got a body of type {ctype:?}"
            )));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::bad_request("the form body is not UTF-8"))?;
        Some(text.to_string())
    };
    let raw = match (form, q) {
        (Some(f), Some(q)) => Some(format!("{f}&{q}")),
        (f, q) => f.or(q),
    };
    let p = Params::parse(raw.as_deref())?;
    let selectors = crate::server::export::selectors(&p)?;
    let start = p.get("start").map(|t| retention_api::prom_time(t, p.now())).transpose()?.unwrap_or(i64::MIN);
    let end = p.get("end").map(|t| retention_api::prom_time(t, p.now())).transpose()?.unwrap_or(i64::MAX);
    if start > end {
        let (start, end) = (show_time(start), show_time(end));
        return Err(ApiError::bad_request(format!("start {start} is after end {end}")));
    }
    let db = st.db.clone();
    let reports = run_blocking(move || {
        Ok(selectors.iter().map(|m| db.delete(m, start..=end)).collect::<crate::Result<Vec<_>>>()?)
    })
    .await?;
    let sum = |f: fn(&crate::DeleteReport) -> u64| reports.iter().map(f).sum::<u64>();
    let (samples, buckets) = (sum(|r| r.samples), sum(|r| r.buckets));
    Ok(json_response(
        StatusCode::OK,
        &json!({"status": "success", "data": {
            "series_matched": sum(|r| r.series_matched),
            "series_affected": sum(|r| r.series_affected),
            "samples": samples,
            "buckets": buckets,
            "segments_rewritten": sum(|r| r.segments_rewritten as u64),
            "segments_removed": sum(|r| r.segments_removed as u64),
        }}),
    ))
}
