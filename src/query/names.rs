//! The names of [`Agg`] and [`Tier`] as users type and read them, one spelling
//! for the CLI (`--agg`, `--tier`) and the server (`function`, `tier`).
//!
//! Aggregations: `raw`, `avg` (also `mean`), `sum`, `min`, `max`, `count`,
//! `first`, `last`, `rate`, `increase`, `stddev`, and a quantile with its q
//! written in the name: `quantile:0.99` (what `Display` prints), `q0.99`, or a
//! percentile `p99` / `p99.9`. A bare `quantile` has no q: it is an error that
//! names the fix, unless the caller carries q separately and uses
//! [`Agg::with_quantile`]. Tiers: `auto`, `raw`, `5m`, `1h`. Case is ignored.

use std::fmt;
use std::str::FromStr;

use super::{Agg, Tier};

/// Why a name is not an aggregation or a tier; the message lists what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseNameError(String);

impl ParseNameError {
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParseNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseNameError {}

fn err(m: impl Into<String>) -> ParseNameError {
    ParseNameError(m.into())
}

const AGG_NAMES: &str =
    "raw, avg, sum, min, max, count, first, last, rate, increase, stddev, quantile:Q (or qQ, pNN, e.g. p99)";

const QUANTILE_HINT: &str = "write the quantile with its q, e.g. quantile:0.99, q0.99 or p99";

impl Agg {
    /// The name without a quantile's q: `quantile` for every `Quantile(_)`.
    pub fn name(self) -> &'static str {
        match self {
            Agg::Raw => "raw",
            Agg::Avg => "avg",
            Agg::Sum => "sum",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Count => "count",
            Agg::First => "first",
            Agg::Last => "last",
            Agg::Rate => "rate",
            Agg::Increase => "increase",
            Agg::Stddev => "stddev",
            Agg::Quantile(_) => "quantile",
        }
    }

    /// `name` with q given apart from it, as `--agg quantile --quantile 0.9` and
    /// the server's `{"function":"quantile","quantile":0.9}` give it. A bare
    /// `quantile` takes `quantile`; any other name must come without one.
    pub fn with_quantile(name: &str, quantile: Option<f64>) -> Result<Agg, ParseNameError> {
        if name.trim().eq_ignore_ascii_case("quantile") {
            return match quantile {
                Some(q) => quantile_in_range(q, &q.to_string()),
                None => Err(err(format!("a quantile needs its q: {QUANTILE_HINT}"))),
            };
        }
        let agg: Agg = name.parse()?;
        match (agg, quantile) {
            (_, None) => Ok(agg),
            (Agg::Quantile(_), Some(_)) => {
                Err(err(format!("{name:?} already names its quantile; do not give the quantile again")))
            }
            (_, Some(_)) => Err(err(format!("a quantile only applies to the quantile aggregation, not {name:?}"))),
        }
    }
}

fn quantile_in_range(q: f64, text: &str) -> Result<Agg, ParseNameError> {
    if (0.0..=1.0).contains(&q) {
        Ok(Agg::Quantile(q))
    } else {
        Err(err(format!("quantile {text} is not in [0, 1]")))
    }
}

impl FromStr for Agg {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Agg, ParseNameError> {
        let t = s.trim().to_ascii_lowercase();
        let agg = match t.as_str() {
            "raw" => Agg::Raw,
            "avg" | "mean" => Agg::Avg,
            "sum" => Agg::Sum,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "count" => Agg::Count,
            "first" => Agg::First,
            "last" => Agg::Last,
            "rate" => Agg::Rate,
            "increase" => Agg::Increase,
            "stddev" => Agg::Stddev,
            "quantile" => return Err(err(format!("a quantile needs its q: {QUANTILE_HINT}"))),
            _ => {
                let unknown = || Err(err(format!("unknown aggregation {s:?}; expected one of {AGG_NAMES}")));
                return quantile_name(&t).unwrap_or_else(unknown);
            }
        };
        Ok(agg)
    }
}

/// `quantile:Q`, `qQ` (Q in [0, 1]) or `pP` (P in [0, 100]); `None` when `t`
/// has none of these forms.
fn quantile_name(t: &str) -> Option<Result<Agg, ParseNameError>> {
    let number = |n: &str| n.parse::<f64>().ok().filter(|x| x.is_finite() && !n.starts_with(['+', '-']));
    if let Some(n) = t.strip_prefix("quantile:").or_else(|| t.strip_prefix('q')) {
        return Some(match number(n) {
            Some(q) => quantile_in_range(q, n),
            None => Err(err(format!("quantile {n:?} is not a number; {QUANTILE_HINT}"))),
        });
    }
    let p = number(t.strip_prefix('p')?)?;
    Some(if (0.0..=100.0).contains(&p) {
        Ok(Agg::Quantile(p / 100.0))
    } else {
        Err(err(format!("percentile {t:?} is not in p0..p100")))
    })
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Agg::Quantile(q) => write!(f, "quantile:{q}"),
            a => f.write_str(a.name()),
        }
    }
}

impl Tier {
    /// `auto`, `raw`, `5m`, `1h`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Auto => "auto",
            Tier::Raw => "raw",
            Tier::FiveMin => "5m",
            Tier::Hour => "1h",
        }
    }
}

impl FromStr for Tier {
    type Err = ParseNameError;

    fn from_str(s: &str) -> Result<Tier, ParseNameError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Tier::Auto),
            "raw" => Ok(Tier::Raw),
            "5m" => Ok(Tier::FiveMin),
            "1h" => Ok(Tier::Hour),
            _ => Err(err(format!("unknown tier {s:?}; expected auto, raw, 5m or 1h"))),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips() {
        let aggs = [
            Agg::Raw,
            Agg::Avg,
            Agg::Sum,
            Agg::Min,
            Agg::Max,
            Agg::Count,
            Agg::First,
            Agg::Last,
            Agg::Rate,
            Agg::Increase,
            Agg::Stddev,
            Agg::Quantile(0.99),
            Agg::Quantile(0.0),
            Agg::Quantile(1.0),
            Agg::Quantile(0.123456789),
        ];
        for a in aggs {
            assert_eq!(a.to_string().parse::<Agg>(), Ok(a), "{a}");
        }
        for t in [Tier::Auto, Tier::Raw, Tier::FiveMin, Tier::Hour] {
            assert_eq!(t.to_string().parse::<Tier>(), Ok(t));
        }
        assert_eq!(Agg::Quantile(0.5).to_string(), "quantile:0.5");
        assert_eq!(Tier::Hour.to_string(), "1h");
    }

    #[test]
    fn accepts_the_spellings_of_cli_and_server() {
        let p = |s: &str| s.parse::<Agg>();
        assert_eq!(p("MEAN"), Ok(Agg::Avg));
        assert_eq!(p(" avg "), Ok(Agg::Avg));
        assert_eq!(p("p99"), Ok(Agg::Quantile(0.99)));
        assert_eq!(p("p99.9").map(|a| matches!(a, Agg::Quantile(q) if (q - 0.999).abs() < 1e-12)), Ok(true));
        assert_eq!(p("q0.5"), Ok(Agg::Quantile(0.5)));
        assert_eq!(p("quantile:0.25"), Ok(Agg::Quantile(0.25)));
        assert_eq!("5M".parse::<Tier>(), Ok(Tier::FiveMin));
        assert_eq!("1h".parse::<Tier>(), Ok(Tier::Hour));
    }

    #[test]
    fn refuses_with_the_fix() {
        let e = |s: &str| s.parse::<Agg>().unwrap_err().to_string();
        assert!(e("quantile").contains("quantile:0.99"), "{}", e("quantile"));
        assert!(e("median").contains("unknown aggregation \"median\""), "{}", e("median"));
        assert!(e("q1.5").contains("not in [0, 1]"));
        assert!(e("p101").contains("not in p0..p100"));
        assert!(e("qx").contains("not a number"));
        assert!(e("q-0.5").contains("not a number"));
        assert!("2h".parse::<Tier>().unwrap_err().to_string().contains("auto, raw, 5m or 1h"));
    }

    #[test]
    fn quantile_given_apart() {
        assert_eq!(Agg::with_quantile("quantile", Some(0.9)), Ok(Agg::Quantile(0.9)));
        assert_eq!(Agg::with_quantile("p50", None), Ok(Agg::Quantile(0.5)));
        assert_eq!(Agg::with_quantile("sum", None), Ok(Agg::Sum));
        assert!(Agg::with_quantile("quantile", None).unwrap_err().to_string().contains("needs its q"));
        assert!(Agg::with_quantile("quantile", Some(2.0)).unwrap_err().to_string().contains("not in [0, 1]"));
        assert!(Agg::with_quantile("sum", Some(0.5)).unwrap_err().to_string().contains("only applies"));
        assert!(Agg::with_quantile("p99", Some(0.5)).unwrap_err().to_string().contains("already names"));
    }
}
