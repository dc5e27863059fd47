//! Threshold alerts: `SELECTOR OP CRIT` or `SELECTOR OP WARN:CRIT`, with OP one of
//! `>`, `>=`, `<`, `<=`. Example: `cpu_usage_user>90` (red above 90, yellow above
//! 81: the warning level defaults to 10 % short of the critical one) or
//! `cpu_usage_idle{hostname="host_1"}<20:5`.

use strata::Matcher;

use strata::text::selector::parse_selector;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

/// How bad an alert is; shown green / yellow / red (grey without data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    NoData,
    Ok,
    Warning,
    Critical,
}

#[derive(Debug, Clone)]
pub struct Alert {
    /// The text as given, for display.
    pub text: String,
    pub matchers: Vec<Matcher>,
    pub op: Op,
    pub warn: f64,
    pub crit: f64,
}

impl Alert {
    pub fn parse(s: &str) -> Result<Alert, String> {
        let bad =
            |why: &str| format!("invalid alert {s:?}: {why} (expected e.g. 'cpu_usage_user>90' or 'mem_free<20:5')");
        // The threshold has no '<' or '>', so the last one is the operator.
        let at = s.rfind(['<', '>']).ok_or_else(|| bad("no comparison (>, >=, <, <=)"))?;
        let (sel, rest) = s.split_at(at);
        let (op, thr) = match (rest.as_bytes()[0], rest.as_bytes().get(1)) {
            (b'>', Some(b'=')) => (Op::Ge, &rest[2..]),
            (b'>', _) => (Op::Gt, &rest[1..]),
            (b'<', Some(b'=')) => (Op::Le, &rest[2..]),
            _ => (Op::Lt, &rest[1..]),
        };
        let num = |t: &str| {
            t.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| bad("the threshold is not a number"))
        };
        let (warn, crit) = match thr.split_once(':') {
            Some((w, c)) => (num(w)?, num(c)?),
            None => {
                let c = num(thr)?;
                let margin = c.abs() * 0.1;
                (if matches!(op, Op::Gt | Op::Ge) { c - margin } else { c + margin }, c)
            }
        };
        let worse = |a: f64, b: f64| if matches!(op, Op::Gt | Op::Ge) { a > b } else { a < b };
        if worse(warn, crit) {
            return Err(bad("the warning level must come before the critical one"));
        }
        let matchers = parse_selector(sel.trim()).map_err(|e| bad(&e.to_string()))?;
        Ok(Alert { text: s.trim().to_string(), matchers, op, warn, crit })
    }

    /// The worst of `values` in this alert's direction (max for `>`, min for `<`).
    pub fn worst(&self, values: impl Iterator<Item = f64>) -> Option<f64> {
        let high = matches!(self.op, Op::Gt | Op::Ge);
        values.filter(|v| !v.is_nan()).reduce(|a, b| if (b > a) == high { b } else { a })
    }

    pub fn level(&self, value: Option<f64>) -> Level {
        let Some(v) = value else { return Level::NoData };
        let crosses = |t: f64| match self.op {
            Op::Gt => v > t,
            Op::Ge => v >= t,
            Op::Lt => v < t,
            Op::Le => v <= t,
        };
        if crosses(self.crit) {
            Level::Critical
        } else if crosses(self.warn) {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_grades() {
        let a = Alert::parse("cpu_usage_user>90").unwrap();
        assert_eq!((a.op, a.warn, a.crit), (Op::Gt, 81.0, 90.0));
        assert_eq!(a.level(Some(95.0)), Level::Critical);
        assert_eq!(a.level(Some(85.0)), Level::Warning);
        assert_eq!(a.level(Some(50.0)), Level::Ok);
        assert_eq!(a.level(None), Level::NoData);
        assert_eq!(a.worst([1.0, f64::NAN, 7.0, 3.0].into_iter()), Some(7.0));

        let b = Alert::parse("mem{host=\"a>b\"} <= 20:5").unwrap();
        assert_eq!((b.op, b.warn, b.crit), (Op::Le, 20.0, 5.0));
        assert_eq!(b.matchers[1].value, "a>b");
        assert_eq!(b.level(Some(5.0)), Level::Critical);
        assert_eq!(b.worst([4.0, 9.0].into_iter()), Some(4.0));

        for bad in ["cpu", "cpu>", "cpu>x", ">5", "cpu>20:10", "cpu{>5"] {
            assert!(Alert::parse(bad).is_err(), "{bad}");
        }
    }
}
