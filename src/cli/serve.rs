//! `strata serve`: runs the HTTP server (`strata::server::run`) on a data directory.
//! Its settings come from flags, `STRATA_*` variables and a TOML file (`settings`),
//! and it logs to stderr (`logger`).

mod forward;
mod logger;
mod settings;

use std::path::PathBuf;

use log::LevelFilter;

pub use settings::parse_sync;
use settings::Settings;

use super::{CliError, CliResult};

/// Run the HTTP server on a data directory.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Run the HTTP server: ingest (JSON, InfluxDB line protocol, Prometheus remote-write), \
        queries, export, self-metrics. Requests need `Authorization: Bearer <token>` when \
        --auth-token-file is given; without it the server refuses to listen on a non-loopback address \
        unless --insecure says that is intended.\n\n\
        Every setting can also come from a TOML file given with --config (or STRATA_CONFIG), whose \
        keys are the flag names with `_` for `-` (`max_connections = 256`), and from environment \
        variables named STRATA_ and the key in capitals (STRATA_MAX_CONNECTIONS=256). `retention` \
        and STRATA_RETENTION take the global --retention flag's spec. Precedence: flag > \
        environment > file > default. See docs/SERVER.md, \"Configuration\".",
    after_help = "Examples:\n  strata serve --data ./data --listen 127.0.0.1:9464\n  \
        strata serve --in-memory --listen 127.0.0.1:0\n  \
        strata serve --data /var/lib/strata --listen :9464 --auth-token-file /etc/strata/token --sync always\n  \
        STRATA_LOG_FORMAT=json strata serve --config /etc/strata/strata.toml"
)]
pub struct Args {
    /// TOML file with serve settings (keys as the flags, e.g. `max_connections = 256`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Boxed: the settings are large, and `Args` sits in the command enum beside small ones.
    #[command(flatten)]
    settings: Box<Settings>,
}

/// The settings in force: flags over variables over the file over the defaults. The
/// global `--retention` counts as a flag.
fn resolve(a: Args) -> CliResult<(Settings, Option<PathBuf>)> {
    let mut flags = *a.settings;
    flags.retention = super::RETENTION.get().cloned();
    let env = settings::from_env(|name| std::env::var_os(name)).map_err(CliError::new)?;
    let config = a.config.or_else(|| std::env::var_os("STRATA_CONFIG").map(PathBuf::from));
    let file = match &config {
        Some(path) => settings::from_file(path).map_err(CliError::new)?,
        None => Settings::default(),
    };
    Ok((flags.or(env).or(file), config))
}

#[cfg(feature = "server")]
pub fn run(a: Args) -> CliResult {
    let (s, config) = resolve(a)?;
    let format = s.log_format.unwrap_or(logger::LogFormat::Text);
    logger::install(s.log_level.unwrap_or(LevelFilter::Info), format).map_err(CliError::new)?;
    if let Some(path) = &config {
        log::info!("settings from {} (flags and STRATA_* variables take precedence)", path.display());
    }
    let in_memory = s.in_memory.unwrap_or(false);
    if let (true, Some(dir)) = (in_memory, &s.data) {
        // The flags alone are refused by clap; a variable or the file may still combine them.
        return Err(CliError::new(format!(
            "--in-memory keeps no data files, so it cannot be combined with --data {} \
             (from a flag, STRATA_DATA or the config file): give one or the other",
            dir.display()
        )));
    }
    // The retention these settings chose seeds a new directory; an existing one keeps
    // the policy it recorded (`super::options_with`). In memory it is simply the policy.
    let data = s.data.unwrap_or_else(|| PathBuf::from("./data"));
    let mut options = match (in_memory, &s.retention) {
        (true, Some(policy)) => strata::Options::default().retention(policy.clone()),
        (true, None) => strata::Options::default(),
        (false, _) => super::options_with(&data, s.retention.as_ref())?,
    };
    if let Some(every) = s.maintenance_interval {
        options = options.maintenance_interval(every);
    }
    if let Some(bytes) = s.query_cache_bytes {
        options = options.query_cache_bytes(bytes);
    }
    let defaults = strata::server::ServeConfig::default();
    let cfg = strata::server::ServeConfig {
        data,
        in_memory,
        listen: s.listen.unwrap_or(defaults.listen),
        auth_token_file: s.auth_token_file,
        insecure: s.insecure.unwrap_or(false),
        options: options.sync(s.sync.unwrap_or(strata::SyncMode::Interval(std::time::Duration::from_secs(1)))),
        limits: s.limits.resolve(),
        backup_dir: s.backup_dir,
        ingest_nice: s.ingest_nice.unwrap_or(defaults.ingest_nice),
        forward: s.forward.resolve().map_err(CliError::new)?,
    };
    log::debug!("sync {:?}, ingest nice {}, limits {:?}", cfg.options.get_sync(), cfg.ingest_nice, cfg.limits);
    strata::server::run(cfg).map_err(|e| {
        // The `error:` line on stderr says it too; a JSON log collector needs it as JSON.
        if format == logger::LogFormat::Json {
            log::error!("server failed: {e}");
        }
        CliError::new(format!("server: {e}"))
    })
}

#[cfg(not(feature = "server"))]
pub fn run(a: Args) -> CliResult {
    let _ = resolve(a)?;
    super::fail("this strata binary was built without the `server` feature")
}

#[cfg(test)]
mod tests;
