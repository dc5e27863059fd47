//! Turns: applying logged batches to a head in the order they were logged.
//!
//! A commit takes a turn when it submits its WAL write (under the commit lock, so
//! turn order is WAL order) and applies its samples only after the write is
//! acknowledged. Turn `n` waits for turn `n - 1` to be applied or given up, so the
//! head applies batches in WAL order, and a batch whose write failed is never seen.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::Head;
use crate::wal::WalSample;

/// How long a turn spins for its predecessor before it sleeps: a predecessor usually
/// finishes its apply within microseconds, far sooner than a sleep and wake-up.
const SPINS: u32 = 4096;

/// Turns taken and turns finished (applied or given up) on one head.
///
/// `done` is read without the mutex on the fast path; the mutex and `waiters` only
/// serve sleepers. No wake-up is lost: a sleeper counts itself in `waiters` and then
/// re-reads `done` under the mutex, while a finisher stores `done` and then reads
/// `waiters` (all `SeqCst`), so one of them sees the other.
#[derive(Default)]
pub(super) struct Turnstile {
    taken: AtomicU64,
    done: AtomicU64,
    waiters: AtomicUsize,
    sleep: Mutex<()>,
    moved: Condvar,
}

impl Turnstile {
    /// The next turn; take turns under the lock that orders WAL submissions.
    pub(super) fn take(&self) -> u64 {
        self.taken.fetch_add(1, SeqCst) + 1
    }

    /// Blocks until `ready(done)` holds: spins briefly, then sleeps on the condvar.
    fn wait_until(&self, ready: impl Fn(u64) -> bool) {
        for i in 0..SPINS {
            if ready(self.done.load(SeqCst)) {
                return;
            }
            if i % 64 == 63 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        let mut g = self.sleep.lock();
        self.waiters.fetch_add(1, SeqCst);
        while !ready(self.done.load(SeqCst)) {
            self.moved.wait(&mut g);
        }
        self.waiters.fetch_sub(1, SeqCst);
    }

    fn finish(&self, n: u64) {
        self.done.store(n, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            let _g = self.sleep.lock();
            self.moved.notify_all();
        }
    }

    /// Runs `f` once every earlier turn is done, then marks turn `n` done, also when
    /// `f` panics, so that a panicking committer cannot stall the ones after it.
    fn in_turn(&self, n: u64, f: impl FnOnce()) {
        struct Finish<'a>(&'a Turnstile, u64);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.finish(self.1);
            }
        }
        self.wait_until(|done| done + 1 == n);
        // Later turns wait on `done`, so `f` runs alone.
        let _finish = Finish(self, n);
        f();
    }

    pub(super) fn wait_idle(&self) {
        let taken = self.taken.load(SeqCst);
        self.wait_until(|done| done >= taken);
    }
}

/// The right to apply one logged batch to a head, in WAL order. Dropping it unused
/// gives the turn up (the batch's WAL write failed, or its committer panicked); that
/// too waits for the earlier turns, so a thread must never hold two turns at once.
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::sample::Sample;

    fn samples(head: &Head, id: u64) -> Vec<Sample> {
        let mut out = Vec::new();
        head.read(id, i64::MIN, i64::MAX, &mut out);
        out
    }

    #[test]
    fn turns_apply_in_order_and_a_given_up_turn_leaves_nothing() {
        let head = Arc::new(Head::new(0));
        let first = [WalSample { series: 1, ts: 10, value: 1.0 }];
        let second = [WalSample { series: 1, ts: 10, value: 2.0 }, WalSample { series: 2, ts: 5, value: 3.0 }];
        let mut created = Vec::new();
        head.define_new(&first, &mut created);
        head.define_new(&second, &mut created);
        assert_eq!(created, vec![1, 2]);
        assert_eq!(head.num_series(), 2);
        // (a thread holding two turns would wait for itself when it drops the later one,
        // so every assertion that might unwind runs with the first turn dropped last)
        let t1 = head.take_turn();
        let t2 = head.take_turn();

        // turn 2 is acknowledged first but must wait for turn 1
        let (tx, rx) = mpsc::channel();
        let h2 = head.clone();
        let waiter = std::thread::spawn(move || {
            t2.apply(&second);
            tx.send(()).unwrap();
            drop(h2);
        });
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "turn 2 applied before turn 1");
        assert!(samples(&head, 1).is_empty() && samples(&head, 2).is_empty());
        t1.apply(&first);
        rx.recv_timeout(Duration::from_secs(10)).expect("turn 2 never applied");
        waiter.join().unwrap();
        // the later write of the same timestamp wins, as in WAL order
        assert_eq!(samples(&head, 1), vec![Sample::new(10, 2.0)]);
        assert_eq!(samples(&head, 2), vec![Sample::new(5, 3.0)]);

        // a turn given up (its WAL write failed) applies nothing and frees the head
        drop(head.take_turn());
        head.wait_for_turns();
        assert_eq!(head.num_samples(), 3);
        let t4 = head.take_turn();
        t4.apply(&[WalSample { series: 2, ts: 6, value: 4.0 }]);
        head.wait_for_turns();
        assert_eq!(samples(&head, 2), vec![Sample::new(5, 3.0), Sample::new(6, 4.0)]);
    }

    #[test]
    fn a_panic_while_applying_does_not_stall_later_turns() {
        let head = Arc::new(Head::new(0));
        let t1 = head.take_turn();
        let t2 = head.take_turn();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            head.turns.in_turn(t1.n, || panic!("boom"));
        }));
        assert!(caught.is_err());
        std::mem::forget(t1);
        let mut created = Vec::new();
        let batch = [WalSample { series: 7, ts: 1, value: 1.0 }];
        head.define_new(&batch, &mut created);
        t2.apply(&batch);
        head.wait_for_turns();
        assert_eq!(samples(&head, 7), vec![Sample::new(1, 1.0)]);
    }
}
