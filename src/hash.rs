//! A fast hasher for integer keys (series ids). Ids are dense and trusted, so
//! HashDoS resistance buys nothing here; a multiply-shift mix is enough.

use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        // Fibonacci hashing: the high bits of the product are well mixed, so fold them down.
        let p = (self.0 ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = p ^ (p >> 32);
    }
}

pub type IdBuildHasher = BuildHasherDefault<IdHasher>;
pub type IdMap<V> = std::collections::HashMap<u64, V, IdBuildHasher>;

/// A hasher for label sets within one query (duplicate checks, match groups):
/// eight bytes per multiply instead of SipHash's rounds per byte. Seeded per
/// map from the standard library's random keys, so stored label values cannot
/// be chosen to collide.
#[derive(Clone, Copy)]
pub struct LabelHasher(u64);

const LABEL_K: u64 = 0x9fb2_1c65_1e98_df25;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for LabelHasher {
    #[inline]
    fn finish(&self) -> u64 {
        fold_mul(self.0, LABEL_K)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h = fold_mul(h ^ u64::from_le_bytes(b), LABEL_K);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            h = fold_mul(h ^ u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59), LABEL_K);
        }
        self.0 = h;
    }
}

/// Builds [`LabelHasher`]s from one random seed.
#[derive(Clone, Copy)]
pub struct LabelBuildHasher(u64);

impl Default for LabelBuildHasher {
    fn default() -> Self {
        use std::hash::BuildHasher;
        LabelBuildHasher(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl std::hash::BuildHasher for LabelBuildHasher {
    type Hasher = LabelHasher;
    fn build_hasher(&self) -> LabelHasher {
        LabelHasher(self.0)
    }
}

pub type LabelSet<T> = std::collections::HashSet<T, LabelBuildHasher>;
