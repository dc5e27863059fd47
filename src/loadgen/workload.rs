//! Workloads for the load generator: what series exist and what each writes when,
//! split into shards that writer threads generate independently.
//!
//! Every series has its own random stream derived from the seed and its index, so
//! a series' samples do not depend on how many shards there are: two runs with
//! the same seed and time range write the same data with 1 writer or 8.

use std::ops::Range;
use std::str::FromStr;

use super::devops::{self, CPU_FIELDS};
use super::pattern::{Pattern, PatternSeries};
use super::Rng;
use crate::labels::Labels;

/// Late samples are delivered 1 to this many steps after their time step.
pub const MAX_DELAY_STEPS: u64 = 16;

/// What a workload generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Hosts × 10 cpu fields, random walks in [0, 100] to one decimal (as [`super::Devops`]).
    Devops,
    /// `series` series of one metric following a seed 004 pattern.
    Pattern(Pattern),
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Devops => "devops",
            WorkloadKind::Pattern(p) => p.name(),
        }
    }
}

impl FromStr for WorkloadKind {
    type Err = String;

    fn from_str(s: &str) -> Result<WorkloadKind, String> {
        if s == "devops" {
            return Ok(WorkloadKind::Devops);
        }
        s.parse::<Pattern>().map(WorkloadKind::Pattern).map_err(|_| {
            let names: Vec<&str> = Pattern::ALL.iter().map(|p| p.name()).collect();
            format!("unknown workload {s:?}; expected devops, {}", names.join(", "))
        })
    }
}

/// A workload: its series and the time steps each of them writes.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: WorkloadKind,
    /// Series requested; devops rounds up to whole hosts (see [`Workload::num_series`]).
    pub series: usize,
    /// Time between two samples of a series.
    pub interval_ms: i64,
    /// Timestamp of the first step.
    pub start_ms: i64,
    /// Samples per series.
    pub steps: u64,
    pub seed: u64,
    /// Share of samples delivered late (after newer samples of their series), in `[0, 1]`.
    pub out_of_order: f64,
    /// Metric name of the pattern workloads (devops names its own `cpu_<field>`).
    pub metric: String,
}

impl Workload {
    /// A workload in time order, pattern series named `cpu_usage`.
    pub fn new(kind: WorkloadKind, series: usize, interval_ms: i64, start_ms: i64, steps: u64, seed: u64) -> Workload {
        Workload { kind, series, interval_ms, start_ms, steps, seed, out_of_order: 0.0, metric: "cpu_usage".into() }
    }

    /// Series generated: `series`, rounded up to a multiple of 10 for devops.
    pub fn num_series(&self) -> usize {
        match self.kind {
            WorkloadKind::Devops => self.series.div_ceil(CPU_FIELDS.len()) * CPU_FIELDS.len(),
            WorkloadKind::Pattern(_) => self.series,
        }
    }

    /// Samples the whole workload writes.
    pub fn total_samples(&self) -> u64 {
        self.num_series() as u64 * self.steps
    }

    /// One past the last step's timestamp: every sample is in `[start_ms, end_ms)`.
    pub fn end_ms(&self) -> i64 {
        self.start_ms.saturating_add(self.interval_ms.saturating_mul(self.steps as i64))
    }

    /// Labels of series `i`. Pattern series: `{__name__=metric, host="host_<i>", pattern=<name>}`.
    /// Fails only for a pattern workload whose `metric` is not a valid metric name.
    pub fn labels(&self, i: usize) -> crate::Result<Labels> {
        match self.kind {
            WorkloadKind::Devops => Ok(devops::labels(i)),
            WorkloadKind::Pattern(p) => {
                Labels::metric(&self.metric, [("host", format!("host_{i}")), ("pattern", p.name().into())])
            }
        }
    }

    /// A generator for the series in `range` (global indices).
    pub fn shard(&self, range: Range<usize>) -> Shard {
        let gens = range
            .clone()
            .map(|i| {
                let mut rng = series_rng(self.seed, i);
                match self.kind {
                    WorkloadKind::Devops => Gen::Walk { tenths: (rng.next_f64() * 1000.0).round() as i32, rng },
                    WorkloadKind::Pattern(p) => Gen::Pattern(PatternSeries::new(p, rng, self.start_ms)),
                }
            })
            .collect();
        Shard {
            first: range.start,
            gens,
            start_ms: self.start_ms,
            interval_ms: self.interval_ms,
            steps: self.steps,
            step: 0,
            out_of_order: self.out_of_order.clamp(0.0, 1.0),
            late_rng: series_rng(self.seed ^ 0x6c61_7465, range.start),
            late: (0..=MAX_DELAY_STEPS).map(|_| Vec::new()).collect(),
            late_pending: 0,
        }
    }

    /// `n` shards covering every series, as even as possible; devops shards hold whole hosts.
    pub fn shards(&self, n: usize) -> Vec<Shard> {
        let unit = if self.kind == WorkloadKind::Devops { CPU_FIELDS.len() } else { 1 };
        let units = self.num_series() / unit;
        let n = n.clamp(1, units.max(1));
        (0..n).map(|k| self.shard(units * k / n * unit..units * (k + 1) / n * unit)).collect()
    }
}

/// An order-independent checksum term of one sample: add them up (wrapping) per
/// series and compare with what a read returns.
#[inline]
pub fn fingerprint(ts: i64, value: f64) -> u64 {
    let mut z = (ts as u64).rotate_left(29) ^ value.to_bits();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A random stream for series `i`: the state is hashed, so streams of
/// neighbouring series are not shifted copies of each other.
fn series_rng(seed: u64, i: usize) -> Rng {
    let mut r = Rng::new(seed ^ (i as u64).wrapping_add(1).wrapping_mul(0xd6e8_feb8_6659_fd93));
    Rng::new(r.next_u64())
}

#[derive(Debug, Clone)]
enum Gen {
    /// The devops walk kept in integer tenths: `round(v*10 + u*40 - 20)` is
    /// `v*10 + round(u*40 - 20)`, and the rounding is a truncation of a
    /// non-negative number, which is much cheaper than `f64::round`.
    Walk {
        tenths: i32,
        rng: Rng,
    },
    Pattern(PatternSeries),
}

/// Generates a contiguous range of a workload's series, one time step at a time.
#[derive(Debug, Clone)]
pub struct Shard {
    first: usize,
    gens: Vec<Gen>,
    start_ms: i64,
    interval_ms: i64,
    steps: u64,
    step: u64,
    out_of_order: f64,
    late_rng: Rng,
    /// Late samples by the step that releases them, modulo `MAX_DELAY_STEPS + 1`.
    late: Vec<Vec<(usize, i64, f64)>>,
    late_pending: usize,
}

impl Shard {
    /// Global indices of this shard's series.
    pub fn series(&self) -> Range<usize> {
        self.first..self.first + self.gens.len()
    }

    /// Samples this shard writes in all.
    pub fn total_samples(&self) -> u64 {
        self.gens.len() as u64 * self.steps
    }

    /// Appends the next step's samples `(series index, ts, value)` to `out`: the
    /// step's on-time samples, then the late ones due now. After the last step,
    /// one more call releases whatever is still late. Returns false when done.
    pub fn next_step(&mut self, out: &mut Vec<(usize, i64, f64)>) -> bool {
        if self.step >= self.steps {
            if self.late_pending == 0 {
                return false;
            }
            for bucket in &mut self.late {
                out.append(bucket);
            }
            self.late_pending = 0;
            return true;
        }
        let ts = self.start_ms + self.step as i64 * self.interval_ms;
        let buckets = self.late.len() as u64;
        for (j, g) in self.gens.iter_mut().enumerate() {
            let v = match g {
                Gen::Walk { tenths, rng } => {
                    let step = (rng.next_f64() * 40.0 + 0.5) as i32 - 20;
                    *tenths = (*tenths + step).clamp(0, 1000);
                    f64::from(*tenths) / 10.0
                }
                Gen::Pattern(p) => p.next(ts),
            };
            let i = self.first + j;
            if self.out_of_order > 0.0 && self.late_rng.next_f64() < self.out_of_order {
                let delay = 1 + self.late_rng.next_u64() % MAX_DELAY_STEPS;
                self.late[((self.step + delay) % buckets) as usize].push((i, ts, v));
                self.late_pending += 1;
            } else {
                out.push((i, ts, v));
            }
        }
        let due = &mut self.late[(self.step % buckets) as usize];
        self.late_pending -= due.len();
        out.append(due);
        self.step += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn drain(shards: &mut [Shard]) -> Vec<(usize, i64, f64)> {
        let mut out = Vec::new();
        for s in shards {
            while s.next_step(&mut out) {}
        }
        out
    }

    fn by_series(v: &[(usize, i64, f64)]) -> HashMap<usize, Vec<(i64, u64)>> {
        let mut m: HashMap<usize, Vec<(i64, u64)>> = HashMap::new();
        for &(i, ts, v) in v {
            m.entry(i).or_default().push((ts, v.to_bits()));
        }
        m.values_mut().for_each(|s| s.sort_unstable());
        m
    }

    #[test]
    fn output_does_not_depend_on_sharding_or_lateness() {
        for kind in ["devops", "combined", "noise"] {
            let mut w = Workload::new(kind.parse().unwrap(), 25, 10_000, 1_000_000, 200, 5);
            let one = drain(&mut w.shards(1));
            assert_eq!(one.len() as u64, w.total_samples());
            let three = drain(&mut w.shards(3));
            w.out_of_order = 0.2;
            let late = drain(&mut w.shards(4));
            assert_eq!(by_series(&one), by_series(&three), "{kind}");
            assert_eq!(by_series(&one), by_series(&late), "{kind}");
            assert_eq!(by_series(&one).len(), w.num_series());
        }
        let w = Workload::new(WorkloadKind::Devops, 25, 10_000, 0, 1, 5);
        assert_eq!(w.num_series(), 30);
        assert!(w.shards(2).iter().all(|s| s.series().len() == 10 || s.series().len() == 20));
    }

    #[test]
    fn late_samples_arrive_after_newer_ones() {
        let mut w = Workload::new(WorkloadKind::Pattern(Pattern::Noise), 10, 1000, 0, 500, 1);
        w.out_of_order = 0.05;
        let all = drain(&mut w.shards(1));
        let mut newest: HashMap<usize, i64> = HashMap::new();
        let mut late = 0;
        for &(i, ts, _) in &all {
            let n = newest.entry(i).or_insert(i64::MIN);
            if ts < *n {
                late += 1;
            }
            *n = (*n).max(ts);
        }
        let share = late as f64 / all.len() as f64;
        assert!((0.03..0.07).contains(&share), "late share {share}");
    }

    #[test]
    fn devops_shard_matches_devops_labels_and_walk() {
        let w = Workload::new(WorkloadKind::Devops, 20, 10_000, 0, 3, 9);
        assert_eq!(w.labels(13).unwrap(), super::super::Devops::new(2, 10_000, 0, 9).labels(13));
        let mut bad = Workload::new(WorkloadKind::Pattern(Pattern::Spike), 1, 1, 0, 1, 1);
        bad.metric = "no spaces".into();
        assert!(bad.labels(0).is_err());
        let v = drain(&mut w.shards(1));
        assert!(v.iter().all(|x| (0.0..=100.0).contains(&x.2) && (x.2 * 10.0).fract() == 0.0));
        assert_eq!(fingerprint(1, 2.0), fingerprint(1, 2.0));
        assert_ne!(fingerprint(1, 2.0), fingerprint(2, 1.0));
    }
}
