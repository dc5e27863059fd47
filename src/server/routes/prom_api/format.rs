//! Prometheus's wire formats: its JSON for query results (written by hand, in one
//! buffer, as this is the hot path of every dashboard), its float and timestamp
//! spellings, and its time and duration parameters.

use std::fmt::Write;

use crate::promql::Value;
use crate::text::jsonl::{write_json_object, write_json_string};

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
/// (shortest round-trip digits, never an exponent), `NaN`, `+Inf`, `-Inf`. Rust's
/// `Display` for f64 prints the same digits.
pub(super) fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A timestamp (ms) as Prometheus writes it: a JSON number of seconds, with the
/// ms as a fraction without trailing zeros (`1700000000`, `1700000000.5`).
pub(super) fn push_timestamp(out: &mut String, t: i64) {
    if t < 0 {
        out.push('-');
    }
    let a = t.unsigned_abs();
    let _ = write!(out, "{}", a / 1000);
    let ms = a % 1000;
    if ms != 0 {
        let frac = format!("{ms:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
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
    let mut out = String::with_capacity(256);
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
        let t = |ms: i64| {
            let mut s = String::new();
            push_timestamp(&mut s, ms);
            s
        };
        assert_eq!(t(1_700_000_000_000), "1700000000");
        assert_eq!(t(1_700_000_000_500), "1700000000.5");
        assert_eq!(t(1_700_000_000_012), "1700000000.012");
        assert_eq!(t(-1500), "-1.5");
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
