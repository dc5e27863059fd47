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
//!
//! The read endpoints' answers are written straight into one buffer by
//! [`JsonObject`] and the `json_*` writers, never through a `serde_json::Value`
//! tree: strings escaped as serde_json escapes them, object keys in the byte order
//! serde_json's (sorted) maps wrote them, so answers keep their bytes.

use crate::labels::{Labels, METRIC_NAME};
use crate::text::time::format_rfc3339;
use crate::text::value::{parse_value, push_i64, write_json_value};

/// Appends a JSON string literal escaped as serde_json escapes one: `\"`, `\\`,
/// `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`.
pub(crate) use crate::text::jsonl::write_json_string as json_str;

/// Appends `format_rfc3339(ms)` as a JSON string; years 0 to 9999 are written
/// here without allocating (a dashboard's answer has one per point).
pub(crate) fn json_time(out: &mut String, ms: i64) {
    // 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z.
    const FROM: i64 = -62_167_219_200_000;
    const UNTIL: i64 = 253_402_300_800_000;
    if !(FROM..UNTIL).contains(&ms) {
        json_str(out, &format_rfc3339(ms));
        return;
    }
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let mut b = *b"\"0000-00-00T00:00:00.000Z\"";
    let mut put = |at: usize, v: i64, width: usize| {
        let mut v = v;
        for k in (0..width).rev() {
            b[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(1, y, 4);
    put(6, m, 2);
    put(9, d, 2);
    put(12, sod / 3600, 2);
    put(15, sod / 60 % 60, 2);
    put(18, sod % 60, 2);
    put(21, milli, 3);
    // Whole seconds are written without the fraction, as `format_rfc3339` does.
    let text = if milli == 0 {
        b[20] = b'Z';
        b[21] = b'"';
        &b[..22]
    } else {
        &b[..]
    };
    out.push_str(std::str::from_utf8(text).unwrap_or("null"));
}

/// Year, month, day of the proleptic Gregorian calendar for days since
/// 1970-01-01, by 400-year eras (146,097 days each) counted from March 1st, so
/// that the leap day ends a year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153; // month from March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = era * 400 + yoe + i64::from(m <= 2);
    (y, m, d)
}

/// `[a,b,…]`: `each` writes one element.
pub(crate) fn json_array<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

/// Appends a series' labels without `__name__` as a JSON object.
pub(crate) fn json_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().filter(|(k, _)| *k != METRIC_NAME) {
        if !first {
            out.push(',');
        }
        first = false;
        json_str(out, k);
        out.push(':');
        json_str(out, v);
    }
    out.push('}');
}

/// A 200 response carrying a JSON answer written by hand.
pub(crate) fn json_answer(body: String) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A JSON object being written into a buffer. Keys must come in ascending byte
/// order (checked in debug builds): the order the answers had when serde_json's
/// sorted maps wrote them, which clients may have come to compare.
pub(crate) struct JsonObject<'a> {
    out: &'a mut String,
    last: Option<&'static str>,
}

impl<'a> JsonObject<'a> {
    pub(crate) fn new(out: &'a mut String) -> JsonObject<'a> {
        out.push('{');
        JsonObject { out, last: None }
    }

    /// Writes `key:` and hands the buffer over for the value.
    pub(crate) fn key(&mut self, key: &'static str) -> &mut String {
        debug_assert!(self.last.is_none_or(|l| l < key), "JSON key {key:?} after {:?}", self.last);
        if self.last.is_some() {
            self.out.push(',');
        }
        self.last = Some(key);
        json_str(self.out, key);
        self.out.push(':');
        self.out
    }

    pub(crate) fn str(&mut self, key: &'static str, v: &str) {
        json_str(self.key(key), v);
    }

    /// A string, or `null`.
    pub(crate) fn opt_str(&mut self, key: &'static str, v: Option<&str>) {
        match v {
            Some(v) => self.str(key, v),
            None => self.key(key).push_str("null"),
        }
    }

    /// An integer, or `null`.
    pub(crate) fn int(&mut self, key: &'static str, v: Option<i64>) {
        match v {
            Some(v) => push_i64(self.key(key), v),
            None => self.key(key).push_str("null"),
        }
    }

    /// A value (`"NaN"`, `"+Inf"`, `"-Inf"` as strings), or `null`.
    pub(crate) fn num(&mut self, key: &'static str, v: Option<f64>) {
        match v {
            Some(v) => write_json_value(self.key(key), v),
            None => self.key(key).push_str("null"),
        }
    }

    /// `key` as RFC 3339 and `key_ms` as epoch ms (both `null` for `None`).
    pub(crate) fn time(&mut self, key: &'static str, key_ms: &'static str, ts: Option<i64>) {
        match ts {
            Some(t) => json_time(self.key(key), t),
            None => self.key(key).push_str("null"),
        }
        self.int(key_ms, ts);
    }

    pub(crate) fn end(self) {
        self.out.push('}');
    }
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

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é\u{2028}\u{10ffff}\"\\/");
        for s in ["", "plain", "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}", all.as_str()] {
            let mut out = String::new();
            json_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn times_are_written_as_format_rfc3339_writes_them() {
        let check = |ms: i64| {
            let mut out = String::new();
            json_time(&mut out, ms);
            assert_eq!(out, format!("\"{}\"", format_rfc3339(ms)), "{ms}");
        };
        // Calendar edges: year 0, leap days, the epoch, the last ms of year 9999, and beyond.
        for ms in [
            -62_167_219_200_001,
            -62_167_219_200_000,
            -1,
            0,
            1,
            951_782_400_000,
            951_868_799_999,
            4_107_542_400_000,
            1_700_000_000_000,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MIN,
            i64::MAX,
        ] {
            check(ms);
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = (x % 320_000_000_000_000) as i64 - 64_000_000_000_000;
            check(ms);
            check(ms - ms.rem_euclid(1000));
        }
    }
}
