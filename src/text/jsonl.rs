//! JSON lines, VictoriaMetrics' export form: one object per series,
//!
//! ```text
//! {"metric":{"__name__":"cpu","host":"a"},"values":[1.5,"NaN"],"timestamps":[1000,2000]}
//! ```
//!
//! A series longer than [`JSON_LINE_MAX_SAMPLES`] continues on further lines.
//! Timestamps are epoch milliseconds. Values are numbers, or strings for what
//! JSON cannot hold (`"NaN"`, `"+Inf"`, `"-Inf"`, `"NaN(0x...)"`, see
//! `text::value`); on input a value may be any number or any string that
//! `text::value` reads, and numbers past f64's range read as ±Inf.

use std::fmt::Write as _;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::value::{parse_value, write_json_value};
use crate::{Labels, Sample};

/// Most samples written on one JSON line; longer series continue on the next.
pub const JSON_LINE_MAX_SAMPLES: usize = 10_000;

/// Appends a JSON string literal, escaped as serde_json escapes it. Runs of
/// plain bytes are copied whole: every byte that needs escaping is ASCII, so
/// each cut falls on a char boundary.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[from..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        from = i + 1;
    }
    out.push_str(&s[from..]);
    out.push('"');
}

/// A JSON object of string pairs: `{"__name__":"cpu","host":"a"}`.
pub fn write_json_object<'a>(out: &mut String, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, k);
        out.push(':');
        write_json_string(out, v);
    }
    out.push('}');
}

/// A series' labels as a JSON object.
pub fn write_json_labels(out: &mut String, labels: &Labels) {
    write_json_object(out, labels.iter());
}

/// Appends one series as JSON lines (several if it has more than
/// [`JSON_LINE_MAX_SAMPLES`] samples). An empty series writes nothing.
pub fn write_json_lines(out: &mut String, labels: &Labels, samples: &[Sample]) {
    for part in samples.chunks(JSON_LINE_MAX_SAMPLES) {
        out.push_str("{\"metric\":");
        write_json_labels(out, labels);
        out.push_str(",\"values\":[");
        for (i, s) in part.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_value(out, s.value);
        }
        out.push_str("],\"timestamps\":[");
        for (i, s) in part.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}", s.ts);
        }
        out.push_str("]}\n");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(deserialize_with = "super::json_strict::label_pairs")]
    metric: Vec<(String, String)>,
    values: Vec<Value>,
    timestamps: Vec<i64>,
}

/// A value as it stands in the line, read without buffering (unlike an
/// untagged enum): a number, or a string for `text::value` to read.
enum Value {
    Num(f64),
    Str(String),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Value;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a string such as \"NaN\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Num(v))
            }
            // Integers past 2^53 round to the nearest f64, as a float literal would.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Num(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Why a JSON line did not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLineError {
    pub message: String,
    /// Samples the line held (1 when it did not parse far enough to tell).
    pub samples: u64,
    /// The engine's label rules refused the series (rather than a syntax error).
    pub labels: bool,
}

/// Parses one JSON line into a series and its samples.
pub fn parse_json_line(line: &[u8]) -> Result<(Labels, Vec<Sample>), JsonLineError> {
    let err = |message: String, samples: u64, labels: bool| JsonLineError { message, samples, labels };
    let l: Line = serde_json::from_slice(&crate::server::values::quote_huge_numbers(line))
        .map_err(|e| err(format!("invalid JSON line: {e}"), 1, false))?;
    let points = l.values.len().max(l.timestamps.len()) as u64;
    if l.values.len() != l.timestamps.len() {
        return Err(err(format!("{} values but {} timestamps", l.values.len(), l.timestamps.len()), points, false));
    }
    let labels = Labels::from_pairs(l.metric).map_err(|e| err(format!("metric: {e}"), points, true))?;
    let mut samples = Vec::with_capacity(l.values.len());
    for (j, (v, ts)) in l.values.into_iter().zip(l.timestamps).enumerate() {
        let v = match v {
            Value::Num(n) => n,
            Value::Str(s) => parse_value(&s).map_err(|e| err(format!("values[{j}]: {e}"), points, false))?,
        };
        samples.push(Sample::new(ts, v));
    }
    Ok((labels, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_names_bad_lines() {
        let labels = Labels::metric("m", [("q", "a\"b\\c\n\u{1}é")]).unwrap();
        let samples = vec![Sample::new(1, 1.5), Sample::new(2, f64::from_bits(0x7ff0_0000_0000_0002))];
        let mut out = String::new();
        write_json_lines(&mut out, &labels, &samples);
        let (l, s) = parse_json_line(out.trim_end().as_bytes()).unwrap();
        assert_eq!((l, s[1].value.to_bits()), (labels, 0x7ff0_0000_0000_0002));
        let e = parse_json_line(br#"{"metric":{"a":"b"},"values":[1],"timestamps":[]}"#).unwrap_err();
        assert_eq!((e.message.as_str(), e.samples), ("1 values but 0 timestamps", 1));
        let e = parse_json_line(br#"{"metric":{"a":"b"},"values":["x"],"timestamps":[1]}"#).unwrap_err();
        assert!(e.message.starts_with("values[0]:"), "{}", e.message);
        let e = parse_json_line(br#"{"metric":{"bad-name":"b"},"values":[1,2],"timestamps":[1,2]}"#).unwrap_err();
        assert!(e.labels && e.samples == 2, "{e:?}");
        let (_, s) = parse_json_line(br#"{"metric":{"a":"b"},"values":[1e999],"timestamps":[1]}"#).unwrap();
        assert_eq!(s[0].value, f64::INFINITY);
        assert!(parse_json_line(b"{").is_err());
    }

    #[test]
    fn refuses_unknown_fields_and_repeated_labels() {
        let e = parse_json_line(br#"{"metric":{"a":"b"},"values":[1],"timestamps":[1],"extra":1}"#).unwrap_err();
        assert!(e.message.contains("unknown field `extra`"), "{}", e.message);
        let e = parse_json_line(br#"{"metric":{"a":"b","a":"c"},"values":[1],"timestamps":[1]}"#).unwrap_err();
        assert!(e.message.contains("duplicate label \"a\""), "{}", e.message);
        let e = parse_json_line(br#"{"metric":{"a":1},"values":[1],"timestamps":[1]}"#).unwrap_err();
        assert!(e.message.contains("label \"a\": expected a string"), "{}", e.message);
        let (l, _) = parse_json_line(br#"{"metric":{"z":"1","a":"2"},"values":[1],"timestamps":[1]}"#).unwrap();
        assert_eq!(l, Labels::from_pairs([("a", "2"), ("z", "1")]).unwrap());
    }
}
