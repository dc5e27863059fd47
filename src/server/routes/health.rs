//! Seed 004 health endpoints: `GET /`, `GET /health` (open even with auth), `GET /db/status`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::server::error::{json_response, ApiResult};
use crate::server::exec::run_read;
use crate::server::time::format_rfc3339;
use crate::server::Shared;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Basic health check.
pub(super) async fn root() -> Response {
    json_response(
        StatusCode::OK,
        &json!({"message": "Strata time-series engine", "status": "running", "version": VERSION}),
    )
}

/// Service status: 200 while the database accepts writes, 503 once it refuses them.
pub(super) async fn health(State(st): State<Shared>) -> Response {
    let wal = st.db.wal_stats();
    let uptime = st.started.elapsed().as_secs_f64();
    match wal.poisoned {
        None => {
            json_response(StatusCode::OK, &json!({"status": "healthy", "version": VERSION, "uptime_seconds": uptime}))
        }
        Some(cause) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unhealthy", "error": cause, "version": VERSION, "uptime_seconds": uptime}),
        ),
    }
}

/// Database status: what the engine holds and what recovery found.
pub(super) async fn db_status(State(st): State<Shared>) -> ApiResult {
    let db = st.db.clone();
    let in_memory = st.db.is_in_memory();
    let (stats, wal, path, rec) = run_read(move || {
        let rec = db.recovery_report().clone();
        Ok((db.stats()?, db.wal_stats(), db.path().display().to_string(), rec))
    })
    .await?;
    let tiers = |a: [u64; 3]| json!({"raw": a[0], "5m": a[1], "1h": a[2]});
    let body = json!({
        "status": if wal.poisoned.is_none() { "connected" } else { "read_only" },
        "error": wal.poisoned,
        "path": path,
        "storage": if in_memory { "memory" } else { "disk" },
        "series": stats.series,
        "samples": stats.samples(),
        "head": {
            "series": stats.head_series,
            "samples": stats.head_samples,
            "samples_written": stats.head_samples_written,
            "bytes": stats.head_bytes,
            "frozen_heads": stats.frozen_heads,
        },
        "segments": stats.segments,
        "segment_samples": tiers(stats.segment_samples),
        "disk_bytes": tiers(stats.disk_bytes),
        "wal": {
            "disk_bytes": stats.wal_bytes,
            "written_bytes": wal.bytes_written,
            "fsyncs": wal.fsyncs,
            "fsync_seconds": wal.fsync_nanos as f64 / 1e9,
        },
        "oldest": stats.oldest.map(format_rfc3339),
        "newest": stats.newest.map(format_rfc3339),
        "oldest_ms": stats.oldest,
        "newest_ms": stats.newest,
        "recovery": {
            "segments": rec.segments,
            "wal_files": rec.wal_files,
            "wal_records": rec.wal_records,
            "wal_truncated_bytes": rec.wal_truncated_bytes,
            "swept_files": rec.swept_files,
        },
    });
    Ok(json_response(StatusCode::OK, &body))
}
