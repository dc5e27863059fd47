//! `strata archive ls`: the Parquet files retention wrote before removing raw data
//! (`retention::archive`), with their day, tier, rows, series, time range and size,
//! read from each file's path and footer.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::json;
use strata::retention::archive::{self, ArchiveEntry};

use super::{human, times, CliError, CliResult, DataDir};

/// The retention archive (`strata retention set --archive-dir`).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// List the archive files: day, tier, rows, series, time range, size.
    #[command(
        after_help = "Examples:\n  strata archive ls --data ./data\n  strata archive ls --dir /backup/strata-archive --json\n\n\
        Restore a file, or a whole day: strata import --format parquet --data ./restored FILE|DIR"
    )]
    Ls {
        #[command(flatten)]
        data: DataDir,
        /// The archive directory itself (default: the one the data directory's retention records).
        #[arg(long, value_name = "ARCHIVE_DIR")]
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(a: Args) -> CliResult {
    let Cmd::Ls { data, dir, json } = a.cmd;
    let root = match dir {
        Some(d) => d,
        None => {
            let policy = strata::retention::read_settings(&data.data)?.ok_or_else(|| {
                CliError::new(format!("{} records no retention settings: is it a data directory?", data.data.display()))
            })?;
            policy.archive_dir_in(&data.data).ok_or_else(|| {
                CliError::new(format!(
                    "{} has no archive directory (set one with `strata retention set --archive-dir DIR`)",
                    data.data.display()
                ))
            })?
        }
    };
    if !root.is_dir() {
        // Nothing archived yet: the directory is made by the first archive write.
        if json {
            println!("{}", json!({"dir": root.display().to_string(), "files": []}));
        } else {
            println!("{}: nothing archived yet", root.display());
        }
        return Ok(());
    }
    let files = archive::list(&root)?;
    if json {
        println!("{}", to_json(&root, &files));
    } else {
        print!("{}", to_text(&root, &files));
    }
    Ok(())
}

fn to_json(root: &std::path::Path, files: &[ArchiveEntry]) -> serde_json::Value {
    let list: Vec<_> = files
        .iter()
        .map(|f| {
            json!({"path": f.path.display().to_string(), "tier": f.tier, "day": f.day, "rows": f.rows,
                "series": f.series, "min_t": f.min_t, "max_t": f.max_t, "bytes": f.bytes})
        })
        .collect();
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let bytes: u64 = files.iter().map(|f| f.bytes).sum();
    json!({"dir": root.display().to_string(), "files": list, "rows": rows, "bytes": bytes})
}

fn to_text(root: &std::path::Path, files: &[ArchiveEntry]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:<10}  {:<4}  {:>12}  {:>7}  {:<41}  {:>10}  file",
        "day", "tier", "rows", "series", "time range", "bytes"
    );
    for f in files {
        let range = match (f.min_t, f.max_t) {
            (Some(a), Some(b)) => format!("{} → {}", times::format_ts(a), times::format_ts(b)),
            _ => "?".to_string(),
        };
        let _ = writeln!(
            o,
            "{:<10}  {:<4}  {:>12}  {:>7}  {:<41}  {:>10}  {}",
            f.day,
            f.tier,
            human::count(f.rows),
            f.series.map_or("?".to_string(), |n| n.to_string()),
            range,
            human::bytes(f.bytes),
            f.path.strip_prefix(root).unwrap_or(&f.path).display()
        );
    }
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let bytes: u64 = files.iter().map(|f| f.bytes).sum();
    let _ = writeln!(
        o,
        "{} files, {} rows, {} in {}",
        files.len(),
        human::count(rows),
        human::bytes(bytes),
        root.display()
    );
    o
}
