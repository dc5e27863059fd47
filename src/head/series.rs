//! One series in the head: closed XOR chunks, the open chunk, and the out-of-order buffer.

use crate::codec::xor::XorChunk;
use crate::merge::{merge_prefer_second, normalize};
use crate::sample::Sample;

/// Samples per head chunk before a new one is cut.
const CHUNK_SAMPLES: usize = 256;
/// Out-of-order buffer length at which it is sorted and deduplicated in place.
const OOO_COMPACT_AT: usize = 4096;

#[derive(Default)]
pub struct HeadSeries {
    closed: Vec<XorChunk>,
    open: XorChunk,
    /// Late samples and overwrites, in arrival order; `ooo_sorted` leading entries are sorted and unique.
    ooo: Vec<Sample>,
    ooo_sorted: usize,
}

impl HeadSeries {
    /// Appends one sample; returns the heap bytes it added (approximately).
    #[inline]
    pub fn append(&mut self, ts: i64, v: f64) -> usize {
        match self.open.last_ts().or_else(|| self.closed.last().and_then(|c| c.last_ts())) {
            Some(last) if ts <= last => {
                self.ooo.push(Sample::new(ts, v));
                if self.ooo.len() >= OOO_COMPACT_AT + self.ooo_sorted {
                    self.compact_ooo();
                }
                std::mem::size_of::<Sample>()
            }
            _ => {
                // The open chunk's buffer is counted as it grows; it only shrinks when
                // the chunk closes, so what was counted stays an upper bound.
                let mut added = 0;
                if self.open.len() >= CHUNK_SAMPLES {
                    let mut full = std::mem::take(&mut self.open);
                    full.shrink_to_fit();
                    let before = self.closed.capacity();
                    self.closed.push(full);
                    added += (self.closed.capacity() - before) * std::mem::size_of::<XorChunk>();
                }
                let before = self.open.heap_bytes();
                self.open.append(ts, v);
                added + self.open.heap_bytes().saturating_sub(before)
            }
        }
    }

    /// Sorts the out-of-order buffer by time, keeping the newest write per timestamp.
    fn compact_ooo(&mut self) {
        normalize(&mut self.ooo);
        self.ooo_sorted = self.ooo.len();
    }

    pub fn shrink(&mut self) {
        self.compact_ooo();
        self.ooo.shrink_to_fit();
        self.open.shrink_to_fit();
    }

    /// Appends the samples in `[mint, maxt]` (inclusive) to `out`, sorted and unique by timestamp.
    pub fn read(&self, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let start = out.len();
        for c in self.closed.iter().chain(std::iter::once(&self.open)) {
            match (c.first_ts(), c.last_ts()) {
                (Some(a), Some(b)) if a <= maxt && b >= mint => {}
                _ => continue,
            }
            out.extend(c.iter().filter(|s| s.ts >= mint && s.ts <= maxt));
        }
        if self.ooo.is_empty() {
            return;
        }
        let mut late: Vec<Sample> = self.ooo.iter().filter(|s| s.ts >= mint && s.ts <= maxt).copied().collect();
        if late.is_empty() {
            return;
        }
        normalize(&mut late);
        let in_order = out.split_off(start);
        merge_prefer_second(&in_order, &late, out);
    }

    /// `(oldest, newest, distinct samples)`, or None when empty. Only a series with
    /// late samples or overwrites is read to count them.
    pub fn distinct_span(&self, scratch: &mut Vec<Sample>) -> Option<(i64, i64, u64)> {
        let (min, max) = (self.min_ts()?, self.latest()?.ts);
        if self.ooo.is_empty() {
            let n = self.closed.iter().map(|c| c.len()).sum::<usize>() + self.open.len();
            return Some((min, max, n as u64));
        }
        scratch.clear();
        self.read(i64::MIN, i64::MAX, scratch);
        Some((min, max, scratch.len() as u64))
    }

    /// The oldest timestamp held, in order or not.
    pub fn min_ts(&self) -> Option<i64> {
        let in_order = self.closed.first().unwrap_or(&self.open).first_ts();
        let late = self.ooo.iter().map(|s| s.ts).min();
        match (in_order, late) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn latest(&self) -> Option<Sample> {
        let in_order = self.open.last_ts().map(|ts| Sample::new(ts, self.open.last_value().unwrap_or(f64::NAN)));
        let in_order = in_order.or_else(|| {
            let c = self.closed.last()?;
            Some(Sample::new(c.last_ts()?, c.last_value()?))
        });
        // The newest out-of-order entry for the largest timestamp (last in arrival order wins).
        let late = self.ooo.iter().rev().copied().reduce(|best, s| if s.ts > best.ts { s } else { best });
        match (in_order, late) {
            (Some(a), Some(b)) => Some(if b.ts >= a.ts { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}
