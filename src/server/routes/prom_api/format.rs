//! Prometheus's wire formats: its JSON for query results (written by hand, in one
//! buffer, as this is the hot path of every dashboard), its float and timestamp
//! spellings, and its time and duration parameters.

use std::fmt::Write;

use crate::promql::Value;
use crate::text::jsonl::{write_json_object, write_json_string};
use crate::text::value::push_u64;

/// A time parameter as Prometheus reads one: float seconds (fraction rounded to
/// the ms), else RFC 3339. Nothing else: no `now-1h`, no ms by magnitude.
pub(super) fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid timestamp");
    if let Ok(f) = s.parse::<f64>() {
        if f.is_nan() {
            return Err(bad());
        }
        // Clients send Go's minimum and maximum times as "all time" (promtool
        // does): far outside i64 ms, so they saturate (`as` does for floats).
        let (whole, frac) = (f.trunc(), f.fract());
        return Ok((whole as i64).saturating_mul(1000).saturating_add((frac * 1000.0).round() as i64));
    }
    // Prometheus's own spellings of its minimum and maximum times.
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(i64::MIN / 2),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(i64::MAX / 2),
        _ => {}
    }
    // RFC 3339 has a `T` (or a space) between date and time; `text::time` reads it.
    if s.len() >= 20 && matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return crate::text::time::parse_time(s, 0).map_err(|_| bad());
    }
    Err(bad())
}

/// A duration parameter as Prometheus reads one: float seconds, else its duration
/// syntax (`15s`, `1m`, `1h30m`); in ms, truncated.
pub(super) fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = f * 1000.0;
        if !ms.is_finite() || ms.abs() >= 9.2e15 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms as i64);
    }
    crate::text::duration::parse_duration(s).map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// A sample value as Prometheus writes it: Go's `strconv.FormatFloat(v, 'f', -1, 64)`
/// (shortest round-trip digits, never an exponent), `NaN`, `+Inf`, `-Inf`, which
/// Rust's `Display` for f64 matches. Faster paths that print the same:
/// - an integer below 2^53 is its own shortest spelling;
/// - `ryu` finds the same shortest digits several times faster, except that
///   it breaks a tie between two shortest spellings another way. A tie needs the
///   exact binary value to end one decimal digit after them, so only values with
///   few fraction bits (under 28 once trailing zero bits are dropped) can tie;
///   those, and what ryu would write with an exponent, go through `Display`.
pub(super) fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
        if v.is_sign_negative() {
            out.push('-');
        }
        push_u64(out, v.abs() as u64);
    } else if fraction_bits(v) >= 28 {
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v);
        if s.contains('e') {
            let _ = write!(out, "{v}");
        } else {
            out.push_str(s);
        }
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Binary digits after the point in `v`'s exact value (0 for an integer).
fn fraction_bits(v: f64) -> i32 {
    let bits = v.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // Subnormals have no implicit bit and the smallest exponent.
    let (mant, exp) = if biased == 0 { (frac, -1074) } else { (frac | 1u64 << 52, biased - 1075) };
    if mant == 0 {
        return 0;
    }
    (-(exp + mant.trailing_zeros() as i32)).max(0)
}

/// A timestamp (ms) as Prometheus writes it: a JSON number of seconds, with the
/// ms as a fraction without trailing zeros (`1700000000`, `1700000000.5`).
pub(super) fn push_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let a = t.unsigned_abs();
    push_u64(out, a / 1000);
    let ms = a % 1000;
    if ms != 0 {
        // Each digit is below 10, so the casts are exact.
        let digits = [b'.', b'0' + (ms / 100) as u8, b'0' + (ms / 10 % 10) as u8, b'0' + (ms % 10) as u8];
        let len = if ms.is_multiple_of(100) {
            2
        } else if ms.is_multiple_of(10) {
            3
        } else {
            4
        };
        out.push_str(std::str::from_utf8(&digits[..len]).unwrap_or(""));
    }
}

/// `[<seconds>,"<value>"]`.
fn push_sample(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_timestamp(out, t);
    out.push_str(",\"");
    push_float(out, v);
    out.push_str("\"]");
}

/// A JSON array of strings.
pub(super) fn string_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(&mut out, s);
    }
    out.push(']');
    out
}

/// `{"resultType":..,"result":..}` of a query's answer.
pub(super) fn encode_value(v: &Value) -> String {
    // About what a devops answer takes, so the buffer grows at most once or twice.
    let estimate = match v {
        Value::Vector(s) => 200 * s.len(),
        Value::Matrix(s) => s.iter().map(|s| 200 + 26 * s.points.len()).sum(),
        _ => 0,
    };
    let mut out = String::with_capacity(256 + estimate);
    out.push_str("{\"resultType\":\"");
    out.push_str(v.result_type());
    out.push_str("\",\"result\":");
    match v {
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_json_object(&mut out, s.metric.iter());
                out.push_str(",\"value\":");
                push_sample(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push('[');
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_json_object(&mut out, s.metric.iter());
                out.push_str(",\"values\":[");
                for (j, &(t, v)) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_sample(&mut out, t, v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
        Value::Scalar(t, v) => push_sample(&mut out, *t, *v),
        Value::String(t, s) => {
            out.push('[');
            push_timestamp(&mut out, *t);
            out.push(',');
            write_json_string(&mut out, s);
            out.push(']');
        }
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_times_as_prometheus_writes_them() {
        let f = |v: f64| {
            let mut s = String::new();
            push_float(&mut s, v);
            s
        };
        assert_eq!(f(1.0), "1");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(1e21), "1000000000000000000000");
        assert_eq!(f(1.5e-7), "0.00000015");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY), "-Inf");
        assert_eq!(f(40.0), "40");
        assert_eq!(f(-0.0), "-0");
        assert_eq!(f(0.0), "0");
        assert_eq!(f(32.339999999999996), "32.339999999999996");
        assert_eq!(f(1.2345678901234568e20), "123456789012345680000");
        assert_eq!(f(f64::MAX), format!("{}", f64::MAX));
        assert_eq!(f(f64::MIN_POSITIVE), format!("{}", f64::MIN_POSITIVE));
        // The fast path prints Display's digits for every kind of value.
        for tie in [f64::from_bits(0x4317_9085_685d_83c9), f64::from_bits(0x4307_f7c8_99d9_cfc2)] {
            assert_eq!(f(tie), format!("{tie}"), "a tie ryu breaks the other way");
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..1_000_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match i % 4 {
                0 => f64::from_bits(x),
                1 => (x % 100_000) as f64 / 10.0,
                // Every magnitude from 2^-40 to 2^60, with full mantissas.
                2 => (x >> 11) as f64 * 2f64.powi((x % 101) as i32 - 93),
                _ => (x >> 11) as f64 / (1u64 << (x % 13)) as f64,
            };
            if v.is_finite() {
                assert_eq!(f(v), format!("{v}"), "{:#x}", v.to_bits());
            }
        }
        let t = |ms: i64| {
            let mut s = String::new();
            push_timestamp(&mut s, ms);
            s
        };
        assert_eq!(t(1_700_000_000_000), "1700000000");
        assert_eq!(t(1_700_000_000_500), "1700000000.5");
        assert_eq!(t(1_700_000_000_012), "1700000000.012");
        assert_eq!(t(-1500), "-1.5");
        assert_eq!(t(0), "0");
        assert_eq!(t(1_700_000_000_100), "1700000000.1");
        assert_eq!(t(1_700_000_000_120), "1700000000.12");
        assert_eq!(t(1_700_000_000_001), "1700000000.001");
        assert_eq!(t(1_700_000_000_321), "1700000000.321");
        for ms in 0..3000 {
            let want = if ms % 1000 == 0 { format!("{}", ms / 1000) } else { format!("{}", ms as f64 / 1000.0) };
            assert_eq!(t(ms), want);
        }
        assert_eq!(t(i64::MIN), "-9223372036854775.808");
        assert_eq!(t(i64::MAX), "9223372036854775.807");
    }

    #[test]
    fn times_and_durations_as_prometheus_reads_them() {
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1700000000.1234").unwrap(), 1_700_000_000_123);
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000_000, "a number is always seconds");
        assert_eq!(parse_time("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("2023-11-14T22:13:20.25+00:00").unwrap(), 1_700_000_000_250);
        assert!(parse_time("now-1h").unwrap_err().contains("cannot parse \"now-1h\" to a valid timestamp"));
        assert!(parse_time("NaN").is_err());
        assert_eq!(parse_time("-9223309901257974").unwrap(), -9_223_309_901_257_974_000, "Go's minimum time");
        assert_eq!(parse_time("1e300").unwrap(), i64::MAX, "beyond i64 ms saturates");
        assert_eq!(parse_time("-292273086-05-16T16:47:06Z").unwrap(), i64::MIN / 2);
        assert_eq!(parse_duration("15s").unwrap(), 15_000);
        assert_eq!(parse_duration("1m").unwrap(), 60_000);
        assert_eq!(parse_duration("0.5").unwrap(), 500);
        assert_eq!(parse_duration("30").unwrap(), 30_000);
        assert!(parse_duration("abc").unwrap_err().contains("to a valid duration"));
    }
}
