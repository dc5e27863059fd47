//! The HTTP server (`strata serve`): the seed-004 JSON API, Prometheus remote
//! write/read, the InfluxDB line protocol, export/import, a live tail and
//! self-metrics over one `Db`. See `docs/SERVER.md` for every endpoint.
//!
//! Layout, one concern per file:
//! - `conn`: accept loop, hyper connection settings (header timeout), graceful shutdown;
//! - `routes/`: the router and the seed-004 handlers;
//! - `remote_write`, `remote_read`, `prompb`: the Prometheus protocols;
//! - `line_protocol`, `export`, `import`, `stream`: the other ecosystem paths;
//! - `body`, `limits`, `auth`, `error`, `metrics`, `time`, `values`: shared pieces (selectors are in `crate::text`);
//! - `process`: the `process_*` figures of `/metrics`, from `/proc/self` (Linux only).
//!
//! Engine calls block (a commit under `SyncMode::Always` waits for fsync), so none
//! runs as plain async code: writes go to tokio's blocking pool, reads run in place
//! on a worker that first hands its other tasks off (`exec`).

mod auth;
mod batch;
mod body;
mod chunks;
mod conn;
mod error;
mod exec;
mod export;
mod import;
mod limits;
#[doc(hidden)]
pub(crate) mod line_protocol;
mod metrics;
mod otlp;
#[cfg(target_os = "linux")]
mod process;
pub(crate) mod prompb;
mod remote_read;
mod remote_wire;
#[doc(hidden)]
pub(crate) mod remote_write;
mod routes;
mod stream;
pub(crate) mod time;
pub(crate) mod values;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::{Db, Options};

pub use error::ServerError;
pub use limits::Limits;

/// Everything `strata serve` needs. `Default` gives a server on 127.0.0.1:9464 over `./data`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Data directory. Default: `./data`. Unused when `in_memory`.
    pub data: PathBuf,
    /// Serve a database that keeps everything in memory (`Db::open_in_memory`) and
    /// creates no data files; everything is gone when the server stops. Default: false.
    pub in_memory: bool,
    /// Address to listen on. Default: `127.0.0.1:9464`.
    pub listen: SocketAddr,
    /// File holding the bearer token (its trimmed contents). Default: none, no auth.
    pub auth_token_file: Option<PathBuf>,
    /// Allow listening on a non-loopback address without a token. Default: false.
    pub insecure: bool,
    /// Engine options for `Db::open`.
    pub options: Options,
    pub limits: Limits,
    /// Where `POST /backup` writes snapshots (one new directory each). Default: none,
    /// and the endpoint is disabled.
    pub backup_dir: Option<PathBuf>,
    /// How many steps nicer than the server the ingest threads run (0-19), so
    /// queries get a core first while ingest takes the rest. Default: 10.
    pub ingest_nice: u8,
    /// Remote-write targets every acknowledged sample is forwarded to
    /// (`crate::forward`). Default: none.
    pub forward: Vec<crate::forward::ForwardConfig>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            data: PathBuf::from("./data"),
            in_memory: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            auth_token_file: None,
            insecure: false,
            options: Options::default(),
            limits: Limits::default(),
            backup_dir: None,
            ingest_nice: 10,
            forward: Vec::new(),
        }
    }
}

/// State shared by every handler.
pub(crate) struct AppState {
    pub db: Arc<Db>,
    pub limits: Limits,
    pub token: Option<Vec<u8>>,
    pub metrics: metrics::Metrics,
    /// Flips to true when shutdown starts; long-lived responses (streams) end on it.
    pub shutdown: watch::Receiver<bool>,
    /// Permits for concurrent `/stream` subscribers.
    pub streams: Arc<Semaphore>,
    pub started: Instant,
    pub backup_dir: Option<PathBuf>,
    /// Where ingest runs (`exec`).
    pub writers: exec::Writers,
    /// Permits for concurrent PromQL queries (`Limits::query_max_concurrency`).
    pub promql_slots: Arc<Semaphore>,
    /// Running forwarders, for `/metrics`; stopped when serving ends.
    pub forwarders: parking_lot::Mutex<Vec<crate::forward::Forwarder>>,
}

pub(crate) type Shared = Arc<AppState>;

/// Binds the listener, opens the database, serves until SIGTERM or SIGINT, then shuts
/// down gracefully: stops accepting, lets in-flight requests finish (up to
/// `Limits::shutdown_timeout`), and closes the database so everything acknowledged is
/// durable. Logs the start, the recovery, and the shutdown through `log`.
pub fn run(cfg: ServeConfig) -> Result<(), ServerError> {
    // Refuse an unsafe configuration, then a taken port, before touching the data
    // directory: a server that cannot listen must not create or recover a database.
    auth::load_token(&cfg, cfg.listen)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata-http")
        .build()
        .map_err(|e| ServerError::io("starting the tokio runtime", e))?;
    let listener = rt
        .block_on(TcpListener::bind(cfg.listen))
        .map_err(|e| ServerError::io(format!("binding {}", cfg.listen), e))?;
    let addr = listener.local_addr().map_err(|e| ServerError::io("reading the listener's address", e))?;
    let db = if cfg.in_memory {
        log::info!("strata {} starting: in-memory database (no data files), listen address {addr}", VERSION);
        Db::open_in_memory(cfg.options.clone())
    } else {
        log::info!("strata {} starting: data directory {}, listen address {addr}", VERSION, cfg.data.display());
        Db::open(&cfg.data, cfg.options.clone())
    };
    let db = Arc::new(db.map_err(ServerError::Db)?);
    log_opened(&db);
    log::info!("listening on http://{addr}");
    let served = rt.block_on(async {
        // On a worker rather than this thread, so a new connection's first read
        // does not wait for a second thread to wake.
        tokio::spawn(serve(db.clone(), listener, cfg, conn::shutdown_signal()))
            .await
            .map_err(|e| ServerError::io("running the server", std::io::Error::other(e.to_string())))?
    });
    // In-flight blocking engine calls have finished: their requests were waited for.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    let head = db.stats().ok();
    let closed = db.close().map_err(ServerError::Db);
    match (&closed, head) {
        (Ok(()), Some(st)) => log::info!(
            "database closed: WAL synced; {} samples of {} series in the head stay in the WAL and are \
             replayed at the next start; {} segments on disk",
            st.head_samples,
            st.head_series,
            st.segments
        ),
        (Ok(()), None) => log::info!("database closed: WAL synced"),
        (Err(e), _) => log::error!("closing the database: {e}"),
    }
    served.and(closed)
}

/// The version in `strata_build_info` and the start log line.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What opening found: the retention in force and the recovery figures.
fn log_opened(db: &Db) {
    let policy = db.retention_policy().summary().to_string();
    log::info!("retention: {}", policy.trim_end().replace('\n', "; "));
    let r = db.recovery_report();
    log::info!(
        "recovered: {} segments, {} WAL files with {} records replayed, {} leftover files swept",
        r.segments,
        r.wal_files,
        r.wal_records,
        r.swept_files
    );
    if r.wal_truncated_bytes > 0 {
        let file = r.wal_truncated_file.as_ref().map_or_else(String::new, |p| format!(" of {}", p.display()));
        log::warn!("cut {} bytes of torn or corrupt WAL tail{file}", r.wal_truncated_bytes);
    }
    for q in &r.quarantined {
        log::warn!("quarantined a segment that failed its checks (its data is not served): {}", q.display());
    }
}

/// Serves on `listener` until `shutdown` completes, then drains in-flight requests.
/// Does not close `db`: the caller owns it. Tests use this with `127.0.0.1:0`.
pub async fn serve(
    db: Arc<Db>,
    listener: TcpListener,
    cfg: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().map_err(|e| ServerError::io("reading the listener's address", e))?;
    let token = auth::load_token(&cfg, addr)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let writers = exec::Writers::start(cfg.ingest_nice).map_err(|e| ServerError::io("starting the ingest pool", e))?;
    // Before the first request: every sample acknowledged from here on is forwarded.
    let mut forwarders = Vec::new();
    for f in &cfg.forward {
        forwarders.push(crate::forward::Forwarder::start(&db, f.clone()).map_err(ServerError::Db)?);
    }
    let state = Arc::new(AppState {
        forwarders: parking_lot::Mutex::new(forwarders),
        db,
        streams: Arc::new(Semaphore::new(cfg.limits.max_streams)),
        promql_slots: Arc::new(Semaphore::new(cfg.limits.query_max_concurrency.max(1))),
        limits: cfg.limits,
        token,
        metrics: metrics::Metrics::default(),
        shutdown: stop_rx,
        started: Instant::now(),
        backup_dir: cfg.backup_dir,
        writers,
    });
    let served = conn::accept_loop(listener, state.clone(), stop_tx, shutdown).await;
    // A write abandoned at the shutdown timeout may still be committing on the
    // ingest pool: let it finish before the caller closes the Db.
    state.writers.drain(std::time::Duration::from_secs(5)).await;
    log::info!("stopped serving; writes in progress finished");
    let forwarders: Vec<_> = state.forwarders.lock().drain(..).collect();
    let stopped = tokio::task::spawn_blocking(move || {
        for f in forwarders {
            match f.stop() {
                Ok(s) => log::info!(
                    "forwarder to {} stopped: {} samples sent, {} pending are sent again at the next start",
                    s.target,
                    s.sent,
                    s.pending
                ),
                Err(e) => log::error!("stopping a forwarder: {e}"),
            }
        }
    });
    let _ = stopped.await;
    served
}
