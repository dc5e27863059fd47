//! Reading a selector's series on several threads.
//!
//! The matching ids, in label order (the order segments lay series out), are cut
//! into consecutive parts. Threads take parts in turn, each with its own context
//! (buffers, and chunk cursors held across series: a cursor shared between
//! threads would decompress the same pages over and over), and fold each series
//! into the part's state. The caller gets the states back in part order, so what
//! it builds from them is in label order, exactly as one thread would build it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use promql_parser::parser as ast;

use super::eval::{to_matchers, Evaluator};
use super::metric::Metric;
use super::{PromqlError, Result};
use crate::db::ChunkReaders;
use crate::sample::Sample;

/// Fewest series per part: below this, a thread costs more than it saves.
const MIN_PART: usize = 8;
/// Parts per thread, so that a thread done early takes another instead of idling.
const PARTS_PER_THREAD: usize = 4;

/// The query's limits, shared by the threads of one scan.
pub(crate) struct Budget {
    samples: AtomicUsize,
    max_samples: usize,
    deadline: Option<Instant>,
}

impl Budget {
    /// Fails once the deadline has passed.
    pub fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(PromqlError::timeout()),
            _ => Ok(()),
        }
    }

    /// Counts `n` samples loaded; fails past `max_samples`.
    pub fn add(&self, n: usize) -> Result<()> {
        if self.samples.fetch_add(n, Ordering::Relaxed).saturating_add(n) > self.max_samples {
            return Err(PromqlError::too_many_samples());
        }
        Ok(())
    }
}

impl Evaluator<'_> {
    /// Calls `f(state, metric, samples)` for each series matching `vs` that has
    /// samples in `[lo, hi]` (staleness markers kept) and returns the states of
    /// the consecutive parts the series were cut into, in label order. Samples
    /// count against `max_samples`; the deadline is checked before each series.
    pub(crate) fn scan_series<S: Send>(
        &mut self,
        vs: &ast::VectorSelector,
        lo: i64,
        hi: i64,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut S, Metric, &[Sample]) + Sync,
    ) -> Result<Vec<S>> {
        let matchers = to_matchers(vs)?;
        let hi = hi.min(crate::MAX_TIMESTAMP);
        if lo > hi {
            return Ok(Vec::new());
        }
        let q = self.db.querier(lo..hi + 1);
        let ids = q.select_ids(&matchers).map_err(PromqlError::from)?;
        self.in_parts(
            &ids,
            || (ChunkReaders::default(), Vec::new()),
            init,
            |(readers, buf), state, id, budget| {
                q.read_series_into(id, buf, readers).map_err(PromqlError::from)?;
                if buf.is_empty() {
                    return Ok(());
                }
                budget.add(buf.len())?;
                if let Some(labels) = q.labels(id) {
                    f(state, Metric::from_labels(&labels), buf);
                }
                Ok(())
            },
        )
    }

    /// Runs `f(context, state, id, budget)` for every id, the ids cut into
    /// consecutive parts, each part folded into its own state (from `init`) on
    /// one of up to `opts.threads` threads, each thread with its own context
    /// (from `context`). Returns the states in part order, or the error of the
    /// first part (in order) that failed.
    pub(crate) fn in_parts<C, S: Send>(
        &mut self,
        ids: &[u64],
        context: impl Fn() -> C + Sync,
        init: impl Fn() -> S + Sync,
        f: impl Fn(&mut C, &mut S, u64, &Budget) -> Result<()> + Sync,
    ) -> Result<Vec<S>> {
        let threads = self.threads().min(ids.len() / MIN_PART).max(1);
        let part_len = if threads == 1 { ids.len().max(1) } else { ids.len().div_ceil(threads * PARTS_PER_THREAD) };
        let parts: Vec<&[u64]> = ids.chunks(part_len).collect();
        let results: Vec<Mutex<Option<Result<S>>>> = parts.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let budget = Budget {
            samples: AtomicUsize::new(self.samples),
            max_samples: self.opts.max_samples,
            deadline: self.deadline,
        };

        let work = || {
            let mut ctx = context();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= parts.len() || stop.load(Ordering::Relaxed) {
                    return;
                }
                let mut state = init();
                let res = parts[i].iter().try_for_each(|&id| {
                    budget.check_deadline()?;
                    f(&mut ctx, &mut state, id, &budget)
                });
                if res.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                *results[i].lock() = Some(res.map(|()| state));
            }
        };
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 1..threads {
                    s.spawn(work);
                }
                work();
            });
        }
        self.samples = budget.samples.into_inner();
        let mut out = Vec::with_capacity(parts.len());
        for r in results {
            match r.into_inner() {
                Some(Ok(state)) => out.push(state),
                Some(Err(e)) => return Err(e),
                // Not taken: a part before it failed and stopped the scan, and
                // that part's error comes first.
                None => {}
            }
        }
        Ok(out)
    }

    fn threads(&self) -> usize {
        match self.opts.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}
