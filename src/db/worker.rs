//! The background worker: seals the head when it is due and runs maintenance
//! (downsampling, compaction, retention) after seals and every
//! `Options::maintenance_interval`; and `guarded`, which turns a panic in either into
//! a poisoned Db instead of a silently dead thread.

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

/// The background sealer thread.
pub(crate) struct Worker {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl Worker {
    pub fn start(inner: Arc<Inner>) -> Worker {
        let (stop, rx) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("strata-sealer".into())
            .spawn(move || {
                // Seals and maintenance are guarded one by one; this catches the rest of
                // the loop, so the worker never stops without the Db saying why.
                let _ = inner.guarded("running the background sealer", || {
                    run(&inner, rx);
                    Ok(())
                });
            })
            .expect("spawning the sealer thread");
        Worker { stop, handle }
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
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

fn run(inner: &Inner, stop: Receiver<()>) {
    let mut backoff = Duration::from_millis(100);
    let mut last_maintenance = Instant::now();
    let mut sealed_since = false;
    // How often maintenance (downsampling, compaction, retention) runs when idle.
    let every = inner.opts.maintenance_interval;
    loop {
        match stop.recv_timeout(Duration::from_millis(100)) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let due = last_maintenance.elapsed() >= every || (sealed_since && inner.snapshot().frozen.is_empty());
        if due && inner.check_writable().is_ok() {
            last_maintenance = Instant::now();
            sealed_since = false;
            match inner.maintain_guarded() {
                Ok(_) => {}
                // poisoned: the checks below stop further work
                Err(e @ Error::Panicked { .. }) => log::error!("maintenance stopped: {e}"),
                Err(e) => log::error!("maintenance failed, retrying in {every:?}: {e}"),
            }
        }
        let pending = !inner.snapshot().frozen.is_empty();
        let Some(reason) = inner.seal_due().or(pending.then_some("retry")) else { continue };
        if inner.check_writable().is_err() {
            continue;
        }
        match inner.seal() {
            Ok(()) => {
                backoff = Duration::from_millis(100);
                sealed_since = true;
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
