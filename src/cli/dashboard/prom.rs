//! A reader for the Prometheus text exposition format, enough for the server's
//! own `GET /metrics`: `name{label="value",...} value [timestamp]` lines, with
//! `#` comments and blank lines skipped. Lines that do not parse are skipped too:
//! the dashboard only needs a few figures and must not fail on a format detail.

/// One sample line: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Every sample line of `text` that parses.
pub fn parse(text: &str) -> Vec<PromSample> {
    text.lines().filter_map(parse_line).collect()
}

/// The sum of every sample named `name` (over all label sets), `None` if there is none.
pub fn sum(samples: &[PromSample], name: &str) -> Option<f64> {
    samples.iter().filter(|s| s.name == name).map(|s| s.value).reduce(|a, b| a + b)
}

fn parse_line(line: &str) -> Option<PromSample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (l, tail) = parse_labels(after)?;
        labels = l;
        rest = tail;
    }
    // The value, then an optional timestamp that the dashboard does not need.
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(PromSample { name: name.to_string(), labels, value })
}

/// Parses `a="x",b="y"}` (the opening brace already consumed); returns the
/// labels and what follows the closing brace.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(tail) = s.strip_prefix('}') {
            return Some((out, tail));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((key, value));
        s = s[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

/// A sample value: a float, or `+Inf`, `-Inf`, `NaN` (any case, as Go writes them).
fn parse_value(s: &str) -> Option<f64> {
    strata::text::value::parse_value(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP strata_ingested_samples_total Samples committed, by write protocol.
# TYPE strata_ingested_samples_total counter
strata_ingested_samples_total{protocol=\"json\"} 12
strata_ingested_samples_total{protocol=\"influx\"} 30 1764763200000

strata_http_requests_total{route=\"/a \\\"b\\\"\",status=\"200\"} 4
strata_series 7
strata_query_duration_seconds_bucket{endpoint=\"raw\",le=\"+Inf\"} +Inf
strata_weird NaN
not a sample line
broken{a=\"x} 1
";

    #[test]
    fn parses_samples_labels_and_special_values() {
        let s = parse(TEXT);
        assert_eq!(s.len(), 6, "{s:?}");
        assert_eq!(s[0].labels, vec![("protocol".to_string(), "json".to_string())]);
        assert_eq!(s[2].labels[0].1, "/a \"b\"");
        assert_eq!(s[2].labels[1], ("status".to_string(), "200".to_string()));
        assert_eq!((s[3].name.as_str(), s[3].value), ("strata_series", 7.0));
        assert_eq!(s[4].value, f64::INFINITY);
        assert!(s[5].value.is_nan());
    }

    #[test]
    fn sums_over_label_sets() {
        let s = parse(TEXT);
        assert_eq!(sum(&s, "strata_ingested_samples_total"), Some(42.0));
        assert_eq!(sum(&s, "strata_series"), Some(7.0));
        assert_eq!(sum(&s, "missing"), None);
    }

    #[test]
    fn skips_what_does_not_parse() {
        for bad in ["", "# comment", "{a=\"b\"} 1", "x{a=\"b\" 1", "x", "x abc", "x{a=b} 1"] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
        assert_eq!(parse_line("x{} 2").map(|s| s.value), Some(2.0));
        assert_eq!(parse_line("x{a=\"1\",} 3").map(|s| s.labels.len()), Some(1));
    }
}
