//! The `strata` command line: one file per subcommand, shared parsing and
//! formatting helpers beside them.
//!
//! Conventions every subcommand follows:
//! - human-readable output by default, `--json` for scripts;
//! - progress (indicatif) on stderr, only when stderr is a terminal and `--json` is off;
//! - errors name what was wrong and exit non-zero; user input never panics.

mod archive;
mod backup;
mod check;
mod compact;
mod dashboard;
mod delete;
mod export;
mod formats;
mod human;
mod import;
mod load;
mod load_http;
mod ops;
mod plot;
mod promql;
mod query;
mod remote;
mod retention;
mod serve;
mod stats;
mod summary;
mod times;
mod upload;

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
    /// Retention of a NEW data directory (an existing one keeps the policy it recorded;
    /// change that with `strata retention set`): `forever` (the default), `tiered`
    /// (raw 7d, 5m 30d, 1h 365d), or tiers such as `raw=7d,5m=30d,1h=365d`, optionally
    /// after a preset (`tiered,raw=3d`); a tier not named keeps its data forever. Given
    /// for an existing directory, it must match what the directory recorded.
    #[arg(long, global = true, value_name = "SPEC", value_parser = parse_retention)]
    retention: Option<strata::RetentionPolicy>,
    #[command(subcommand)]
    command: Command,
}

static RETENTION: std::sync::OnceLock<strata::RetentionPolicy> = std::sync::OnceLock::new();

/// Options for opening `dir` under the global `--retention`, if given.
pub fn options_for(dir: &Path) -> CliResult<Options> {
    options_with(dir, RETENTION.get())
}

/// Options for opening `dir` with a retention flag (or setting). The flag names per-tier
/// defaults only, so on a directory that recorded the same defaults it changes nothing
/// (its rules and disk cap stay); with other defaults, opening fails naming both.
pub fn options_with(dir: &Path, flag: Option<&strata::RetentionPolicy>) -> CliResult<Options> {
    let Some(flag) = flag else { return Ok(Options::default()) };
    match strata::retention::read_settings(dir)? {
        Some(rec) if rec.default_durations() == flag.default_durations() => Ok(Options::default()),
        Some(rec) => fail(format!(
            "{} records retention [{rec}], and --retention gives [{}]; a command never changes a \
             database's retention implicitly: run `strata retention set` to change it, or drop --retention",
            dir.display(),
            flag.default_durations()
        )),
        None => Ok(Options::default().retention(flag.clone())),
    }
}

/// `forever`, `tiered`, and/or `tier=duration` items, comma-separated; presets first.
pub(crate) fn parse_retention(spec: &str) -> Result<strata::RetentionPolicy, String> {
    use std::time::Duration;
    use strata::TierDurations;
    let mut d = TierDurations::forever();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "forever" => d = TierDurations::forever(),
            "tiered" => d = TierDurations::tiered(),
            _ => {
                let (tier, value) = part
                    .split_once('=')
                    .ok_or(format!("expected forever, tiered or tier=duration (raw=7d), got {part:?}"))?;
                let v = if value == "forever" {
                    TierDurations::FOREVER
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
    Delete(delete::Args),
    Retention(retention::Args),
    Archive(archive::Args),
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
        Command::Delete(a) => delete::run(a).map(|()| ExitCode::SUCCESS),
        Command::Retention(a) => retention::run(a).map(|()| ExitCode::SUCCESS),
        Command::Archive(a) => archive::run(a).map(|()| ExitCode::SUCCESS),
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
    if !dir.join(strata::MANIFEST_FILE).is_file() {
        return fail(format!("{} is not a Strata data directory (it has no MANIFEST)", dir.display()));
    }
    Ok(Db::open(dir, options_for(dir)?.background(false))?)
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
        let minimal: [&[&str]; 12] = [
            &["serve"],
            &["load"],
            &["query", "up"],
            &["export"],
            &["import", "f.json"],
            &["stats"],
            &["check"],
            &["compact"],
            &["retention"],
            &["delete", "up"],
            &["backup", "dest"],
            &["dashboard"],
        ];
        for args in minimal {
            let argv = std::iter::once("strata").chain(args.iter().copied());
            // Building the typed arguments runs every default through its parser.
            assert!(Cli::try_parse_from(argv).is_ok(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["strata", "load", "--workload", "square"]).is_err());
        for ok in ["forever", "tiered", "tiered,raw=3d", "raw=1d,5m=forever"] {
            assert!(super::parse_retention(ok).is_ok(), "{ok}");
        }
        let t = super::parse_retention("tiered,raw=3d").unwrap();
        assert_eq!(t.default_durations().raw, std::time::Duration::from_secs(3 * 86_400));
        assert_eq!(t.default_durations().hour, std::time::Duration::from_secs(365 * 86_400));
        assert!(super::parse_retention("raw=7d").unwrap().default_durations().hour == strata::TierDurations::FOREVER);
        assert!(super::parse_retention("weekly").is_err() && super::parse_retention("raw=0s").is_err());
        assert!(Cli::try_parse_from(["strata", "query", "up", "--json", "--csv"]).is_err());
    }
}
