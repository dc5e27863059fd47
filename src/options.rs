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
/// `Options::default().sync(SyncMode::Always)`; read a setting back with its `get_`
/// accessor (`options.get_sync()`).
///
/// The fields are private and the struct is `#[non_exhaustive]`, so a setting can be
/// added without breaking code that builds `Options`: every setting has a documented
/// default, and code that does not name it keeps that default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    pub(crate) sync: SyncMode,
    pub(crate) block_duration: Duration,
    pub(crate) head_memory_budget: usize,
    pub(crate) wal_segment_size: u64,
    pub(crate) max_labels: usize,
    pub(crate) max_series: usize,
    pub(crate) repair: bool,
    pub(crate) background: bool,
    pub(crate) retention: Option<RetentionPolicy>,
    pub(crate) update_retention: bool,
    pub(crate) compaction: CompactionConfig,
    pub(crate) maintenance_interval: Duration,
    pub(crate) write_stall_timeout: Duration,
    pub(crate) query_cache_bytes: usize,
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
            write_stall_timeout: Duration::from_secs(10),
            query_cache_bytes: 64 << 20,
        }
    }
}

/// Setters: each consumes and returns the options, so they chain.
impl Options {
    /// Bytes the query cache may hold; 0 turns it off. Default: 64 MiB.
    ///
    /// `Db::query` and `Db::buckets` keep, per series, what they read from sealed
    /// segments in fixed blocks (rollup buckets of the 5-minute and hourly tiers,
    /// raw samples around a range's ragged edges), so a dashboard's range that
    /// slides forward reads only what changed. Answers are the same bit for bit
    /// with the cache on or off. See docs/ARCHITECTURE.md, "Query cache".
    pub fn query_cache_bytes(mut self, bytes: usize) -> Self {
        self.query_cache_bytes = bytes;
        self
    }
    /// Durability of commits. Default: `Interval(1 s)`.
    pub fn sync(mut self, mode: SyncMode) -> Self {
        self.sync = mode;
        self
    }
    /// Time span of data after which the head is sealed into a segment. Default: 2 h.
    pub fn block_duration(mut self, d: Duration) -> Self {
        self.block_duration = d;
        self
    }
    /// Approximate bytes the head may hold before it is sealed early. Default: 256 MiB.
    /// With the background worker, the worker seals the head once it passes the budget;
    /// a commit waits (at most [`Options::write_stall_timeout`]) only while the head is
    /// over twice the budget. Without it, the commit that passes the budget seals inline.
    pub fn head_memory_budget(mut self, bytes: usize) -> Self {
        self.head_memory_budget = bytes;
        self
    }
    /// Size at which a WAL file is closed and the next begins. Default: 64 MiB.
    pub fn wal_segment_size(mut self, bytes: u64) -> Self {
        self.wal_segment_size = bytes;
        self
    }
    /// Most labels a series may carry. Default: 64.
    pub fn max_labels(mut self, n: usize) -> Self {
        self.max_labels = n;
        self
    }
    /// Most distinct series the `Db` will hold; creating more fails with
    /// `Error::SeriesLimit`. Default: 10 million.
    pub fn max_series(mut self, n: usize) -> Self {
        self.max_series = n;
        self
    }
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
    pub fn repair(mut self, on: bool) -> Self {
        self.repair = on;
        self
    }
    /// Run background sealing, downsampling and compaction. Default: true. Tests turn
    /// it off to drive them by hand (`flush`, `compact`).
    pub fn background(mut self, on: bool) -> Self {
        self.background = on;
        self
    }
    /// How long each tier keeps data, per-metric rules, and a disk cap. The policy lives
    /// with the data (the `SETTINGS` file, docs/format/settings.md):
    /// - Not set (the default): a new database keeps everything forever; an existing one
    ///   uses the policy it recorded.
    /// - Set on a new database: `policy` is recorded. On an existing one, `policy` must
    ///   equal the recorded policy, or open fails with `Error::RetentionMismatch` naming
    ///   both, unless [`Options::update_retention`] is set, in which case `policy` is
    ///   recorded and applies.
    pub fn retention(mut self, policy: RetentionPolicy) -> Self {
        self.retention = Some(policy);
        self
    }
    /// Let [`Options::retention`] replace the policy an existing database recorded
    /// instead of refusing to open. Default: false.
    pub fn update_retention(mut self, on: bool) -> Self {
        self.update_retention = on;
        self
    }
    /// Compaction levels and merge limits. Default: 6 h, 24 h and 7 d windows.
    pub fn compaction(mut self, cfg: CompactionConfig) -> Self {
        self.compaction = cfg;
        self
    }
    /// How often the background worker runs maintenance (downsampling, compaction,
    /// retention) when nothing was sealed. Default: 60 s.
    pub fn maintenance_interval(mut self, every: Duration) -> Self {
        self.maintenance_interval = every;
        self
    }
    /// The longest a commit waits for the background sealer to make room when the head
    /// is over twice its memory budget; past it the commit fails with
    /// `Error::WriteStalled` and stores nothing (the appender keeps the batch, so
    /// `commit` can be retried). Default: 10 s.
    pub fn write_stall_timeout(mut self, limit: Duration) -> Self {
        self.write_stall_timeout = limit;
        self
    }
}

/// Read accessors, one per setter (named `get_*` because the setters hold the plain
/// names, as `std::process::Command` does).
impl Options {
    pub fn get_sync(&self) -> SyncMode {
        self.sync
    }
    pub fn get_block_duration(&self) -> Duration {
        self.block_duration
    }
    pub fn get_query_cache_bytes(&self) -> usize {
        self.query_cache_bytes
    }
    pub fn get_head_memory_budget(&self) -> usize {
        self.head_memory_budget
    }
    pub fn get_wal_segment_size(&self) -> u64 {
        self.wal_segment_size
    }
    pub fn get_max_labels(&self) -> usize {
        self.max_labels
    }
    pub fn get_max_series(&self) -> usize {
        self.max_series
    }
    pub fn get_repair(&self) -> bool {
        self.repair
    }
    pub fn get_background(&self) -> bool {
        self.background
    }
    /// The policy set with [`Options::retention`], or `None` when it was not set.
    pub fn get_retention(&self) -> Option<&RetentionPolicy> {
        self.retention.as_ref()
    }
    pub fn get_update_retention(&self) -> bool {
        self.update_retention
    }
    pub fn get_compaction(&self) -> &CompactionConfig {
        &self.compaction
    }
    pub fn get_maintenance_interval(&self) -> Duration {
        self.maintenance_interval
    }
    pub fn get_write_stall_timeout(&self) -> Duration {
        self.write_stall_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_are_read_back_by_their_accessors() {
        let d = Options::default();
        assert_eq!(d.get_sync(), SyncMode::Interval(Duration::from_secs(1)));
        assert!(d.get_retention().is_none());
        assert!(d.get_background() && !d.get_repair() && !d.get_update_retention());

        let o = Options::default()
            .sync(SyncMode::Always)
            .block_duration(Duration::from_secs(60))
            .head_memory_budget(1 << 20)
            .wal_segment_size(1 << 16)
            .max_labels(8)
            .max_series(100)
            .repair(true)
            .background(false)
            .retention(RetentionPolicy::forever())
            .update_retention(true)
            .compaction(CompactionConfig::default().max_segments_per_merge(4))
            .maintenance_interval(Duration::from_secs(5))
            .write_stall_timeout(Duration::from_millis(250));
        assert_eq!(o.get_sync(), SyncMode::Always);
        assert_eq!(o.get_block_duration(), Duration::from_secs(60));
        assert_eq!(o.get_head_memory_budget(), 1 << 20);
        assert_eq!(o.get_wal_segment_size(), 1 << 16);
        assert_eq!(o.get_max_labels(), 8);
        assert_eq!(o.get_max_series(), 100);
        assert!(o.get_repair() && !o.get_background() && o.get_update_retention());
        assert!(o.get_retention().is_some());
        assert_eq!(o.get_compaction().get_max_segments_per_merge(), 4);
        assert_eq!(o.get_maintenance_interval(), Duration::from_secs(5));
        assert_eq!(o.get_write_stall_timeout(), Duration::from_millis(250));
        assert_eq!(d.get_write_stall_timeout(), Duration::from_secs(10));
    }
}
