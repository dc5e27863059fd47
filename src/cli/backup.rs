//! `strata backup`: a consistent copy of a data directory (`Db::backup`: hard
//! links of the immutable segments, a copy of the WAL still needed, the manifest
//! last), or of a running server's (`--url`, through its `POST /backup`).

use std::path::PathBuf;
use std::time::Instant;

use super::{fail, human, CliResult, DataDir};

/// Make a consistent snapshot of a data directory (hard links + copied WAL).
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Make a consistent snapshot of a data directory in DEST: the WAL is made durable (the \
        head is not sealed; its samples travel in the copied WAL files), every segment in the MANIFEST \
        is hard-linked (copied if DEST is on another file system), the WAL files still needed are \
        copied, and the MANIFEST is written last, all fsynced. \
        `strata stats --data DEST` then shows every sample acknowledged before the backup started. \
        Writers are not blocked. A running server holds its directory's lock: back it up with \
        --url, which asks the server to write the snapshot under its --backup-dir.",
    after_help = "Examples:\n  strata backup /backups/strata-2025-12-03 --data ./data\n  \
        strata backup --url http://127.0.0.1:9464"
)]
pub struct Args {
    /// Where to put the snapshot: a new or empty directory (not with --url).
    #[arg(value_name = "DEST", required_unless_present = "url", conflicts_with = "url")]
    dest: Option<PathBuf>,
    /// Back up a running server instead: it writes the snapshot under its --backup-dir.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// File holding the server's bearer token (with --url).
    #[arg(long, value_name = "FILE", requires = "url")]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
    /// Output JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult {
    if let Some(url) = &a.url {
        return remote(url, a.token_file.as_deref(), a.json);
    }
    let Some(dest) = a.dest else { return fail("give DEST, or --url for a running server") };
    let t0 = Instant::now();
    let db = match strata::Db::open(&a.data.data, super::options_for(&a.data.data)?.background(false)) {
        Err(strata::Error::Locked { .. }) => {
            return fail(format!(
                "{} is in use by another process (a running `strata serve`?); back it up with \
                 `strata backup --url http://HOST:PORT` (the server needs --backup-dir)",
                a.data.data.display()
            ))
        }
        r => r?,
    };
    let r = db.backup(&dest)?;
    db.close()?;
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({"dest": dest.display().to_string(), "segments_linked": r.segments_linked,
            "segments_copied": r.segments_copied, "segment_bytes": r.segment_bytes, "wal_files": r.wal_files,
            "wal_bytes": r.wal_bytes, "samples_in_segments": r.samples_in_segments, "seconds": secs});
        println!("{v}");
    } else {
        println!(
            "backup of {} in {}: {} segment(s) ({} hard-linked, {} copied, {}), {} WAL file(s) ({}), {} samples in segments, {secs:.2} s",
            a.data.data.display(),
            dest.display(),
            r.segments_linked + r.segments_copied,
            r.segments_linked,
            r.segments_copied,
            human::bytes(r.segment_bytes),
            r.wal_files,
            human::bytes(r.wal_bytes),
            human::count(r.samples_in_segments)
        );
    }
    Ok(())
}

/// Asks a running server for a snapshot and prints where it went.
fn remote(url: &str, token_file: Option<&std::path::Path>, json: bool) -> CliResult {
    let target = super::remote::Target { url: Some(url.to_string()), token_file: token_file.map(Into::into) };
    let Some(server) = super::remote::Remote::from(&target)? else { return Ok(()) };
    let v = server.call("POST", "/backup", None)?;
    if json {
        println!("{v}");
    } else {
        println!("server wrote a backup to {}", v["path"].as_str().unwrap_or("?"));
    }
    Ok(())
}
