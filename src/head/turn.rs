//! Turns: applying logged batches to a head in the order they were logged.
//!
//! A commit takes a turn when it submits its WAL write (under the commit lock, so
//! turn order is WAL order) and applies its samples only after the write is
//! acknowledged. Turn `n` waits for turn `n - 1` to be applied or given up, so the
//! head applies batches in WAL order, and a batch whose write failed is never seen.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::Head;
use crate::wal::WalSample;

/// Turns taken and turns finished (applied or given up) on one head.
#[derive(Default)]
pub(super) struct Turnstile {
    counts: Mutex<Counts>,
    moved: Condvar,
}

#[derive(Default)]
struct Counts {
    taken: u64,
    done: u64,
}

impl Turnstile {
    pub(super) fn take(&self) -> u64 {
        let mut c = self.counts.lock();
        c.taken += 1;
        c.taken
    }

    /// Runs `f` once every earlier turn is done, then marks turn `n` done, also when
    /// `f` panics, so that a panicking committer cannot stall the ones after it.
    fn in_turn(&self, n: u64, f: impl FnOnce()) {
        struct Finish<'a>(&'a Turnstile, u64);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.counts.lock().done = self.1;
                self.0.moved.notify_all();
            }
        }
        let mut c = self.counts.lock();
        while c.done + 1 != n {
            self.moved.wait(&mut c);
        }
        drop(c);
        // Later turns wait on `done`, so `f` runs alone without holding the mutex.
        let _finish = Finish(self, n);
        f();
    }

    pub(super) fn wait_idle(&self) {
        let mut c = self.counts.lock();
        while c.done != c.taken {
            self.moved.wait(&mut c);
        }
    }
}

/// The right to apply one logged batch to a head, in WAL order. Dropping it unused
/// gives the turn up (the batch's WAL write failed, or its committer panicked).
pub struct Turn {
    head: Arc<Head>,
    n: u64,
    used: bool,
}

impl Turn {
    pub(super) fn new(head: Arc<Head>, n: u64) -> Turn {
        Turn { head, n, used: false }
    }

    /// The head this turn applies to.
    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    /// Waits for the earlier turns, then appends the batch (whose new series were
    /// defined by `Head::define_new`) to the head.
    pub fn apply(mut self, batch: &[WalSample]) {
        self.used = true;
        let head = self.head.clone();
        let mut created = Vec::new();
        head.turns.in_turn(self.n, || head.append_batch(batch, &mut created));
        debug_assert!(created.is_empty(), "series {created:?} were not defined before their turn");
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.used {
            self.head.turns.in_turn(self.n, || {});
        }
    }
}
