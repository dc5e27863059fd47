//! Live subscriptions: each committed sample of a matching series is pushed to
//! every subscriber (the pub/sub of seed 002, behind `GET /stream`).
//!
//! Invariants:
//! - Publishing never blocks a commit: each subscriber has a bounded queue, and a
//!   batch that does not fit is dropped for that subscriber and counted.
//! - With no subscribers a commit pays one atomic load; labels are looked up only
//!   while someone is subscribed, and each subscriber remembers per series id
//!   whether it matches (a series' labels never change for its id).
//! - Publication happens after the commit is durable, outside `commit_lock`, so
//!   two concurrent commits may be published in either order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use parking_lot::Mutex;

use crate::index::SeriesIndex;
use crate::labels::{Labels, Matcher};
use crate::sample::Sample;
use crate::wal::WalSample;

/// Most samples queued for one subscriber; beyond it batches are dropped.
const QUEUE_SAMPLES: usize = 64 * 1024;
/// Most batches queued for one subscriber.
const QUEUE_BATCHES: usize = 1024;
/// Series ids whose match result a subscriber remembers before starting over.
const MATCH_CACHE: usize = 256 * 1024;

/// The samples of one commit that matched a subscription, in batch order.
pub type SampleBatch = Vec<(Labels, Sample)>;

struct Subscriber {
    id: u64,
    matchers: Vec<Matcher>,
    tx: Sender<SampleBatch>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    /// series id -> its labels when they match, None when they do not.
    matches: Mutex<HashMap<u64, Option<Labels>>>,
}

/// Every live subscription of one `Db`.
#[derive(Default)]
pub(crate) struct Registry {
    active: AtomicBool,
    next_id: AtomicU64,
    subs: Mutex<Vec<Arc<Subscriber>>>,
}

impl Registry {
    pub fn subscribe(self: &Arc<Self>, matchers: Vec<Matcher>) -> Subscription {
        let (tx, rx) = bounded(QUEUE_BATCHES);
        let queued = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Subscriber {
            id,
            matchers,
            tx,
            queued: queued.clone(),
            dropped: dropped.clone(),
            matches: Mutex::new(HashMap::new()),
        };
        let mut subs = self.subs.lock();
        subs.push(Arc::new(sub));
        self.active.store(true, Ordering::Release);
        Subscription { id, rx, queued, dropped, registry: self.clone() }
    }

    fn unsubscribe(&self, id: u64) {
        let mut subs = self.subs.lock();
        subs.retain(|s| s.id != id);
        self.active.store(!subs.is_empty(), Ordering::Release);
    }

    /// Number of live subscriptions.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.subs.lock().len()
    }

    /// Hands a committed batch to every subscriber whose matchers select its series.
    pub fn publish(&self, index: &SeriesIndex, batch: &[WalSample]) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let subs = self.subs.lock().clone();
        for sub in subs {
            sub.offer(index, batch);
        }
    }
}

impl Subscriber {
    fn offer(&self, index: &SeriesIndex, batch: &[WalSample]) {
        let mut out: SampleBatch = Vec::new();
        {
            let mut cache = self.matches.lock();
            for s in batch {
                if cache.len() >= MATCH_CACHE && !cache.contains_key(&s.series) {
                    cache.clear();
                }
                let hit = cache
                    .entry(s.series)
                    .or_insert_with(|| index.labels(s.series).filter(|l| selects(&self.matchers, l)));
                if let Some(labels) = hit {
                    out.push((labels.clone(), Sample::new(s.ts, s.value)));
                }
            }
        }
        if out.is_empty() {
            return;
        }
        let n = out.len();
        if self.queued.load(Ordering::Acquire) + n > QUEUE_SAMPLES {
            self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            return;
        }
        // Count before sending so the receiver's decrement can never underflow.
        self.queued.fetch_add(n, Ordering::AcqRel);
        match self.tx.try_send(out) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(n, Ordering::AcqRel);
                self.dropped.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
}

/// Same rule as the index's `select`: matchers that all accept the empty value select nothing.
fn selects(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().any(|m| !m.matches_empty()) && matchers.iter().all(|m| m.matches_labels(labels))
}

/// Why [`Subscription::recv_timeout`] or [`Subscription::try_recv`] returned no batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionError {
    /// Nothing is queued (`try_recv`), or nothing arrived in time (`recv_timeout`).
    Empty,
    /// The Db is closed and everything queued was received: no batch will come.
    Closed,
}

impl std::fmt::Display for SubscriptionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SubscriptionError::Empty => "no batch queued",
            SubscriptionError::Closed => "the subscription is closed",
        })
    }
}

impl std::error::Error for SubscriptionError {}

/// A live feed of committed samples for the series a set of matchers selects.
/// Unregisters when dropped.
pub struct Subscription {
    id: u64,
    rx: Receiver<SampleBatch>,
    queued: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    registry: Arc<Registry>,
}

impl Subscription {
    /// The next batch, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<SampleBatch, SubscriptionError> {
        let b = self.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => SubscriptionError::Empty,
            RecvTimeoutError::Disconnected => SubscriptionError::Closed,
        })?;
        self.queued.fetch_sub(b.len(), Ordering::AcqRel);
        Ok(b)
    }

    /// The next batch if one is queued.
    pub fn try_recv(&self) -> Result<SampleBatch, SubscriptionError> {
        let b = self.rx.try_recv().map_err(|e| match e {
            TryRecvError::Empty => SubscriptionError::Empty,
            TryRecvError::Disconnected => SubscriptionError::Closed,
        })?;
        self.queued.fetch_sub(b.len(), Ordering::AcqRel);
        Ok(b)
    }

    /// Empties the queue, counting what it held as dropped: for a reader that has to
    /// stop before it can deliver the rest. Returns how many samples.
    pub fn discard_pending(&self) -> u64 {
        let mut n = 0;
        while let Ok(b) = self.try_recv() {
            n += b.len() as u64;
        }
        self.dropped.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// Samples dropped so far because this subscriber fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.registry.unsubscribe(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Arc<Registry>, SeriesIndex, u64, u64) {
        let index = SeriesIndex::new(1, 100);
        let (a, _) = index.get_or_create(&Labels::metric("cpu", [("host", "a")]).unwrap()).unwrap();
        let (b, _) = index.get_or_create(&Labels::metric("mem", [("host", "a")]).unwrap()).unwrap();
        (Arc::new(Registry::default()), index, a, b)
    }

    fn ws(series: u64, ts: i64, value: f64) -> WalSample {
        WalSample { series, ts, value }
    }

    #[test]
    fn delivers_matching_samples_and_unregisters_on_drop() {
        let (reg, index, a, b) = setup();
        reg.publish(&index, &[ws(a, 1, 1.0)]);
        let sub = reg.subscribe(vec![Matcher::eq("__name__", "cpu")]);
        reg.publish(&index, &[ws(a, 2, 2.0), ws(b, 2, 9.0), ws(a, 3, f64::NAN)]);
        let got = sub.try_recv().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0.metric_name(), Some("cpu"));
        assert_eq!(got[0].1, Sample::new(2, 2.0));
        assert_eq!(got[1].1, Sample::new(3, f64::NAN));
        assert_eq!(sub.try_recv().unwrap_err(), SubscriptionError::Empty);
        assert_eq!(reg.len(), 1);
        drop(sub);
        assert_eq!(reg.len(), 0);
        assert!(!reg.active.load(Ordering::Acquire));
    }

    #[test]
    fn slow_subscriber_drops_and_counts() {
        let (reg, index, a, _) = setup();
        let sub = reg.subscribe(vec![Matcher::eq("host", "a")]);
        let big: Vec<WalSample> = (0..QUEUE_SAMPLES as i64).map(|t| ws(a, t, 0.0)).collect();
        reg.publish(&index, &big);
        reg.publish(&index, &[ws(a, -1, 0.0), ws(a, -2, 0.0)]);
        assert_eq!(sub.dropped(), 2);
        assert_eq!(sub.try_recv().unwrap().len(), QUEUE_SAMPLES);
        reg.publish(&index, &[ws(a, -3, 0.0)]);
        assert_eq!(sub.try_recv().unwrap().len(), 1);
    }

    #[test]
    fn discarded_samples_count_as_dropped() {
        let (reg, index, a, _) = setup();
        let sub = reg.subscribe(vec![Matcher::eq("host", "a")]);
        reg.publish(&index, &[ws(a, 1, 0.0), ws(a, 2, 0.0)]);
        reg.publish(&index, &[ws(a, 3, 0.0)]);
        assert_eq!(sub.discard_pending(), 3);
        assert_eq!(sub.dropped(), 3);
        assert!(sub.try_recv().is_err());
        reg.publish(&index, &[ws(a, 4, 0.0)]);
        assert_eq!(sub.try_recv().unwrap().len(), 1, "the queue accepts again");
    }

    #[test]
    fn empty_matching_selector_selects_nothing() {
        let (reg, index, a, _) = setup();
        let sub = reg.subscribe(vec![Matcher::ne("host", "zzz")]);
        reg.publish(&index, &[ws(a, 1, 1.0)]);
        assert!(sub.try_recv().is_err());
    }
}
