//! The devops dataset: hosts × 10 cpu fields, one sample per interval, each a
//! random walk `v = clamp(v + uniform(-2, 2), 0, 100)` rounded to one decimal.

use super::Rng;
use crate::labels::Labels;

pub const CPU_FIELDS: [&str; 10] = [
    "usage_user",
    "usage_system",
    "usage_idle",
    "usage_nice",
    "usage_iowait",
    "usage_irq",
    "usage_softirq",
    "usage_steal",
    "usage_guest",
    "usage_guest_nice",
];
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"];
const OS: [&str; 3] = ["Ubuntu16.04LTS", "Ubuntu18.04LTS", "Debian12"];

/// Generates the dataset in time order: every series' sample at t0, then at t1, ...
#[derive(Debug, Clone)]
pub struct Devops {
    pub hosts: usize,
    pub interval_ms: i64,
    pub start_ms: i64,
    values: Vec<f64>,
    rng: Rng,
    step: i64,
}

impl Devops {
    pub fn new(hosts: usize, interval_ms: i64, start_ms: i64, seed: u64) -> Devops {
        let mut rng = Rng::new(seed);
        let values = (0..hosts * CPU_FIELDS.len()).map(|_| (rng.next_f64() * 1000.0).round() / 10.0).collect();
        Devops { hosts, interval_ms, start_ms, values, rng, step: 0 }
    }

    pub fn num_series(&self) -> usize {
        self.hosts * CPU_FIELDS.len()
    }

    /// Labels of series `i` (host `i / 10`, field `i % 10`), named `cpu_<field>`.
    pub fn labels(&self, i: usize) -> Labels {
        labels(i)
    }

    /// Fills `out` with the next time step: `(series index, ts, value)` for every series.
    pub fn next_step(&mut self, out: &mut Vec<(usize, i64, f64)>) {
        let ts = self.start_ms + self.step * self.interval_ms;
        self.step += 1;
        for (i, v) in self.values.iter_mut().enumerate() {
            *v = walk(*v, &mut self.rng);
            out.push((i, ts, *v));
        }
    }
}

/// Labels of devops series `i`: host `i / 10` (with its region, datacenter, rack
/// and os), field `i % 10`, named `cpu_<field>`.
pub fn labels(i: usize) -> Labels {
    let host = i / CPU_FIELDS.len();
    let name = format!("cpu_{}", CPU_FIELDS[i % CPU_FIELDS.len()]);
    Labels::metric(
        &name,
        [
            ("hostname", format!("host_{host}")),
            ("region", REGIONS[host % REGIONS.len()].to_string()),
            ("datacenter", format!("{}{}", REGIONS[host % REGIONS.len()], ["a", "b", "c"][host % 3])),
            ("rack", (host % 100).to_string()),
            ("os", OS[host % OS.len()].to_string()),
        ],
    )
    .expect("generated labels are valid")
}

/// One step of the devops random walk: `clamp(v + uniform(-2, 2), 0, 100)` to one decimal.
#[inline]
fn walk(v: f64, rng: &mut Rng) -> f64 {
    let next = (v + rng.next_f64() * 4.0 - 2.0).clamp(0.0, 100.0);
    (next * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_bounded() {
        let (mut a, mut b) = (Devops::new(3, 10_000, 0, 7), Devops::new(3, 10_000, 0, 7));
        let (mut va, mut vb) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            a.next_step(&mut va);
            b.next_step(&mut vb);
        }
        assert_eq!(va.len(), 3000);
        assert!(va.iter().zip(&vb).all(|(x, y)| x.0 == y.0 && x.1 == y.1 && x.2.to_bits() == y.2.to_bits()));
        assert!(va.iter().all(|x| (0.0..=100.0).contains(&x.2) && (x.2 * 10.0).fract() == 0.0));
        assert_eq!(a.labels(13).metric_name(), Some("cpu_usage_nice"));
        assert_eq!(a.labels(13).get("hostname"), Some("host_1"));
    }
}
