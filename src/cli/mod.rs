//! The `strata` command line: one file per subcommand, shared parsing and
//! formatting helpers beside them.
//!
//! Conventions every subcommand follows:
//! - human-readable output by default, `--json` for scripts;
//! - progress (indicatif) on stderr, only when stderr is a terminal and `--json` is off;
//! - errors name what was wrong and exit non-zero; user input never panics.

mod backup;
mod check;
mod compact;
mod dashboard;
mod export;
mod formats;
mod human;
mod import;
mod load;
mod load_http;
mod ops;
mod plot;
mod query;
mod retention;
mod selector;
mod serve;
mod stats;
mod times;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strata::{Db, Options};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Strata: an embedded time-series engine, its server, load generator and tools",
    long_about = "Strata: an embedded time-series engine, its server, load generator and tools.\n\n\
        Most subcommands work on a data directory (--data, default ./data). A directory is \
        locked by the process that opens it: while `strata serve` runs, use its HTTP API \
        instead (only `strata check` reads a live directory).",
    after_help = "Examples:\n  strata load --workload devops --duration 2h\n  strata stats --data ./data\n  \
        strata query 'cpu_usage_user{hostname=\"host_1\"}' --start -1h"
)]
struct Cli {
    /// Retention for every data directory this command opens: `forever`, or any of
    /// `raw=7d,5m=30d,1h=365d` (a tier may be `forever`). Samples older than the raw
    /// retention are refused and older data is hidden. Default: raw 7d, 5m 30d, 1h 365d.
    #[arg(long, global = true, value_name = "SPEC", value_parser = parse_retention)]
    retention: Option<strata::RetentionPolicy>,
    #[command(subcommand)]
    command: Command,
}

static RETENTION: std::sync::OnceLock<strata::RetentionPolicy> = std::sync::OnceLock::new();

/// Options every subcommand starts from: the defaults plus `--retention`.
pub fn base_options() -> Options {
    Options::default().retention(RETENTION.get().cloned().unwrap_or_default())
}

pub(crate) fn parse_retention(spec: &str) -> Result<strata::RetentionPolicy, String> {
    use std::time::Duration;
    use strata::TierDurations;
    let forever = TierDurations::FOREVER;
    let mut d = TierDurations::default();
    if spec.trim() == "forever" {
        d = TierDurations::forever();
    } else {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (tier, value) = part.split_once('=').ok_or(format!("expected tier=duration, got {part:?}"))?;
            let v = if value == "forever" {
                forever
            } else {
                let ms = times::parse_duration(value)?;
                if ms <= 0 {
                    return Err(format!("retention for {tier} must be positive"));
                }
                Duration::from_millis(ms as u64)
            };
            match tier {
                "raw" => d.raw = v,
                "5m" => d.five_min = v,
                "1h" => d.hour = v,
                other => return Err(format!("unknown tier {other:?}: use raw, 5m or 1h")),
            }
        }
    }
    strata::RetentionPolicy::new(d).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum Command {
    Serve(serve::Args),
    Load(load::Args),
    Query(query::Args),
    Export(export::Args),
    Import(import::Args),
    Stats(stats::Args),
    Check(check::Args),
    Compact(compact::Args),
    Retention(retention::Args),
    Backup(backup::Args),
    Dashboard(dashboard::Args),
}

/// Parses the command line, runs the subcommand, prints any error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(p) = cli.retention {
        let _ = RETENTION.set(p);
    }
    let result = match cli.command {
        Command::Serve(a) => serve::run(a).map(|()| ExitCode::SUCCESS),
        Command::Load(a) => load::run(a).map(|()| ExitCode::SUCCESS),
        Command::Query(a) => query::run(a).map(|()| ExitCode::SUCCESS),
        Command::Export(a) => export::run(a).map(|()| ExitCode::SUCCESS),
        Command::Import(a) => import::run(a).map(|()| ExitCode::SUCCESS),
        Command::Stats(a) => stats::run(a).map(|()| ExitCode::SUCCESS),
        Command::Check(a) => check::run(a),
        Command::Compact(a) => compact::run(a).map(|()| ExitCode::SUCCESS),
        Command::Retention(a) => retention::run(a).map(|()| ExitCode::SUCCESS),
        Command::Backup(a) => backup::run(a).map(|()| ExitCode::SUCCESS),
        Command::Dashboard(a) => dashboard::run(a).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An error for the user: one message that says what was wrong.
#[derive(Debug)]
pub struct CliError(String);

pub type CliResult<T = ()> = Result<T, CliError>;

impl CliError {
    pub fn new(msg: impl Into<String>) -> CliError {
        CliError(msg.into())
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<strata::Error> for CliError {
    fn from(e: strata::Error) -> CliError {
        match e {
            strata::Error::Locked { path } => CliError(format!(
                "{} is locked by another process (a running `strata serve`?): stop it, or use the server's \
                 HTTP API for this",
                path.parent().unwrap_or(&path).display()
            )),
            other => CliError(other.to_string()),
        }
    }
}

/// Shorthand for an early return with a message.
pub fn fail<T>(msg: impl Into<String>) -> CliResult<T> {
    Err(CliError::new(msg))
}

/// Attaches what was being done to an I/O error.
pub fn io_err(context: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> CliError {
    move |e| CliError(format!("{context}: {e}"))
}

/// The data directory option shared by most subcommands.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDir {
    /// Data directory of the database.
    #[arg(long, value_name = "DIR", default_value = "./data")]
    pub data: PathBuf,
}

/// Opens an existing database for a command that reads it (or adds to it): no
/// background sealing, and a clear error if the directory is not a database.
pub fn open_existing(dir: &Path) -> CliResult<Db> {
    if !dir.join(strata::manifest::FILE_NAME).is_file() {
        return fail(format!("{} is not a Strata data directory (it has no MANIFEST)", dir.display()));
    }
    Ok(Db::open(dir, base_options().background(false))?)
}

/// A progress bar on stderr, hidden when `quiet` or when stderr is not a terminal.
pub fn progress_bar(total: Option<u64>, quiet: bool) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    match total {
        Some(n) => {
            let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::with_draw_target(Some(n), target).with_style(style)
        }
        None => {
            let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            ProgressBar::with_draw_target(None, target).with_style(style)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::Cli;

    #[test]
    fn every_subcommand_parses_with_its_defaults() {
        Cli::command().debug_assert();
        let minimal: [&[&str]; 11] = [
            &["serve"],
            &["load"],
            &["query", "up"],
            &["export"],
            &["import", "f.json"],
            &["stats"],
            &["check"],
            &["compact"],
            &["retention"],
            &["backup", "dest"],
            &["dashboard"],
        ];
        for args in minimal {
            let argv = std::iter::once("strata").chain(args.iter().copied());
            // Building the typed arguments runs every default through its parser.
            assert!(Cli::try_parse_from(argv).is_ok(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["strata", "load", "--workload", "square"]).is_err());
        assert!(Cli::try_parse_from(["strata", "query", "up", "--json", "--csv"]).is_err());
    }
}
