//! Rollup (downsampling) math: mergeable per-interval partial aggregates.
//!
//! A [`Bucket`] summarises the samples of one series whose timestamps fall in
//! `[start, start + width)`, where `start` is a multiple of `width` since the
//! epoch. It keeps count, sum, min, max, first, last and the counter increase,
//! which is everything needed to merge two partial buckets exactly and to answer
//! Avg/Sum/Min/Max/Count/First/Last/Rate/Increase as the raw samples would.
//! No sum of squares is kept: Stddev and Quantile always read raw samples.
//!
//! NaN: counted, and added into `sum` (so `sum` is NaN as it would be on raw);
//! `min`/`max` ignore NaN like `f64::min`/`f64::max` (NaN only when every value
//! is NaN); `first`/`last` keep the actual values bit for bit; a NaN on either
//! side of a counter delta makes `increase` NaN.
//!
//! Everything here is pure; the byte format lives in [`codec`]. The downsampler that
//! writes the rollup tiers from sealed segments is `downsample.rs`.

pub mod codec;
mod downsample;

use crate::error::{Error, Result};
use crate::sample::Sample;

/// Width of the 5-minute tier's buckets, in ms.
pub const FIVE_MIN_MS: i64 = 5 * 60 * 1000;
/// Width of the hourly tier's buckets, in ms.
pub const HOUR_MS: i64 = 60 * 60 * 1000;

/// A mergeable partial aggregate of one series over one aligned interval.
///
/// Invariants of a non-empty bucket (checked by [`check_buckets`], by
/// [`rollup_buckets`] and by the decoder): `count >= 1`,
/// `start <= first_ts <= last_ts`, and `first_ts == last_ts` exactly when
/// `count == 1`. An empty bucket (`count == 0`, from [`Bucket::empty`]) is the
/// identity of [`Bucket::merge`] and [`Bucket::combine`] and is never stored.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    /// Aligned bucket start, ms since the epoch.
    pub start: i64,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub first: f64,
    pub first_ts: i64,
    pub last: f64,
    pub last_ts: i64,
    /// Counter increase between consecutive samples inside the bucket, reset-aware.
    pub increase: f64,
}

/// Bitwise on the floats, so NaN equals the same NaN: what round-trip tests want.
impl PartialEq for Bucket {
    fn eq(&self, o: &Self) -> bool {
        let f = |a: f64, b: f64| a.to_bits() == b.to_bits();
        self.start == o.start
            && self.count == o.count
            && f(self.sum, o.sum)
            && f(self.min, o.min)
            && f(self.max, o.max)
            && f(self.first, o.first)
            && self.first_ts == o.first_ts
            && f(self.last, o.last)
            && self.last_ts == o.last_ts
            && f(self.increase, o.increase)
    }
}

/// The counter increase from `prev` to `cur`, as Prometheus counts it: a drop
/// means the counter reset to zero, so the whole new value is the increase.
/// NaN on either side gives NaN (both comparisons are false).
#[inline]
pub fn counter_delta(prev: f64, cur: f64) -> f64 {
    if cur < prev {
        cur
    } else {
        cur - prev
    }
}

/// `floor(ts / width) * width`, or `None` when that is below `i64::MIN` or
/// `width <= 0`.
pub fn align(ts: i64, width: i64) -> Option<i64> {
    if width <= 0 {
        return None;
    }
    i64::try_from(i128::from(ts.div_euclid(width)) * i128::from(width)).ok()
}

impl Bucket {
    /// The empty bucket at `start`: count 0, sum 0, every other value NaN.
    pub fn empty(start: i64) -> Bucket {
        Bucket {
            start,
            count: 0,
            sum: 0.0,
            min: f64::NAN,
            max: f64::NAN,
            first: f64::NAN,
            first_ts: start,
            last: f64::NAN,
            last_ts: start,
            increase: 0.0,
        }
    }

    /// Summarises `samples`, which must be sorted by strictly increasing `ts`
    /// (not checked here: [`rollup`] checks). Values are accumulated in order,
    /// exactly as [`Bucket::push`] would.
    pub fn from_samples(start: i64, samples: &[Sample]) -> Bucket {
        let mut b = Bucket::empty(start);
        for s in samples {
            b.push(*s);
        }
        b
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds one sample later than every sample already in the bucket.
    pub fn push(&mut self, s: Sample) {
        if self.count == 0 {
            self.first = s.value;
            self.first_ts = s.ts;
        } else {
            self.increase += counter_delta(self.last, s.value);
        }
        self.count = self.count.saturating_add(1);
        self.sum += s.value;
        self.min = self.min.min(s.value);
        self.max = self.max.max(s.value);
        self.last = s.value;
        self.last_ts = s.ts;
    }

    /// Merges `later`, a partial of the same series whose samples all come after
    /// this bucket's (`self.last_ts < later.first_ts`). The result is what
    /// [`Bucket::from_samples`] gives on the union, except that float sums are
    /// added in a different order. `start` stays `self.start`, so this also
    /// folds 5-minute buckets into the hour that holds them.
    ///
    /// If the partials overlap in time (the contract is broken) nothing panics:
    /// count/sum/min/max are still exact, first/last go by timestamp (ties: the
    /// first from `self`, the last from `later`), but the counter delta across
    /// the seam is unknowable and left out. Callers must re-roll from raw then.
    pub fn merge(&mut self, later: &Bucket) {
        if later.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = Bucket { start: self.start, ..*later };
            return;
        }
        if later.first_ts > self.last_ts {
            self.increase = self.increase + counter_delta(self.last, later.first) + later.increase;
            self.last = later.last;
            self.last_ts = later.last_ts;
        } else {
            self.increase += later.increase;
            if later.first_ts < self.first_ts {
                self.first = later.first;
                self.first_ts = later.first_ts;
            }
            if later.last_ts >= self.last_ts {
                self.last = later.last;
                self.last_ts = later.last_ts;
            }
        }
        self.add_population(later);
    }

    /// Combines the bucket of another series over the same interval, as one
    /// population: count/sum/min/max combine, first/last go by timestamp (ties
    /// keep `self`'s), and the increases add up (the group's increase is the sum
    /// of its series' increases, as `sum(increase(..))` in PromQL).
    pub fn combine(&mut self, other: &Bucket) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = Bucket { start: self.start, ..*other };
            return;
        }
        if other.first_ts < self.first_ts {
            self.first = other.first;
            self.first_ts = other.first_ts;
        }
        if other.last_ts > self.last_ts {
            self.last = other.last;
            self.last_ts = other.last_ts;
        }
        self.increase += other.increase;
        self.add_population(other);
    }

    /// The order-insensitive fields.
    fn add_population(&mut self, o: &Bucket) {
        self.count = self.count.saturating_add(o.count);
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// Rolls sorted samples (strictly increasing `ts`) into buckets of `width_ms`
/// aligned to multiples of the width since the epoch
/// (`start = ts.div_euclid(width) * width`). Empty buckets are not emitted.
pub fn rollup(samples: &[Sample], width_ms: i64) -> Result<Vec<Bucket>> {
    let mut out = Vec::new();
    rollup_into(samples, width_ms, &mut out)?;
    Ok(out)
}

/// [`rollup`], appending the buckets to `out` (left as it was on error).
pub fn rollup_into(samples: &[Sample], width_ms: i64, out: &mut Vec<Bucket>) -> Result<()> {
    check_width(width_ms)?;
    if let Some(i) = samples.windows(2).position(|w| w[0].ts >= w[1].ts) {
        return Err(Error::InvalidArgument(format!(
            "rollup needs samples sorted by strictly increasing timestamp; sample {} (ts {}) is not after ts {}",
            i + 1,
            samples[i + 1].ts,
            samples[i].ts
        )));
    }
    let base = out.len();
    for s in samples {
        let Some(start) = align(s.ts, width_ms) else {
            out.truncate(base);
            return Err(unalignable(s.ts, width_ms));
        };
        // Only buckets this call made take more samples.
        let open = out.len() > base;
        match out.last_mut() {
            Some(b) if open && b.start == start => b.push(*s),
            _ => {
                let mut b = Bucket::empty(start);
                b.push(*s);
                out.push(b);
            }
        }
    }
    Ok(())
}

/// Merges consecutive buckets into coarser ones of `width_ms` (e.g. 5m into 1h).
/// The input must satisfy [`check_buckets`] and each bucket must lie inside one
/// output bucket (so the input width must divide `width_ms`); otherwise
/// `Error::InvalidArgument`. Exact up to the order of float additions.
pub fn rollup_buckets(buckets: &[Bucket], width_ms: i64) -> Result<Vec<Bucket>> {
    check_width(width_ms)?;
    check_buckets(buckets, None).map_err(|(i, why)| Error::InvalidArgument(format!("bucket {i}: {why}")))?;
    let mut out: Vec<Bucket> = Vec::new();
    for (i, b) in buckets.iter().enumerate() {
        let start = align(b.start, width_ms).ok_or_else(|| unalignable(b.start, width_ms))?;
        if i128::from(b.last_ts) >= i128::from(start) + i128::from(width_ms) {
            return Err(Error::InvalidArgument(format!(
                "bucket {i} (start {}, last sample at {}) straddles a {width_ms} ms boundary: \
                 the input width must divide the output width",
                b.start, b.last_ts
            )));
        }
        match out.last_mut() {
            Some(o) if o.start == start => o.merge(b),
            _ => out.push(Bucket { start, ..*b }),
        }
    }
    Ok(out)
}

/// Checks the stored-bucket invariants of a sorted bucket list; with `width`,
/// also that each bucket is aligned and its samples fit inside it. Returns the
/// index of the first offending bucket and why.
pub fn check_buckets(buckets: &[Bucket], width: Option<i64>) -> std::result::Result<(), (usize, &'static str)> {
    for (i, b) in buckets.iter().enumerate() {
        if b.count == 0 {
            return Err((i, "bucket is empty (count 0)"));
        }
        if b.first_ts < b.start || b.last_ts < b.first_ts {
            return Err((i, "bucket timestamps out of order (need start <= first_ts <= last_ts)"));
        }
        if (b.count == 1) != (b.first_ts == b.last_ts) {
            return Err((i, "first_ts == last_ts must hold exactly when count is 1"));
        }
        if let Some(w) = width {
            if w <= 0 || b.start.rem_euclid(w) != 0 {
                return Err((i, "bucket start is not a multiple of the width"));
            }
            if i128::from(b.last_ts) - i128::from(b.start) >= i128::from(w) {
                return Err((i, "bucket holds a sample past its end"));
            }
        }
        if i > 0 && buckets[i - 1].last_ts >= b.start {
            return Err((i, "buckets not sorted by start, or they overlap"));
        }
    }
    Ok(())
}

fn check_width(width_ms: i64) -> Result<()> {
    if width_ms <= 0 {
        return Err(Error::InvalidArgument(format!("bucket width must be positive, got {width_ms} ms")));
    }
    Ok(())
}

fn unalignable(ts: i64, width: i64) -> Error {
    Error::InvalidArgument(format!(
        "timestamp {ts} cannot be aligned to {width} ms: the bucket start is below i64::MIN"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts: i64, v: f64) -> Sample {
        Sample::new(ts, v)
    }

    #[test]
    fn from_samples_counts_resets() {
        let b = Bucket::from_samples(0, &[s(1, 5.0), s(2, 7.0), s(3, 2.0), s(4, 4.0)]);
        assert_eq!((b.count, b.sum, b.min, b.max), (4, 18.0, 2.0, 7.0));
        assert_eq!((b.first, b.first_ts, b.last, b.last_ts), (5.0, 1, 4.0, 4));
        // 5→7: +2, 7→2: reset, +2, 2→4: +2
        assert_eq!(b.increase, 6.0);
    }

    #[test]
    fn nan_handling() {
        let b = Bucket::from_samples(0, &[s(1, f64::NAN), s(2, 3.0), s(3, 1.0)]);
        assert_eq!(b.count, 3);
        assert!(b.sum.is_nan() && b.increase.is_nan() && b.first.is_nan());
        assert_eq!((b.min, b.max, b.last), (1.0, 3.0, 1.0));
        let all_nan = Bucket::from_samples(0, &[s(1, f64::NAN)]);
        assert!(all_nan.min.is_nan() && all_nan.max.is_nan());
    }

    #[test]
    fn merge_equals_whole() {
        let all = [s(1, 5.0), s(2, 7.0), s(3, 2.0), s(4, 4.0), s(5, 1.0)];
        let whole = Bucket::from_samples(0, &all);
        for cut in 0..=all.len() {
            let mut a = Bucket::from_samples(0, &all[..cut]);
            a.merge(&Bucket::from_samples(0, &all[cut..]));
            assert_eq!(a, whole, "cut {cut}");
        }
    }

    #[test]
    fn merge_overlapping_is_lenient() {
        let mut a = Bucket::from_samples(0, &[s(1, 1.0), s(5, 2.0)]);
        a.merge(&Bucket::from_samples(0, &[s(3, 10.0)]));
        assert_eq!((a.count, a.sum, a.first_ts, a.last_ts, a.last, a.increase), (3, 13.0, 1, 5, 2.0, 1.0));
    }

    #[test]
    fn rollup_aligns_and_rolls_up() {
        let samples = [s(-1, 1.0), s(0, 2.0), s(299_999, 3.0), s(300_000, 4.0), s(3_600_000, 5.0)];
        let b = rollup(&samples, FIVE_MIN_MS).unwrap();
        assert_eq!(
            b.iter().map(|b| (b.start, b.count)).collect::<Vec<_>>(),
            [(-300_000, 1), (0, 2), (300_000, 1), (3_600_000, 1)]
        );
        let h = rollup_buckets(&b, HOUR_MS).unwrap();
        assert_eq!(h, rollup(&samples, HOUR_MS).unwrap());
        assert_eq!(h.len(), 3);
        assert_eq!(h[1].increase, 2.0);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(rollup(&[s(2, 1.0), s(2, 1.0)], 10).is_err());
        assert!(rollup(&[s(3, 1.0), s(2, 1.0)], 10).is_err());
        assert!(rollup(&[s(1, 1.0)], 0).is_err());
        assert!(rollup(&[s(i64::MIN, 1.0)], 7).is_err());
        assert_eq!(rollup(&[s(i64::MIN, 1.0)], 2).unwrap()[0].start, i64::MIN);
        // 7 ms buckets do not nest in 10 ms ones.
        let b = rollup(&[s(7, 1.0), s(13, 1.0)], 7).unwrap();
        assert!(rollup_buckets(&b, 10).is_err());
        let mut unsorted = rollup(&[s(1, 1.0), s(20, 1.0)], 10).unwrap();
        unsorted.swap(0, 1);
        assert!(rollup_buckets(&unsorted, 100).is_err());
        assert!(rollup_buckets(&[Bucket::empty(0)], 100).is_err());
        assert_eq!(align(-1, 0), None);
    }
}
