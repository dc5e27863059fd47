//! The background worker: a sealer thread that seals the head when it is due, and a
//! maintenance thread that runs downsampling, compaction and retention after seals and
//! every `Options::maintenance_interval`; and `guarded`, which turns a panic in either
//! into a poisoned Db instead of a silently dead thread.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::{CompactionReport, Inner};
use crate::error::{Error, Result};
use crate::failpoint::{self, PanicSite};

impl Inner {
    /// A full maintenance pass (downsampling, compaction, retention) under `guarded`.
    pub(crate) fn maintain_guarded(&self) -> Result<CompactionReport> {
        self.guarded("maintaining segments (downsampling, compaction, retention)", || {
            failpoint::panic_point(PanicSite::Maintain);
            self.maintain()
        })
    }

    /// Runs `f`; a panic in it becomes `Error::Panicked` and poisons the Db, so that
    /// writes are refused with its message (and `/health` says so) instead of a
    /// thread dying silently. This is safe to continue from because:
    /// - locks are parking_lot's, released on unwind and never poisoned, so nothing hangs;
    /// - readers see `state`, which only changes by swapping a complete new value, and
    ///   the in-memory manifest changes only after the file was published;
    /// - what a half-done step left on disk (an unpublished segment, a WAL file past the
    ///   head's) is what a crash at that point leaves, and a reopen recovers from it;
    /// - being poisoned, the Db starts no further writes, seals or maintenance.
    pub(crate) fn guarded<T>(&self, context: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => r,
            Err(payload) => {
                let e = Error::Panicked { context: context.to_string(), message: panic_message(&*payload) };
                self.poison(&e);
                Err(e)
            }
        }
    }
}

/// The background threads: a sealer, and a maintenance thread. They are apart so that
/// a long maintenance pass (a large merge) never delays a seal, which committers may be
/// waiting for (`Inner::wait_for_room`).
pub(crate) struct Worker {
    stops: Vec<Sender<()>>,
    handles: Vec<JoinHandle<()>>,
}

impl Worker {
    pub fn start(inner: Arc<Inner>) -> Worker {
        // The sealer tells the maintenance thread that something was sealed.
        let (sealed_tx, sealed_rx) = bounded::<()>(1);
        let mut w = Worker { stops: Vec::new(), handles: Vec::new() };
        w.spawn(&inner, "strata-sealer", "running the background sealer", move |inner, stop| {
            run_sealer(inner, stop, sealed_tx)
        });
        w.spawn(&inner, "strata-maintain", "running background maintenance", move |inner, stop| {
            run_maintenance(inner, stop, sealed_rx)
        });
        w
    }

    fn spawn(
        &mut self,
        inner: &Arc<Inner>,
        name: &str,
        context: &'static str,
        body: impl FnOnce(&Inner, Receiver<()>) + Send + 'static,
    ) {
        let (stop, rx) = bounded::<()>(1);
        let inner = inner.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // Seals and maintenance are guarded one by one; this catches the rest of
                // the loop, so a thread never stops without the Db saying why.
                let _ = inner.guarded(context, || {
                    body(&inner, rx);
                    Ok(())
                });
            })
            .expect("spawning a background thread");
        self.stops.push(stop);
        self.handles.push(handle);
    }

    pub fn stop(self) {
        for s in &self.stops {
            let _ = s.send(());
        }
        for h in self.handles {
            let _ = h.join();
        }
    }
}

/// The text of a panic payload (`panic!` with a literal or with format arguments).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}

/// Seals when due: every 100 ms, or at once when a commit finds the head over its
/// budget or waits for room.
fn run_sealer(inner: &Inner, stop: Receiver<()>, sealed: Sender<()>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        crossbeam_channel::select! {
            recv(stop) -> _ => return,
            recv(inner.sealer.wakes()) -> _ => {}
            default(Duration::from_millis(100)) => {}
        }
        let pending = !inner.snapshot().frozen.is_empty();
        let Some(reason) = inner.seal_due().or(pending.then_some("retry")) else { continue };
        if inner.check_writable().is_err() {
            continue;
        }
        match inner.seal_in_background() {
            Ok(wrote) => {
                backoff = Duration::from_millis(100);
                if wrote {
                    let _ = sealed.try_send(());
                }
            }
            Err(e @ Error::Panicked { .. }) => log::error!("sealing ({reason}) stopped: {e}"),
            Err(e) => {
                log::error!("sealing ({reason}) failed, retrying in {backoff:?}: {e}");
                if stop.recv_timeout(backoff).is_ok() {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Runs maintenance (downsampling, compaction, retention) every
/// `Options::maintenance_interval`, and after seals once no frozen head is waiting.
fn run_maintenance(inner: &Inner, stop: Receiver<()>, sealed: Receiver<()>) {
    let mut last_maintenance = Instant::now();
    let mut sealed_since = false;
    let every = inner.opts.maintenance_interval;
    loop {
        crossbeam_channel::select! {
            recv(stop) -> _ => return,
            // Disconnected: the sealer stopped, so the Db is closing.
            recv(sealed) -> msg => match msg {
                Ok(()) => sealed_since = true,
                Err(_) => return,
            },
            default(Duration::from_millis(100)) => {}
        }
        let due = last_maintenance.elapsed() >= every || (sealed_since && inner.snapshot().frozen.is_empty());
        if !due || inner.check_writable().is_err() {
            continue;
        }
        last_maintenance = Instant::now();
        sealed_since = false;
        match inner.maintain_guarded() {
            Ok(_) => {}
            // poisoned: the check above stops further work
            Err(e @ Error::Panicked { .. }) => log::error!("maintenance stopped: {e}"),
            Err(e) => log::error!("maintenance failed, retrying in {every:?}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    use crate::{Appender, Db, Error, Labels, Matcher, Options, SyncMode};

    const BUDGET: usize = 64 << 10;

    fn fill(app: &mut Appender, from: i64, n: i64) {
        let s = app.series(&Labels::metric("stall", [("k", "v")]).unwrap()).unwrap();
        for t in from..from + n {
            app.append(s, t, t as f64 * 0.5).unwrap();
        }
    }

    fn count(db: &Db) -> usize {
        let q = db.querier(i64::MIN..i64::MAX);
        q.select(&[Matcher::eq("__name__", "stall")]).unwrap().map(|r| r.unwrap().1.len()).sum()
    }

    /// With the sealer unable to run (the test holds the seal lock, as a long segment
    /// write would), commits go on until the head is over twice its budget, then wait at
    /// most `write_stall_timeout` and fail with `WriteStalled`, keeping the batch; once
    /// the sealer runs, the same commit goes through. (Before, the commit that found the
    /// head at twice its budget sealed inline, waiting on the lock for as long as it was held.)
    #[test]
    fn a_commit_waits_a_bounded_time_for_room_and_keeps_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::default()
            .sync(SyncMode::Never)
            .head_memory_budget(BUDGET)
            .write_stall_timeout(Duration::from_millis(300));
        let db = Arc::new(Db::open(dir.path(), opts).unwrap());
        let sealing = db.inner.seal_lock.lock();
        let (tx, rx) = mpsc::channel();
        let writer = std::thread::spawn({
            let db = db.clone();
            move || {
                let mut app = db.appender();
                let mut ts = 0;
                let stalled = loop {
                    fill(&mut app, ts, 1_000);
                    match app.commit() {
                        Ok(()) => ts += 1_000,
                        Err(e) => break e,
                    }
                    assert!(ts < 10_000_000, "the head grew past any bound");
                };
                tx.send((ts, stalled, app.len())).unwrap();
                // The retry waits for room, which comes once the sealer can run.
                let retried = app.commit().map(|()| app.len());
                tx.send((ts, Error::InvalidArgument(format!("{retried:?}")), app.len())).unwrap();
                retried.unwrap();
            }
        });
        let (ts, stalled, kept) = rx.recv_timeout(Duration::from_secs(60)).expect("a commit waited without bound");
        assert!(matches!(stalled, Error::WriteStalled { .. }), "{stalled}");
        assert!(stalled.to_string().contains("nothing was stored"), "{stalled}");
        assert_eq!(kept, 1_000, "the stalled batch is kept for a retry");
        let head = db.stats().unwrap().head_bytes as usize;
        assert!(head > 2 * BUDGET && head < 3 * BUDGET, "head {head} bytes against a budget of {BUDGET}");
        assert_eq!(db.stats().unwrap().frozen_heads, 0, "nothing sealed while the lock was held");
        assert_eq!(count(&db), ts as usize, "the stalled commit is not visible");

        drop(sealing);
        let (_, retried, left) = rx.recv_timeout(Duration::from_secs(60)).expect("the retried commit never returned");
        writer.join().unwrap();
        assert_eq!(left, 0, "{retried}");
        assert_eq!(count(&db), ts as usize + 1_000);
        db.flush().unwrap();
        assert_eq!(count(&db), ts as usize + 1_000);
    }
}
