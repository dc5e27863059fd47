//! `Db`: opening and recovery, shared state, and the public entry points.
//!
//! Invariants:
//! - `commit_lock` orders WAL submission and head turns: a commit submits its batch
//!   and takes its turn under it, and applies to the head only once the WAL
//!   acknowledged it, in turn order (`head::Turn`). So the WAL order of two commits
//!   is the order in which the head applied them, replay reproduces what readers
//!   saw, a batch whose WAL write failed is never seen, and a seal (which swaps heads
//!   under the same lock, after the head's turns are done) splits the WAL exactly
//!   between the frozen head and the new one.
//! - A sample is in the head whose WAL files it was logged to; the manifest's
//!   `wal_floor` advances only after the frozen head's segment is published, so
//!   no sample is in a live segment and replayed, and none is in neither.

mod appender;
mod backup;
mod catalog;
mod count;
mod delete;
#[cfg_attr(not(feature = "forward"), allow(dead_code))]
pub(crate) mod holds;
pub(crate) mod items;
mod load;
mod meta;
pub(crate) mod publish;
pub(crate) mod qcache;
mod querier;
mod query;
mod rcache;
mod repair;
mod subscribe;
pub(crate) mod windows;
mod worker;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::fsutil;
use crate::head::Head;
use crate::index::SeriesIndex;
use crate::labels::{Labels, Matcher};
use crate::manifest::Manifest;
use crate::options::Options;
use crate::sample::Sample;
use crate::segment::Segment;
use crate::tier::StoredTier;
use crate::wal::log::Log;
use crate::wal::{self, Record, WalOptions, WalWriter};

pub use crate::compact::CompactionReport;
pub use crate::retention::RemovalStats;
pub use appender::{Appender, SeriesRef, MAX_TIMESTAMP, MIN_TIMESTAMP};
pub use backup::BackupReport;
pub use catalog::{MetricInfo, MetricList};
pub use delete::DeleteReport;
pub use qcache::QueryCacheStats;
pub(crate) use querier::ChunkReaders;
pub use querier::{Querier, SeriesSet};
pub use subscribe::{SampleBatch, Subscription, SubscriptionError};

const WAL_DIR: &str = "wal";
const SEGMENT_DIR: &str = "segments";
const LOCK_FILE: &str = "LOCK";
/// What an in-memory database gives as its path (`Db::path`) and names itself in messages.
pub const IN_MEMORY_PATH: &str = ":memory:";

/// Where a `Db` keeps what it stores. Chosen at open; every step that writes or
/// removes a file asks it, and everything else runs the same code either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// A data directory: WAL, segment files, MANIFEST, SETTINGS, METADATA.
    Disk,
    /// No files: segments are owned buffers, the manifest, policy and metadata
    /// live only in `Inner`, and there is no WAL.
    Memory,
}

/// What `Db::open` found and did while recovering.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub segments: usize,
    pub wal_files: usize,
    pub wal_records: u64,
    /// Bytes cut from a torn or corrupt WAL tail (0 after a clean shutdown).
    pub wal_truncated_bytes: u64,
    pub wal_truncated_file: Option<PathBuf>,
    /// Leftover temporary files and unpublished segments removed.
    pub swept_files: usize,
    /// Segments that failed their checks and were moved into `<data>/quarantine/`
    /// (only under `Options::repair`): where each one is now. Their data is not served.
    pub quarantined: Vec<PathBuf>,
    /// Series loaded from the index checkpoint (`INDEX`) rather than from segments'
    /// series tables: 0 when there was none or it was stale or damaged (then rebuilt).
    pub series_from_checkpoint: u64,
    /// Why writing a new index checkpoint failed, if it did. Open goes on without
    /// it (nothing is lost; the next open rebuilds the index from the segments again).
    pub index_checkpoint_error: Option<String>,
}

/// Storage statistics, as `Db::stats` reports them.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Distinct series known to the index.
    pub series: u64,
    pub head_series: u64,
    /// Distinct samples in the head and in frozen heads awaiting their segment: one per
    /// series and timestamp, as a query returns them.
    pub head_samples: u64,
    /// Samples appended to the heads, every overwrite and retry counted again.
    pub head_samples_written: u64,
    /// Distinct samples over the raw segments and the heads: what a query over all
    /// time returns (see [`Stats::samples`]).
    pub distinct_samples: u64,
    /// Approximate heap bytes of the head and frozen heads.
    pub head_bytes: u64,
    pub frozen_heads: usize,
    pub segments: usize,
    /// Samples stored in segment files, per tier (raw, 5m, 1h). Two raw segments that
    /// overlap in time both count a sample written twice, until a merge keeps one.
    pub segment_samples: [u64; 3],
    /// Bytes of segment files on disk, per tier (raw, 5m, 1h).
    pub disk_bytes: [u64; 3],
    pub wal_bytes: u64,
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
}

impl Stats {
    /// All samples held, counted as queries return them: one per series and timestamp,
    /// over the raw tier and the heads (rolled-up tiers summarise the same samples).
    pub fn samples(&self) -> u64 {
        self.distinct_samples
    }
}

/// WAL counters since open, as `Db::wal_stats` reports them.
#[derive(Debug, Clone, Default)]
pub struct WalStats {
    pub bytes_written: u64,
    /// Data fsyncs and their total duration.
    pub fsyncs: u64,
    pub fsync_nanos: u64,
    pub last_fsync_nanos: u64,
    /// Why writes are refused (poisoned or closed), if they are.
    pub poisoned: Option<String>,
}

/// A published segment with its place in write order.
pub(crate) struct LiveSegment {
    pub seg: Segment,
    /// Last-write-wins order: see `manifest::SegmentRecord::rank`.
    pub rank: u64,
    pub level: u8,
    /// Its buckets are in the next tier. Set only after the manifest says so, so a
    /// reader that sees `false` recomputes from finer data, which is always correct.
    pub rolled: AtomicBool,
}

impl LiveSegment {
    pub fn new(seg: Segment, rank: u64, level: u8, rolled: bool) -> LiveSegment {
        LiveSegment { seg, rank, level, rolled: AtomicBool::new(rolled) }
    }
}

impl std::ops::Deref for LiveSegment {
    type Target = Segment;
    fn deref(&self) -> &Segment {
        &self.seg
    }
}

/// A consistent view of what the Db holds: swapped whole, read through `Arc`.
#[derive(Clone)]
pub(crate) struct State {
    pub head: Arc<Head>,
    /// Heads being written to segments, oldest first.
    pub frozen: Vec<Arc<Head>>,
    /// Live segments per tier (raw, 5m, 1h), each ascending by rank.
    pub tiers: [Vec<Arc<LiveSegment>>; 3],
}

impl State {
    pub fn segments(&self) -> impl Iterator<Item = &Arc<LiveSegment>> {
        self.tiers.iter().flatten()
    }

    /// Replaces segments: removes those with ids in `gone`, adds `new`, keeps rank order.
    pub fn with_segments(&self, gone: &[u64], new: Vec<Arc<LiveSegment>>) -> State {
        let mut next = self.clone();
        for t in &mut next.tiers {
            t.retain(|s| !gone.contains(&s.info().id));
        }
        for s in new {
            next.tiers[s.info().tier.index()].push(s);
        }
        for t in &mut next.tiers {
            t.sort_by_key(|s| s.rank);
        }
        next
    }
}

pub(crate) use crate::text::time::now_ms;

pub(crate) struct Inner {
    /// The data directory; for `Storage::Memory` only a name for messages.
    pub dir: PathBuf,
    pub storage: Storage,
    pub opts: Options,
    pub index: SeriesIndex,
    pub state: RwLock<Arc<State>>,
    pub commit_lock: Mutex<()>,
    pub seal_lock: Mutex<()>,
    /// Wakes the background sealer; wakes commits waiting for room (`head/seal.rs`).
    pub sealer: crate::head::SealSignals,
    /// One compaction, downsampling or retention pass at a time.
    pub compact_lock: Mutex<()>,
    /// Held by a whole maintenance pass, `apply_retention` and `delete`, each of which
    /// plans from one snapshot and then rewrites segments: two of them interleaved
    /// would find the other's inputs gone. Taken before `compact_lock`, never inside it.
    pub maintain_lock: Mutex<()>,
    pub manifest: Mutex<Manifest>,
    pub wal: Log,
    /// Distinguishes this Db's series refs from another instance's.
    pub instance: u32,
    poison: Mutex<Option<String>>,
    closed: AtomicBool,
    pub recovery: RecoveryReport,
    /// Live-tail subscribers, told about each committed batch.
    pub subscribers: Arc<subscribe::Registry>,
    /// The recorded policy (`SETTINGS`); every change is stored before it applies.
    pub retention: RwLock<crate::retention::RetentionPolicy>,
    pub last_seal: Mutex<std::time::Instant>,
    /// What queries read from sealed segments, by series and block (`qcache.rs`).
    pub query_cache: qcache::QueryCache,
    /// What retention and `Db::delete` removed since open.
    pub removals: crate::retention::RemovalCounters,
    /// Metric metadata (`db/meta.rs`), and the lock that orders its changes.
    pub metadata: RwLock<meta::MetaState>,
    pub metadata_write: Mutex<()>,
    /// WAL files kept past their seal for forward targets (`holds.rs`).
    pub wal_holds: holds::WalHolds,
    /// Held until close, even if appenders outlive the `Db`.
    lock: Mutex<Option<File>>,
}

/// An open database. `Send + Sync`: share it with `Arc`, one `Appender` per thread.
pub struct Db {
    inner: Arc<Inner>,
    worker: Mutex<Option<worker::Worker>>,
}

impl Db {
    /// Opens (creating if needed) the database in `dir`, replaying the WAL.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let dir = dir.as_ref().to_path_buf();
        let (wal_dir, seg_dir) = (dir.join(WAL_DIR), dir.join(SEGMENT_DIR));
        for d in [&dir, &wal_dir, &seg_dir] {
            fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let lock = lock_dir(&dir)?;
        let mut report = RecoveryReport {
            swept_files: fsutil::sweep_tmp(&dir)? + fsutil::sweep_tmp(&seg_dir)?,
            ..Default::default()
        };

        let mut manifest = match Manifest::load(&dir)? {
            Some(m) => m,
            None => {
                if !segment_files(&seg_dir)?.is_empty() {
                    return Err(Error::corruption(
                        dir.join(crate::manifest::FILE_NAME),
                        0,
                        "MANIFEST is missing but segment files exist",
                    ));
                }
                let mut m = Manifest { next_segment_id: 1, next_series_id: 1, next_rank: 1, ..Default::default() };
                m.store(&dir)?;
                m
            }
        };

        let retention = settle_retention(&dir, &opts)?;
        let index = SeriesIndex::new(manifest.next_series_id, opts.max_series);
        let loaded = load::load_segments(&dir, &manifest, &opts, &index, &mut report)?;
        let segments = loaded.segments;
        if !loaded.set_aside.is_empty() {
            repair::drop_from_manifest(&dir, &mut manifest, &loaded.set_aside, &segments)?;
        }
        // Before the WAL's series join the index, it holds exactly the segments'.
        if loaded.checkpoint_stale {
            report.index_checkpoint_error = load::write_checkpoint(&dir, &index, &segments).err();
        }
        report.segments = segments.len();
        // Segments not in the manifest were never published (a crash before the manifest swap).
        let live: std::collections::HashSet<u64> = manifest.segments.iter().map(|s| s.id).collect();
        for (id, path) in segment_files(&seg_dir)? {
            if !live.contains(&id) {
                fs::remove_file(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
                report.swept_files += 1;
            }
        }

        let head = Head::new(manifest.wal_floor);
        let mut metadata = meta::MetaState { map: crate::metadata::load(&dir)?, ..Default::default() };
        let mut created = Vec::new();
        let replay = wal::replay(&wal_dir, manifest.wal_floor, opts.repair, |rec| {
            match rec {
                Record::Series(list) => {
                    for (id, labels) in list {
                        index.load(id, &labels).map_err(|r| Error::corruption(&wal_dir, 0, r))?;
                    }
                }
                Record::Samples(batch) => {
                    created.clear();
                    head.append_batch(&batch, &mut created);
                    // Series new to the head must have been defined earlier in the log or in a segment.
                    if let Some(id) = created.iter().find(|&&id| !index.contains(id)) {
                        return Err(Error::corruption(&wal_dir, 0, format!("samples for undefined series {id}")));
                    }
                }
                Record::Metadata(list) => {
                    for (name, m) in list {
                        meta::apply(&mut metadata, name, m);
                    }
                }
            }
            Ok(())
        })?;
        index.finish_load();
        report.wal_files = replay.files;
        report.wal_records = replay.records;
        report.wal_truncated_bytes = replay.truncated_bytes;
        report.wal_truncated_file = replay.truncated_file;

        // Empty files left by earlier opens are reused rather than piling up.
        let next_seq = wal::reuse_empty_tail(&wal_dir, manifest.wal_floor)?;
        let wal =
            WalWriter::open(&wal_dir, next_seq, WalOptions { sync: opts.sync, segment_size: opts.wal_segment_size })?;
        manifest.next_series_id = index.next_id();
        // Before the worker starts: no seal may delete what a forward target still needs.
        let holds = holds::WalHolds::load(&dir)?;
        let parts = Parts { dir, storage: Storage::Disk, index, manifest, segments, head, metadata, retention };
        Ok(Db::assemble(parts, opts, Log::Files(wal), report, Some(lock), holds))
    }

    /// Opens an empty database that keeps everything in memory and creates no file.
    /// It has the same API as one opened with [`Db::open`]: seals, rollup tiers,
    /// compaction and retention run through the same code, writing segments
    /// (compressed, as on disk) into owned buffers, and `Options::head_memory_budget`
    /// bounds the head the same way. There is no WAL: a commit is acknowledged once
    /// it is in the head, and everything is gone when the `Db` is dropped
    /// (`Db::backup` writes a copy that `Db::open` serves). `Options::retention`
    /// is the policy in force (default: keep everything); `Options::sync` has nothing
    /// to sync and is ignored. `Options::repair` is refused: there are no files to repair.
    pub fn open_in_memory(opts: Options) -> Result<Db> {
        if opts.repair {
            return Err(Error::InvalidArgument(
                "Options::repair checks and repairs data files, and an in-memory database has none".into(),
            ));
        }
        let index = SeriesIndex::new(1, opts.max_series);
        index.finish_load();
        let parts = Parts {
            dir: PathBuf::from(IN_MEMORY_PATH),
            storage: Storage::Memory,
            index,
            manifest: Manifest { next_segment_id: 1, next_series_id: 1, next_rank: 1, ..Default::default() },
            segments: Vec::new(),
            head: Head::new(1),
            metadata: meta::MetaState::default(),
            retention: opts.retention.clone().unwrap_or_default(),
        };
        Ok(Db::assemble(parts, opts, Log::absent(), RecoveryReport::default(), None, Default::default()))
    }

    /// The shared state around what open found (or, in memory, an empty start), and
    /// the background worker if `Options::background`.
    fn assemble(
        p: Parts,
        opts: Options,
        wal: Log,
        report: RecoveryReport,
        lock: Option<File>,
        wal_holds: holds::WalHolds,
    ) -> Db {
        let Parts { dir, storage, index, manifest, segments, head, metadata, retention } = p;
        let inner = Arc::new(Inner {
            dir,
            storage,
            index,
            state: RwLock::new(Arc::new(
                State { head: Arc::new(head), frozen: Vec::new(), tiers: Default::default() }
                    .with_segments(&[], segments),
            )),
            commit_lock: Mutex::new(()),
            seal_lock: Mutex::new(()),
            sealer: crate::head::SealSignals::new(),
            compact_lock: Mutex::new(()),
            maintain_lock: Mutex::new(()),
            manifest: Mutex::new(manifest),
            wal,
            instance: instance_tag(),
            poison: Mutex::new(None),
            closed: AtomicBool::new(false),
            recovery: report,
            retention: RwLock::new(retention),
            subscribers: Arc::default(),
            last_seal: Mutex::new(std::time::Instant::now()),
            query_cache: qcache::QueryCache::new(opts.query_cache_bytes),
            removals: Default::default(),
            metadata: RwLock::new(metadata),
            metadata_write: Mutex::new(()),
            opts,
            wal_holds,
            lock: Mutex::new(lock),
        });
        let worker = inner.opts.background.then(|| worker::Worker::start(inner.clone()));
        Db { inner, worker: Mutex::new(worker) }
    }

    /// A new write batch. Appenders are cheap; use one per thread.
    pub fn appender(&self) -> Appender {
        Appender::new(self.inner.clone())
    }

    /// A consistent snapshot of the data in `[range.start, range.end)`.
    pub fn querier(&self, range: std::ops::Range<i64>) -> Querier {
        Querier::new(self.inner.clone(), range)
    }

    /// The newest sample of every series that matches.
    pub fn latest(&self, matchers: &[Matcher]) -> Result<Vec<(Labels, Sample)>> {
        querier::latest(&self.inner, matchers)
    }

    /// Distinct values of a label, sorted (`label_values("__name__")` lists metric names).
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.inner.index.label_values(name)
    }

    /// Series per value of a label, sorted by value (e.g. series per metric name).
    pub fn series_per_value(&self, name: &str) -> Vec<(String, usize)> {
        self.inner.index.value_counts(name)
    }

    /// Seals the head into a segment now and waits until it is published.
    pub fn flush(&self) -> Result<()> {
        self.inner.check_writable()?;
        self.inner.seal()
    }

    pub fn stats(&self) -> Result<Stats> {
        let st = self.inner.snapshot();
        let mut s = Stats { series: self.inner.index.len() as u64, ..Default::default() };
        let mut range: Option<(i64, i64)> = None;
        let mut widen = |r: (i64, i64)| range = Some(range.map_or(r, |(a, b)| (a.min(r.0), b.max(r.1))));
        for h in st.frozen.iter().chain(std::iter::once(&st.head)) {
            s.head_series += h.num_series();
            s.head_samples_written += h.num_samples();
            s.head_bytes += h.bytes() as u64;
            if let Some(r) = h.time_range() {
                widen(r);
            }
        }
        s.frozen_heads = st.frozen.len();
        for seg in st.segments() {
            s.segments += 1;
            let info = seg.info();
            let t = info.tier.index();
            s.segment_samples[t] += info.samples;
            s.disk_bytes[t] += info.file_size;
            if info.samples > 0 {
                widen((info.min_t, info.max_t));
            }
        }
        let distinct = count::distinct_samples(&st)?;
        (s.head_samples, s.distinct_samples) = (distinct.heads, distinct.all);
        if self.inner.storage == Storage::Disk {
            s.wal_bytes = wal::list_segments(&self.inner.dir.join(WAL_DIR))?
                .iter()
                .filter_map(|(_, p)| fs::metadata(p).ok())
                .map(|m| m.len())
                .sum();
        }
        (s.oldest, s.newest) = (range.map(|r| r.0), range.map(|r| r.1));
        Ok(s)
    }

    /// A live feed of every sample committed from now on to a series the matchers
    /// select (same selection rules as `Querier::select`). A subscriber that falls
    /// behind loses samples (counted by `Subscription::dropped`); commits never wait.
    pub fn subscribe(&self, matchers: Vec<Matcher>) -> Subscription {
        self.inner.subscribers.subscribe(matchers)
    }

    /// The WAL writer's counters and health, for monitoring.
    pub fn wal_stats(&self) -> WalStats {
        let (fsyncs, fsync_nanos) = self.inner.wal.fsyncs();
        WalStats {
            bytes_written: self.inner.wal.bytes_written(),
            fsyncs,
            fsync_nanos,
            last_fsync_nanos: self.inner.wal.last_fsync_nanos(),
            poisoned: self.inner.check_writable().err().map(|e| e.to_string()),
        }
    }

    /// What recovery found when this Db was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// The shared state, for readers of the WAL inside the crate (`forward`).
    #[allow(dead_code)]
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// The data directory; `":memory:"` ([`IN_MEMORY_PATH`]) for an in-memory database.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether this database keeps everything in memory ([`Db::open_in_memory`]).
    pub fn is_in_memory(&self) -> bool {
        self.inner.storage == Storage::Memory
    }

    /// Stops background work and makes everything acknowledged durable. The head is
    /// not sealed: it stays in the WAL and is replayed on the next open. An in-memory
    /// database refuses writes from then on; its data stays readable until dropped.
    pub fn close(&self) -> Result<()> {
        if let Some(w) = self.worker.lock().take() {
            w.stop();
        }
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        // Wait for an in-flight seal, then make the log durable.
        let _seal = self.inner.seal_lock.lock();
        let _commit = self.inner.commit_lock.lock();
        let result = self.inner.wal.close();
        self.inner.lock.lock().take();
        result
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            log::error!("closing {}: {e}", self.inner.dir.display());
        }
    }
}

impl Inner {
    /// The labels of a series a segment holds. Every such series is in the index
    /// (open loads each segment's table into it, and ids are never removed).
    pub(crate) fn series_labels(&self, id: u64) -> Result<Labels> {
        self.index.labels(id).ok_or(Error::UnknownSeries { series: id })
    }

    pub fn snapshot(&self) -> Arc<State> {
        self.state.read().clone()
    }

    pub fn wal_dir(&self) -> PathBuf {
        self.dir.join(WAL_DIR)
    }

    pub fn segment_dir(&self) -> PathBuf {
        self.dir.join(SEGMENT_DIR)
    }

    pub fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(cause) = self.poison.lock().clone() {
            return Err(Error::Poisoned { cause });
        }
        Ok(())
    }

    /// The oldest timestamp series `id` keeps in `tier` now (`i64::MIN` if unknown).
    pub fn retained_from(&self, id: u64, tier: StoredTier, now: i64) -> i64 {
        match self.index.labels(id) {
            Some(l) => self.retention.read().min_ts(&l, tier, now),
            None => i64::MIN,
        }
    }

    /// Bytes on disk: segment files and the WAL.
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.snapshot().segments().map(|s| s.info().file_size).sum::<u64>() + self.wal_bytes()
    }

    /// Bytes of the WAL files (none in memory).
    pub(crate) fn wal_bytes(&self) -> u64 {
        if self.storage == Storage::Memory {
            return 0;
        }
        crate::wal::list_segments(&self.wal_dir())
            .map(|v| v.iter().filter_map(|(_, p)| std::fs::metadata(p).ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }

    /// Records a storage failure that makes further writes untrustworthy.
    pub fn poison(&self, e: &Error) {
        let mut p = self.poison.lock();
        if p.is_none() {
            log::error!("{}: poisoned: {e}", self.dir.display());
            *p = Some(e.to_string());
        }
    }
}

/// What `Db::assemble` builds the shared state from.
struct Parts {
    dir: PathBuf,
    storage: Storage,
    index: SeriesIndex,
    manifest: Manifest,
    segments: Vec<Arc<LiveSegment>>,
    head: Head,
    metadata: meta::MetaState,
    retention: crate::retention::RetentionPolicy,
}

/// The policy this open applies: the recorded one, or `Options::retention` recorded
/// first (a new database, a database from before `SETTINGS`, or an explicit update).
/// Nothing here ever applies a default of its own to data already stored: with no
/// policy given and none recorded, the database keeps everything forever.
fn settle_retention(dir: &Path, opts: &Options) -> Result<crate::retention::RetentionPolicy> {
    use crate::retention::{load_settings, store_settings};
    let recorded = load_settings(dir)?;
    match (recorded, &opts.retention) {
        (Some(rec), None) => Ok(rec),
        (Some(rec), Some(given)) if rec == *given => Ok(rec),
        (Some(rec), Some(given)) if opts.update_retention => {
            store_settings(dir, given)?;
            log::info!("{}: retention changed from [{rec}] to [{given}]", dir.display());
            Ok(given.clone())
        }
        (Some(rec), Some(given)) => {
            Err(Error::RetentionMismatch { recorded: rec.to_string(), given: given.to_string() })
        }
        (None, given) => {
            let policy = given.clone().unwrap_or_default();
            store_settings(dir, &policy)?;
            log::info!("{}: retention recorded: [{policy}]", dir.display());
            Ok(policy)
        }
    }
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    // The lock (flock) belongs to the open file, which a process forked by any
    // thread of ours shares until it execs. So a lock just released by `close` can
    // look held for a moment; wait out such a moment (~0.25 s in all) before
    // saying that another process holds the directory.
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(fs::TryLockError::WouldBlock) if pause < std::time::Duration::from_millis(128) => {
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(fs::TryLockError::WouldBlock) => return Err(Error::Locked { path }),
            Err(fs::TryLockError::Error(e)) => return Err(Error::io(format!("locking {}", path.display()), e)),
        }
    }
}

/// Segment files present in the directory, with their ids.
fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))? {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(id) = name.strip_suffix(".seg").and_then(|h| u64::from_str_radix(h, 16).ok()) {
            out.push((id, entry.path()));
        }
    }
    Ok(out)
}

fn instance_tag() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() as u32
}
