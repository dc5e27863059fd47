//! Durations in Prometheus's syntax, in milliseconds.
//!
//! A duration is `0`, or numbers each followed by a unit, the units in descending
//! order and each at most once: `y` (365 days), `w`, `d`, `h`, `m`, `s`, `ms`. So
//! `1h30m`, `5m`, `1d`, `1w`, `1y`, `500ms`; not `30m1h`, `5m5m`, `1.5h` or `5`.
//! The printer writes the largest units from days down (`1h30m`, `7d`, `365d`),
//! which parse back to the same value.

/// Units from the largest down, as the grammar orders them.
const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Parses a duration (surrounding whitespace ignored) into milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let bad = |why: String| format!("invalid duration {s:?}: {why} (expected e.g. 500ms, 10s, 5m, 1h30m, 7d, 1y)");
    if t == "0" {
        return Ok(0);
    }
    if t.is_empty() {
        return Err(bad("it is empty".into()));
    }
    let mut total: i64 = 0;
    let mut rest = t;
    // Index into UNITS of the last unit seen; the next must come after it.
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad("a number must come before each unit".into()));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad("the number is too large".into()))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let Some(i) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(bad(if unit.is_empty() {
                format!("{n} has no unit")
            } else {
                format!("unknown unit {unit:?} (units are y, w, d, h, m, s, ms)")
            }));
        };
        if last.is_some_and(|l| i <= l) {
            return Err(bad(format!("unit {unit:?} is out of order or repeated (largest first, each once)")));
        }
        last = Some(i);
        rest = &rest[unit_len..];
        total = n.checked_mul(UNITS[i].1).and_then(|v| total.checked_add(v)).ok_or_else(|| bad("too large".into()))?;
    }
    Ok(total)
}

/// Milliseconds in the largest units from days down, e.g. `1h30m`, `10s`, `250ms`;
/// `0s` for zero and a leading `-` for a negative span.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (unit, len) in &UNITS[2..] {
        let len = *len as u64;
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("10s"), Ok(10_000));
        assert_eq!(parse_duration(" 1h30m "), Ok(5_400_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000));
        assert_eq!(parse_duration("2w"), Ok(1_209_600_000));
        assert_eq!(parse_duration("1y"), Ok(365 * 86_400_000));
        assert_eq!(parse_duration("1y2w3d4h5m6s7ms"), Ok(((((365 + 14 + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1000 + 7));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("0s"), Ok(0));
        let cases = [
            ("", "empty"),
            ("5", "has no unit"),
            ("m", "a number must come before"),
            ("5x", "unknown unit \"x\""),
            ("30m1h", "out of order"),
            ("5m5m", "repeated"),
            ("1.5h", "unknown unit \".\""),
            ("-5m", "a number must come before"),
            ("99999999999999999999s", "too large"),
            ("9999999999y", "too large"),
        ];
        for (input, msg) in cases {
            let e = parse_duration(input).unwrap_err();
            assert!(e.contains(msg), "{input:?}: {e}");
        }
    }

    #[test]
    fn prints_the_largest_units_and_reads_them_back() {
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(604_800_000), "7d");
        assert_eq!(format_duration(250), "250ms");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(-90_000), "-1m30s");
        for ms in [1, 999, 1000, 5_400_000, 86_400_000 + 1, 604_800_000, 365 * 86_400_000, i64::MAX] {
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
        }
    }
}
