//! Last-write-wins merging of time-ordered runs, shared by samples and rollup buckets.

use crate::sample::Sample;

/// Something with a timestamp that identifies it within its series.
pub trait Timed: Copy {
    fn ts(&self) -> i64;
}

impl Timed for Sample {
    #[inline]
    fn ts(&self) -> i64 {
        self.ts
    }
}

/// Merges two sorted runs, unique by timestamp; on equal timestamps `b` wins.
pub fn merge_prefer_second<T: Timed>(a: &[T], b: &[T], out: &mut Vec<T>) {
    out.reserve(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].ts() < b[j].ts() {
            out.push(a[i]);
            i += 1;
        } else {
            if a[i].ts() == b[j].ts() {
                i += 1;
            }
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// Merges sorted, unique runs given oldest write first; later runs win ties.
pub fn merge_runs<T: Timed>(mut runs: Vec<Vec<T>>) -> Vec<T> {
    runs.retain(|r| !r.is_empty());
    match runs.len() {
        0 => return Vec::new(),
        1 => return runs.pop().unwrap_or_default(),
        _ => {}
    }
    // Common case: sources cover disjoint, ascending time ranges.
    let disjoint = runs.windows(2).all(|w| match (w[0].last(), w[1].first()) {
        (Some(a), Some(b)) => a.ts() < b.ts(),
        _ => false,
    });
    if disjoint {
        return runs.concat();
    }
    let mut acc = runs.remove(0);
    for r in runs {
        let mut out = Vec::with_capacity(acc.len() + r.len());
        merge_prefer_second(&acc, &r, &mut out);
        acc = out;
    }
    acc
}

/// Stable-sorts by timestamp and keeps the last-arrived item of each timestamp.
pub fn normalize<T: Timed>(v: &mut Vec<T>) {
    v.sort_by_key(|s| s.ts());
    let mut w = 0;
    for r in 0..v.len() {
        if w > 0 && v[w - 1].ts() == v[r].ts() {
            v[w - 1] = v[r];
        } else {
            v[w] = v[r];
            w += 1;
        }
    }
    v.truncate(w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn later_runs_win_like_a_map_insert() {
        let mut x: u64 = 99;
        for _ in 0..200 {
            let mut runs = Vec::new();
            let mut model = BTreeMap::new();
            for r in 0..1 + x % 5 {
                let mut run: Vec<Sample> = Vec::new();
                for _ in 0..x % 17 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    run.push(Sample::new((x >> 40) as i64 % 50, (r * 100 + (x >> 58)) as f64));
                }
                normalize(&mut run);
                for s in &run {
                    model.insert(s.ts, s.value);
                }
                runs.push(run);
            }
            let want: Vec<Sample> = model.into_iter().map(|(t, v)| Sample::new(t, v)).collect();
            assert_eq!(merge_runs(runs), want);
            x ^= x >> 7;
        }
    }
}
