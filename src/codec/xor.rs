//! The in-memory head chunk: an appendable, Gorilla-style bit stream holding the
//! open chunk of one series. It is never persisted, so its layout may change
//! freely; it only has to round-trip any i64 timestamps and any f64 bits.
//!
//! Bits are written most significant first into `u64` words.
//!
//! ```text
//! sample 0:   ts (64 bits)  value bits (64 bits)
//! sample i>0: timestamp delta-of-delta, then value XOR
//!
//! dod = delta[i] - delta[i-1] (modulo 2^64, delta[0] = 0, so any jump fits):
//!   0                      dod == 0
//!   10   + 14 bits         two's complement, dod in [-2^13, 2^13)
//!   110  + 17 bits         dod in [-2^16, 2^16)
//!   1110 + 20 bits         dod in [-2^19, 2^19)
//!   1111 + 64 bits         anything else
//!
//! x = bits[i] ^ bits[i-1]:
//!   0                      x == 0
//!   10 + sig bits          x fits the current window (its leading and trailing
//!                          zero counts are at least the window's)
//!   11 + 5 bits leading (capped at 31) + 6 bits sig (64 stored as 0) + sig bits
//!                          opens a new window: sig = 64 - leading - trailing
//! ```

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::sample::Sample;

/// An appendable compressed chunk of samples with strictly increasing timestamps.
#[derive(Clone, Debug)]
pub struct XorChunk {
    /// The bit stream; bits past `nbits` in the last word are zero.
    words: Vec<u64>,
    nbits: usize,
    count: usize,
    first_ts: i64,
    last_ts: i64,
    last_delta: u64,
    last_bits: u64,
    /// Current XOR window. `leading` starts at u8::MAX so that the first
    /// non-zero XOR always opens a window.
    leading: u8,
    trailing: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        XorChunk::new()
    }
}

impl XorChunk {
    pub fn new() -> XorChunk {
        XorChunk {
            words: Vec::new(),
            nbits: 0,
            count: 0,
            first_ts: 0,
            last_ts: 0,
            last_delta: 0,
            last_bits: 0,
            leading: u8::MAX,
            trailing: 0,
        }
    }

    /// Appends a sample. The caller guarantees `ts > last_ts()` when not empty;
    /// the stream itself would round-trip any order, but readers rely on it.
    #[inline]
    pub fn append(&mut self, ts: i64, v: f64) {
        debug_assert!(self.count == 0 || ts > self.last_ts, "XorChunk timestamps must increase");
        let bits = v.to_bits();
        if self.count == 0 {
            self.put(ts as u64, 64);
            self.put(bits, 64);
            self.first_ts = ts;
        } else {
            let delta = ts.wrapping_sub(self.last_ts) as u64;
            self.put_dod(delta.wrapping_sub(self.last_delta) as i64);
            self.put_xor(bits ^ self.last_bits);
            self.last_delta = delta;
        }
        self.last_ts = ts;
        self.last_bits = bits;
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn first_ts(&self) -> Option<i64> {
        (self.count > 0).then_some(self.first_ts)
    }

    pub fn last_ts(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last_ts)
    }

    pub fn last_value(&self) -> Option<f64> {
        (self.count > 0).then(|| f64::from_bits(self.last_bits))
    }

    /// Heap bytes held (capacity, not length), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * std::mem::size_of::<u64>()
    }

    pub fn iter(&self) -> XorIter<'_> {
        XorIter {
            words: &self.words,
            pos: 0,
            left: self.count,
            started: false,
            ts: 0,
            delta: 0,
            bits: 0,
            leading: 0,
            trailing: 0,
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.words.shrink_to_fit();
    }

    /// Writes the low `n` bits of `v` (1 <= n <= 64, higher bits zero).
    #[inline(always)]
    fn put(&mut self, v: u64, n: u32) {
        debug_assert!((1..=64).contains(&n) && (n == 64 || v >> n == 0));
        let used = (self.nbits & 63) as u32;
        match self.words.last_mut() {
            Some(last) if used != 0 => {
                let free = 64 - used;
                if n <= free {
                    *last |= v << (free - n);
                } else {
                    // Split: the top `free` bits finish this word, the rest start the next.
                    *last |= v >> (n - free);
                    self.words.push(v << (64 - (n - free)));
                }
            }
            _ => self.words.push(v << (64 - n)),
        }
        self.nbits += n as usize;
    }

    #[inline(always)]
    fn put_dod(&mut self, dod: i64) {
        if dod == 0 {
            self.put(0, 1);
        } else if fits(dod, 14) {
            self.put(0b10 << 14 | low_bits(dod, 14), 16);
        } else if fits(dod, 17) {
            self.put(0b110 << 17 | low_bits(dod, 17), 20);
        } else if fits(dod, 20) {
            self.put(0b1110 << 20 | low_bits(dod, 20), 24);
        } else {
            self.put(0b1111, 4);
            self.put(dod as u64, 64);
        }
    }

    #[inline(always)]
    fn put_xor(&mut self, x: u64) {
        if x == 0 {
            self.put(0, 1);
            return;
        }
        // Capping leading at 31 (5 bits) only widens the window.
        let lz = x.leading_zeros().min(31);
        let tz = x.trailing_zeros();
        let (wl, wt) = (u32::from(self.leading), u32::from(self.trailing));
        if lz >= wl && tz >= wt {
            let sig = 64 - wl - wt;
            let payload = x >> wt;
            if sig <= 62 {
                self.put(0b10 << sig | payload, sig + 2);
            } else {
                self.put(0b10, 2);
                self.put(payload, sig);
            }
        } else {
            // x != 0, so sig is in 1..=64; 64 is written as 0.
            let sig = 64 - lz - tz;
            self.leading = lz as u8;
            self.trailing = tz as u8;
            self.put(0b11 << 11 | u64::from(lz) << 6 | u64::from(sig & 63), 13);
            self.put(x >> tz, sig);
        }
    }
}

/// Whether `v` is representable in `n`-bit two's complement.
#[inline(always)]
fn fits(v: i64, n: u32) -> bool {
    let lim = 1i64 << (n - 1);
    (-lim..lim).contains(&v)
}

#[inline(always)]
fn low_bits(v: i64, n: u32) -> u64 {
    v as u64 & ((1u64 << n) - 1)
}

/// Sign-extends the low `n` bits of `v`.
#[inline(always)]
fn sign_extend(v: u64, n: u32) -> u64 {
    (((v << (64 - n)) as i64) >> (64 - n)) as u64
}

/// Iterates a [`XorChunk`]'s samples in order.
pub struct XorIter<'a> {
    words: &'a [u64],
    pos: usize,
    left: usize,
    started: bool,
    ts: i64,
    delta: u64,
    bits: u64,
    leading: u32,
    trailing: u32,
}

impl XorIter<'_> {
    /// Reads `n` bits (1 <= n <= 64). The stream was written by `XorChunk`, so
    /// reads stay in bounds; `get` keeps even a bug from panicking.
    #[inline(always)]
    fn get(&mut self, n: u32) -> u64 {
        let idx = self.pos >> 6;
        let off = (self.pos & 63) as u32;
        let hi = self.words.get(idx).copied().unwrap_or(0) << off;
        let mut v = hi >> (64 - n);
        if n > 64 - off {
            // The low `off` bits of `hi` are zero; fill them from the next word.
            v |= self.words.get(idx + 1).copied().unwrap_or(0) >> (128 - off - n);
        }
        self.pos += n as usize;
        v
    }

    #[inline(always)]
    fn bit(&mut self) -> bool {
        self.get(1) != 0
    }

    #[inline(always)]
    fn get_dod(&mut self) -> u64 {
        if !self.bit() {
            0
        } else if !self.bit() {
            sign_extend(self.get(14), 14)
        } else if !self.bit() {
            sign_extend(self.get(17), 17)
        } else if !self.bit() {
            sign_extend(self.get(20), 20)
        } else {
            self.get(64)
        }
    }

    #[inline(always)]
    fn get_xor(&mut self) -> u64 {
        if !self.bit() {
            return 0;
        }
        if self.bit() {
            let header = self.get(11);
            self.leading = (header >> 6) as u32;
            let sig = match (header & 63) as u32 {
                0 => 64,
                s => s,
            };
            // The writer guarantees leading + sig <= 64.
            self.trailing = 64u32.saturating_sub(self.leading + sig);
        }
        let sig = 64u32.saturating_sub(self.leading + self.trailing).max(1);
        self.get(sig) << self.trailing
    }
}

impl Iterator for XorIter<'_> {
    type Item = Sample;

    #[inline]
    fn next(&mut self) -> Option<Sample> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.started {
            self.delta = self.delta.wrapping_add(self.get_dod());
            self.ts = self.ts.wrapping_add(self.delta as i64);
            self.bits ^= self.get_xor();
        } else {
            self.started = true;
            self.ts = self.get(64) as i64;
            self.bits = self.get(64);
        }
        Some(Sample::new(self.ts, f64::from_bits(self.bits)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for XorIter<'_> {}
impl std::iter::FusedIterator for XorIter<'_> {}

/// Test data shared by the chunk and head codec tests.
#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
pub(crate) mod testgen {
    use crate::sample::Sample;
    use proptest::prelude::*;

    /// Small deterministic generator (splitmix64) for fixture data.
    pub(crate) struct Rng(pub u64);

    impl Rng {
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        pub(crate) fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// The devops gauge: 10 s interval, v = clamp(v + U(-2, 2), 0, 100) at one decimal.
    pub(crate) fn devops_series(n: usize, seed: u64) -> Vec<Sample> {
        let mut rng = Rng(seed);
        let mut v = (rng.unit() * 1000.0).round() / 10.0;
        (0..n)
            .map(|i| {
                let s = Sample::new(1_700_000_000_000 + 10_000 * i as i64, v);
                v = ((v + rng.unit() * 4.0 - 2.0).clamp(0.0, 100.0) * 10.0).round() / 10.0;
                s
            })
            .collect()
    }

    pub(crate) const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

    /// Strictly increasing timestamps: arbitrary (extremes, huge gaps), regular, jittered.
    pub(crate) fn timestamps() -> impl Strategy<Value = Vec<i64>> {
        let arbitrary = prop::collection::vec(
            prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(0i64), -1000i64..1000],
            1..200,
        )
        .prop_map(|mut v| {
            v.sort_unstable();
            v.dedup();
            v
        });
        let regular = (
            any::<i64>(),
            prop_oneof![1i64..100_000, any::<i64>().prop_map(|d| d.saturating_abs().max(1))],
            1usize..300,
        )
            .prop_map(|(start, d, n)| (0..n as i64).map_while(|i| start.checked_add(i.checked_mul(d)?)).collect());
        let jittered =
            (-(1i64 << 50)..(1i64 << 50), prop::collection::vec(prop_oneof![9_990i64..10_010, 1i64..5], 0..300))
                .prop_map(|(start, deltas)| {
                    let mut ts = start;
                    std::iter::once(start)
                        .chain(deltas.into_iter().map(|d| {
                            ts += d;
                            ts
                        }))
                        .collect()
                });
        prop_oneof![arbitrary, regular, jittered]
    }

    /// Stale marker, NaNs with payloads, signed zeros, infinities, extremes.
    pub(crate) const SPECIAL_BITS: [u64; 11] = [
        STALE_NAN,
        0x7ff8_0000_0000_0000,
        0xfff8_0000_0000_0000,
        0x7ff8_dead_beef_0001,
        0,
        1 << 63,
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        1,
        0x7fef_ffff_ffff_ffff,
        0x3ff8_0000_0000_0000,
    ];

    /// `n` values: arbitrary bits, specials, constant, 1-decimal walks, k-decimal values.
    pub(crate) fn values(n: usize) -> impl Strategy<Value = Vec<f64>> {
        prop_oneof![
            prop::collection::vec(any::<u64>().prop_map(f64::from_bits), n),
            prop::collection::vec(prop::sample::select(&SPECIAL_BITS[..]).prop_map(f64::from_bits), n),
            any::<u64>().prop_map(move |b| vec![f64::from_bits(b); n]),
            (0i64..1000, prop::collection::vec(-20i64..=20, n)).prop_map(|(start, steps)| {
                let mut m = start;
                steps
                    .into_iter()
                    .map(|d| {
                        m += d;
                        m as f64 / 10.0
                    })
                    .collect()
            }),
            (0usize..10, prop::collection::vec(-(1i64 << 40)..(1i64 << 40), n))
                .prop_map(|(k, ms)| ms.into_iter().map(|m| m as f64 / 10f64.powi(k as i32)).collect()),
        ]
    }

    pub(crate) fn series() -> impl Strategy<Value = Vec<Sample>> {
        timestamps().prop_flat_map(|ts| {
            let n = ts.len();
            (Just(ts), values(n)).prop_map(|(ts, vs)| ts.into_iter().zip(vs).map(|(t, v)| Sample::new(t, v)).collect())
        })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::testgen::{devops_series, series, Rng, SPECIAL_BITS};
    use super::*;
    use proptest::prelude::*;

    fn build(samples: &[Sample]) -> XorChunk {
        let mut c = XorChunk::new();
        for s in samples {
            c.append(s.ts, s.value);
        }
        c
    }

    fn check(samples: &[Sample]) {
        let c = build(samples);
        assert_eq!(c.len(), samples.len());
        assert_eq!(c.is_empty(), samples.is_empty());
        assert_eq!(c.first_ts(), samples.first().map(|s| s.ts));
        assert_eq!(c.last_ts(), samples.last().map(|s| s.ts));
        assert_eq!(c.last_value().map(f64::to_bits), samples.last().map(|s| s.value.to_bits()));
        assert_eq!(c.iter().len(), samples.len());
        assert_eq!(c.iter().collect::<Vec<_>>(), samples);
        let mut shrunk = c.clone();
        shrunk.shrink_to_fit();
        assert!(shrunk.heap_bytes() <= c.heap_bytes());
        assert_eq!(shrunk.iter().collect::<Vec<_>>(), samples);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn round_trips(samples in series()) {
            check(&samples);
        }

        /// Appending in steps and reading in between sees every prefix.
        #[test]
        fn prefixes_readable(samples in series()) {
            let mut c = XorChunk::new();
            for (i, s) in samples.iter().enumerate() {
                c.append(s.ts, s.value);
                prop_assert_eq!(c.iter().collect::<Vec<_>>(), &samples[..=i]);
            }
        }
    }

    #[test]
    fn empty() {
        let c = XorChunk::new();
        assert!(c.is_empty());
        assert_eq!((c.first_ts(), c.last_ts(), c.last_value()), (None, None, None));
        assert_eq!(c.iter().next(), None);
        assert_eq!(c.heap_bytes(), 0);
    }

    #[test]
    fn bucket_edges_and_extremes() {
        // Deltas crossing every dod bucket boundary in both directions.
        let mut ts = vec![i64::MIN];
        let mut t: i64 = -(1 << 40);
        for n in [14u32, 17, 20, 64] {
            for d in [(1i64 << (n - 1).min(62)) - 1, 1 << (n - 1).min(62), 1, 2] {
                t += d;
                ts.push(t);
            }
        }
        ts.push(i64::MAX - 1);
        ts.push(i64::MAX);
        let mut rng = Rng(5);
        let samples: Vec<Sample> = ts
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                let v = if i % 2 == 0 {
                    f64::from_bits(SPECIAL_BITS[i / 2 % SPECIAL_BITS.len()])
                } else {
                    f64::from_bits(rng.next_u64())
                };
                Sample::new(t, v)
            })
            .collect();
        check(&samples);
        check(&[Sample::new(i64::MIN, -0.0), Sample::new(i64::MAX, f64::from_bits(u64::MAX))]);
        check(&[Sample::new(i64::MAX, f64::from_bits(1))]);
    }

    #[test]
    fn sizes() {
        let bytes = |samples: &[Sample]| build(samples).nbits.div_ceil(8);
        // Regular timestamps cost one bit each. Decimal fractions share few
        // XOR bits (0.1 is not a binary fraction), so the devops walk stays
        // near 7 bytes a value; integer counters and constants are far smaller.
        let devops = bytes(&devops_series(720, 1));
        assert!(devops < 720 * 8, "devops: {devops} bytes for 720 samples");
        let counter: Vec<Sample> = (0..720).map(|i| Sample::new(i * 10_000, (i * 3 + i % 5) as f64)).collect();
        let counter = bytes(&counter);
        assert!(counter < 720 * 3, "counter: {counter} bytes for 720 samples");
        let constant: Vec<Sample> = (0..720).map(|i| Sample::new(i * 10_000, 1.0)).collect();
        let constant = bytes(&constant);
        assert!(constant < 256, "constant: {constant} bytes for 720 samples");
        println!("xor head chunk, 720 samples: devops {devops} B, counter {counter} B, constant {constant} B");
    }

    #[test]
    fn long_chunk() {
        let mut rng = Rng(11);
        let samples: Vec<Sample> =
            (0..100_000).map(|i| Sample::new(i * 15_000 + (rng.next_u64() % 50) as i64, rng.unit())).collect();
        check(&samples);
    }
}
