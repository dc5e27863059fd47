//! Strings in JSON and Prometheus text, and values from JSON.
//!
//! Values are written and parsed by `crate::text::value` (ryu; `NaN`, `+Inf`,
//! `-Inf`, `NaN(0x...)` for other NaNs), so every value comes back bit for bit
//! through export and import; JSON numbers are parsed exactly (serde_json's
//! `float_roundtrip`).
//!
//! One rule for numerals out of f64's range, in every text input (line protocol
//! fields, JSON numbers and numeral strings, import): they round as IEEE-754
//! parsing does, so past ±1.7976931348623157e308 they are ±Inf and below the
//! smallest subnormal (about 4.9e-324) ±0.0; nothing in range is refused.

use crate::text::value::parse_value;

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

/// A value from JSON: a number, or one of the strings `text::value` accepts.
pub(crate) fn from_json(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => parse_value(s).ok(),
        _ => None,
    }
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
    fn json_values_round_trip_bit_for_bit() {
        use crate::text::value::write_json_value;
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        for v in [
            0.0,
            -0.0,
            0.1,
            -2.5e-310,
            1e21,
            1.7976931348623157e308,
            5e-324,
            f64::NAN,
            -f64::NAN,
            stale,
            f64::NEG_INFINITY,
        ] {
            let mut s = String::new();
            write_json_value(&mut s, v);
            let parsed: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(from_json(&parsed).unwrap().to_bits(), v.to_bits(), "{v:?} -> {s}");
        }
    }

    #[test]
    fn numerals_out_of_range_round_as_ieee() {
        let from = |s: &str| from_json(&serde_json::Value::String(s.into()));
        assert_eq!(from("1e309"), Some(f64::INFINITY));
        assert_eq!(from("-1e309"), Some(f64::NEG_INFINITY));
        assert_eq!(from("1e-400").map(f64::to_bits), Some(0));
        assert_eq!(from("4e-324"), Some(5e-324));
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
        assert!(from_json(&serde_json::json!("abc")).is_none());
        assert!(from_json(&serde_json::json!(true)).is_none());
        let mut s = String::new();
        crate::text::jsonl::write_json_string(&mut s, "a\"b\\c\n\u{1}");
        assert_eq!(serde_json::from_str::<String>(&s).unwrap(), "a\"b\\c\n\u{1}");
    }
}
