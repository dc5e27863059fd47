//! The in-memory head block: the samples not yet sealed into a segment.
//!
//! Series live in striped maps keyed by series id. In-order samples go into
//! compressed XOR chunks; out-of-order samples and overwrites of existing
//! timestamps go into a small per-series buffer that wins ties on read, because
//! everything in it was written after any in-order sample with the same timestamp.
//!
//! A commit reaches the head in two steps (see `db::appender`): under the commit lock
//! it defines its new series ([`Head::define_new`]) and takes a [`Turn`]; once its WAL
//! write is acknowledged it applies its samples in turn order ([`Turn::apply`]). A
//! commit whose WAL write failed gives its turn up without applying anything, so the
//! head only ever holds acknowledged samples, in WAL order.

mod seal;
mod series;
mod turn;

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::RwLock;

use crate::hash::IdMap;
use crate::sample::Sample;
use crate::wal::WalSample;
pub(crate) use seal::SealSignals;
pub(crate) use series::HeadSeries;
pub use turn::Turn;
use turn::Turnstile;

const STRIPES: usize = 64;
/// Fixed cost of a series in the head, for memory accounting: its map slot (id and
/// `HeadSeries`) at the map's average load, as hash maps keep between 7/16 and 7/8
/// of their slots full. Chunk buffers are counted as they grow.
const SERIES_OVERHEAD: usize = (std::mem::size_of::<(u64, HeadSeries)>() + 1) * 3 / 2;

pub struct Head {
    stripes: Box<[RwLock<IdMap<HeadSeries>>]>,
    /// First WAL file sequence whose records belong to this head.
    pub wal_first_seq: u64,
    pub created: Instant,
    min_t: AtomicI64,
    max_t: AtomicI64,
    samples: AtomicU64,
    series: AtomicU64,
    bytes: AtomicUsize,
    turns: Turnstile,
}

impl Head {
    pub fn new(wal_first_seq: u64) -> Head {
        Head {
            stripes: (0..STRIPES).map(|_| RwLock::new(IdMap::default())).collect(),
            wal_first_seq,
            created: Instant::now(),
            min_t: AtomicI64::new(i64::MAX),
            max_t: AtomicI64::new(i64::MIN),
            samples: AtomicU64::new(0),
            series: AtomicU64::new(0),
            bytes: AtomicUsize::new(0),
            turns: Turnstile::default(),
        }
    }

    #[inline]
    fn stripe(&self, id: u64) -> &RwLock<IdMap<HeadSeries>> {
        &self.stripes[(id as usize) & (STRIPES - 1)]
    }

    /// Appends samples `(series, ts, value)`; pushes the ids of series that were not yet
    /// in this head onto `created` (their definitions must reach this head's WAL).
    pub fn append_batch(&self, batch: &[WalSample], created: &mut Vec<u64>) {
        let (mut min_t, mut max_t) = (i64::MAX, i64::MIN);
        let mut bytes = 0usize;
        for &WalSample { series: id, ts, value: v } in batch {
            let mut stripe = self.stripe(id).write();
            let s = stripe.entry(id).or_insert_with(|| {
                created.push(id);
                bytes += SERIES_OVERHEAD;
                HeadSeries::default()
            });
            bytes += s.append(ts, v);
            min_t = min_t.min(ts);
            max_t = max_t.max(ts);
        }
        self.series.fetch_add(created.len() as u64, Ordering::Relaxed);
        self.samples.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        if !batch.is_empty() {
            self.min_t.fetch_min(min_t, Ordering::Relaxed);
            self.max_t.fetch_max(max_t, Ordering::Relaxed);
        }
    }

    /// Adds an empty entry for each series of `batch` not yet in this head and pushes its
    /// id onto `created` (its definition must reach this head's WAL before its samples).
    /// Called under the commit lock, before the batch is logged; the samples follow in
    /// [`Turn::apply`]. An entry whose samples never come holds nothing and reads as empty.
    pub fn define_new(&self, batch: &[WalSample], created: &mut Vec<u64>) {
        let before = created.len();
        let mut last = None;
        for s in batch {
            // batches usually hold runs of one series: look each run up once
            if last == Some(s.series) {
                continue;
            }
            last = Some(s.series);
            if self.stripe(s.series).read().contains_key(&s.series) {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(v) = self.stripe(s.series).write().entry(s.series) {
                v.insert(HeadSeries::default());
                created.push(s.series);
            }
        }
        let new = created.len() - before;
        self.series.fetch_add(new as u64, Ordering::Relaxed);
        self.bytes.fetch_add(new * SERIES_OVERHEAD, Ordering::Relaxed);
    }

    /// The next turn to apply a batch. Turns are applied (or given up) in the order they
    /// were taken; take them under the lock that orders WAL submissions.
    pub fn take_turn(self: &std::sync::Arc<Head>) -> Turn {
        Turn::new(self.clone(), self.turns.take())
    }

    /// Waits until every turn taken so far has been applied or given up.
    pub fn wait_for_turns(&self) {
        self.turns.wait_idle();
    }

    /// Samples of one series in `[mint, maxt]` (inclusive), sorted, one per timestamp (last write wins).
    pub fn read(&self, id: u64, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        if let Some(s) = self.stripe(id).read().get(&id) {
            s.read(mint, maxt, out);
        }
    }

    /// The newest sample of a series in this head.
    pub fn latest(&self, id: u64) -> Option<Sample> {
        self.stripe(id).read().get(&id).and_then(|s| s.latest())
    }

    /// Sorted ids of every series in the head.
    pub fn series_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> =
            self.stripes.iter().flat_map(|s| s.read().keys().copied().collect::<Vec<_>>()).collect();
        ids.sort_unstable();
        ids
    }

    /// The oldest timestamp of one series in this head.
    pub fn min_ts(&self, id: u64) -> Option<i64> {
        self.stripe(id).read().get(&id).and_then(|s| s.min_ts())
    }

    pub fn is_empty(&self) -> bool {
        self.samples.load(Ordering::Relaxed) == 0
    }

    /// Calls `f(id, oldest, newest, distinct samples)` for every series holding samples.
    pub fn for_each_distinct(&self, mut f: impl FnMut(u64, i64, i64, u64)) {
        let mut scratch = Vec::new();
        for stripe in self.stripes.iter() {
            for (&id, s) in stripe.read().iter() {
                if let Some((lo, hi, n)) = s.distinct_span(&mut scratch) {
                    f(id, lo, hi, n);
                }
            }
        }
    }

    /// Samples appended, each overwrite counted again (what was written, not what is held).
    pub fn num_samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    pub fn num_series(&self) -> u64 {
        self.series.load(Ordering::Relaxed)
    }

    /// Approximate heap bytes held by the head.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// `(min_t, max_t)` over every sample appended, or None when empty.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (a, b) = (self.min_t.load(Ordering::Relaxed), self.max_t.load(Ordering::Relaxed));
        (a <= b).then_some((a, b))
    }

    /// Compacts out-of-order buffers and trims spare capacity; called when a head is frozen.
    pub fn shrink(&self) {
        for stripe in self.stripes.iter() {
            for s in stripe.write().values_mut() {
                s.shrink();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn matches_a_last_write_wins_model() {
        let head = Head::new(0);
        let mut model: BTreeMap<(u64, i64), u64> = BTreeMap::new();
        let mut x: u64 = 0x1234_5678;
        let mut created = Vec::new();
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = x % 7;
            // mostly increasing timestamps, with late samples and exact overwrites mixed in
            let ts = if x.is_multiple_of(5) { (i as i64 / 2) - (x % 300) as i64 } else { i as i64 / 2 };
            let v = f64::from_bits(x.rotate_left(9));
            head.append_batch(&[WalSample { series: id, ts, value: v }], &mut created);
            model.insert((id, ts), v.to_bits());
        }
        assert_eq!(created.len(), 7);
        for id in 0..7 {
            let mut got = Vec::new();
            head.read(id, -1000, 5000, &mut got);
            let want: Vec<Sample> = model
                .range((id, -1000)..=(id, 5000))
                .map(|(&(_, ts), &v)| Sample::new(ts, f64::from_bits(v)))
                .collect();
            assert_eq!(got, want);
            let newest = model.range((id, i64::MIN)..=(id, i64::MAX)).next_back().unwrap();
            assert_eq!(head.latest(id), Some(Sample::new(newest.0 .1, f64::from_bits(*newest.1))));
            let mut part = Vec::new();
            head.read(id, 100, 200, &mut part);
            assert!(part.iter().all(|s| (100..=200).contains(&s.ts)));
            assert_eq!(part.len(), want.iter().filter(|s| (100..=200).contains(&s.ts)).count());
        }
        head.shrink();
        let mut after = Vec::new();
        head.read(3, i64::MIN, i64::MAX, &mut after);
        assert_eq!(after.len(), model.range((3, i64::MIN)..=(3, i64::MAX)).count());
    }
}
