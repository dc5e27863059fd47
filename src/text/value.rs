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
        if !write_short_decimal(out, v) {
            out.push_str(ryu::Buffer::new().format_finite(v));
        }
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

/// Powers of ten tried for a value with few decimals, and their exponents.
const SHORT_SCALES: [(u32, f64); 4] = [(0, 1.0), (1, 10.0), (2, 100.0), (3, 1000.0)];

/// Writes `v` as ryu would when it has at most three decimals and lies in
/// `[0.001, 1e15)` in magnitude (what most stored values are), without ryu's
/// search; `false`, writing nothing, otherwise.
///
/// Why it equals ryu's shortest form: with `m = v·10^k` an integer below 2^52
/// and `m / 10^k == v` (a correctly rounded division of exact operands, so the
/// decimal `m·10^-k` parses to `v`), and `m` not a multiple of 10, any other decimal
/// of no more digits differs from `m·10^-k` by at least `10^-k`, more than the
/// gap between neighbouring f64s near `v`, so none parses to `v`. Ryu prints
/// such values plainly, an integer with `.0`. The product `v·10^k` rounds, so
/// the first `k` that works may be too large by trailing zeros, which are dropped.
fn write_short_decimal(out: &mut String, v: f64) -> bool {
    let a = v.abs();
    if !(1e-3..1e15).contains(&a) {
        return false;
    }
    for (k, p) in SHORT_SCALES {
        let m = a * p;
        if m.fract() == 0.0 && m < 4_503_599_627_370_496.0 && m / p == a {
            // The product rounds, so a smaller k may have been missed: drop trailing zeros.
            let (mut m, mut k) = (m as u64, k);
            while k > 0 && m % 10 == 0 {
                m /= 10;
                k -= 1;
            }
            let scale = 10u64.pow(k);
            if v < 0.0 {
                out.push('-');
            }
            push_u64(out, m / scale);
            out.push('.');
            match k {
                0 => out.push('0'),
                _ => {
                    // The fraction's k digits, leading zeros included.
                    let frac = m % scale;
                    let mut d = scale / 10;
                    while d > 1 && frac < d {
                        out.push('0');
                        d /= 10;
                    }
                    push_u64(out, frac);
                }
            }
            return true;
        }
    }
    false
}

/// Appends `n` in decimal.
pub fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

/// Appends `n` in decimal.
pub fn push_i64(out: &mut String, n: i64) {
    if n < 0 {
        out.push('-');
    }
    push_u64(out, n.unsigned_abs());
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

    fn ryu(v: f64) -> String {
        ryu::Buffer::new().format_finite(v).to_string()
    }

    #[test]
    fn short_decimals_are_written_as_ryu_writes_them() {
        let edges = [
            1e-3,
            0.0011,
            0.999,
            1.0,
            9.5,
            10.0,
            45.3,
            99.99,
            100.001,
            0.1 + 0.2,
            1e15,
            999999999999999.9,
            4503599627370.496,
            4503599627370.497,
            450359962737.0497,
            1e14 + 0.125,
            123456789.12345679,
            9.999999999999999e-4,
        ];
        for v in edges.into_iter().flat_map(|v| [v, -v]) {
            let mut out = String::new();
            write_value(&mut out, v);
            assert_eq!(out, ryu(v), "{v:e}");
        }
        // Decimals of one to four places over many magnitudes, and their neighbours.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = x % 10_000_000_000_000_000;
            let v = digits as f64 / 10f64.powi((x >> 60) as i32 % 5) / 10f64.powi((x >> 56) as i32 % 16);
            for v in [v, -v, f64::from_bits(v.to_bits() + 1), f64::from_bits(v.to_bits().saturating_sub(1))] {
                let mut out = String::new();
                write_value(&mut out, v);
                assert_eq!(out, ryu(v), "{v:e}");
            }
        }
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for n in [0i64, 1, -1, 9, 10, 1_796_325_080_000, i64::MAX, i64::MIN] {
            let mut out = String::new();
            push_i64(&mut out, n);
            assert_eq!(out, n.to_string());
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
