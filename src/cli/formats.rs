//! The interchange formats of `export`, `import` and `query`, one series or one
//! sample per line so that both sides stream:
//!
//! - JSON lines: `{"metric":{labels},"values":[...],"timestamps":[...]}` per series
//!   (a long series may span several lines);
//! - CSV: header `series,timestamp,value`, then `"name{a=""x""}",1700000000000,1.5`;
//! - Prometheus text: `name{a="x"} 1.5 1700000000000`; a series without a metric
//!   name is written `{a="x"} 1.5 1700000000000`, and a name that the text format's
//!   grammar does not allow as `{__name__="a-b",a="x"} ...`, both of which
//!   `strata import` reads back.
//!
//! Values are written by `strata::text::value`: the shortest decimal that parses
//! back to the same f64 (ryu). Non-finite values are strings: `"NaN"`, `"+Inf"`, `"-Inf"`, and a NaN
//! whose bits differ from the canonical `f64::NAN` (such as Prometheus' stale
//! marker) as `"NaN(0x7ff0000000000002)"` (the server's spelling too), so that every value round-trips bit
//! for bit. (Prometheus text cannot carry NaN payloads: there every NaN is `NaN`.)

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use strata::{Labels, Sample};

use strata::text::selector::{parse_series, write_series};
pub use strata::text::value::{parse_value, write_json_value, write_value};
use strata::METRIC_NAME;

/// Most samples written on one JSON line; longer series continue on the next.
pub const JSON_LINE_MAX_SAMPLES: usize = 10_000;

/// Appends a JSON string literal.
fn json_string(out: &mut String, s: &str) {
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

/// `{"__name__":"cpu","host":"a"}`.
pub fn write_json_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, k);
        out.push(':');
        json_string(out, v);
    }
    out.push('}');
}

/// A JSON value that is a number or one of the value strings.
struct JsonValue(f64);

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = JsonValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or one of \"NaN\", \"+Inf\", \"-Inf\"")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<JsonValue, E> {
                Ok(JsonValue(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonValue, E> {
                Ok(JsonValue(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonValue, E> {
                Ok(JsonValue(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JsonValue, E> {
                parse_value(v).map(JsonValue).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct JsonLine {
    metric: BTreeMap<String, String>,
    values: Vec<JsonValue>,
    timestamps: Vec<i64>,
}

/// Parses one JSON line into a series and its samples.
pub fn parse_json_line(line: &str) -> Result<(Labels, Vec<Sample>), String> {
    let l: JsonLine = serde_json::from_str(line).map_err(|e| format!("invalid JSON line: {e}"))?;
    if l.values.len() != l.timestamps.len() {
        return Err(format!("{} values but {} timestamps", l.values.len(), l.timestamps.len()));
    }
    let labels = Labels::from_pairs(l.metric).map_err(|e| format!("invalid labels: {e}"))?;
    let samples = l.timestamps.iter().zip(&l.values).map(|(&ts, v)| Sample::new(ts, v.0)).collect();
    Ok((labels, samples))
}

pub const CSV_HEADER: &str = "series,timestamp,value\n";

/// Appends CSV rows for one series; the series text is written once and reused.
pub fn write_csv_rows(out: &mut String, labels: &Labels, samples: &[Sample]) {
    let mut series = String::new();
    let _ = write_series(&mut series, labels);
    let quoted = format!("\"{}\"", series.replace('"', "\"\""));
    for s in samples {
        out.push_str(&quoted);
        let _ = write!(out, ",{},", s.ts);
        write_value(out, s.value);
        out.push('\n');
    }
}

/// Splits one CSV row into its three fields (the first may be quoted).
pub fn split_csv_row(line: &str) -> Result<(String, &str, &str), String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (series, rest) = if let Some(body) = line.strip_prefix('"') {
        let mut s = String::new();
        let mut it = body.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = it.next() {
            if c == '"' {
                if it.peek().is_some_and(|&(_, n)| n == '"') {
                    s.push('"');
                    it.next();
                } else {
                    end = Some(i + 1);
                    break;
                }
            } else {
                s.push(c);
            }
        }
        let end = end.ok_or("unterminated quoted field")?;
        let rest = body[end..].strip_prefix(',').ok_or("expected ',' after the quoted series")?;
        (s, rest)
    } else {
        let (a, b) = line.split_once(',').ok_or("expected 3 fields: series,timestamp,value")?;
        (a.to_string(), b)
    };
    let (ts, value) = rest.split_once(',').ok_or("expected 3 fields: series,timestamp,value")?;
    Ok((series, ts, value))
}

/// Parses one CSV row.
pub fn parse_csv_row(line: &str) -> Result<(Labels, Sample), String> {
    let (series, ts, value) = split_csv_row(line)?;
    let labels = parse_series(&series).map_err(|e| e.to_string())?;
    let ts: i64 = ts.trim().parse().map_err(|_| format!("invalid timestamp {ts:?} (expected epoch milliseconds)"))?;
    Ok((labels, Sample::new(ts, parse_value(value)?)))
}

/// Appends Prometheus text lines. Returns how many NaN values had a payload
/// (such as Prometheus' stale marker): this format has no spelling for one, so
/// they are written as plain `NaN`.
pub fn write_prometheus(out: &mut String, labels: &Labels, samples: &[Sample]) -> u64 {
    let series = match labels.metric_name() {
        Some(name) if is_text_metric_name(name) => exposition_series(labels),
        // No name, or one the grammar cannot hold bare: every label inside the braces.
        _ => {
            let mut series = String::from("{");
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    series.push(',');
                }
                series.push_str(k);
                series.push_str("=\"");
                push_exposition_value(&mut series, v);
                series.push('"');
            }
            series.push('}');
            series
        }
    };
    let mut payloads = 0;
    for s in samples {
        out.push_str(&series);
        out.push(' ');
        if s.value.is_nan() {
            payloads += u64::from(s.value.to_bits() != f64::NAN.to_bits());
            out.push_str("NaN");
        } else {
            write_value(out, s.value);
        }
        let _ = writeln!(out, " {}", s.ts);
    }
    payloads
}

/// Appends OpenMetrics text lines: as Prometheus text, but timestamps in seconds
/// (`1700000000.500`). Returns false, writing nothing, for a series the format
/// cannot hold: one without a metric name, or with a name it cannot write bare.
/// The caller writes the final `# EOF`.
pub fn write_openmetrics(out: &mut String, labels: &Labels, samples: &[Sample]) -> bool {
    if !labels.metric_name().is_some_and(is_text_metric_name) {
        return false;
    }
    let series = exposition_series(labels);
    for s in samples {
        out.push_str(&series);
        out.push(' ');
        if s.value.is_nan() {
            out.push_str("NaN");
        } else {
            write_value(out, s.value);
        }
        let ms = s.ts.unsigned_abs();
        let _ = writeln!(out, " {}{}.{:03}", if s.ts < 0 { "-" } else { "" }, ms / 1000, ms % 1000);
    }
    true
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the metric names Prometheus text writes bare.
fn is_text_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses one Prometheus text sample line, `series value timestamp`, where the
/// series is `name`, `name{...}` or `{...}` (as [`write_prometheus`] writes it).
/// The timestamp (epoch milliseconds) is required: an import needs one.
pub fn parse_prometheus_line(line: &str) -> Result<(Labels, Sample), String> {
    let line = line.trim();
    let series_end = series_end(line)?;
    let labels = parse_series(&line[..series_end]).map_err(|e| e.to_string())?;
    let mut rest = line[series_end..].split_whitespace();
    let value = rest.next().ok_or("expected a value after the series")?;
    let ts = rest.next().ok_or("expected a timestamp (epoch milliseconds) after the value")?;
    if let Some(extra) = rest.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    let ts: i64 = ts.parse().map_err(|_| format!("invalid timestamp {ts:?} (expected epoch milliseconds)"))?;
    Ok((labels, Sample::new(ts, parse_value(value)?)))
}

/// Byte offset just past the series of a Prometheus text line: after the `}`
/// that closes its labels (quotes and escapes respected), or at the first space.
fn series_end(line: &str) -> Result<usize, String> {
    let Some(open) = line.find(|c: char| c == '{' || c.is_whitespace()) else {
        return Err("expected a series, a value and a timestamp separated by spaces".into());
    };
    if !line[open..].starts_with('{') {
        return Ok(open);
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Ok(open + i + 1),
            _ => {}
        }
    }
    Err("unterminated '{' in the series".into())
}

/// A label value as the exposition format escapes it: only `\\`, `"` and newlines.
fn push_exposition_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A series in the exposition format, whose label values escape only `\\`, `"`
/// and newlines (unlike selectors, which follow Go's string escapes).
fn exposition_series(labels: &Labels) -> String {
    let mut out = labels.metric_name().unwrap_or("").to_string();
    let mut rest = labels.iter().filter(|(k, _)| *k != METRIC_NAME).peekable();
    if rest.peek().is_none() {
        return out;
    }
    out.push('{');
    for (i, (k, v)) in rest.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"");
        push_exposition_value(&mut out, v);
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    fn awkward() -> Vec<Sample> {
        let vals = [
            1.5,
            -0.0,
            0.1 + 0.2,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(STALE),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e300,
            123456789.0,
        ];
        vals.iter().enumerate().map(|(i, &v)| Sample::new(i as i64 * 1000 - 3, v)).collect()
    }

    fn labels() -> Labels {
        Labels::from_pairs([("__name__", "m"), ("q", "a\"b,c\\d\ne\u{1}é")]).unwrap()
    }

    #[test]
    fn values_round_trip_bit_for_bit() {
        for s in awkward() {
            let mut t = String::new();
            write_value(&mut t, s.value);
            assert_eq!(parse_value(&t).unwrap().to_bits(), s.value.to_bits(), "{t}");
        }
        let mut t = String::new();
        write_value(&mut t, f64::from_bits(STALE));
        assert_eq!(t, "NaN(0x7ff0000000000002)");
        assert!(parse_value("NaN:0x3ff0000000000000").is_err());
        assert!(parse_value("twelve").is_err());
    }

    #[test]
    fn json_lines_round_trip() {
        let mut out = String::new();
        write_json_lines(&mut out, &labels(), &awkward());
        assert_eq!(out.lines().count(), 1);
        let (l, s) = parse_json_line(out.trim_end()).unwrap();
        assert_eq!((l, s), (labels(), awkward()));
        assert!(out.contains(r#""values":[1.5,-0.0,0.30000000000000004,"NaN","NaN(0xfff8000000000000)""#), "{out}");
        assert!(parse_json_line(r#"{"metric":{"a":"b"},"values":[1],"timestamps":[]}"#).is_err());
        assert!(parse_json_line(r#"{"metric":{"a":"b"},"values":["x"],"timestamps":[1]}"#).is_err());
        assert!(parse_json_line("{").is_err());
        // Long series are split over several lines.
        let many: Vec<Sample> = (0..JSON_LINE_MAX_SAMPLES as i64 + 1).map(|t| Sample::new(t, 1.0)).collect();
        let mut out = String::new();
        write_json_lines(&mut out, &labels(), &many);
        assert_eq!(out.lines().count(), 2);
    }

    #[test]
    fn csv_round_trips() {
        let mut out = String::new();
        write_csv_rows(&mut out, &labels(), &awkward());
        let back: Vec<(Labels, Sample)> = out.lines().map(|l| parse_csv_row(l).unwrap()).collect();
        assert!(back.iter().all(|(l, _)| *l == labels()));
        assert_eq!(back.into_iter().map(|(_, s)| s).collect::<Vec<_>>(), awkward());
        assert!(parse_csv_row("\"{}\",1,2").is_err(), "no labels");
        assert!(parse_csv_row("m,notanumber,2").unwrap_err().contains("invalid timestamp"));
        assert!(parse_csv_row("\"m{a=\"\"b\"\"}").is_err());
        assert_eq!(parse_csv_row("up,5,1").unwrap().1, Sample::new(5, 1.0));
    }

    #[test]
    fn prometheus_text() {
        let mut out = String::new();
        let l = Labels::from_pairs([("__name__", "up")]).unwrap();
        assert_eq!(write_prometheus(&mut out, &l, &[Sample::new(1, f64::from_bits(STALE)), Sample::new(2, -1.0)]), 1);
        assert_eq!(out, "up NaN 1\nup -1.0 2\n");
        out.clear();
        assert_eq!(write_prometheus(&mut out, &labels(), &[Sample::new(3, f64::INFINITY)]), 0);
        assert_eq!(out, "m{q=\"a\\\"b,c\\\\d\\ne\u{1}é\"} +Inf 3\n");
        out.clear();
        write_prometheus(&mut out, &Labels::from_pairs([("job", "x")]).unwrap(), &[Sample::new(4, 1.0)]);
        assert_eq!(out, "{job=\"x\"} 1.0 4\n");
    }

    #[test]
    fn prometheus_text_round_trips_with_and_without_names() {
        let mut series = vec![
            labels(),
            Labels::from_pairs([("__name__", "up")]).unwrap(),
            Labels::from_pairs([("host", "a"), ("q", "x} 1 2")]).unwrap(),
        ];
        // A metric name outside the text grammar goes inside the braces (when labels allow one).
        series.extend(Labels::from_pairs([("__name__", "cpu-load.1"), ("k", "v")]));
        let samples = [Sample::new(-5, 1.5), Sample::new(7, f64::NEG_INFINITY), Sample::new(9, -0.0)];
        for l in &series {
            let mut out = String::new();
            write_prometheus(&mut out, l, &samples);
            let back: Vec<(Labels, Sample)> = out.lines().map(|x| parse_prometheus_line(x).unwrap()).collect();
            assert!(back.iter().all(|(b, _)| b == l), "{out}");
            assert_eq!(back.into_iter().map(|(_, s)| s).collect::<Vec<_>>(), samples, "{out}");
        }
        assert!(parse_prometheus_line("up 1").unwrap_err().contains("timestamp"));
        assert!(parse_prometheus_line("up 1 2 3").is_err());
        assert!(parse_prometheus_line("up{a=\"b\" 1 2").unwrap_err().contains("unterminated"));
        assert!(parse_prometheus_line("up x 2").is_err());
        assert!(parse_prometheus_line("up,1,2").is_err(), "a CSV row is not Prometheus text");
    }
}
