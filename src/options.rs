//! `Options`: every setting of a `Db`, each with a documented default.

use std::time::Duration;

use crate::compact::CompactionConfig;
use crate::labels::DEFAULT_MAX_LABELS;
use crate::retention::RetentionPolicy;

/// When `Appender::commit` may return relative to fsync of the write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync before acknowledging. Concurrent commits share one fsync (group commit).
    /// What `commit` acknowledged survives `kill -9` and power loss.
    Always,
    /// Acknowledge once written to the OS; fsync at least this often. Survives
    /// `kill -9`; a power loss may take up to the interval.
    Interval(Duration),
    /// Never fsync the log (the OS flushes when it likes). Survives `kill -9` only.
    Never,
}

/// Settings for [`crate::Db::open`]. Build with consuming setters:
/// `Options::default().sync(SyncMode::Always)`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Durability of commits. Default: `Interval(1 s)`.
    pub sync: SyncMode,
    /// Time span of data after which the head is sealed into a segment. Default: 2 h.
    pub block_duration: Duration,
    /// Approximate bytes the head may hold before it is sealed early. Default: 256 MiB.
    pub head_memory_budget: usize,
    /// Size at which a WAL file is closed and the next begins. Default: 64 MiB.
    pub wal_segment_size: u64,
    /// Most labels a series may carry. Default: 64.
    pub max_labels: usize,
    /// Most distinct series the `Db` will hold; creating more fails with
    /// `Error::SeriesLimit`. Default: 10 million.
    pub max_series: usize,
    /// On open, repair damage instead of refusing to open. Default: false.
    /// - WAL: truncate at the first bad record (a torn tail of the newest file is
    ///   always truncated, repair or not).
    /// - Segments: every listed segment is also verified page by page (a full read
    ///   of every segment, so open takes longer). One that fails is moved into
    ///   `<data>/quarantine/` (a durable rename; nothing is deleted), dropped from
    ///   the MANIFEST, logged at error level and listed in
    ///   `RecoveryReport::quarantined`; everything else is served. Without repair,
    ///   open refuses a segment whose structure is damaged, and damage inside a page
    ///   is found when the page is read (`Error::Corruption`).
    /// - The MANIFEST cannot be repaired: a damaged one is refused with
    ///   `Error::Corruption` naming it and the offset, even under repair.
    pub repair: bool,
    /// Run background sealing, downsampling and compaction. Default: true. Tests turn
    /// it off to drive them by hand (`flush`, `compact`).
    pub background: bool,
    /// How long each tier keeps data, per-metric rules, and a disk cap. The policy lives
    /// with the data (the `SETTINGS` file, docs/format/settings.md):
    /// - `None` (the default): a new database keeps everything forever; an existing one
    ///   uses the policy it recorded.
    /// - `Some(p)` on a new database: `p` is recorded. On an existing one, `p` must equal
    ///   the recorded policy, or open fails with `Error::RetentionMismatch` naming both,
    ///   unless `update_retention` is set, in which case `p` is recorded and applies.
    pub retention: Option<RetentionPolicy>,
    /// Let `retention` replace the policy an existing database recorded. Default: false.
    pub update_retention: bool,
    /// Compaction levels and merge limits. Default: 6 h, 24 h and 7 d windows.
    pub compaction: CompactionConfig,
    /// How often the background worker runs maintenance (downsampling, compaction,
    /// retention) when nothing was sealed. Default: 60 s.
    pub maintenance_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: SyncMode::Interval(Duration::from_secs(1)),
            block_duration: Duration::from_secs(2 * 3600),
            head_memory_budget: 256 << 20,
            wal_segment_size: 64 << 20,
            max_labels: DEFAULT_MAX_LABELS,
            max_series: 10_000_000,
            repair: false,
            background: true,
            retention: None,
            update_retention: false,
            compaction: CompactionConfig::default(),
            maintenance_interval: Duration::from_secs(60),
        }
    }
}

impl Options {
    pub fn sync(mut self, mode: SyncMode) -> Self {
        self.sync = mode;
        self
    }
    pub fn block_duration(mut self, d: Duration) -> Self {
        self.block_duration = d;
        self
    }
    pub fn head_memory_budget(mut self, bytes: usize) -> Self {
        self.head_memory_budget = bytes;
        self
    }
    pub fn wal_segment_size(mut self, bytes: u64) -> Self {
        self.wal_segment_size = bytes;
        self
    }
    pub fn max_labels(mut self, n: usize) -> Self {
        self.max_labels = n;
        self
    }
    pub fn max_series(mut self, n: usize) -> Self {
        self.max_series = n;
        self
    }
    pub fn repair(mut self, on: bool) -> Self {
        self.repair = on;
        self
    }
    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }
    /// The policy for a new database, or the one an existing database must have recorded
    /// (see [`Options::retention`] the field, and [`Options::update_retention`]).
    pub fn retention(mut self, policy: RetentionPolicy) -> Self {
        self.retention = Some(policy);
        self
    }
    /// Record `retention` over an existing database's policy instead of refusing to open.
    pub fn update_retention(mut self, on: bool) -> Self {
        self.update_retention = on;
        self
    }
    pub fn compaction(mut self, cfg: CompactionConfig) -> Self {
        self.compaction = cfg;
        self
    }
    pub fn maintenance_interval(mut self, every: Duration) -> Self {
        self.maintenance_interval = every;
        self
    }
}
