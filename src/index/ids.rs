//! Labels by series id. Ids are handed out in sequence from 1 and never reused,
//! so they are dense: a vector indexed by id costs 16 bytes a series where a hash
//! map costs about 50 (a million series: 16 MB instead of 52). An id far past
//! the count (possible only in files written by hand) goes to a map instead, so
//! no id makes the vector huge.

use crate::hash::IdMap;
use crate::labels::Labels;

#[derive(Default)]
pub(super) struct IdTable {
    dense: Vec<Option<Labels>>,
    sparse: IdMap<Labels>,
    len: usize,
}

impl IdTable {
    pub fn get(&self, id: u64) -> Option<&Labels> {
        match usize::try_from(id).ok().and_then(|i| self.dense.get(i)) {
            Some(slot) => slot.as_ref(),
            None => self.sparse.get(&id),
        }
    }

    pub fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room for ids up to `max_id` in the vector, when they may go there.
    pub fn reserve_to(&mut self, max_id: u64, count: usize) {
        if self.dense_ok(max_id, count) {
            self.dense.reserve_exact((max_id as usize + 1).saturating_sub(self.dense.len()));
        }
    }

    /// Whether `id` may live in the vector with `count` series known: within
    /// twice the count (plus a margin), so at most half the slots are empty.
    fn dense_ok(&self, id: u64, count: usize) -> bool {
        id <= (count as u64).saturating_mul(2).saturating_add(1 << 16)
    }

    /// Adds a series whose id is not in the table.
    pub fn insert(&mut self, id: u64, labels: Labels) {
        self.len += 1;
        if let Some(slot) = usize::try_from(id).ok().and_then(|i| self.dense.get_mut(i)) {
            *slot = Some(labels);
        } else if self.dense_ok(id, self.len) {
            self.dense.resize(id as usize + 1, None);
            self.dense[id as usize] = Some(labels);
        } else {
            self.sparse.insert(id, labels);
        }
    }

    /// Every series, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Labels)> {
        let dense = self.dense.iter().enumerate().filter_map(|(i, l)| Some((i as u64, l.as_ref()?)));
        dense.chain(self.sparse.iter().map(|(id, l)| (*id, l)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_far_ids_alike() {
        let mut t = IdTable::default();
        let l = |i: u64| Labels::metric("m", [("i", i.to_string())]).unwrap();
        let ids = [1u64, 2, 5, 3, 70_000, u64::MAX, 4, 1 << 40];
        for &id in &ids {
            assert!(!t.contains(id));
            t.insert(id, l(id));
        }
        assert_eq!(t.len(), ids.len());
        for &id in &ids {
            assert_eq!(t.get(id), Some(&l(id)));
        }
        for id in [0u64, 6, 69_999, 1 << 39] {
            assert!(t.get(id).is_none());
        }
        let mut all: Vec<u64> = t.iter().map(|(id, _)| id).collect();
        all.sort_unstable();
        let mut want = ids.to_vec();
        want.sort_unstable();
        assert_eq!(all, want);
        // Far ids stay out of the vector.
        assert!(t.dense.len() < 1 << 20);
    }
}
