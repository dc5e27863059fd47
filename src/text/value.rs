//! Sample values as text: one encoder, one spelling of the special values, and
//! every common spelling accepted on input.
//!
//! Output: finite values as the shortest decimal that parses back to the same
//! f64 (ryu: `1.5`, `-0.0`, `1e21`, `5e-324`); `NaN`, `+Inf`, `-Inf` as in
//! Prometheus' text format; and a NaN whose bits differ from `f64::NAN` (such as
//! Prometheus' stale marker) as `NaN(0x7ff0000000000002)`, so that every value
//! round-trips bit for bit. JSON has no NaN or infinity: there they are strings.
//!
//! Input: the above, `nan`, `inf`, `+inf`, `-Inf`, `Infinity`, `+infinity`,
//! `-INFINITY` (any case), `NaN:0x...`, and decimal numerals, which round as
//! IEEE-754 parsing does (past f64's range ±Inf, below its smallest subnormal ±0).

use std::fmt::Write as _;

/// The bits of `f64::NAN`, the NaN that `NaN` stands for.
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Appends a value as bare text (CSV, Prometheus text, terminals).
pub fn write_value(out: &mut String, v: f64) {
    if v.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(v));
    } else if v.is_nan() {
        if v.to_bits() == CANONICAL_NAN {
            out.push_str("NaN");
        } else {
            let _ = write!(out, "NaN(0x{:016x})", v.to_bits());
        }
    } else if v > 0.0 {
        out.push_str("+Inf");
    } else {
        out.push_str("-Inf");
    }
}

/// Appends a value as a JSON token: a number, or a string for NaN and ±Inf.
pub fn write_json_value(out: &mut String, v: f64) {
    if v.is_finite() {
        write_value(out, v);
    } else {
        out.push('"');
        write_value(out, v);
        out.push('"');
    }
}

/// [`write_value`] into a new string.
pub fn value_string(v: f64) -> String {
    let mut s = String::new();
    write_value(&mut s, v);
    s
}

/// Parses any spelling described in the module documentation (surrounding
/// whitespace ignored).
pub fn parse_value(s: &str) -> Result<f64, String> {
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => return Ok(f64::from_bits(CANONICAL_NAN)),
        "inf" | "+inf" | "infinity" | "+infinity" => return Ok(f64::INFINITY),
        "-inf" | "-infinity" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let payload = t.strip_prefix("NaN(0x").and_then(|r| r.strip_suffix(')')).or_else(|| t.strip_prefix("NaN:0x"));
    if let Some(hex) = payload {
        let v = u64::from_str_radix(hex, 16).map(f64::from_bits).map_err(|_| format!("invalid NaN payload {s:?}"))?;
        return if v.is_nan() { Ok(v) } else { Err(format!("{s:?} is not a NaN bit pattern")) };
    }
    if is_numeral(t) {
        if let Ok(v) = t.parse::<f64>() {
            return Ok(v);
        }
    }
    Err(format!("invalid value {s:?} (expected a number, NaN, +Inf or -Inf)"))
}

/// Whether `s` looks like a decimal numeral (an optional sign, then a digit or a
/// point), so that `f64::from_str`'s words (`inf`, `nan`, `infinity`) are not taken
/// for one where only numerals are allowed.
pub fn is_numeral(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    #[test]
    fn every_value_round_trips_bit_for_bit() {
        let vals = [
            0.0,
            -0.0,
            1.0,
            0.1 + 0.2,
            -2.5e-310,
            1e21,
            1e16,
            f64::MAX,
            5e-324,
            123456789.12345679,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(STALE),
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for v in vals {
            let t = value_string(v);
            assert_eq!(parse_value(&t).unwrap().to_bits(), v.to_bits(), "{t}");
            let mut j = String::new();
            write_json_value(&mut j, v);
            let want = if v.is_finite() { t.clone() } else { format!("\"{t}\"") };
            assert_eq!(j, want, "JSON has no NaN or infinity: they are strings");
        }
    }

    #[test]
    fn one_spelling_out_every_spelling_in() {
        assert_eq!(value_string(f64::NAN), "NaN");
        assert_eq!(value_string(f64::INFINITY), "+Inf");
        assert_eq!(value_string(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value_string(f64::from_bits(STALE)), "NaN(0x7ff0000000000002)");
        assert_eq!(value_string(1.5), "1.5");
        assert_eq!(value_string(-0.0), "-0.0");
        for s in ["nan", "NaN", "NAN", " nan "] {
            assert_eq!(parse_value(s).unwrap().to_bits(), f64::NAN.to_bits(), "{s}");
        }
        for s in ["inf", "+inf", "Inf", "+Inf", "INF", "Infinity", "+infinity", "INFINITY"] {
            assert_eq!(parse_value(s), Ok(f64::INFINITY), "{s}");
        }
        for s in ["-inf", "-Inf", "-Infinity", "-INFINITY"] {
            assert_eq!(parse_value(s), Ok(f64::NEG_INFINITY), "{s}");
        }
        assert_eq!(parse_value("NaN:0x7ff0000000000002").unwrap().to_bits(), STALE);
        assert_eq!(parse_value("1e3"), Ok(1000.0));
        assert_eq!(parse_value(".5"), Ok(0.5));
        assert_eq!(parse_value("1e309"), Ok(f64::INFINITY));
        assert_eq!(parse_value("-1e-400").map(f64::to_bits), Ok((-0.0f64).to_bits()));
        for bad in ["", "abc", "-nan", "+infinity!", "NaN(0x0000000000000001)", "NaN(0xzz)", "1,5", "0x10"] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
    }
}
