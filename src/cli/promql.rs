//! `strata query EXPR` for a PromQL expression: an instant or a range query,
//! evaluated locally by `strata::promql` or sent to a server's
//! `/api/v1/query` and `/api/v1/query_range`, and printed as a table or as
//! Prometheus's API JSON (`{"resultType":..,"result":..}`).

use std::fmt::Write as _;

use strata::promql::{InstantSample, Metric, RangeSeries, Value};
use strata::text::selector::write_quoted;
use strata::text::value::write_value;

use super::remote::{encode, Remote};
use super::{fail, times, CliError, CliResult};

/// What to evaluate: at one time, or every `step` from `start` through `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eval {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

/// Whether `expr` is a PromQL expression rather than a bare series selector: it
/// has a function call, a `[range]`, a number, an operator or a modifier outside
/// braces and quotes. A bare selector (even a broken one) is not, so it keeps the
/// selector's path and the selector's own error messages.
pub fn is_expression(expr: &str) -> bool {
    let (mut depth, mut quote, mut escaped) = (0usize, None::<char>, false);
    let mut outside = String::new();
    let mut quoted_outside = false;
    for c in expr.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if matches!(c, '"' | '\'' | '`') => {
                quoted_outside |= depth == 0;
                quote = Some(c);
            }
            None if c == '{' => depth += 1,
            None if c == '}' => depth = depth.saturating_sub(1),
            None if depth == 0 => outside.push(c),
            None => {}
        }
    }
    let outside = outside.trim();
    // A string literal, a number, an operator or bracket, or a second word (`x offset 5m`).
    quoted_outside
        || outside.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || outside.contains(|c: char| "()[]+-*/%^<>=!@".contains(c))
        || outside.contains(char::is_whitespace)
}

/// Evaluates locally, as PromQL's API would: errors keep their kind
/// (`bad_data: ...`, `execution: ...`).
pub fn evaluate(db: &strata::Db, expr: &str, eval: Eval) -> CliResult<Value> {
    let v = match eval {
        Eval::Instant(t) => db.promql_instant(expr, t),
        Eval::Range { start, end, step } => db.promql_range(expr, start, end, step),
    };
    v.map_err(|e| CliError::new(e.to_string()))
}

/// Sends the expression to a server's Prometheus API (form POST, as Grafana does).
pub fn evaluate_remote(remote: &Remote, expr: &str, eval: Eval) -> CliResult<Value> {
    let (path, form) = api_request(expr, eval);
    let (status, text) = remote.post_form(path, &form)?;
    read_api_answer(path, status, &text)
}

/// The path and form body of Prometheus's API request for `expr`.
pub fn api_request(expr: &str, eval: Eval) -> (&'static str, String) {
    let (path, form) = match eval {
        Eval::Instant(t) => ("/api/v1/query", vec![("query", expr.to_string()), ("time", seconds(t))]),
        Eval::Range { start, end, step } => (
            "/api/v1/query_range",
            vec![
                ("query", expr.to_string()),
                ("start", seconds(start)),
                ("end", seconds(end)),
                ("step", seconds(step)),
            ],
        ),
    };
    let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    (path, body.join("&"))
}

/// The answer to [`api_request`] as a [`Value`], or the server's error with its kind.
pub fn read_api_answer(path: &str, status: u16, text: &str) -> CliResult<Value> {
    let answer: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) if !(200..300).contains(&status) => {
            return fail(format!("POST {path} answered {status}: {}", text.trim()))
        }
        Err(e) => return fail(format!("POST {path}: the answer is not JSON: {e}")),
    };
    if answer["status"] == "error" || !(200..300).contains(&status) {
        let msg = answer["error"].as_str().map_or_else(|| text.trim().to_string(), str::to_string);
        return fail(match answer["errorType"].as_str() {
            Some(kind) => format!("{kind}: {msg}"),
            None => format!("POST {path} answered {status}: {msg}"),
        });
    }
    from_api(&answer["data"]).map_err(|what| CliError::new(format!("POST {path}: unexpected answer ({what}): {text}")))
}

/// Reads Prometheus's `data` object back into a [`Value`].
fn from_api(data: &serde_json::Value) -> Result<Value, String> {
    let result = &data["result"];
    let list = || result.as_array().ok_or("no result list");
    Ok(match data["resultType"].as_str() {
        Some("vector") => Value::Vector(
            list()?
                .iter()
                .map(|s| {
                    let (t, v) = point(&s["value"])?;
                    Ok(InstantSample { metric: metric(&s["metric"])?, t, v })
                })
                .collect::<Result<_, String>>()?,
        ),
        Some("matrix") => Value::Matrix(
            list()?
                .iter()
                .map(|s| {
                    let points = s["values"].as_array().ok_or("no values")?.iter().map(point);
                    Ok(RangeSeries { metric: metric(&s["metric"])?, points: points.collect::<Result<_, String>>()? })
                })
                .collect::<Result<_, String>>()?,
        ),
        Some("scalar") => {
            let (t, v) = point(result)?;
            Value::Scalar(t, v)
        }
        Some("string") => {
            let t = result[0].as_f64().ok_or("a time")?;
            Value::String((t * 1000.0).round() as i64, result[1].as_str().ok_or("a string")?.to_string())
        }
        other => return Err(format!("resultType {other:?}")),
    })
}

fn metric(m: &serde_json::Value) -> Result<Metric, String> {
    let obj = m.as_object().ok_or("a metric")?;
    let pairs = obj.iter().map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())).ok_or("a label value"));
    Ok(Metric::from_pairs(pairs.collect::<Result<Vec<_>, _>>()?))
}

/// `[<float seconds>, "<value>"]`.
fn point(p: &serde_json::Value) -> Result<(i64, f64), String> {
    let t = p[0].as_f64().ok_or("a time")?;
    let v = p[1].as_str().ok_or("a value string")?;
    let v = match v {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => v.parse().map_err(|_| format!("value {v:?}"))?,
    };
    Ok(((t * 1000.0).round() as i64, v))
}

/// Milliseconds as Prometheus's float seconds, exactly: `1.5`, `-0.25`, `60`.
pub fn seconds(ms: i64) -> String {
    let (sign, abs) = (if ms < 0 { "-" } else { "" }, ms.unsigned_abs());
    let (s, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        format!("{sign}{s}")
    } else {
        format!("{sign}{s}.{}", format!("{frac:03}").trim_end_matches('0'))
    }
}

/// A value as Prometheus's API strings it: shortest round-trip decimal, `NaN`, `+Inf`, `-Inf`.
fn api_value(v: f64) -> String {
    match v {
        v if v.is_nan() => "NaN".into(),
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        v => format!("{v}"),
    }
}

/// A label set in canonical notation: `name{a="1",b="2"}`, `name`, `{a="1"}` or `{}`.
pub fn series(m: &Metric) -> String {
    let mut out = String::new();
    let name = m.get(strata::METRIC_NAME);
    out.push_str(name.unwrap_or(""));
    let rest: Vec<_> = m.iter().filter(|(k, _)| *k != strata::METRIC_NAME).collect();
    if name.is_some() && rest.is_empty() {
        return out;
    }
    out.push('{');
    for (i, (k, v)) in rest.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        let _ = write_quoted(&mut out, v);
    }
    out.push('}');
    out
}

/// The readable table: a vector as one line per series (labels, value) under its
/// time; a matrix as the selector form prints series; a scalar or string on one line.
pub fn table(out: &mut String, v: &Value) {
    match v {
        Value::Vector(samples) => {
            let Some(first) = samples.first() else {
                out.push_str("no series\n");
                return;
            };
            let n = samples.len();
            let _ = writeln!(out, "{}  ({n} series)", times::format_ts(first.t));
            let names: Vec<String> = samples.iter().map(|s| series(&s.metric)).collect();
            let width = names.iter().map(|s| s.chars().count()).max().unwrap_or(0);
            for (name, s) in names.iter().zip(samples) {
                let pad = width - name.chars().count();
                let _ = write!(out, "  {name}{}  ", " ".repeat(pad));
                write_value(out, s.v);
                out.push('\n');
            }
        }
        Value::Matrix(m) if m.is_empty() => out.push_str("no series\n"),
        Value::Matrix(m) => {
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                let n = s.points.len();
                let _ = writeln!(out, "{}  ({n} sample{})", series(&s.metric), if n == 1 { "" } else { "s" });
                for &(t, v) in &s.points {
                    let _ = write!(out, "  {}  ", times::format_ts(t));
                    write_value(out, v);
                    out.push('\n');
                }
            }
        }
        Value::Scalar(t, v) => {
            let _ = write!(out, "scalar  {}  ", times::format_ts(*t));
            write_value(out, *v);
            out.push('\n');
        }
        Value::String(t, s) => {
            let _ = write!(out, "string  {}  ", times::format_ts(*t));
            let _ = write_quoted(out, s);
            out.push('\n');
        }
    }
}

/// Prometheus's API `data` object: `{"resultType":..,"result":..}`, values as
/// strings and times as float seconds, so scripts share Prometheus's parsers.
pub fn json(out: &mut String, v: &Value) {
    let _ = write!(out, "{{\"resultType\":\"{}\",\"result\":", v.result_type());
    let point = |out: &mut String, t: i64, v: f64| {
        let _ = write!(out, "[{},\"{}\"]", seconds(t), api_value(v));
    };
    match v {
        Value::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                out.push_str(if i > 0 { ",{\"metric\":" } else { "{\"metric\":" });
                json_metric(out, &s.metric);
                out.push_str(",\"value\":");
                point(out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(m) => {
            out.push('[');
            for (i, s) in m.iter().enumerate() {
                out.push_str(if i > 0 { ",{\"metric\":" } else { "{\"metric\":" });
                json_metric(out, &s.metric);
                out.push_str(",\"values\":[");
                for (k, &(t, v)) in s.points.iter().enumerate() {
                    if k > 0 {
                        out.push(',');
                    }
                    point(out, t, v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
        Value::Scalar(t, v) => point(out, *t, *v),
        Value::String(t, s) => {
            let _ = write!(out, "[{},{}]", seconds(*t), serde_json::Value::from(s.as_str()));
        }
    }
    out.push_str("}\n");
}

fn json_metric(out: &mut String, m: &Metric) {
    let obj: serde_json::Map<String, serde_json::Value> =
        m.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(v))).collect();
    out.push_str(&serde_json::Value::Object(obj).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_expressions_from_selectors() {
        for e in [
            "rate(x[5m])",
            "sum by (host) (cpu)",
            "cpu / 2",
            "cpu > 1",
            "x offset 5m",
            "x @ 100",
            "1",
            "\"s\"",
            "-x",
            "x[5m]",
        ] {
            assert!(is_expression(e), "{e}");
        }
        for s in ["cpu", "cpu{path=\"/a(b)[c]-d*\"}", "cpu{h=~\"a|b\"}", "{__name__=~\"cpu.+\"}", "cpu{", " up "] {
            assert!(!is_expression(s), "{s}");
        }
    }

    #[test]
    fn prints_times_values_and_labels_as_prometheus() {
        assert_eq!(
            [seconds(0), seconds(1500), seconds(-1500), seconds(60_000), seconds(1_250)],
            ["0", "1.5", "-1.5", "60", "1.25"]
        );
        assert_eq!(
            [api_value(3.0), api_value(0.1), api_value(f64::NAN), api_value(f64::NEG_INFINITY), api_value(1e21)],
            ["3", "0.1", "NaN", "-Inf", "1000000000000000000000"]
        );
        let m = Metric::from_pairs([("__name__", "m"), ("b", "x\"y"), ("a", "1")]);
        assert_eq!(series(&m), "m{a=\"1\",b=\"x\\\"y\"}");
        assert_eq!(series(&Metric::from_pairs([("__name__", "m")])), "m");
        assert_eq!(series(&Metric::default()), "{}");
        let v = Value::Vector(vec![InstantSample { metric: m, t: 2_500, v: f64::INFINITY }]);
        let mut j = String::new();
        json(&mut j, &v);
        assert_eq!(j, "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"m\",\"a\":\"1\",\"b\":\"x\\\"y\"},\"value\":[2.5,\"+Inf\"]}]}\n");
        // What the JSON says reads back as the same value.
        let back = from_api(&serde_json::from_str(&j).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{v:?}"));
    }
}
