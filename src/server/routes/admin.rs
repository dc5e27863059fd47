//! `POST /backup`: a consistent snapshot of the live database (`Db::backup`).
//!
//! Clients never name a path: snapshots go into a new timestamped directory under
//! the operator's `--backup-dir`, so nothing a request carries reaches the file
//! system. Without a backup directory the endpoint answers 403 saying how to enable it.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use crate::server::error::{json_response, ApiError, ApiResult};
use crate::server::exec::run_blocking;
use crate::server::time::format_rfc3339;
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
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let name = format_rfc3339(now as i64).replace(':', "-");
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
