//! Write batches: append, then commit (durable per `SyncMode`) or roll back.

use std::sync::Arc;
use std::time::Duration;

use super::{now_ms, Inner};
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::tier::StoredTier;
use crate::wal::{encode_samples_frame, encode_series_frame, WalSample};

/// The oldest timestamp a sample may carry: every read path can ask for it
/// (`Querier` ranges start at an inclusive `i64::MIN`).
pub const MIN_TIMESTAMP: i64 = i64::MIN;
/// The newest timestamp a sample may carry. Read ranges are half-open `[start, end)`,
/// so no range can end after `i64::MAX`: a sample there could never be read back.
pub const MAX_TIMESTAMP: i64 = i64::MAX - 1;

/// A handle to a series, valid for the life of the `Db` that returned it, on any
/// thread. Appending by reference skips the label lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesRef {
    id: u64,
    instance: u32,
}

impl SeriesRef {
    /// The series' stable numeric id.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// Collects samples and commits them as one batch. Not shared between threads:
/// give each writer thread its own (they are cheap).
pub struct Appender {
    inner: Arc<Inner>,
    /// Samples at or after this pass the retention check without a lookup: it is
    /// now minus the shortest raw retention of the default and every rule, so no
    /// rule can refuse them. Refreshed at each commit.
    fast_floor: i64,
    batch: Vec<WalSample>,
    frame: Vec<u8>,
    created: Vec<u64>,
}

impl Appender {
    pub(crate) fn new(inner: Arc<Inner>) -> Appender {
        let fast_floor = fast_floor(&inner);
        Appender { inner, fast_floor, batch: Vec::new(), frame: Vec::new(), created: Vec::new() }
    }

    /// Resolves labels to a series, creating it if new.
    pub fn series(&mut self, labels: &Labels) -> Result<SeriesRef> {
        let max = self.inner.opts.max_labels;
        if labels.len() > max {
            return Err(Error::TooManyLabels { count: labels.len(), max });
        }
        let (id, _) = self.inner.index.get_or_create(labels)?;
        Ok(SeriesRef { id, instance: self.inner.instance })
    }

    /// The existing series whose labels are exactly `pairs`, sorted by name with no
    /// empty values (the order `Labels::iter` yields). Allocates nothing, so a write
    /// path can resolve known series before building any `Labels`. `None` for a new
    /// series and for pairs in any other form; `series` then decides.
    pub fn find(&self, pairs: &[(&str, &str)]) -> Option<SeriesRef> {
        let id = self.inner.index.find(pairs)?;
        Some(SeriesRef { id, instance: self.inner.instance })
    }

    /// Buffers one sample. Nothing is visible or durable before `commit`. Refuses a
    /// timestamp above `MAX_TIMESTAMP` (`Error::TimestampOutOfRange`) and one older
    /// than the series' retention (`Error::OutOfRetention`); the batch keeps the rest.
    #[inline]
    pub fn append(&mut self, series: SeriesRef, ts: i64, value: f64) -> Result<()> {
        if series.instance != self.inner.instance {
            return Err(Error::UnknownSeries { series: series.id });
        }
        if ts > MAX_TIMESTAMP {
            return Err(self.out_of_range(series.id, ts));
        }
        if ts < self.fast_floor {
            self.check_retention(series.id, ts)?;
        }
        self.batch.push(WalSample { series: series.id, ts, value });
        Ok(())
    }

    /// Buffers one sample by labels (a lookup per call; prefer `series` + `append` when hot).
    pub fn append_labels(&mut self, labels: &Labels, ts: i64, value: f64) -> Result<()> {
        let s = self.series(labels)?;
        self.append(s, ts, value)
    }

    /// The precise check, for samples old enough that some rule might refuse them.
    #[cold]
    fn check_retention(&self, id: u64, ts: i64) -> Result<()> {
        let labels = self.inner.index.labels(id).ok_or(Error::UnknownSeries { series: id })?;
        let min_ts = self.inner.retention.read().min_ts(&labels, StoredTier::Raw, now_ms());
        if ts < min_ts {
            return Err(Error::OutOfRetention { series: labels.to_string(), ts, min_ts });
        }
        Ok(())
    }

    #[cold]
    fn out_of_range(&self, id: u64, ts: i64) -> Error {
        let series = self.inner.index.labels(id).map_or_else(|| format!("series {id}"), |l| l.to_string());
        Error::TimestampOutOfRange { series, ts, min: MIN_TIMESTAMP, max: MAX_TIMESTAMP }
    }

    /// Samples buffered and not yet committed.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Drops the buffered samples.
    pub fn rollback(&mut self) {
        self.batch.clear();
    }

    /// Logs the batch, then applies it to the head. Returns once the log holds it as
    /// durably as `SyncMode` promises and readers see it. On error no reader ever sees
    /// any of the batch and, for storage errors, the Db is poisoned. The batch is
    /// dropped, except on `Error::WriteStalled` (the head stayed over twice its budget
    /// for `Options::write_stall_timeout`): nothing was logged, and the appender keeps
    /// the batch so that `commit` can be called again.
    pub fn commit(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let result = self.commit_inner();
        if !matches!(result, Err(Error::WriteStalled { .. })) {
            self.batch.clear();
        }
        self.fast_floor = fast_floor(&self.inner);
        result
    }

    /// Defines new series and takes a turn under the commit lock, so that WAL order is
    /// turn order; applies the samples only once the WAL acknowledged them. A failed
    /// write gives its turn up: readers never see a batch that was not acknowledged.
    fn commit_inner(&mut self) -> Result<()> {
        let inner = &*self.inner;
        inner.check_writable()?;
        inner.wait_for_room()?;
        // Without WAL files (in memory) there is nothing to encode.
        let logs = inner.wal.keeps_files();
        self.frame.clear();
        if logs {
            encode_samples_frame(&self.batch, &mut self.frame);
        }
        let (ticket, turn) = {
            let _order = inner.commit_lock.lock();
            inner.check_writable()?;
            let head = inner.snapshot().head.clone();
            self.created.clear();
            head.define_new(&self.batch, &mut self.created);
            let frames = if !logs || self.created.is_empty() {
                std::mem::take(&mut self.frame)
            } else {
                // Series new to this head are defined in its WAL before their samples.
                let labels: Vec<(u64, Labels)> =
                    self.created.iter().filter_map(|&id| inner.index.labels(id).map(|l| (id, l))).collect();
                let refs: Vec<(u64, &Labels)> = labels.iter().map(|(id, l)| (*id, l)).collect();
                let mut f = Vec::with_capacity(self.frame.len() + 64 * refs.len());
                encode_series_frame(&refs, &mut f);
                f.extend_from_slice(&self.frame);
                f
            };
            (inner.wal.submit(frames), head.take_turn())
        };
        let durable = ticket.and_then(|t| t.wait());
        if let Err(e) = &durable {
            inner.poison(e);
        }
        // On error the turn is dropped unused: given up, after the turns before it.
        durable?;
        let head = turn.head().clone();
        turn.apply(&self.batch);
        inner.subscribers.publish(&inner.index, &self.batch);
        inner.after_commit(&head);
        Ok(())
    }
}

fn fast_floor(inner: &Inner) -> i64 {
    let policy = inner.retention.read();
    let shortest = policy.rules().iter().map(|r| r.durations().raw).fold(policy.default_durations().raw, Duration::min);
    crate::retention::oldest_retained(now_ms(), shortest)
}
