//! The value patterns of seed 004's data generator: `noise`, `sine_wave`,
//! `linear_trend`, `spike` and `combined`.
//!
//! Each series draws its own parameters (baseline, amplitude, period, phase,
//! slope) from its own random stream, so series differ and the output of a
//! series depends only on the seed and its index, never on how series are split
//! between writers. Values are rounded to two decimals, as gauges usually are.

use std::fmt;
use std::str::FromStr;

use super::Rng;

/// A value pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A baseline plus uniform noise.
    Noise,
    /// A sine wave (period 10 min to 2 h) plus a little noise.
    SineWave,
    /// A baseline that rises or falls steadily, plus a little noise.
    LinearTrend,
    /// A flat, slightly noisy baseline with rare spikes of 3 to 6 amplitudes lasting 1 to 5 samples.
    Spike,
    /// Sine wave, trend, noise and spikes together.
    Combined,
}

impl Pattern {
    pub const ALL: [Pattern; 5] =
        [Pattern::Noise, Pattern::SineWave, Pattern::LinearTrend, Pattern::Spike, Pattern::Combined];

    /// The name used on the command line and in labels.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Noise => "noise",
            Pattern::SineWave => "sine_wave",
            Pattern::LinearTrend => "linear_trend",
            Pattern::Spike => "spike",
            Pattern::Combined => "combined",
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Pattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Pattern, String> {
        Pattern::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Pattern::ALL.iter().map(|p| p.name()).collect();
            format!("unknown pattern {s:?}; expected one of {}", names.join(", "))
        })
    }
}

/// Chance that a sample starts a spike.
const SPIKE_CHANCE: f64 = 0.01;

/// One series of a pattern: its parameters and the state between samples.
#[derive(Debug, Clone)]
pub struct PatternSeries {
    pattern: Pattern,
    rng: Rng,
    base: f64,
    amplitude: f64,
    period_ms: f64,
    phase: f64,
    /// Units per hour.
    slope: f64,
    start_ms: i64,
    spike_left: u32,
    spike_height: f64,
}

impl PatternSeries {
    /// Series with parameters drawn from `rng`; `start_ms` anchors the trend.
    pub fn new(pattern: Pattern, mut rng: Rng, start_ms: i64) -> PatternSeries {
        let base = 20.0 + rng.next_f64() * 60.0;
        let amplitude = 5.0 + rng.next_f64() * 15.0;
        let period_ms = (10.0 + rng.next_f64() * 110.0) * 60_000.0;
        let phase = rng.next_f64() * std::f64::consts::TAU;
        let slope = rng.next_f64() * 7.0 - 2.0;
        PatternSeries {
            pattern,
            rng,
            base,
            amplitude,
            period_ms,
            phase,
            slope,
            start_ms,
            spike_left: 0,
            spike_height: 0.0,
        }
    }

    /// The value at `ts`. Call with increasing timestamps: spikes span calls.
    pub fn next(&mut self, ts: i64) -> f64 {
        let v = match self.pattern {
            Pattern::Noise => self.base + self.noise(1.0),
            Pattern::SineWave => self.base + self.sine(ts) + self.noise(0.05),
            Pattern::LinearTrend => self.base + self.trend(ts) + self.noise(0.05),
            Pattern::Spike => self.base + self.noise(0.05) + self.spike(),
            Pattern::Combined => self.base + self.sine(ts) + self.trend(ts) + self.noise(0.2) + self.spike(),
        };
        (v * 100.0).round() / 100.0
    }

    /// Uniform noise of `share` amplitudes either side.
    fn noise(&mut self, share: f64) -> f64 {
        (self.rng.next_f64() * 2.0 - 1.0) * self.amplitude * share
    }

    fn sine(&self, ts: i64) -> f64 {
        let x = (ts as f64 / self.period_ms) * std::f64::consts::TAU + self.phase;
        self.amplitude * x.sin()
    }

    fn trend(&self, ts: i64) -> f64 {
        self.slope * (ts - self.start_ms) as f64 / 3_600_000.0
    }

    fn spike(&mut self) -> f64 {
        if self.spike_left == 0 && self.rng.next_f64() < SPIKE_CHANCE {
            self.spike_left = 1 + (self.rng.next_u64() % 5) as u32;
            self.spike_height = self.amplitude * (3.0 + self.rng.next_f64() * 3.0);
        }
        if self.spike_left > 0 {
            self.spike_left -= 1;
            self.spike_height
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: Pattern, n: usize) -> Vec<f64> {
        let mut s = PatternSeries::new(p, Rng::new(11), 0);
        (0..n).map(|k| s.next(k as i64 * 10_000)).collect()
    }

    #[test]
    fn names_round_trip() {
        for p in Pattern::ALL {
            assert_eq!(p.name().parse::<Pattern>(), Ok(p));
        }
        assert!("square".parse::<Pattern>().unwrap_err().contains("sine_wave"));
    }

    #[test]
    fn patterns_have_their_shape() {
        for p in Pattern::ALL {
            let v = run(p, 2000);
            assert!(v.iter().all(|x| x.is_finite() && ((x * 100.0).round() - x * 100.0).abs() < 1e-6), "{p}");
            assert_eq!(v, run(p, 2000), "{p} is deterministic");
        }
        // A trend moves its mean; noise does not.
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let t = run(Pattern::LinearTrend, 3600);
        let slope_sign = PatternSeries::new(Pattern::LinearTrend, Rng::new(11), 0).slope.signum();
        assert!((mean(&t[3000..]) - mean(&t[..600])) * slope_sign > 0.0);
        // Spikes stand out from the baseline.
        let s = run(Pattern::Spike, 5000);
        let m = mean(&s);
        assert!(s.iter().any(|&x| x > m + 10.0));
        // A sine wave crosses its baseline many times in a day of 10 s samples.
        let w = run(Pattern::SineWave, 8640);
        let m = mean(&w);
        assert!(w.windows(2).filter(|p| (p[0] - m).signum() != (p[1] - m).signum()).count() >= 20);
    }
}
