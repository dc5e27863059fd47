//! OpenTelemetry names to Prometheus names, as Prometheus' OTLP receiver makes
//! them with suffixes on (its default): the metric name's words joined by `_`,
//! the unit appended as a word (`ms` → `milliseconds`, `By/s` → `bytes_per_second`,
//! `{request}` dropped), `_total` on monotonic cumulative sums, `_ratio` on gauges
//! of unit `1`; label names with invalid characters replaced by `_`.

/// A unit's main part as the word Prometheus appends.
fn main_unit(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        _ => return None,
    })
}

/// A unit's "per" part (after `/`) as a word.
fn per_unit(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

/// Words of `s`: runs of ASCII letters and digits (anything else separates them).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect()
}

/// The words a unit adds (`ms` → [milliseconds], `By/s` → [bytes, per, second]);
/// annotations in braces are dropped, unknown units kept as their own words.
pub fn unit_words(unit: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut depth = 0;
    for c in unit.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    let (main, per) = match plain.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (plain.trim(), None),
    };
    let mut out = Vec::new();
    if !main.is_empty() && main != "1" {
        match main_unit(main) {
            Some(w) => out.push(w.to_string()),
            None => out.extend(words(main)),
        }
    }
    if let Some(per) = per.filter(|p| !p.is_empty()) {
        out.push("per".into());
        match per_unit(per) {
            Some(w) => out.push(w.to_string()),
            None => out.extend(words(per)),
        }
    }
    out
}

/// What kind of series a name is built for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// A monotonic cumulative sum: `_total`.
    Counter,
    /// A gauge (or a non-monotonic or delta sum): `_ratio` when the unit is `1`.
    Gauge,
    /// A histogram or summary family: the unit only (`_bucket`, `_sum`, `_count` follow).
    Family,
}

/// The Prometheus metric name of an OpenTelemetry metric.
pub fn metric_name(name: &str, unit: &str, shape: Shape) -> String {
    let mut w = words(name);
    for u in unit_words(unit) {
        if !w.contains(&u) {
            w.push(u);
        }
    }
    match shape {
        Shape::Counter => {
            w.retain(|x| x != "total");
            w.push("total".into());
        }
        Shape::Gauge if unit.trim() == "1" && !w.iter().any(|x| x == "ratio") => w.push("ratio".into()),
        _ => {}
    }
    let mut out = w.join("_");
    if out.is_empty() {
        out.push('_');
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The Prometheus label name of an attribute key; None for an empty key.
pub fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out: String = key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus() {
        assert_eq!(metric_name("http.server.duration", "ms", Shape::Family), "http_server_duration_milliseconds");
        assert_eq!(metric_name("http.requests", "{request}", Shape::Counter), "http_requests_total");
        assert_eq!(metric_name("requests.total", "1", Shape::Counter), "requests_total");
        assert_eq!(metric_name("system.cpu.utilization", "1", Shape::Gauge), "system_cpu_utilization_ratio");
        assert_eq!(metric_name("net.io", "By/s", Shape::Gauge), "net_io_bytes_per_second");
        assert_eq!(metric_name("queue_seconds", "s", Shape::Gauge), "queue_seconds");
        assert_eq!(metric_name("temp", "Cel", Shape::Gauge), "temp_celsius");
        assert_eq!(metric_name("widgets", "furlongs/fortnight", Shape::Gauge), "widgets_furlongs_per_fortnight");
        assert_eq!(metric_name("2xx", "", Shape::Counter), "_2xx_total");
        assert_eq!(unit_words("{packets}/s"), ["per", "second"]);
    }

    #[test]
    fn label_names_are_sanitised() {
        assert_eq!(label_name("http.method").as_deref(), Some("http_method"));
        assert_eq!(label_name("2xx").as_deref(), Some("key_2xx"));
        assert_eq!(label_name("_private").as_deref(), Some("key_private"));
        assert_eq!(label_name("__reserved").as_deref(), Some("__reserved"));
        assert_eq!(label_name(""), None);
    }
}
