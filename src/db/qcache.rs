//! The query cache: per series, fixed time blocks of what `Db::query` reads from
//! sealed segments (rollup buckets of a tier, and raw samples for ragged edges),
//! so a dashboard's range that slides forward re-reads only what changed.
//!
//! Invariants that keep answers bit for bit those of an uncached read:
//! - An entry holds exactly what a read of its block returns: the items of one
//!   series whose time lies in `[start, start + block)`, merged newest-wins over
//!   the segments of one tier. A caller takes the part it needs, so a cached read
//!   and a direct one hand the evaluator the very same items.
//! - An entry remembers the segments (id and rank) of its tier that overlap its
//!   block when it was read. Segments are immutable and ids never reused, so the
//!   same set means the same items; any change that could alter them (a seal of
//!   late data into the block, a merge, a delete or retention rewrite, a dropped
//!   segment) changes the set, and the lookup drops the entry (an invalidation).
//! - Heads are never cached: a raw block is used only when no head holds a sample
//!   of the series before the block's end, and a tier block only below the first
//!   bucket the tier may not reflect yet (`fresh_from`).
//! - Retention needs no entry dropped: callers ask only for what the current
//!   floors show, and a rewrite that frees disk changes the segment set.
//!
//! The same LRU and byte budget hold the result cache's entries (`rcache.rs`):
//! the final part of a bucketed answer, one entry per query.
//!
//! Bounded in bytes (entries and bookkeeping counted); least recently used first out.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::rcache::Final;
use super::State;
use crate::error::Result;
use crate::merge::Timed;
use crate::rollup::Bucket;
use crate::sample::Sample;

/// Bucket starts one tier block covers: twelve buckets (an hour of 5-minute
/// buckets, twelve hours of hourly ones).
pub(crate) const TIER_BLOCK_BUCKETS: i64 = 12;
/// Raw samples are cached in 5-minute blocks: a ragged edge lies inside one.
pub(crate) const RAW_BLOCK_MS: i64 = 300_000;
/// `Key::tier` of a result cache entry (`Key::id` is the hash of its query).
pub(crate) const RESULT_TIER: u8 = u8::MAX;

/// Counters of the query cache since open, and its size now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryCacheStats {
    /// Block lookups answered from the cache.
    pub hits: u64,
    /// Block lookups that read segments (and stored the block, if it fits).
    pub misses: u64,
    /// Entries dropped to stay within the byte budget.
    pub evictions: u64,
    /// Entries dropped because the segments under their block changed (or, for
    /// a result entry, anything its answer depends on).
    pub invalidations: u64,
    /// Queries that took the final part of their answer from the result cache.
    pub result_hits: u64,
    /// Queries the result cache was asked for and evaluated whole.
    pub result_misses: u64,
    /// Bytes held now (items and bookkeeping).
    pub bytes: u64,
    /// The budget (`Options::query_cache_bytes`); 0 = the cache is off.
    pub max_bytes: u64,
    /// Entries held now.
    pub entries: u64,
}

/// Which series, tier, rollup columns and block an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub id: u64,
    /// 0 = raw samples; 1, 2 = the 5-minute and hourly tiers; `RESULT_TIER`.
    pub tier: u8,
    /// The rollup columns decoded (0 for raw).
    pub cols: u16,
    pub start: i64,
}

/// The segments (id, rank) of a tier overlapping a block, in rank order.
pub(crate) type Ident = Arc<[(u64, u64)]>;

/// The identities of the blocks one query reads, worked out once per tier and
/// block (they depend on the snapshot, not on the series).
#[derive(Default)]
pub(crate) struct Idents {
    idents: HashMap<(usize, i64), Ident>,
    /// Per tier, the time its segments span (first and last sample), once worked out.
    spans: [Option<Option<(i64, i64)>>; 3],
}

impl Idents {
    /// The time tier `t`'s segments in `snap` span, `None` when it has none.
    pub fn tier_span(&mut self, snap: &State, t: usize) -> Option<(i64, i64)> {
        *self.spans[t].get_or_insert_with(|| {
            let segs = snap.tiers[t].iter().map(|s| s.info());
            Some((segs.clone().map(|i| i.min_t).min()?, segs.map(|i| i.max_t).max()?))
        })
    }

    /// The segments of tier `t` of `snap` whose time range meets `[lo, hi]`; the
    /// cache's own Arc when it saw the same set before, so entries compare by pointer.
    pub fn get(&mut self, cache: &QueryCache, snap: &State, t: usize, lo: i64, hi: i64) -> Ident {
        self.idents
            .entry((t, lo))
            .or_insert_with(|| {
                let segs = snap.tiers[t].iter();
                let now: Ident = segs
                    .filter(|s| s.info().min_t <= hi && s.info().max_t >= lo)
                    .map(|s| (s.info().id, s.rank))
                    .collect();
                cache.shared_ident(t, lo, now)
            })
            .clone()
    }
}

pub(crate) enum Items {
    Buckets(Vec<Bucket>),
    Samples(Vec<Sample>),
    /// A result cache entry.
    Final(Arc<Final>),
}

/// An item kind the cache holds.
pub(crate) trait Item: Timed {
    fn wrap(v: Vec<Self>) -> Items;
    fn slice(i: &Items) -> Option<&[Self]>;
}

impl Item for Bucket {
    fn wrap(v: Vec<Self>) -> Items {
        Items::Buckets(v)
    }
    fn slice(i: &Items) -> Option<&[Self]> {
        if let Items::Buckets(v) = i {
            Some(v)
        } else {
            None
        }
    }
}

impl Item for Sample {
    fn wrap(v: Vec<Self>) -> Items {
        Items::Samples(v)
    }
    fn slice(i: &Items) -> Option<&[Self]> {
        if let Items::Samples(v) = i {
            Some(v)
        } else {
            None
        }
    }
}

struct Entry {
    ident: Ident,
    items: Items,
    bytes: usize,
    /// The use that put the entry last in `order`.
    tick: u64,
}

#[derive(Default)]
struct Lru {
    map: HashMap<Key, Entry, crate::hash::IdBuildHasher>,
    /// Uses, oldest first; a pair whose tick is not its entry's is stale and skipped.
    order: VecDeque<(u64, Key)>,
    bytes: usize,
    tick: u64,
}

impl Lru {
    /// A use of the entry under `key`, last moved at `used`. Only an entry in the
    /// older half of the order moves to its end: entries hit again and again cost
    /// no bookkeeping, and the order stays short.
    fn refresh(&mut self, key: Key, used: u64) {
        if self.tick - used > self.map.len() as u64 / 2 {
            let tick = self.touch(key);
            if let Some(e) = self.map.get_mut(&key) {
                e.tick = tick;
            }
        }
    }

    fn touch(&mut self, key: Key) -> u64 {
        self.tick += 1;
        self.order.push_back((self.tick, key));
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order.retain(|(t, k)| map.get(k).is_some_and(|e| e.tick == *t));
        }
        self.tick
    }
}

/// Blocks whose identities are remembered for sharing; past it the table starts over.
const SEEN_MAX: usize = 1 << 16;

/// Per-entry bookkeeping: the key in the map and in `order` (at least once), the
/// entry, the identity's allocation header, and the map's control bytes.
const OVERHEAD: usize = 2 * std::mem::size_of::<Key>() + std::mem::size_of::<Entry>() + 16 + 16;

pub(crate) struct QueryCache {
    max: usize,
    lru: Mutex<Lru>,
    /// The latest identity seen per tier and block, to share (bounded by `SEEN_MAX`).
    seen: Mutex<HashMap<(usize, i64), Ident>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    invalidations: AtomicU64,
    result_hits: AtomicU64,
    result_misses: AtomicU64,
}

impl QueryCache {
    pub fn new(max: usize) -> QueryCache {
        QueryCache {
            max,
            lru: Mutex::default(),
            seen: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            result_hits: AtomicU64::new(0),
            result_misses: AtomicU64::new(0),
        }
    }

    /// `ident` as an Arc shared with earlier queries that saw the same set.
    fn shared_ident(&self, t: usize, start: i64, ident: Ident) -> Ident {
        let mut seen = self.seen.lock();
        if seen.len() > SEEN_MAX {
            seen.clear();
        }
        match seen.get(&(t, start)) {
            Some(old) if **old == *ident => old.clone(),
            _ => {
                seen.insert((t, start), ident.clone());
                ident
            }
        }
    }

    pub fn enabled(&self) -> bool {
        self.max > 0
    }

    pub fn stats(&self) -> QueryCacheStats {
        let lru = self.lru.lock();
        QueryCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            result_hits: self.result_hits.load(Ordering::Relaxed),
            result_misses: self.result_misses.load(Ordering::Relaxed),
            bytes: lru.bytes as u64,
            max_bytes: self.max as u64,
            entries: lru.map.len() as u64,
        }
    }

    /// Appends to `out` the items of `key`'s block with a time in `[lo, hi]`, if
    /// the cache holds the block as read from the segments `ident`.
    fn get<T: Item>(&self, key: Key, ident: &Ident, lo: i64, hi: i64, out: &mut Vec<T>) -> bool {
        let mut lru = self.lru.lock();
        let Some(e) = lru.map.get(&key) else { return false };
        // Identities are shared through `Idents`: the same Arc is the same set.
        if !Arc::ptr_eq(&e.ident, ident) && *e.ident != **ident {
            self.drop_entry(&mut lru, key);
            return false;
        }
        let Some(items) = T::slice(&e.items) else { return false };
        extend_within(items, lo, hi, out);
        let used = e.tick;
        lru.refresh(key, used);
        true
    }

    fn put<T: Item>(&self, key: Key, ident: Ident, mut items: Vec<T>) {
        // Reads reserve for whole chunks; an entry keeps only what it holds.
        if items.capacity() > items.len() + items.len() / 4 {
            items.shrink_to_fit();
        }
        let bytes = OVERHEAD + ident.len() * 16 + items.capacity() * std::mem::size_of::<T>();
        self.insert(key, ident, T::wrap(items), bytes);
    }

    /// The result cache entry under `key`, if any (its caller checks that it holds).
    pub fn get_final(&self, key: Key) -> Option<Arc<Final>> {
        let mut lru = self.lru.lock();
        let e = lru.map.get(&key)?;
        let Items::Final(f) = &e.items else { return None };
        let (f, used) = (f.clone(), e.tick);
        lru.refresh(key, used);
        Some(f)
    }

    /// Stores a result cache entry (replacing any under `key`), if it fits.
    pub fn put_final(&self, key: Key, f: Arc<Final>) {
        let bytes = OVERHEAD + f.bytes();
        self.insert(key, Ident::from(Vec::new()), Items::Final(f), bytes);
    }

    /// Drops the entry under `key`, which no longer holds, counting an invalidation.
    pub fn invalidate(&self, key: Key) {
        self.drop_entry(&mut self.lru.lock(), key);
    }

    /// Removes the entry under `key`, whose data changed, counting an invalidation.
    fn drop_entry(&self, lru: &mut Lru, key: Key) {
        if let Some(e) = lru.map.remove(&key) {
            lru.bytes -= e.bytes;
            self.invalidations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a query answered with (`hit`) or without the result cache.
    pub fn count_final(&self, hit: bool) {
        let c = if hit { &self.result_hits } else { &self.result_misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn insert(&self, key: Key, ident: Ident, items: Items, bytes: usize) {
        if bytes > self.max {
            return;
        }
        let mut lru = self.lru.lock();
        let tick = lru.touch(key);
        if let Some(old) = lru.map.insert(key, Entry { ident, items, bytes, tick }) {
            lru.bytes -= old.bytes;
        }
        lru.bytes += bytes;
        while lru.bytes > self.max {
            let Some((t, k)) = lru.order.pop_front() else { break };
            if lru.map.get(&k).is_some_and(|e| e.tick == t) {
                if let Some(e) = lru.map.remove(&k) {
                    lru.bytes -= e.bytes;
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Appends to `out` the items with a time in `[lo, hi]` of blocks of `block` ms
    /// (aligned to the epoch) keyed by `key(start)`, each taken from the cache or
    /// read with `fill(start, end)` (inclusive) and stored. Blocks missed in a row
    /// are read with one `fill` and split: a read of merged items over several
    /// blocks holds exactly the items of each block's own read, and a chunk that
    /// spans them is decoded once. `ident(start, end)` names the segments a block
    /// is read from. The caller vouches that no head holds anything in these blocks.
    #[allow(clippy::too_many_arguments)]
    pub fn read<T: Item>(
        &self,
        block: i64,
        lo: i64,
        hi: i64,
        key: impl Fn(i64) -> Key,
        mut ident: impl FnMut(i64, i64) -> Ident,
        mut fill: impl FnMut(i64, i64, &mut Vec<T>) -> Result<()>,
        out: &mut Vec<T>,
    ) -> Result<()> {
        if lo > hi {
            return Ok(());
        }
        let mut run: Vec<Missed> = Vec::new();
        let mut start = lo.div_euclid(block) * block;
        loop {
            // Near the ends of time a block cannot be named: read directly.
            let Some(end) = start.checked_add(block - 1) else {
                self.fill_run(&mut run, lo, hi, &mut fill, out)?;
                return fill(lo.max(start), hi, out);
            };
            let k = key(start);
            let id = ident(start, end);
            if id.is_empty() {
                // No segment of the tier meets the block: there is nothing to read.
                self.fill_run(&mut run, lo, hi, &mut fill, out)?;
            } else if run.is_empty() {
                if self.get(k, &id, lo, hi, out) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                } else {
                    run.push(Missed { start, end, key: k, ident: id });
                }
            } else {
                // Items come out in time order: the missed blocks before this one first.
                let mut hit = Vec::new();
                if self.get(k, &id, lo, hi, &mut hit) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    self.fill_run(&mut run, lo, hi, &mut fill, out)?;
                    out.extend_from_slice(&hit);
                } else {
                    run.push(Missed { start, end, key: k, ident: id });
                }
            }
            if end >= hi {
                return self.fill_run(&mut run, lo, hi, &mut fill, out);
            }
            start = end + 1;
        }
    }

    /// Reads the blocks of `run` (adjacent, in time order) with one `fill`, appends
    /// their items in `[lo, hi]` to `out` and stores each block; empties `run`.
    fn fill_run<T: Item>(
        &self,
        run: &mut Vec<Missed>,
        lo: i64,
        hi: i64,
        fill: &mut impl FnMut(i64, i64, &mut Vec<T>) -> Result<()>,
        out: &mut Vec<T>,
    ) -> Result<()> {
        let (Some(first), Some(last)) = (run.first(), run.last()) else { return Ok(()) };
        self.misses.fetch_add(run.len() as u64, Ordering::Relaxed);
        let mut items = Vec::new();
        fill(first.start, last.end, &mut items)?;
        extend_within(&items, lo, hi, out);
        let mut at = 0;
        for m in run.drain(..) {
            let z = at + items[at..].partition_point(|x| x.ts() <= m.end);
            self.put(m.key, m.ident, items[at..z].to_vec());
            at = z;
        }
        Ok(())
    }
}

/// A block a read missed, to be read with the blocks missed after it.
struct Missed {
    start: i64,
    end: i64,
    key: Key,
    ident: Ident,
}

/// Appends the items of the sorted `items` with a time in `[lo, hi]`.
fn extend_within<T: Timed>(items: &[T], lo: i64, hi: i64, out: &mut Vec<T>) {
    let a = items.partition_point(|x| x.ts() < lo);
    let b = items.partition_point(|x| x.ts() <= hi);
    if a < b {
        out.extend_from_slice(&items[a..b]);
    }
}
