//! Durable remote-write forwarding: every sample the Db acknowledges is sent, at
//! least once and in order per series, to a Prometheus remote-write target.
//!
//! The forwarder tails the WAL (`tail.rs`) from a position persisted per target in
//! `<data>/forward/<id>.pos` (`docs/format/forward.md`), which the Db's WAL deletion
//! respects (`db::holds`). One reader thread decodes frames, resolves series ids to
//! labels (WAL Series records, else the Db's index), applies the selector and deals
//! samples to shards by series; each shard (`send.rs`) is one HTTP connection that
//! sends snappy-compressed `WriteRequest`s (`wire.rs`) in order, retrying 429 and 5xx
//! with backoff. The position advances only past samples every shard has finished
//! with (sent, or refused with a 4xx), so a restart, `kill -9` included, resends from
//! there: duplicates are possible, gaps are not. Metric metadata (`meta.rs`) is
//! sent beside the samples, at start, on change and every `metadata_interval`.

mod meta;
mod send;
mod tail;
mod wire;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{bounded, SendTimeoutError, Sender};
use parking_lot::Mutex;

pub use crate::db::holds::{WalPosition, DEFAULT_BACKLOG_CAP};
pub use send::{verdict, Backoff, Verdict};

use crate::db::holds::{self, WalHold};
use crate::db::{Db, Inner};
use crate::error::{Error, Result};
use crate::hash::IdMap;
use crate::labels::{Labels, Matcher};
use crate::wal::Record;
use send::{Batch, Shard};
use tail::{Next, Tail};
use wire::{encode_labels, Pending};

/// One remote-write target and how to send to it.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// `http://host:port/path` of the target's remote-write endpoint; `user:pass@`
    /// in it becomes basic auth. Plain HTTP only.
    pub url: String,
    /// Names the position file (`forward/<name>.pos`); by default derived from the URL.
    pub name: Option<String>,
    /// Only series matching every matcher are forwarded (empty: all).
    pub selector: Vec<Matcher>,
    /// Extra request headers, for example `X-Scope-OrgID`.
    pub headers: Vec<(String, String)>,
    pub basic_auth: Option<(String, String)>,
    /// Parallel connections; series are dealt to them by id.
    pub shards: usize,
    /// Samples per request at most.
    pub batch_samples: usize,
    /// WAL bytes kept for this target beyond what the Db keeps anyway; past it the
    /// oldest are released and their unsent samples counted as dropped.
    pub max_backlog_bytes: u64,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Per request, connecting included.
    pub timeout: Duration,
    /// A partly filled batch is sent after this long.
    pub flush_interval: Duration,
    /// How long `stop` keeps sending what was read before it gives up.
    pub drain_timeout: Duration,
    /// Metric metadata (type, help, unit) is sent at start, on change, and again
    /// this often, as Prometheus does; zero sends none. The selector's matchers on
    /// the metric name choose the families.
    pub metadata_interval: Duration,
}

impl ForwardConfig {
    pub fn new(url: impl Into<String>) -> ForwardConfig {
        ForwardConfig {
            url: url.into(),
            name: None,
            selector: Vec::new(),
            headers: Vec::new(),
            basic_auth: None,
            shards: 4,
            batch_samples: 5_000,
            max_backlog_bytes: DEFAULT_BACKLOG_CAP,
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            flush_interval: Duration::from_millis(100),
            drain_timeout: Duration::from_secs(5),
            metadata_interval: Duration::from_secs(60),
        }
    }

    /// The URL without credentials, as logs and metrics show it.
    pub fn target(&self) -> Result<String> {
        split_url(&self.url).map(|(u, _)| u)
    }

    /// The position file's name: `name`, or `t` and a hash of the URL.
    pub fn id(&self) -> Result<String> {
        if let Some(n) = &self.name {
            let ok =
                !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok || n.starts_with('.') {
                return Err(Error::InvalidArgument(format!(
                    "forward target name {n:?}: use 1 to 64 letters, digits, '_', '.' or '-', not starting with '.'"
                )));
            }
            return Ok(n.clone());
        }
        // FNV-1a: stable across builds, so the position file is found again
        let url = self.target()?;
        let h = url.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        Ok(format!("t{h:016x}"))
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if !(1..=256).contains(&self.shards) {
            return bad(format!("forward shards must be 1 to 256, not {}", self.shards));
        }
        if !(1..=1_000_000).contains(&self.batch_samples) {
            return bad(format!("forward batch size must be 1 to 1000000 samples, not {}", self.batch_samples));
        }
        for (k, _) in &self.headers {
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                return bad(format!("forward header name {k:?} is not a valid HTTP header name"));
            }
        }
        self.id().map(|_| ())
    }
}

/// `http://user:pass@host/p` -> (`http://host/p`, Some((user, pass))).
fn split_url(url: &str) -> Result<(String, Option<(String, String)>)> {
    let bad = |why: &str| Err(Error::InvalidArgument(format!("forward URL {url:?}: {why}")));
    if url.starts_with("https://") {
        return bad("this build sends plain HTTP only; put a TLS proxy in front of the target");
    }
    let Some(rest) = url.strip_prefix("http://") else { return bad("must start with http://") };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return bad("has no host");
    }
    match authority.rsplit_once('@') {
        None => Ok((url.to_string(), None)),
        Some((user, host)) => {
            let (u, p) = user.split_once(':').unwrap_or((user, ""));
            Ok((format!("http://{host}{path}"), Some((u.to_string(), p.to_string()))))
        }
    }
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in b.chunks(3) {
        let n = c.iter().enumerate().fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            let ch = if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] } else { b'=' };
            s.push(ch as char);
        }
    }
    s
}

/// Counters of one forwarder, as `/metrics` shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardStats {
    /// The target URL without credentials.
    pub target: String,
    /// The position file's name.
    pub id: String,
    /// Samples the target acknowledged.
    pub sent: u64,
    /// Samples the target refused with a 4xx other than 429 (dropped, not retried),
    /// or whose series could not be resolved.
    pub failed: u64,
    /// Samples released unsent by the backlog cap.
    pub dropped: u64,
    /// Requests retried (429, 5xx, no answer).
    pub retries: u64,
    /// Samples read from the WAL and not yet sent or refused.
    pub pending: u64,
    /// How long since everything in the WAL was last acknowledged; 0 when caught up.
    pub lag_seconds: f64,
    /// The persisted position: everything before it was acknowledged.
    pub position: WalPosition,
    /// Metric families whose metadata the target acknowledged (each resend counts).
    pub metadata_sent: u64,
    /// Metric families whose metadata the target refused with a 4xx other than 429.
    pub metadata_failed: u64,
}

/// What the reader and the shards share.
pub(crate) struct Shared {
    config: ForwardConfig,
    target: String,
    url: String,
    authorization: Option<String>,
    sent: AtomicU64,
    failed: AtomicU64,
    retries: AtomicU64,
    pending: AtomicU64,
    metadata_sent: AtomicU64,
    metadata_failed: AtomicU64,
    stop: AtomicBool,
    stop_at: Mutex<Option<Instant>>,
    caught_up_ms: AtomicU64,
    idle: AtomicBool,
    persisted: Mutex<WalPosition>,
    /// Every record before this was dealt to a shard (or skipped): set by the reader.
    done: Mutex<WalPosition>,
}

impl Shared {
    /// Whether a shard should give up a batch: stopping, and the drain time is over.
    fn abandon(&self) -> bool {
        self.stop.load(Ordering::Acquire)
            && self.stop_at.lock().is_none_or(|t| t.elapsed() >= self.config.drain_timeout)
    }

    /// Sleeps `d`, in slices, returning early once the shard should give up.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.abandon() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A running forwarder. Dropping it stops it as [`Forwarder::stop`] does.
pub struct Forwarder {
    shared: Arc<Shared>,
    hold: Arc<WalHold>,
    id: String,
    reader: Option<JoinHandle<()>>,
    shards: Vec<JoinHandle<()>>,
    outstanding: Vec<Arc<Mutex<VecDeque<WalPosition>>>>,
    data_dir: PathBuf,
}

impl Forwarder {
    /// Starts forwarding `db`'s WAL to `config.url`, from the target's persisted
    /// position, or, for a target new to this data directory, from the oldest WAL
    /// file the Db replays (everything not yet sealed, then all that follows). The
    /// position file exists when this returns. Refused for an in-memory Db (there
    /// is no WAL to resume from) and for a damaged position file, named.
    pub fn start(db: &Db, config: ForwardConfig) -> Result<Forwarder> {
        config.validate()?;
        if db.is_in_memory() {
            return Err(Error::InvalidArgument(
                "forwarding resumes from the WAL after a restart, and an in-memory database has none".into(),
            ));
        }
        let inner = db.inner().clone();
        let id = config.id()?;
        let (url, from_url) = split_url(&config.url)?;
        let auth = config.basic_auth.clone().or(from_url);
        let data_dir = inner.dir.clone();
        // hold everything first, so that no seal deletes a file between here and the store
        let hold = inner.wal_holds.get_or_insert(&id, WalPosition::default());
        let start = match holds::load_position(&data_dir, &id)? {
            Some(p) => p,
            None => {
                // the first file replay reads: the floor, or the first file above it
                let floor = inner.manifest.lock().wal_floor;
                let first =
                    crate::wal::list_segments(&inner.wal_dir())?.into_iter().map(|(s, _)| s).find(|s| *s >= floor);
                WalPosition { seq: first.unwrap_or(floor), offset: 0 }
            }
        };
        holds::store_position(&data_dir, &id, start)?;
        hold.set_cap(config.max_backlog_bytes);
        {
            let mut read = hold.read.lock();
            *read = (*read).max(start).max(WalPosition { seq: hold.released_below(), offset: 0 });
        }
        hold.acknowledge(start);
        let shared = Arc::new(Shared {
            target: url.clone(),
            url,
            authorization: auth.map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))),
            config,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            metadata_sent: AtomicU64::new(0),
            metadata_failed: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stop_at: Mutex::new(None),
            caught_up_ms: AtomicU64::new(now_ms()),
            idle: AtomicBool::new(false),
            persisted: Mutex::new(start),
            done: Mutex::new(start),
        });
        let mut txs = Vec::new();
        let mut shards = Vec::new();
        let mut outstanding = Vec::new();
        for i in 0..shared.config.shards {
            let (tx, rx) = bounded::<Batch>(2);
            let q = Arc::new(Mutex::new(VecDeque::new()));
            let agent = send::agent(&shared);
            let shard =
                Shard { shared: shared.clone(), agent, rx, outstanding: q.clone(), seed: now_ms() ^ (i as u64) << 40 };
            let name = format!("strata-forward-{i}");
            let h = std::thread::Builder::new()
                .name(name)
                .spawn(move || shard.run())
                .map_err(|e| Error::io("starting a forward shard thread", e))?;
            txs.push(tx);
            shards.push(h);
            outstanding.push(q);
        }
        log::info!(
            "forwarding to {} from WAL file {:016x} offset {} ({} shards, batches of {} samples, position file {})",
            shared.target,
            start.seq,
            start.offset,
            shared.config.shards,
            shared.config.batch_samples,
            holds::position_path(&data_dir, &id).display()
        );
        if !shared.config.metadata_interval.is_zero() {
            let m = meta::MetaSender { shared: shared.clone(), inner: inner.clone(), seed: now_ms() | 1 };
            let h = std::thread::Builder::new()
                .name("strata-forward-meta".into())
                .spawn(move || m.run())
                .map_err(|e| Error::io("starting the forward metadata thread", e))?;
            // joined with the shards: it ends once `stop` is set
            shards.push(h);
        }
        let reader = Reader {
            shared: shared.clone(),
            hold: hold.clone(),
            inner,
            id: id.clone(),
            data_dir: data_dir.clone(),
            txs,
            outstanding: outstanding.clone(),
            open: (0..shared.config.shards).map(|_| None).collect(),
            labels: IdMap::default(),
            unknown_logged: false,
        };
        let reader = std::thread::Builder::new()
            .name("strata-forward".into())
            .spawn(move || reader.run())
            .map_err(|e| Error::io("starting the forward reader thread", e))?;
        Ok(Forwarder { shared, hold, id, reader: Some(reader), shards, outstanding, data_dir })
    }

    /// The position file's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn stats(&self) -> ForwardStats {
        let s = &self.shared;
        let lag = if s.idle.load(Ordering::Acquire) {
            0.0
        } else {
            now_ms().saturating_sub(s.caught_up_ms.load(Ordering::Acquire)) as f64 / 1000.0
        };
        ForwardStats {
            target: s.target.clone(),
            id: self.id.clone(),
            sent: s.sent.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            dropped: self.hold.dropped(),
            retries: s.retries.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed),
            lag_seconds: lag,
            position: *s.persisted.lock(),
            metadata_sent: s.metadata_sent.load(Ordering::Relaxed),
            metadata_failed: s.metadata_failed.load(Ordering::Relaxed),
        }
    }

    /// Stops reading, keeps sending what was read for up to `drain_timeout`, stores
    /// the position and returns the final counters. What was not sent is sent again
    /// by the next start.
    pub fn stop(mut self) -> Result<ForwardStats> {
        self.shutdown()?;
        Ok(self.stats())
    }

    fn shutdown(&mut self) -> Result<()> {
        let Some(reader) = self.reader.take() else { return Ok(()) };
        *self.shared.stop_at.lock() = Some(Instant::now());
        self.shared.stop.store(true, Ordering::Release);
        let _ = reader.join();
        for h in self.shards.drain(..) {
            let _ = h.join();
        }
        persist(&self.shared, &self.hold, &self.data_dir, &self.id, &self.outstanding)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            log::error!("stopping the forwarder to {}: {e}", self.shared.target);
        }
    }
}

/// Stores the position before which every sample is finished with, if it moved,
/// then lets the Db delete the WAL files before it.
fn persist(
    shared: &Shared,
    hold: &WalHold,
    data_dir: &std::path::Path,
    id: &str,
    outstanding: &[Arc<Mutex<VecDeque<WalPosition>>>],
) -> Result<()> {
    // the reader's position first: a batch queued after this read starts at or after it
    let mut safe = *shared.done.lock();
    for q in outstanding {
        if let Some(&front) = q.lock().front() {
            safe = safe.min(front);
        }
    }
    let mut last = shared.persisted.lock();
    if safe <= *last {
        return Ok(());
    }
    holds::store_position(data_dir, id, safe)?;
    hold.acknowledge(safe);
    *last = safe;
    Ok(())
}

/// The reader thread: WAL records in, batches out.
struct Reader {
    shared: Arc<Shared>,
    hold: Arc<WalHold>,
    inner: Arc<Inner>,
    id: String,
    data_dir: PathBuf,
    txs: Vec<Sender<Batch>>,
    outstanding: Vec<Arc<Mutex<VecDeque<WalPosition>>>>,
    open: Vec<Option<Batch>>,
    /// Encoded labels by series id; `None`: not selected.
    labels: IdMap<Option<Arc<[u8]>>>,
    unknown_logged: bool,
}

const POLL: Duration = Duration::from_millis(20);
const PERSIST_EVERY: Duration = Duration::from_millis(250);

impl Reader {
    fn run(mut self) {
        let wal_dir = self.inner.wal_dir();
        let mut tail = Tail::new(wal_dir, self.shared.target.clone());
        let (mut last_flush, mut last_persist) = (Instant::now(), Instant::now());
        while !self.shared.stop.load(Ordering::Acquire) {
            match tail.next(&self.hold) {
                Ok(Next::Records(recs, end)) => {
                    self.shared.idle.store(false, Ordering::Release);
                    let mut done = end;
                    for (pos, rec) in recs {
                        if !self.record(pos, rec) {
                            done = pos;
                            break;
                        }
                    }
                    *self.shared.done.lock() = done;
                    if last_flush.elapsed() >= self.shared.config.flush_interval {
                        self.flush_all();
                        last_flush = Instant::now();
                    }
                }
                Ok(Next::Idle) => {
                    // nothing unread before the read position (or it was released)
                    *self.shared.done.lock() = *self.hold.read.lock();
                    self.flush_all();
                    last_flush = Instant::now();
                    if self.outstanding.iter().all(|q| q.lock().is_empty()) {
                        self.shared.caught_up_ms.store(now_ms(), Ordering::Release);
                        self.shared.idle.store(true, Ordering::Release);
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) => {
                    log::error!("forward to {}: reading the WAL: {e}; trying again in 1 s", self.shared.target);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            if last_persist.elapsed() >= PERSIST_EVERY {
                self.persist();
                last_persist = Instant::now();
            }
        }
        self.flush_all();
        // dropping the senders lets the shards drain and end
    }

    fn persist(&self) {
        if let Err(e) = persist(&self.shared, &self.hold, &self.data_dir, &self.id, &self.outstanding) {
            log::error!("forward to {}: storing the position: {e}", self.shared.target);
        }
    }

    /// Handles one record; false once stopping.
    fn record(&mut self, pos: WalPosition, rec: Record) -> bool {
        match rec {
            Record::Series(list) => {
                for (id, l) in list {
                    let enc = self.select(&l);
                    self.labels.insert(id, enc);
                }
            }
            Record::Samples(samples) => {
                for s in samples {
                    let labels = match self.labels.get(&s.series) {
                        Some(l) => l.clone(),
                        None => {
                            let enc = self.inner.index.labels(s.series).and_then(|l| self.select(&l));
                            if enc.is_none() && !self.inner.index.contains(s.series) {
                                self.unknown(s.series);
                                continue;
                            }
                            self.labels.insert(s.series, enc.clone());
                            enc
                        }
                    };
                    let Some(labels) = labels else { continue };
                    let shard = ((s.series.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % self.txs.len() as u64) as usize;
                    let Some(slot) = self.open.get_mut(shard) else { continue };
                    let batch = slot.get_or_insert_with(|| {
                        if let Some(q) = self.outstanding.get(shard) {
                            q.lock().push_back(pos);
                        }
                        Batch { first: pos, samples: Vec::with_capacity(self.shared.config.batch_samples) }
                    });
                    batch.samples.push(Pending { series: s.series, labels, ts: s.ts, value: s.value });
                    self.shared.pending.fetch_add(1, Ordering::Relaxed);
                    if batch.samples.len() >= self.shared.config.batch_samples && !self.flush(shard) {
                        return false;
                    }
                }
            }
            Record::Metadata(_) => {}
        }
        true
    }

    fn select(&self, l: &Labels) -> Option<Arc<[u8]>> {
        self.shared.config.selector.iter().all(|m| m.matches_labels(l)).then(|| encode_labels(l))
    }

    fn unknown(&mut self, series: u64) {
        self.shared.failed.fetch_add(1, Ordering::Relaxed);
        if !self.unknown_logged {
            self.unknown_logged = true;
            log::warn!(
                "forward to {}: samples of series {series}, which neither the WAL nor the index defines, are not sent",
                self.shared.target
            );
        }
    }

    fn flush_all(&mut self) {
        for i in 0..self.open.len() {
            if !self.flush(i) {
                return;
            }
        }
    }

    /// Hands shard `i`'s open batch over, waiting while its queue is full; false if
    /// stopping made it give up (the batch stays unacknowledged).
    fn flush(&mut self, i: usize) -> bool {
        let (Some(slot), Some(tx)) = (self.open.get_mut(i), self.txs.get(i)) else { return true };
        let Some(mut batch) = slot.take() else { return true };
        loop {
            match tx.send_timeout(batch, PERSIST_EVERY) {
                Ok(()) => return true,
                Err(SendTimeoutError::Timeout(b)) => {
                    batch = b;
                    if self.shared.abandon() {
                        return false;
                    }
                    self.persist();
                }
                Err(SendTimeoutError::Disconnected(_)) => return false,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_ids_and_basic_auth() {
        assert_eq!(split_url("http://h:1/api/v1/write").unwrap(), ("http://h:1/api/v1/write".into(), None));
        assert_eq!(split_url("http://u:p%3@h:1/w").unwrap(), ("http://h:1/w".into(), Some(("u".into(), "p%3".into()))));
        assert!(split_url("https://h/w").unwrap_err().to_string().contains("plain HTTP"));
        assert!(split_url("h:1/w").unwrap_err().to_string().contains("http://"));
        assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        let c = ForwardConfig::new("http://u:p@h:1/w");
        assert_eq!(c.id().unwrap(), ForwardConfig::new("http://h:1/w").id().unwrap(), "credentials do not name it");
        assert_ne!(c.id().unwrap(), ForwardConfig::new("http://h:2/w").id().unwrap());
        let mut n = ForwardConfig::new("http://h/w");
        n.name = Some("../x".into());
        assert!(n.validate().unwrap_err().to_string().contains("forward target name"));
        n.name = Some("vm-1".into());
        assert_eq!(n.id().unwrap(), "vm-1");
        n.shards = 0;
        assert!(n.validate().unwrap_err().to_string().contains("shards"));
    }
}
