//! Every `strata serve` setting, from four places: flags, `STRATA_*` environment
//! variables, a TOML file (`--config`), and the built-in defaults. Precedence:
//! flag > environment > file > default.
//!
//! A setting is `None` until one of those sources gives it, so a layer that is silent
//! never overrides a lower one (`Settings::or`). One parser per kind of value serves
//! the flag, the variable and the file alike, so each spells values the same way; the
//! variables and the file share one table of keys (`KEYS`, `set`), and their errors
//! name the variable or the key.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use log::LevelFilter;
use strata::server::Limits;
use strata::{RetentionPolicy, SyncMode};

use super::forward::{self, ForwardSettings};
use super::logger::LogFormat;
use crate::cli::times;

/// Settings from one source; `None` = this source does not say.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct Settings {
    /// Data directory of the database [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Serve a database held in memory: no data files, everything gone at exit (for tests
    /// and development). Conflicts with --data.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_bool,
        conflicts_with = "data"
    )]
    pub in_memory: Option<bool>,
    /// Address to listen on: `127.0.0.1:9464`, `localhost:9464`, `[::1]:9464`, or `:9464`
    /// for every IPv4 interface [default: 127.0.0.1:9464].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// File holding the bearer token clients must send.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Allow serving without a token on a non-loopback address (`--insecure` or `--insecure=false`).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = parse_bool
    )]
    pub insecure: Option<bool>,
    /// Directory where `POST /backup` (and `strata backup --url`) writes snapshots; without
    /// it the endpoint is disabled.
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// How many steps nicer (lower CPU priority) than the server ingest runs, 0-19: queries
    /// then get a core first, and ingest still takes every idle cycle. 0 turns it off [default: 10].
    #[arg(long, value_name = "N", value_parser = parse_nice)]
    pub ingest_nice: Option<u8>,
    /// How often background maintenance (downsampling, compaction, retention) runs when
    /// nothing was sealed [default: 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub maintenance_interval: Option<Duration>,
    /// Bytes the query cache may hold (e.g. 64MiB); 0 turns it off [default: 64MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_cache_bytes)]
    pub query_cache_bytes: Option<usize>,
    /// WAL durability: always (fsync before acknowledging), never, or an fsync interval such
    /// as 1s [default: 1s].
    #[arg(long, value_name = "MODE", value_parser = parse_sync)]
    pub sync: Option<SyncMode>,
    /// Least severe log messages written to stderr: error, warn, info, debug or trace [default: info].
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<LevelFilter>,
    /// Log line format: text, or json (one object per line, for journald and containers) [default: text].
    #[arg(long, value_name = "FORMAT", value_parser = LogFormat::parse)]
    pub log_format: Option<LogFormat>,
    /// Retention, as the global `--retention` flag spells it (that flag wins; this field is
    /// filled from it, STRATA_RETENTION or the file, not by clap).
    #[arg(skip)]
    pub retention: Option<RetentionPolicy>,
    #[command(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    pub forward: ForwardSettings,
}

/// `strata::server::Limits`, one optional setting per field, same names.
#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Request limits (defaults in docs/SERVER.md)")]
pub struct LimitSettings {
    /// Most bytes of a request body as sent (e.g. 16MiB).
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_body_bytes: Option<usize>,
    /// Most bytes a gzip or snappy body may decompress to.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_decompressed_bytes: Option<usize>,
    /// Most labels one series may carry, `__name__` included.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_labels_per_series: Option<usize>,
    /// Longest label name, in bytes.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_label_name_len: Option<usize>,
    /// Longest label value (metric names included), in bytes.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_label_value_len: Option<usize>,
    /// Most distinct series one write request may touch.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_series_per_request: Option<usize>,
    /// Most samples one write request may carry.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_samples_per_request: Option<usize>,
    /// Most samples one buffered read (`/query/raw`, remote read) may read.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_query_samples: Option<usize>,
    /// Most series one buffered read may return.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_query_series: Option<usize>,
    /// Time a client has to send a request's headers (e.g. 10s).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub header_read_timeout: Option<Duration>,
    /// Time a client has to send a request's body.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub body_read_timeout: Option<Duration>,
    /// Most open connections; further ones are closed at once.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_connections: Option<usize>,
    /// Most concurrent `/stream` subscribers; further ones get 429.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_streams: Option<usize>,
    /// How long shutdown waits for in-flight requests.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub shutdown_timeout: Option<Duration>,
    /// Most samples one PromQL query (`/api/v1/query`, `/api/v1/query_range`) may load.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub query_max_samples: Option<usize>,
    /// Longest a PromQL query may wait for a slot, and then run (e.g. 2m).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub query_timeout: Option<Duration>,
    /// Most PromQL queries evaluated at once; further ones wait, up to their timeout.
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub query_max_concurrency: Option<usize>,
}

impl Settings {
    /// This source's settings, with `lower`'s where this one is silent.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            data: self.data.or(lower.data),
            in_memory: self.in_memory.or(lower.in_memory),
            listen: self.listen.or(lower.listen),
            auth_token_file: self.auth_token_file.or(lower.auth_token_file),
            insecure: self.insecure.or(lower.insecure),
            backup_dir: self.backup_dir.or(lower.backup_dir),
            ingest_nice: self.ingest_nice.or(lower.ingest_nice),
            maintenance_interval: self.maintenance_interval.or(lower.maintenance_interval),
            query_cache_bytes: self.query_cache_bytes.or(lower.query_cache_bytes),
            sync: self.sync.or(lower.sync),
            log_level: self.log_level.or(lower.log_level),
            log_format: self.log_format.or(lower.log_format),
            retention: self.retention.or(lower.retention),
            limits: self.limits.or(lower.limits),
            forward: self.forward.or(lower.forward),
        }
    }
}

impl LimitSettings {
    fn or(self, lower: LimitSettings) -> LimitSettings {
        LimitSettings {
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            max_decompressed_bytes: self.max_decompressed_bytes.or(lower.max_decompressed_bytes),
            max_labels_per_series: self.max_labels_per_series.or(lower.max_labels_per_series),
            max_label_name_len: self.max_label_name_len.or(lower.max_label_name_len),
            max_label_value_len: self.max_label_value_len.or(lower.max_label_value_len),
            max_series_per_request: self.max_series_per_request.or(lower.max_series_per_request),
            max_samples_per_request: self.max_samples_per_request.or(lower.max_samples_per_request),
            max_query_samples: self.max_query_samples.or(lower.max_query_samples),
            max_query_series: self.max_query_series.or(lower.max_query_series),
            header_read_timeout: self.header_read_timeout.or(lower.header_read_timeout),
            body_read_timeout: self.body_read_timeout.or(lower.body_read_timeout),
            max_connections: self.max_connections.or(lower.max_connections),
            max_streams: self.max_streams.or(lower.max_streams),
            shutdown_timeout: self.shutdown_timeout.or(lower.shutdown_timeout),
            query_max_samples: self.query_max_samples.or(lower.query_max_samples),
            query_timeout: self.query_timeout.or(lower.query_timeout),
            query_max_concurrency: self.query_max_concurrency.or(lower.query_max_concurrency),
        }
    }

    /// The library's defaults, overridden where a source said something.
    pub fn resolve(&self) -> Limits {
        let d = Limits::default();
        Limits {
            max_body_bytes: self.max_body_bytes.unwrap_or(d.max_body_bytes),
            max_decompressed_bytes: self.max_decompressed_bytes.unwrap_or(d.max_decompressed_bytes),
            max_labels_per_series: self.max_labels_per_series.unwrap_or(d.max_labels_per_series),
            max_label_name_len: self.max_label_name_len.unwrap_or(d.max_label_name_len),
            max_label_value_len: self.max_label_value_len.unwrap_or(d.max_label_value_len),
            max_series_per_request: self.max_series_per_request.unwrap_or(d.max_series_per_request),
            max_samples_per_request: self.max_samples_per_request.unwrap_or(d.max_samples_per_request),
            max_query_samples: self.max_query_samples.unwrap_or(d.max_query_samples),
            max_query_series: self.max_query_series.unwrap_or(d.max_query_series),
            header_read_timeout: self.header_read_timeout.unwrap_or(d.header_read_timeout),
            body_read_timeout: self.body_read_timeout.unwrap_or(d.body_read_timeout),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_streams: self.max_streams.unwrap_or(d.max_streams),
            shutdown_timeout: self.shutdown_timeout.unwrap_or(d.shutdown_timeout),
            query_max_samples: self.query_max_samples.unwrap_or(d.query_max_samples),
            query_timeout: self.query_timeout.unwrap_or(d.query_timeout),
            query_max_concurrency: self.query_max_concurrency.unwrap_or(d.query_max_concurrency),
        }
    }
}

/// Reads a `--config` file. Keys are the flags' names with `_` for `-`; an unknown key,
/// a table, or a value of the wrong kind is an error naming the file and the key.
pub fn from_file(path: &Path) -> Result<Settings, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading the config file {}: {e}", path.display()))?;
    from_toml(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

pub fn from_toml(text: &str) -> Result<Settings, String> {
    let doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| e.to_string())?;
    let mut s = Settings::default();
    for (key, item) in doc.as_table().iter() {
        if key == "forward" {
            let tables = item.as_array_of_tables().ok_or("`forward` must be [[forward]] tables, one per target")?;
            for t in tables.iter() {
                s.forward.tables.push(forward::table(t).map_err(|e| format!("[[forward]]: {e}"))?);
            }
            continue;
        }
        let raw = match item.as_value() {
            Some(toml_edit::Value::String(v)) => Raw::Str(v.value()),
            Some(toml_edit::Value::Integer(v)) => Raw::Int(*v.value()),
            Some(toml_edit::Value::Boolean(v)) => Raw::Bool(*v.value()),
            Some(other) => {
                return Err(format!("key `{key}`: expected a string, number or boolean, got {}", other.type_name()))
            }
            None => return Err(format!("key `{key}` must be a plain value, not a table")),
        };
        set(&mut s, key, raw).map_err(|e| format!("key `{key}`: {e}"))?;
    }
    Ok(s)
}

/// The settings given by `STRATA_<KEY>` variables (`STRATA_MAX_CONNECTIONS` for
/// `max_connections`), read through `var` so tests need not touch the process's environment.
pub fn from_env(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Settings, String> {
    let mut s = Settings::default();
    for key in KEYS {
        let name = env_name(key);
        if let Some(v) = var(&name) {
            let v = v.into_string().map_err(|v| format!("environment variable {name}: {v:?} is not UTF-8"))?;
            set(&mut s, key, Raw::Str(&v)).map_err(|e| format!("environment variable {name}: {e}"))?;
        }
    }
    Ok(s)
}

pub fn env_name(key: &str) -> String {
    format!("STRATA_{}", key.to_ascii_uppercase())
}

/// A value as a file or a variable gives it. Variables are always strings; a file may
/// also give numbers and booleans unquoted.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
}

/// Every key a config file may hold, for the unknown-key error.
pub const KEYS: [&str; 38] = [
    "data",
    "in_memory",
    "listen",
    "auth_token_file",
    "insecure",
    "backup_dir",
    "ingest_nice",
    "maintenance_interval",
    "query_cache_bytes",
    "sync",
    "retention",
    "log_level",
    "log_format",
    "max_body_bytes",
    "max_decompressed_bytes",
    "max_labels_per_series",
    "max_label_name_len",
    "max_label_value_len",
    "max_series_per_request",
    "max_samples_per_request",
    "max_query_samples",
    "max_query_series",
    "header_read_timeout",
    "body_read_timeout",
    "max_connections",
    "max_streams",
    "shutdown_timeout",
    "query_max_samples",
    "query_timeout",
    "query_max_concurrency",
    "forward_to",
    "forward_selector",
    "forward_headers",
    "forward_basic_auth",
    "forward_shards",
    "forward_batch_samples",
    "forward_max_backlog_bytes",
    "forward_metadata_interval",
];

fn set(s: &mut Settings, key: &str, v: Raw) -> Result<(), String> {
    let l = &mut s.limits;
    match key {
        "data" => s.data = Some(PathBuf::from(string(v)?)),
        "in_memory" => s.in_memory = Some(boolean(v)?),
        "listen" => s.listen = Some(parse_listen(string(v)?)?),
        "auth_token_file" => s.auth_token_file = Some(PathBuf::from(string(v)?)),
        "insecure" => s.insecure = Some(boolean(v)?),
        "backup_dir" => s.backup_dir = Some(PathBuf::from(string(v)?)),
        "ingest_nice" => s.ingest_nice = Some(parse_nice(&number(v)?)?),
        "maintenance_interval" => s.maintenance_interval = Some(parse_timeout(string(v)?)?),
        "query_cache_bytes" => s.query_cache_bytes = Some(parse_cache_bytes(&number(v)?)?),
        "sync" => s.sync = Some(parse_sync(string(v)?)?),
        "retention" => s.retention = Some(crate::cli::parse_retention(string(v)?)?),
        "log_level" => s.log_level = Some(parse_log_level(string(v)?)?),
        "log_format" => s.log_format = Some(LogFormat::parse(string(v)?)?),
        "max_body_bytes" => l.max_body_bytes = Some(parse_bytes(&number(v)?)?),
        "max_decompressed_bytes" => l.max_decompressed_bytes = Some(parse_bytes(&number(v)?)?),
        "max_labels_per_series" => l.max_labels_per_series = Some(parse_count(&number(v)?)?),
        "max_label_name_len" => l.max_label_name_len = Some(parse_bytes(&number(v)?)?),
        "max_label_value_len" => l.max_label_value_len = Some(parse_bytes(&number(v)?)?),
        "max_series_per_request" => l.max_series_per_request = Some(parse_count(&number(v)?)?),
        "max_samples_per_request" => l.max_samples_per_request = Some(parse_count(&number(v)?)?),
        "max_query_samples" => l.max_query_samples = Some(parse_count(&number(v)?)?),
        "max_query_series" => l.max_query_series = Some(parse_count(&number(v)?)?),
        "header_read_timeout" => l.header_read_timeout = Some(parse_timeout(string(v)?)?),
        "body_read_timeout" => l.body_read_timeout = Some(parse_timeout(string(v)?)?),
        "max_connections" => l.max_connections = Some(parse_count(&number(v)?)?),
        "max_streams" => l.max_streams = Some(parse_count(&number(v)?)?),
        "shutdown_timeout" => l.shutdown_timeout = Some(parse_timeout(string(v)?)?),
        "query_max_samples" => l.query_max_samples = Some(parse_count(&number(v)?)?),
        "query_timeout" => l.query_timeout = Some(parse_timeout(string(v)?)?),
        "query_max_concurrency" => l.query_max_concurrency = Some(parse_count(&number(v)?)?),
        k if k.starts_with("forward_") && s.forward.set(k, &number(v)?)? => {}
        _ => return Err(format!("unknown key; the known keys are {}", KEYS.join(", "))),
    }
    Ok(())
}

fn string(v: Raw<'_>) -> Result<&str, String> {
    match v {
        Raw::Str(s) => Ok(s),
        Raw::Int(n) => Err(format!("expected a string in quotes, got the number {n}")),
        Raw::Bool(b) => Err(format!("expected a string in quotes, got {b}")),
    }
}

/// An integer, or a string for the units `parse_bytes` reads (`"16MiB"`).
fn number(v: Raw) -> Result<String, String> {
    match v {
        Raw::Str(s) => Ok(s.to_string()),
        Raw::Int(n) => Ok(n.to_string()),
        Raw::Bool(b) => Err(format!("expected a number, got {b}")),
    }
}

fn boolean(v: Raw) -> Result<bool, String> {
    match v {
        Raw::Bool(b) => Ok(b),
        Raw::Str(s) => parse_bool(s),
        Raw::Int(n) => Err(format!("expected true or false, got {n}")),
    }
}

/// `host:port`, `:port` (every IPv4 interface, as Go and Prometheus read it), an IP
/// address with a port (`[::1]:9464` for IPv6), or `localhost:port`. A host name is
/// resolved once, here; `localhost` is always 127.0.0.1 (RFC 6761), without a lookup.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("listen address {s:?} has no port: use host:port, e.g. 127.0.0.1:9464 or :9464"))?;
    let port: u16 = port.parse().map_err(|_| format!("listen address {s:?}: {port:?} is not a port number"))?;
    match host {
        "" => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
        h if h.eq_ignore_ascii_case("localhost") => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        h => {
            let addrs: Vec<SocketAddr> = (h, port)
                .to_socket_addrs()
                .map_err(|e| format!("listen address {s:?}: cannot resolve {h:?}: {e}"))?
                .collect();
            // Prefer IPv4, as Go does for a name with both kinds of address.
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| format!("listen address {s:?}: {h:?} resolves to no address"))
        }
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("expected true or false, got {s:?}")),
    }
}

fn parse_nice(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(n) if n <= 19 => Ok(n),
        _ => Err(format!("expected a niceness from 0 to 19, got {s:?}")),
    }
}

/// A positive whole number.
fn parse_count(s: &str) -> Result<usize, String> {
    match s.trim().replace('_', "").parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive whole number, got {s:?}")),
    }
}

/// A positive size in bytes: a number, optionally with KiB, MiB or GiB (or K, M, G, all
/// powers of 1024).
/// A size as `parse_bytes` reads it, or 0 (the query cache off).
pub fn parse_cache_bytes(s: &str) -> Result<usize, String> {
    if s.trim().trim_end_matches(['B', 'K', 'M', 'G', 'i']).trim() == "0" {
        return Ok(0);
    }
    parse_bytes(s).map_err(|e| format!("{e}, or 0 to turn the cache off"))
}

pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return Err(format!("expected a size such as 65536, 64KiB or 16MiB, got {s:?}")),
    };
    parse_count(digits)
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("expected a positive size such as 65536, 64KiB or 16MiB, got {s:?}"))
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match times::parse_duration(s)? {
        ms if ms > 0 => Ok(Duration::from_millis(ms as u64)),
        _ => Err(format!("expected a positive duration such as 10s, got {s:?}")),
    }
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

fn parse_log_level(s: &str) -> Result<LevelFilter, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err(format!("expected error, warn, info, debug or trace, got {s:?}")),
    }
}
