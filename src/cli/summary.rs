//! `strata query SELECTOR --summary`: count, min, max, avg, p50, p95 and p99 of the
//! raw samples in the range, per series and over all of them, read in-process or
//! from a server's `GET /query/summary`.

use std::fmt::Write as _;

use serde_json::{json, Value};
use strata::{Db, Labels, Matcher, Sample, Summary, SummaryReport};

use super::formats::{parse_value, write_value};
use super::remote::{encode, Remote};
use super::{CliError, CliResult};

/// Reads `matchers` over `[start, end]` (both inclusive) and summarises them.
pub fn local(db: &Db, matchers: &[Matcher], start: i64, end: i64) -> CliResult<SummaryReport> {
    let q = db.querier(start..end.saturating_add(1));
    let mut read: Vec<(Labels, Vec<Sample>)> = Vec::new();
    for item in q.select(matchers)? {
        let (labels, samples) = item?;
        read.push((labels, samples.collect()));
    }
    Ok(SummaryReport::of(&read))
}

/// The same from a server, whose answer must agree with `local` bit for bit.
pub fn remote(r: &Remote, selector: &str, start: i64, end: i64) -> CliResult<SummaryReport> {
    let path = format!("/query/summary?selector={}&start_time={start}&end_time={end}", encode(selector));
    read_report(&r.call("GET", &path, None)?)
}

/// `GET /query/summary`'s answer as a report; anything missing or odd is an error.
pub fn read_report(answer: &Value) -> CliResult<SummaryReport> {
    let bad = |what: &str| CliError::new(format!("GET /query/summary: unexpected answer ({what}): {answer}"));
    let summary = |v: &Value| -> CliResult<Summary> {
        let f = |k: &str| -> CliResult<f64> {
            match &v[k] {
                Value::Number(n) => n.as_f64().ok_or_else(|| bad(k)),
                Value::String(s) => parse_value(s).map_err(|e| bad(&e)),
                _ => Err(bad(k)),
            }
        };
        Ok(Summary {
            count: v["count"].as_u64().ok_or_else(|| bad("count"))?,
            min: f("min")?,
            max: f("max")?,
            avg: f("avg")?,
            p50: f("p50")?,
            p95: f("p95")?,
            p99: f("p99")?,
        })
    };
    let mut series = Vec::new();
    for s in answer["series"].as_array().ok_or_else(|| bad("no series"))? {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(name) = s["metric_name"].as_str() {
            pairs.push((strata::METRIC_NAME.to_string(), name.to_string()));
        }
        for (k, v) in s["labels"].as_object().ok_or_else(|| bad("labels"))? {
            pairs.push((k.clone(), v.as_str().ok_or_else(|| bad("a label value"))?.to_string()));
        }
        let labels = Labels::from_pairs(pairs).map_err(|e| bad(&e.to_string()))?;
        series.push((labels, summary(&s["summary"])?));
    }
    Ok(SummaryReport { series, overall: summary(&answer["overall"])? })
}

/// One line per series and one for all of them: count, then the statistics.
pub fn table(out: &mut String, r: &SummaryReport) {
    if r.series.is_empty() {
        out.push_str("no series matched in this range\n");
        return;
    }
    let names: Vec<String> = r.series.iter().map(|(l, _)| l.to_string()).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).max(5);
    let _ = writeln!(
        out,
        "{:<width$}  {:>8}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}  {:>10}",
        "series", "count", "min", "max", "avg", "p50", "p95", "p99"
    );
    let mut row = |name: &str, s: &Summary| {
        let _ = write!(out, "{name:<width$}  {:>8}", s.count);
        for v in [s.min, s.max, s.avg, s.p50, s.p95, s.p99] {
            let mut cell = String::new();
            write_value(&mut cell, v);
            let _ = write!(out, "  {cell:>10}");
        }
        out.push('\n');
    };
    for (name, (_, s)) in names.iter().zip(&r.series) {
        row(name, s);
    }
    if r.series.len() > 1 {
        row("(all)", &r.overall);
    }
}

/// The shape of `GET /query/summary`'s answer, with the range in ms.
pub fn json(out: &mut String, r: &SummaryReport, start: i64, end: i64) {
    let stats = |s: &Summary| {
        let v = |x: f64| {
            if x.is_finite() {
                json!(x)
            } else {
                let mut t = String::new();
                write_value(&mut t, x);
                json!(t)
            }
        };
        json!({"count": s.count, "min": v(s.min), "max": v(s.max), "avg": v(s.avg),
               "p50": v(s.p50), "p95": v(s.p95), "p99": v(s.p99)})
    };
    let series: Vec<Value> = r
        .series
        .iter()
        .map(|(l, s)| {
            let labels: serde_json::Map<String, Value> =
                l.iter().filter(|(k, _)| *k != strata::METRIC_NAME).map(|(k, v)| (k.to_string(), json!(v))).collect();
            json!({"metric_name": l.metric_name(), "labels": labels, "summary": stats(s)})
        })
        .collect();
    let v = json!({"start": start, "end": end, "series_count": r.series.len(), "overall": stats(&r.overall),
                   "series": series});
    let _ = writeln!(out, "{v}");
}
