//! The series index: labels <-> series id, and label pair -> sorted postings.
//!
//! It lives in memory for the life of the `Db` and is rebuilt on open from the
//! segments' series tables and the WAL's series records. Ids are never reused.

use std::collections::HashMap;
use std::hash::{Hash, Hasher, RandomState};

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::hash::IdMap;
use crate::labels::{Labels, MatchOp, Matcher};

#[derive(Default)]
struct Inner {
    /// hashbrown rather than std so a borrowed pair slice can probe it (`PairsKey`)
    /// without building a `Labels`; SipHash with a random key, as clients choose labels.
    by_labels: hashbrown::HashMap<Labels, u64, RandomState>,
    by_id: IdMap<Labels>,
    /// name -> value -> ids. Kept sorted; `dirty` marks lists that need a sort after bulk loads.
    postings: HashMap<String, HashMap<String, Vec<u64>>>,
    all: Vec<u64>,
    dirty: bool,
    next_id: u64,
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
        if let Some(&id) = self.inner.read().by_labels.get(labels) {
            return Ok((id, false));
        }
        let mut g = self.inner.write();
        if let Some(&id) = g.by_labels.get(labels) {
            return Ok((id, false));
        }
        if g.by_id.len() >= self.max_series {
            return Err(Error::SeriesLimit { max: self.max_series });
        }
        let id = g.next_id;
        g.next_id += 1;
        insert(&mut g, id, labels.clone());
        Ok((id, true))
    }

    /// The id of the series whose labels are exactly `pairs`, in `Labels` order
    /// (sorted by name, no empty values). Allocates nothing; pairs in any other
    /// order match no series.
    pub fn find(&self, pairs: &[(&str, &str)]) -> Option<u64> {
        self.inner.read().by_labels.get(&PairsKey(pairs)).copied()
    }

    /// Registers a series with a known id (from a segment or the WAL). Conflicting
    /// definitions are corruption, reported to the caller as a reason string.
    pub fn load(&self, id: u64, labels: &Labels) -> std::result::Result<(), String> {
        let mut g = self.inner.write();
        if let Some(existing) = g.by_id.get(&id) {
            if existing != labels {
                return Err(format!("series id {id} is defined as both {existing} and {labels}"));
            }
            return Ok(());
        }
        if let Some(&other) = g.by_labels.get(labels) {
            return Err(format!("series {labels} has two ids, {other} and {id}"));
        }
        g.next_id = g.next_id.max(id + 1);
        g.dirty = true;
        insert(&mut g, id, labels.clone());
        Ok(())
    }

    /// Sorts postings after bulk loading (ids may arrive out of order then).
    pub fn finish_load(&self) {
        let mut g = self.inner.write();
        if !g.dirty {
            return;
        }
        for values in g.postings.values_mut() {
            for ids in values.values_mut() {
                ids.sort_unstable();
            }
        }
        g.all.sort_unstable();
        g.dirty = false;
    }

    pub fn labels(&self, id: u64) -> Option<Labels> {
        self.inner.read().by_id.get(&id).cloned()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.inner.read().by_id.contains_key(&id)
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
        let mut ids: Vec<(Labels, u64)> =
            self.select(matchers).into_iter().filter_map(|id| Some((self.labels(id)?, id))).collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
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
            ids.retain(|id| g.by_id.get(id).is_some_and(|l| rest.iter().all(|m| m.matches_labels(l))));
        }
        ids
    }

    /// Every series id, sorted.
    pub fn all_ids(&self) -> Vec<u64> {
        self.inner.read().all.clone()
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

/// A borrowed label set that probes `by_labels`. It hashes exactly as `Labels`
/// does: a slice of `(&str, &str)` and one of `(String, String)` feed a hasher the
/// same length prefix and the same bytes (`find_hashes_like_labels` holds that).
struct PairsKey<'a>(&'a [(&'a str, &'a str)]);

impl Hash for PairsKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl hashbrown::Equivalent<Labels> for PairsKey<'_> {
    fn equivalent(&self, key: &Labels) -> bool {
        key.len() == self.0.len() && key.iter().zip(self.0).all(|(a, b)| a == *b)
    }
}

fn insert(g: &mut Inner, id: u64, labels: Labels) {
    for (k, v) in labels.iter() {
        g.postings.entry(k.to_string()).or_default().entry(v.to_string()).or_default().push(id);
    }
    g.all.push(id);
    g.by_id.insert(id, labels.clone());
    g.by_labels.insert(labels, id);
}

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
