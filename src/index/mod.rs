//! The series index: labels <-> series id, and label pair -> sorted postings.
//!
//! It lives in memory for the life of the `Db`. On open it is loaded from the
//! index checkpoint (`checkpoint.rs`) for the segments that covers, and from the
//! other segments' series tables and the WAL's series records. Ids are never reused.

pub mod checkpoint;
mod ids;

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::hash::LabelBuildHasher;
use crate::labels::{Labels, MatchOp, Matcher};

#[derive(Default)]
struct Inner {
    /// Ids by their labels' packed text ([`Labels::text`]), each entry with its
    /// hash, so growing the table hashes nothing again. SipHash with a random key,
    /// as clients choose labels. An entry holds no labels (16 bytes, where a
    /// shared copy made it 32, and nothing to count or release): the text it is
    /// compared with is `by_id`'s.
    by_labels: hashbrown::HashTable<Keyed>,
    hasher: RandomState,
    by_id: ids::IdTable,
    /// name -> value -> ids. Kept sorted; `dirty` marks lists that need a sort after
    /// bulk loads. The seeded multiply hash, as a series' pairs are probed once each.
    postings: HashMap<String, HashMap<String, Vec<u64>, LabelBuildHasher>, LabelBuildHasher>,
    dirty: bool,
    next_id: u64,
}

struct Keyed {
    hash: u64,
    id: u64,
}

/// Whether `e` is the entry of the labels packed as `text`, hashed as `hash`.
fn is_entry(by_id: &ids::IdTable, e: &Keyed, hash: u64, text: &str) -> bool {
    e.hash == hash && by_id.get(e.id).is_some_and(|l| l.text() == text)
}

impl Inner {
    fn hash(&self, text: &str) -> u64 {
        self.hasher.hash_one(text)
    }

    /// The id whose labels pack to `text`, hashed as `hash`.
    fn lookup(&self, hash: u64, text: &str) -> Option<u64> {
        self.by_labels.find(hash, |e| is_entry(&self.by_id, e, hash, text)).map(|e| e.id)
    }
}

thread_local! {
    /// Packs borrowed pairs for a lookup without allocating per call.
    static PACK: RefCell<String> = const { RefCell::new(String::new()) };
}

pub struct SeriesIndex {
    inner: RwLock<Inner>,
    max_series: usize,
}

impl SeriesIndex {
    pub fn new(first_id: u64, max_series: usize) -> SeriesIndex {
        let inner = Inner { next_id: first_id.max(1), ..Default::default() };
        SeriesIndex { inner: RwLock::new(inner), max_series }
    }

    /// The id of `labels`, creating it if new. Returns `(id, created)`.
    pub fn get_or_create(&self, labels: &Labels) -> Result<(u64, bool)> {
        let text = labels.text();
        {
            let g = self.inner.read();
            if let Some(id) = g.lookup(g.hash(text), text) {
                return Ok((id, false));
            }
        }
        let mut g = self.inner.write();
        let h = g.hash(text);
        if let Some(id) = g.lookup(h, text) {
            return Ok((id, false));
        }
        if g.by_id.len() >= self.max_series {
            return Err(Error::SeriesLimit { max: self.max_series });
        }
        let id = g.next_id;
        g.next_id += 1;
        insert(&mut g, h, id, labels.clone());
        Ok((id, true))
    }

    /// The id of the series whose labels are exactly `pairs`, in `Labels` order
    /// (sorted by name, no empty values). Allocates nothing once the thread's
    /// packing buffer has grown; pairs in any other order match no series.
    pub fn find(&self, pairs: &[(&str, &str)]) -> Option<u64> {
        PACK.with_borrow_mut(|text| {
            crate::pairs::pack(text, pairs.iter().copied());
            let g = self.inner.read();
            g.lookup(g.hash(text), text)
        })
    }

    /// Registers a series with a known id (from a segment or the WAL). Conflicting
    /// definitions are corruption, reported to the caller as a reason string.
    pub fn load(&self, id: u64, labels: &Labels) -> std::result::Result<(), String> {
        let mut g = self.inner.write();
        if let Some(existing) = g.by_id.get(id) {
            if existing != labels {
                return Err(format!("series id {id} is defined as both {existing} and {labels}"));
            }
            return Ok(());
        }
        let h = g.hash(labels.text());
        if let Some(other) = g.lookup(h, labels.text()) {
            return Err(format!("series {labels} has two ids, {other} and {id}"));
        }
        g.next_id = g.next_id.max(id + 1);
        g.dirty = true;
        insert(&mut g, h, id, labels.clone());
        Ok(())
    }

    /// [`SeriesIndex::load`] for labels borrowed from a file (already validated as
    /// a label set), allocating only for a series not yet known. A known id is
    /// checked by comparing packed texts, without hashing them.
    pub fn load_pairs(&self, id: u64, pairs: &[(&str, &str)]) -> std::result::Result<(), String> {
        PACK.with_borrow_mut(|text| {
            crate::pairs::pack(text, pairs.iter().copied());
            if let Some(existing) = self.inner.read().by_id.get(id) {
                if existing.text() == text.as_str() {
                    return Ok(());
                }
                let labels = Labels::from_checked(pairs);
                return Err(format!("series id {id} is defined as both {existing} and {labels}"));
            }
            let mut g = self.inner.write();
            let h = g.hash(text);
            if let Some(other) = g.lookup(h, text) {
                let labels = Labels::from_checked(pairs);
                return Err(format!("series {labels} has two ids, {other} and {id}"));
            }
            g.next_id = g.next_id.max(id + 1);
            g.dirty = true;
            // `text` is these pairs packed: no need to pack them again.
            insert(&mut g, h, id, Labels::from_packed(text));
            Ok(())
        })
    }

    /// Room for `count` series with ids below `next_id` (before a bulk load).
    pub fn reserve(&self, next_id: u64, count: usize) {
        self.inner.write().by_id.reserve_to(next_id, count);
    }

    /// Empties the index (after a checkpoint failed to load part way), keeping the
    /// next id it would assign.
    pub fn reset(&self) {
        let mut g = self.inner.write();
        let next_id = g.next_id;
        *g = Inner { next_id, ..Default::default() };
    }

    /// Sorts postings after bulk loading (ids may arrive out of order then).
    pub fn finish_load(&self) {
        let mut g = self.inner.write();
        if !g.dirty {
            return;
        }
        // Bulk loads leave lists with doubling slack: up to half of what they hold.
        for values in g.postings.values_mut() {
            for ids in values.values_mut() {
                ids.sort_unstable();
                ids.shrink_to_fit();
            }
        }
        g.dirty = false;
    }

    pub fn labels(&self, id: u64) -> Option<Labels> {
        self.inner.read().by_id.get(id).cloned()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.inner.read().by_id.contains(id)
    }

    pub fn len(&self) -> usize {
        self.inner.read().by_id.len()
    }

    pub fn next_id(&self) -> u64 {
        self.inner.read().next_id
    }

    /// [`SeriesIndex::select`] in label order, the order Prometheus reads series in
    /// (which decides `topk`/`bottomk` ties and the order of unsorted answers).
    pub(crate) fn select_in_label_order(&self, matchers: &[Matcher]) -> Vec<u64> {
        let ids = self.select(matchers);
        // Sort keys side by side in one buffer: memcmp per comparison, one allocation.
        let mut keys = Vec::with_capacity(ids.len() * 96);
        let mut at: Vec<(usize, usize, u64)> = Vec::with_capacity(ids.len());
        {
            let g = self.inner.read();
            for id in ids {
                let Some(l) = g.by_id.get(id) else { continue };
                let a = keys.len();
                l.sort_key(&mut keys);
                at.push((a, keys.len(), id));
            }
        }
        // Label sets are unique per id, so the keys are too.
        at.sort_unstable_by(|x, y| keys[x.0..x.1].cmp(&keys[y.0..y.1]));
        at.into_iter().map(|(_, _, id)| id).collect()
    }

    /// Ids of series matching every matcher, sorted ascending. No matchers selects nothing,
    /// as does a set of matchers that all match the empty value (they would select everything,
    /// which is never what a caller meant; Prometheus refuses such selectors too).
    pub fn select(&self, matchers: &[Matcher]) -> Vec<u64> {
        let g = self.inner.read();
        let (positive, rest): (Vec<&Matcher>, Vec<&Matcher>) = matchers.iter().partition(|m| !m.matches_empty());
        if positive.is_empty() {
            return Vec::new();
        }
        let mut ids: Option<Vec<u64>> = None;
        for m in &positive {
            let list = postings_for(&g, m);
            ids = Some(match ids {
                None => list,
                Some(acc) => intersect(&acc, &list),
            });
            if ids.as_ref().is_some_and(|v| v.is_empty()) {
                return Vec::new();
            }
        }
        let mut ids = ids.unwrap_or_default();
        if !rest.is_empty() {
            ids.retain(|&id| g.by_id.get(id).is_some_and(|l| rest.iter().all(|m| m.matches_labels(l))));
        }
        ids
    }

    /// Every series id, sorted.
    pub fn all_ids(&self) -> Vec<u64> {
        // The table lists dense ids in order, so this sorts only when some are not.
        let mut ids: Vec<u64> = self.inner.read().by_id.iter().map(|(id, _)| id).collect();
        if !ids.is_sorted() {
            ids.sort_unstable();
        }
        ids
    }

    /// Distinct values of a label name, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let g = self.inner.read();
        let mut v: Vec<String> = g.postings.get(name).map(|m| m.keys().cloned().collect()).unwrap_or_default();
        v.sort();
        v
    }

    /// Number of series per value of a label name (e.g. series per metric name).
    pub fn value_counts(&self, name: &str) -> Vec<(String, usize)> {
        let g = self.inner.read();
        let mut v: Vec<(String, usize)> =
            g.postings.get(name).map(|m| m.iter().map(|(k, ids)| (k.clone(), ids.len())).collect()).unwrap_or_default();
        v.sort();
        v
    }
}

/// Adds a series whose labels' packed text hashes to `hash` and is not in the index.
fn insert(g: &mut Inner, hash: u64, id: u64, labels: Labels) {
    for (k, v) in labels.iter() {
        // Probe before allocating: almost every name and value is already there.
        let values = match g.postings.get_mut(k) {
            Some(values) => values,
            None => g.postings.entry(k.to_string()).or_default(),
        };
        match values.get_mut(v) {
            Some(ids) => ids.push(id),
            None => {
                values.insert(v.to_string(), vec![id]);
            }
        }
    }
    g.by_labels.insert_unique(hash, Keyed { hash, id }, |e| e.hash);
    g.by_id.insert(id, labels);
}

/// Adds the keys of series already in `by_id` to `by_labels` (sized for them),
/// refusing a label set that has two ids. In the order of the buckets they land
/// in: a million inserts in hash order touch the 34 MB table at random, a cache
/// and TLB miss each (most of what loading a checkpoint cost), while in bucket
/// order they walk it once. The order only matters for speed; it comes from
/// hashbrown's layout (a power-of-two bucket count at 8/7 of the capacity,
/// bucket = hash & mask).
fn insert_keys(g: &mut Inner, keys: Vec<Keyed>) -> std::result::Result<(), String> {
    let Inner { by_labels, by_id, .. } = g;
    by_labels.reserve(keys.len(), |e| e.hash);
    let buckets = (by_labels.capacity() / 7 * 8).max(1).next_power_of_two() as u64;
    // A counting sort on the bucket number's top bits: near enough to bucket
    // order (a bin spans at most a few pages of the table), in two passes.
    let shift = buckets.trailing_zeros().saturating_sub(BIN_BITS);
    let bin = |k: &Keyed| ((k.hash & (buckets - 1)) >> shift) as usize;
    let mut starts = vec![0usize; (1 << BIN_BITS) + 1];
    for k in &keys {
        starts[bin(k) + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut sorted: Vec<Keyed> = Vec::with_capacity(keys.len());
    sorted.resize_with(keys.len(), || Keyed { hash: 0, id: 0 });
    for k in keys {
        let b = bin(&k);
        sorted[starts[b]] = k;
        starts[b] += 1;
    }
    for k in sorted {
        let (hash, id) = (k.hash, k.id);
        let text = by_id.get(id).map_or("", |l| l.text());
        match by_labels.entry(hash, |e| is_entry(by_id, e, hash, text), |e| e.hash) {
            hashbrown::hash_table::Entry::Occupied(o) => {
                let labels = by_id.get(id).map(|l| l.to_string()).unwrap_or_default();
                return Err(format!("series {labels} has two ids, {} and {id}", o.get().id));
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(k);
            }
        }
    }
    Ok(())
}

/// Bins of the counting sort in [`insert_keys`].
const BIN_BITS: u32 = 12;

/// Postings of a matcher that does not match the empty value: union over matching values.
fn postings_for(g: &Inner, m: &Matcher) -> Vec<u64> {
    let Some(values) = g.postings.get(&m.name) else { return Vec::new() };
    if m.op == MatchOp::Eq {
        return values.get(&m.value).cloned().unwrap_or_default();
    }
    let lists: Vec<&Vec<u64>> = values.iter().filter(|(v, _)| m.matches(v)).map(|(_, ids)| ids).collect();
    match lists.len() {
        0 => Vec::new(),
        1 => lists[0].clone(),
        _ => {
            let mut all: Vec<u64> = lists.into_iter().flatten().copied().collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn selects_like_a_linear_scan() {
        let idx = SeriesIndex::new(1, 1000);
        let mut all = Vec::new();
        for h in 0..20 {
            for m in ["cpu", "mem"] {
                let mut pairs = vec![("__name__", m.to_string()), ("host", format!("h{h}"))];
                if h % 3 == 0 {
                    pairs.push(("rack", format!("r{}", h % 2)));
                }
                let labels = Labels::from_pairs(pairs).unwrap();
                let (id, created) = idx.get_or_create(&labels).unwrap();
                assert!(created);
                assert_eq!(idx.get_or_create(&labels).unwrap(), (id, false));
                all.push((id, labels));
            }
        }
        let cases = vec![
            vec![Matcher::eq("__name__", "cpu")],
            vec![Matcher::eq("__name__", "cpu"), Matcher::regex("host", "h1.*").unwrap()],
            vec![Matcher::eq("__name__", "mem"), Matcher::ne("rack", "r0")],
            vec![Matcher::regex("__name__", ".+").unwrap(), Matcher::eq("rack", "")],
            vec![Matcher::regex("host", "h(1|2)").unwrap(), Matcher::not_regex("__name__", "c.*").unwrap()],
            vec![Matcher::eq("__name__", "nope")],
        ];
        for ms in cases {
            let want: Vec<u64> =
                all.iter().filter(|(_, lb)| ms.iter().all(|m| m.matches_labels(lb))).map(|(id, _)| *id).collect();
            assert_eq!(idx.select(&ms), want, "matchers {ms:?}");
        }
        assert!(idx.select(&[Matcher::ne("host", "x")]).is_empty());
    }

    #[test]
    fn find_hashes_like_labels() {
        let idx = SeriesIndex::new(1, 1000);
        let mut made = Vec::new();
        for i in 0..200 {
            let name = format!("m{}", i % 7);
            let host = format!("h{i}");
            let mut pairs = vec![("__name__", name.as_str()), ("host", host.as_str())];
            if i % 3 == 0 {
                pairs.push(("zone", "ü-1"));
            }
            let (id, _) = idx.get_or_create(&l(&pairs)).unwrap();
            made.push((id, pairs.iter().map(|&(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()));
        }
        for (id, owned) in &made {
            let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(idx.find(&pairs), Some(*id), "{pairs:?}");
            // A prefix, an extra label, another value or another order is another series.
            assert_eq!(idx.find(&pairs[..1]), None);
            let mut more = pairs.clone();
            more.push(("zz", "1"));
            assert_eq!(idx.find(&more), None);
            let mut other = pairs.clone();
            other[1].1 = "nope";
            assert_eq!(idx.find(&other), None);
            let mut swapped = pairs.clone();
            swapped.swap(0, 1);
            assert_eq!(idx.find(&swapped), None);
        }
    }

    #[test]
    fn enforces_series_limit_and_detects_conflicts() {
        let idx = SeriesIndex::new(1, 2);
        idx.get_or_create(&l(&[("a", "1")])).unwrap();
        idx.get_or_create(&l(&[("a", "2")])).unwrap();
        assert!(matches!(idx.get_or_create(&l(&[("a", "3")])), Err(Error::SeriesLimit { max: 2 })));
        assert!(idx.load(1, &l(&[("a", "9")])).is_err());
        assert!(idx.load(7, &l(&[("a", "1")])).is_err());
        idx.load(9, &l(&[("b", "1")])).unwrap();
        assert_eq!(idx.next_id(), 10);
    }
}
