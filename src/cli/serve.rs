//! `strata serve`: runs the HTTP server (`strata::server::run`) on a data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use strata::SyncMode;

use super::{times, CliResult, DataDir};

/// Run the HTTP server on a data directory.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Run the HTTP server: ingest (JSON, InfluxDB line protocol, Prometheus remote-write), \
        queries, export, self-metrics. Requests need `Authorization: Bearer <token>` when \
        --auth-token-file is given; without it the server refuses to listen on a non-loopback address \
        unless --insecure says that is intended.",
    after_help = "Examples:\n  strata serve --data ./data --listen 127.0.0.1:9464\n  \
        strata serve --data /var/lib/strata --listen 0.0.0.0:9464 --auth-token-file /etc/strata/token --sync always"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// File holding the bearer token clients must send.
    #[arg(long, value_name = "FILE")]
    auth_token_file: Option<PathBuf>,
    /// Allow serving without a token on a non-loopback address.
    #[arg(long)]
    insecure: bool,
    /// Directory where `POST /backup` (and `strata backup --url`) writes snapshots; without
    /// it the endpoint is disabled.
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<std::path::PathBuf>,
    /// How many steps nicer (lower CPU priority) than the server ingest runs, 0-19: queries
    /// then get a core first, and ingest still takes every idle cycle. 0 turns it off.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=19))]
    ingest_nice: u8,
    /// WAL durability: always (fsync before acknowledging), never, or an fsync interval such as 1s.
    #[arg(long, default_value = "1s", value_parser = parse_sync)]
    sync: SyncMode,
}

/// `always`, `never`, or a duration for `SyncMode::Interval`.
pub fn parse_sync(s: &str) -> Result<SyncMode, String> {
    match s {
        "always" => Ok(SyncMode::Always),
        "never" => Ok(SyncMode::Never),
        d => {
            let ms = times::parse_duration(d).map_err(|e| format!("expected always, never or a duration: {e}"))?;
            if ms <= 0 {
                return Err("the sync interval must be positive (or use always / never)".into());
            }
            Ok(SyncMode::Interval(Duration::from_millis(ms as u64)))
        }
    }
}

#[cfg(feature = "server")]
pub fn run(a: Args) -> CliResult {
    let cfg = strata::server::ServeConfig {
        data: a.data.data,
        listen: a.listen,
        auth_token_file: a.auth_token_file,
        insecure: a.insecure,
        options: super::base_options().sync(a.sync),
        backup_dir: a.backup_dir,
        ingest_nice: a.ingest_nice,
        ..Default::default()
    };
    strata::server::run(cfg).map_err(|e| super::CliError::new(format!("server: {e}")))
}

#[cfg(not(feature = "server"))]
pub fn run(a: Args) -> CliResult {
    let _ = (a.data, a.listen, a.auth_token_file, a.insecure, a.sync, a.backup_dir, a.ingest_nice);
    super::fail("this strata binary was built without the `server` feature")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_modes() {
        assert_eq!(parse_sync("always"), Ok(SyncMode::Always));
        assert_eq!(parse_sync("never"), Ok(SyncMode::Never));
        assert_eq!(parse_sync("250ms"), Ok(SyncMode::Interval(Duration::from_millis(250))));
        assert!(parse_sync("sometimes").unwrap_err().contains("always, never or a duration"));
        assert!(parse_sync("0").is_err());
    }
}
