//! Sample values and strings in JSON, CSV and Prometheus text.
//!
//! Every value must come back bit for bit through export and import:
//! - finite values use Rust's shortest round-trip formatting (`{:?}`: `1.0`, `0.1`,
//!   `1e21`, `-0.0`), and are parsed back exactly (serde_json's `float_roundtrip`);
//! - JSON has no NaN or infinity, so those are strings: `"+Inf"`, `"-Inf"`, `"NaN"`
//!   for the canonical quiet NaN, and `"NaN(0x7ff0000000000002)"` (the raw bits) for
//!   any other NaN, such as Prometheus' stale marker.
//!
//! One rule for numerals out of f64's range, in every text input (line protocol
//! fields, JSON numbers and numeral strings, import): they round as IEEE-754
//! parsing does, so past ±1.7976931348623157e308 they are ±Inf and below the
//! smallest subnormal (about 4.9e-324) ±0.0; nothing in range is refused.

use std::fmt::Write;

/// The canonical quiet NaN `f64::NAN` (what `"NaN"` means).
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Appends a value as a JSON token: a number, or a string for NaN and ±Inf.
pub(crate) fn json_value(v: f64, out: &mut String) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else {
        out.push('"');
        special(v, out);
        out.push('"');
    }
}

/// Appends a value as bare text (CSV, Prometheus exposition): `NaN`, `+Inf`, `-Inf` or a number.
pub(crate) fn text_value(v: f64, out: &mut String) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else {
        special(v, out);
    }
}

fn special(v: f64, out: &mut String) {
    if v.is_nan() {
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

/// Parses the string forms: `NaN`, `NaN(0x...)`, `+Inf`/`Inf`/`-Inf` (any case), or a number.
pub(crate) fn parse_value_str(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("NaN(0x").and_then(|r| r.strip_suffix(')')) {
        let bits = u64::from_str_radix(hex, 16).ok()?;
        let v = f64::from_bits(bits);
        return v.is_nan().then_some(v);
    }
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::from_bits(CANONICAL_NAN)),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ if is_numeral(t) => t.parse::<f64>().ok(),
        _ => None,
    }
}

/// Whether `s` looks like a decimal numeral (an optional sign, then a digit or a
/// point), so that `f64::from_str`'s words (`inf`, `nan`, `infinity`) are not taken for one.
pub(crate) fn is_numeral(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
}

/// JSON numbers past f64's range, which serde_json refuses ("number out of
/// range"), turned into strings so they read as the numeral rule says (±Inf): the
/// body unchanged (borrowed) when it has none. Strings are skipped whole.
pub(crate) fn quote_huge_numbers(json: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut i, mut copied) = (0, 0);
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < json.len() && matches!(json[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                let num = &json[start..i];
                let huge =
                    std::str::from_utf8(num).ok().and_then(|t| t.parse::<f64>().ok()).is_some_and(f64::is_infinite);
                if huge {
                    let o = out.get_or_insert_with(|| Vec::with_capacity(json.len() + 16));
                    o.extend_from_slice(&json[copied..start]);
                    o.push(b'"');
                    o.extend_from_slice(num);
                    o.push(b'"');
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    match out {
        None => std::borrow::Cow::Borrowed(json),
        Some(mut o) => {
            o.extend_from_slice(&json[copied.min(json.len())..]);
            std::borrow::Cow::Owned(o)
        }
    }
}

/// A value from JSON: a number, or one of the strings `parse_value_str` accepts.
pub(crate) fn from_json(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => parse_value_str(s),
        _ => None,
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a label value escaped for Prometheus text exposition (`\\`, `\"`, `\n`).
pub(crate) fn prom_label_value(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_bit_for_bit() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let vals = [
            0.0,
            -0.0,
            1.0,
            0.1,
            -2.5e-310,
            1e21,
            1.7976931348623157e308,
            5e-324,
            f64::NAN,
            -f64::NAN,
            stale,
            f64::INFINITY,
            f64::NEG_INFINITY,
            123456789.12345679,
            1e16,
            12.3,
        ];
        for v in vals {
            let mut s = String::new();
            json_value(v, &mut s);
            let parsed: serde_json::Value = serde_json::from_str(&s).unwrap();
            let back = from_json(&parsed).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:?} -> {s}");
            let mut t = String::new();
            text_value(v, &mut t);
            assert_eq!(parse_value_str(&t).unwrap().to_bits(), v.to_bits(), "{t}");
        }
        let mut s = String::new();
        json_value(stale, &mut s);
        assert_eq!(s, "\"NaN(0x7ff0000000000002)\"");
    }

    #[test]
    fn numerals_out_of_range_round_as_ieee() {
        assert_eq!(parse_value_str("1e309"), Some(f64::INFINITY));
        assert_eq!(parse_value_str("-1e309"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value_str("1e-400").map(f64::to_bits), Some(0));
        assert_eq!(parse_value_str("-1e-400").map(f64::to_bits), Some((-0.0f64).to_bits()));
        assert_eq!(parse_value_str("4e-324"), Some(5e-324));
        let q = |s: &str| String::from_utf8(quote_huge_numbers(s.as_bytes()).into_owned()).unwrap();
        assert_eq!(
            q(r#"{"v":1e309,"s":"1e309 \" 2e999","w":[-1E+400,1e308,1e-400]}"#),
            r#"{"v":"1e309","s":"1e309 \" 2e999","w":["-1E+400",1e308,1e-400]}"#
        );
        assert!(matches!(quote_huge_numbers(b"[1.5e300]"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(q("9e999"), "\"9e999\"");
    }

    #[test]
    fn rejects_garbage_and_escapes() {
        assert!(parse_value_str("NaN(0x0000000000000001)").is_none());
        assert!(parse_value_str("abc").is_none());
        assert!(parse_value_str("-nan").is_none());
        assert!(parse_value_str("+infinity!").is_none());
        let mut s = String::new();
        json_str("a\"b\\c\n\u{1}", &mut s);
        assert_eq!(serde_json::from_str::<String>(&s).unwrap(), "a\"b\\c\n\u{1}");
    }
}
