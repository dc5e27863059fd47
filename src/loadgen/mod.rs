//! Deterministic workloads for benchmarks and the load generator.
//!
//! - [`Devops`]: the devops dataset in time order, as the benches use it.
//! - [`Workload`]: devops or a seed 004 [`Pattern`], split into [`Shard`]s that
//!   writer threads generate independently, with an optional share of late samples.

mod devops;
mod pattern;
mod workload;

pub use devops::{Devops, CPU_FIELDS};
pub use pattern::{Pattern, PatternSeries};
pub use workload::{fingerprint, Shard, Workload, WorkloadKind, MAX_DELAY_STEPS};

/// SplitMix64: tiny, fast, and reproducible from a seed on every platform.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}
