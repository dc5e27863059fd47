//! `strata query`: selector and time parsing, execution, and table / JSON / CSV /
//! ASCII-plot output.
//!
//! A PromQL expression (anything but a bare selector), or `--time`, goes to
//! `promql.rs` instead; see [`promql_eval`].
//!
//! Execution goes through [`execute`]: raw reads use `db.querier` here; everything
//! else (step, aggregation, grouping, top-k, tiers) goes to `ops::query`,
//! the one place where the query layer plugs in.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};

use strata::{Agg, Db, Tier};

use super::formats::{write_csv_rows, write_json_labels, write_value, CSV_HEADER};
use super::ops::{self, QueryRequest, ResultSeries};
use super::promql::{self, Eval};
use super::remote::{Remote, Target};
use super::summary;
use super::{fail, open_existing, plot, times, CliError, CliResult, DataDir};
use strata::text::selector::parse_selector;

/// Query series over a time range.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Query series over a time range, or evaluate a PromQL expression. A bare series \
        selector in Prometheus notation (name{label=\"v\",label=~\"regex\",label!=\"v\",label!~\"regex\"}, \
        or {__name__=~\"...\"}) prints its raw samples, or what --agg/--step/--group-by/--top-k make of \
        them. Any other PromQL expression (a function, an operator, a [range], offset/@, a number) is \
        evaluated as PromQL: at --time (default now) as an instant query, or, with --step, every step \
        from --start through --end as a range query; --time also makes a bare selector an instant \
        PromQL query. Times are now, -1h, now-30m, RFC 3339, a date, or an epoch number (seconds below \
        10^10, else milliseconds, microseconds or nanoseconds by magnitude); both ends are inclusive.",
    after_help = "Examples:\n  strata query 'cpu_usage_user{hostname=~\"host_1|host_2\"}' --start -1h\n  \
        strata query 'sum by (hostname) (rate(cpu_usage_user[5m]))'\n  \
        strata query 'max(cpu_usage_user) > 90' --start -6h --step 1m --json\n  \
        strata query 'cpu_usage{host=~\"h1|h2\"}' --start -1h --end now --step 5m --agg avg --group-by host\n  \
        strata query 'cpu_usage_idle{hostname=\"host_3\"}' --start -6h --plot\n  \
        strata query '{__name__=~\"cpu_.*\",hostname=\"host_0\"}' --csv > host0.csv\n  \
        strata query 'cpu_usage' --url http://127.0.0.1:9464 --token-file token --step 5m --agg max\n  \
        strata query 'task_duration_seconds' --start -1d --summary      # count, min, max, avg, p50, p95, p99"
)]
pub struct Args {
    /// Series selector, e.g. cpu_usage{host=~"h1|h2"}, or a PromQL expression
    selector: String,
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    target: Target,
    /// Start of the range (inclusive) [default: -1h].
    #[arg(long, allow_hyphen_values = true)]
    start: Option<String>,
    /// End of the range (inclusive) [default: now].
    #[arg(long, allow_hyphen_values = true)]
    end: Option<String>,
    /// Step of an aggregated query or of a PromQL range query, e.g. 5m.
    #[arg(long)]
    step: Option<String>,
    /// Evaluation time of a PromQL instant query [default: now].
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["start", "end", "step"])]
    time: Option<String>,
    /// raw, avg, sum, min, max, count, first, last, rate, increase, stddev, or a
    /// quantile: p99, q0.99, quantile:0.99 (or quantile with --quantile).
    #[arg(long, default_value = "raw", value_parser = agg_name)]
    agg: String,
    /// The quantile for --agg quantile, in [0, 1].
    #[arg(long)]
    quantile: Option<f64>,
    /// Labels to group by, comma separated; `--group-by ""` makes one group of every series.
    #[arg(long, value_delimiter = ',')]
    group_by: Option<Vec<String>>,
    /// Keep only the k series that rank highest by --rank-by.
    #[arg(long, conflicts_with = "bottom_k")]
    top_k: Option<usize>,
    /// Keep only the k series that rank lowest by --rank-by.
    #[arg(long)]
    bottom_k: Option<usize>,
    /// What --top-k/--bottom-k rank by: mean (default), max, min, last or sum of each series' points.
    #[arg(long, value_parser = |s: &str| s.parse::<strata::RankBy>())]
    rank_by: Option<strata::RankBy>,
    /// auto, raw, 5m or 1h.
    #[arg(long, default_value = "auto")]
    tier: Tier,
    /// Output JSON.
    #[arg(long, conflicts_with_all = ["csv", "plot"])]
    json: bool,
    /// Output CSV (series,timestamp,value), as `strata export --format csv`.
    #[arg(long, conflicts_with = "plot")]
    csv: bool,
    /// Draw an ASCII chart instead of the table.
    #[arg(long)]
    plot: bool,
    /// count, min, max, avg, p50, p95 and p99 of the raw samples, per series and overall.
    #[arg(long, conflicts_with_all = ["step", "time", "agg", "quantile", "group_by", "top_k", "bottom_k", "rank_by", "tier", "csv", "plot"])]
    summary: bool,
}

pub fn run(a: Args) -> CliResult {
    if a.summary {
        if promql::is_expression(&a.selector) {
            return fail(format!("--summary takes a series selector; {:?} is a PromQL expression", a.selector));
        }
        let req = request(&a, times::now_ms())?;
        let report = match Remote::from(&a.target)? {
            Some(remote) => summary::remote(&remote, &a.selector, req.start, req.end)?,
            None => summary::local(&open_existing(&a.data.data)?, &req.matchers, req.start, req.end)?,
        };
        let mut out = String::new();
        if a.json {
            summary::json(&mut out, &report, req.start, req.end);
        } else {
            summary::table(&mut out, &report);
        }
        return write_out(&out);
    }
    if let Some(eval) = promql_eval(&a, times::now_ms())? {
        let value = match Remote::from(&a.target)? {
            Some(remote) => promql::evaluate_remote(&remote, &a.selector, eval)?,
            None => promql::evaluate(&open_existing(&a.data.data)?, &a.selector, eval)?,
        };
        let mut out = String::new();
        if a.json {
            promql::json(&mut out, &value);
        } else {
            promql::table(&mut out, &value);
        }
        return write_out(&out);
    }
    let req = request(&a, times::now_ms())?;
    let series = match Remote::from(&a.target)? {
        Some(remote) => execute_remote(&remote, &a.selector, &req)?,
        None => execute(&open_existing(&a.data.data)?, &req)?,
    };
    let mut out = String::new();
    if a.json {
        json(&mut out, &req, &series);
    } else if a.csv {
        out.push_str(CSV_HEADER);
        for s in &series {
            write_csv_rows(&mut out, &s.labels, &s.samples);
        }
    } else if a.plot {
        let width = plot_width();
        out.push_str(&plot::render(&series, req.start, req.end, width, 16));
    } else {
        table(&mut out, &series);
    }
    write_out(&out)
}

fn write_out(out: &str) -> CliResult {
    match io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => fail(format!("writing the result: {e}")),
        _ => Ok(()),
    }
}

/// The PromQL evaluation to run, or `None` for the selector path: EXPR is a
/// PromQL expression other than a bare selector, or `--time` is given. The
/// selector path's own flags are refused there, naming the flag.
fn promql_eval(a: &Args, now: i64) -> CliResult<Option<Eval>> {
    if a.time.is_none() && !promql::is_expression(&a.selector) {
        return Ok(None);
    }
    let selector_only = [
        ("--agg", a.agg != "raw"),
        ("--quantile", a.quantile.is_some()),
        ("--group-by", a.group_by.is_some()),
        ("--top-k", a.top_k.is_some()),
        ("--bottom-k", a.bottom_k.is_some()),
        ("--rank-by", a.rank_by.is_some()),
        ("--tier", a.tier != Tier::Auto),
        ("--csv", a.csv),
        ("--plot", a.plot),
    ];
    if let Some((flag, _)) = selector_only.iter().find(|(_, given)| *given) {
        return fail(format!(
            "{flag} applies to a series selector; {:?} is a PromQL expression: write the aggregation in it, \
             e.g. 'sum by (host) (rate(cpu[5m]))'",
            a.selector
        ));
    }
    let time = |flag: &str, s: &str| times::parse_time(s, now).map_err(|e| CliError::new(format!("{flag}: {e}")));
    if let Some(t) = &a.time {
        return Ok(Some(Eval::Instant(time("--time", t)?)));
    }
    let Some(step) = &a.step else {
        if a.start.is_some() || a.end.is_some() {
            return fail("a range query needs --step (e.g. --step 1m); for an instant query use --time");
        }
        return Ok(Some(Eval::Instant(now)));
    };
    let step = times::parse_duration(step).map_err(|e| CliError::new(format!("--step: {e}")))?;
    if step <= 0 {
        return fail("--step must be positive");
    }
    let start = time("--start", a.start.as_deref().unwrap_or("-1h"))?;
    let end = time("--end", a.end.as_deref().unwrap_or("now"))?;
    if start > end {
        return fail(format!("--start {} is after --end {}", times::show_time(start), times::show_time(end)));
    }
    Ok(Some(Eval::Range { start, end, step }))
}

/// Validates the arguments into a request; `now` anchors relative times.
fn request(a: &Args, now: i64) -> CliResult<QueryRequest> {
    let matchers = parse_selector(&a.selector).map_err(|e| CliError::new(format!("{e}\n{}", e.pointer())))?;
    let start = times::parse_time(a.start.as_deref().unwrap_or("-1h"), now)
        .map_err(|e| CliError::new(format!("--start: {e}")))?;
    let end =
        times::parse_time(a.end.as_deref().unwrap_or("now"), now).map_err(|e| CliError::new(format!("--end: {e}")))?;
    if start > end {
        return fail(format!("--start {} is after --end {}", times::show_time(start), times::show_time(end)));
    }
    let step =
        a.step.as_deref().map(times::parse_duration).transpose().map_err(|e| CliError::new(format!("--step: {e}")))?;
    if step == Some(0) {
        return fail("--step must be positive");
    }
    let agg = Agg::with_quantile(&a.agg, a.quantile).map_err(|e| {
        CliError::new(match a.quantile {
            None => format!("--agg {}: {e} (or add --quantile 0.99)", a.agg),
            Some(_) => format!("--agg {} --quantile: {e}", a.agg),
        })
    })?;
    if a.top_k == Some(0) || a.bottom_k == Some(0) {
        return fail(format!("--{}-k must be at least 1", if a.top_k.is_some() { "top" } else { "bottom" }));
    }
    if a.rank_by.is_some() && a.top_k.is_none() && a.bottom_k.is_none() {
        return fail("--rank-by applies to --top-k or --bottom-k");
    }
    Ok(QueryRequest {
        matchers,
        start,
        end,
        step,
        agg,
        // Given, even empty: grouped (`--group-by ""` is one group of everything).
        group_by: a
            .group_by
            .as_ref()
            .map(|g| g.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()),
        top_k: a.top_k.or(a.bottom_k),
        bottom: a.bottom_k.is_some(),
        rank_by: a.rank_by.unwrap_or_default(),
        tier: a.tier,
    })
}

/// `--agg`: a name `Agg::from_str` reads, or a bare `quantile` whose q comes from
/// `--quantile` (checked with it in `request`).
fn agg_name(s: &str) -> Result<String, strata::query::ParseNameError> {
    if !s.trim().eq_ignore_ascii_case("quantile") {
        s.parse::<Agg>()?;
    }
    Ok(s.to_string())
}

/// Runs a query: raw reads through the querier, the rest through the query layer.
pub fn execute(db: &Db, req: &QueryRequest) -> CliResult<Vec<ResultSeries>> {
    let raw = req.agg == Agg::Raw
        && req.step.is_none()
        && req.group_by.is_none()
        && req.top_k.is_none()
        && matches!(req.tier, Tier::Auto | Tier::Raw);
    if !raw {
        return ops::query(db, req);
    }
    let q = db.querier(req.start..req.end.saturating_add(1));
    let mut out = Vec::new();
    for item in q.select(&req.matchers)? {
        let (labels, samples) = item?;
        out.push(ResultSeries { labels, samples: samples.collect() });
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// Runs a query on a running server through `POST /query`, with the same request
/// (`selector`, both times inclusive, step in ms) so the server builds the same
/// `strata::Query`; the answer comes back as the series the local path returns.
fn execute_remote(remote: &Remote, selector: &str, req: &QueryRequest) -> CliResult<Vec<ResultSeries>> {
    let mut body = serde_json::json!({
        "selector": selector,
        "start_time": times::format_ts(req.start),
        "end_time": times::format_ts(req.end),
        "function": req.agg.name(),
        "tier": req.tier.to_string(),
    });
    if let Agg::Quantile(q) = req.agg {
        body["quantile"] = q.into();
    }
    if let Some(step) = req.step {
        body["step"] = format!("{step}ms").into();
    }
    if let Some(g) = &req.group_by {
        body["group_by"] = g.clone().into();
    }
    if let Some(k) = req.top_k {
        body[if req.bottom { "bottom_k" } else { "top_k" }] = k.into();
        body["rank_by"] = req.rank_by.name().into();
    }
    let answer = remote.call("POST", "/query", Some(&body))?;
    let bad = |what: &str| CliError::new(format!("POST /query: unexpected answer ({what}): {answer}"));
    let value = |v: &serde_json::Value| -> CliResult<f64> {
        match v {
            serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| bad("a value")),
            serde_json::Value::String(s) => super::formats::parse_value(s).map_err(|e| bad(&e)),
            _ => Err(bad("a value")),
        }
    };
    let mut out = Vec::new();
    for s in answer["series"].as_array().ok_or_else(|| bad("no series"))? {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(name) = s["metric_name"].as_str() {
            pairs.push((strata::METRIC_NAME.to_string(), name.to_string()));
        }
        for (k, v) in s["labels"].as_object().ok_or_else(|| bad("labels"))? {
            pairs.push((k.clone(), v.as_str().ok_or_else(|| bad("a label value"))?.to_string()));
        }
        let labels = strata::Labels::from_pairs(pairs).map_err(|e| bad(&e.to_string()))?;
        let samples = match s.get("points") {
            Some(points) => points
                .as_array()
                .ok_or_else(|| bad("points"))?
                .iter()
                .map(|p| {
                    Ok(strata::Sample::new(
                        p["timestamp_ms"].as_i64().ok_or_else(|| bad("a timestamp"))?,
                        value(&p["value"])?,
                    ))
                })
                .collect::<CliResult<Vec<_>>>()?,
            // One value per series: at the range start, as the local query layer gives it.
            None if s["value"].is_null() => Vec::new(),
            None => vec![strata::Sample::new(req.start, value(&s["value"])?)],
        };
        if !samples.is_empty() {
            out.push(ResultSeries { labels, samples });
        }
    }
    Ok(out)
}

fn table(out: &mut String, series: &[ResultSeries]) {
    if series.is_empty() {
        out.push_str("no series matched in this range\n");
        return;
    }
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let n = s.samples.len();
        let _ = writeln!(out, "{}  ({n} sample{})", s.labels, if n == 1 { "" } else { "s" });
        for p in &s.samples {
            let _ = write!(out, "  {}  ", times::format_ts(p.ts));
            write_value(out, p.value);
            out.push('\n');
        }
    }
}

fn json(out: &mut String, req: &QueryRequest, series: &[ResultSeries]) {
    let _ = write!(out, "{{\"start\":{},\"end\":{},", req.start, req.end);
    if let Some(step) = req.step {
        let _ = write!(out, "\"step\":{step},");
    }
    let _ = write!(out, "\"agg\":\"{}\",", req.agg.name());
    if let Agg::Quantile(q) = req.agg {
        let _ = write!(out, "\"quantile\":{q},");
    }
    out.push_str("\"series\":[");
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"metric\":");
        write_json_labels(out, &s.labels);
        out.push_str(",\"timestamps\":[");
        for (k, p) in s.samples.iter().enumerate() {
            let _ = write!(out, "{}{}", if k > 0 { "," } else { "" }, p.ts);
        }
        out.push_str("],\"values\":[");
        for (k, p) in s.samples.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            let quote = !p.value.is_finite();
            if quote {
                out.push('"');
            }
            write_value(out, p.value);
            if quote {
                out.push('"');
            }
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
}

/// Plot width from the terminal, 100 columns when not a terminal.
fn plot_width() -> usize {
    let cols = if io::stdout().is_terminal() {
        ratatui::crossterm::terminal::size().map(|(w, _)| usize::from(w)).unwrap_or(100)
    } else {
        100
    };
    cols.saturating_sub(14).clamp(20, 400)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: Args,
    }

    fn req(args: &[&str]) -> CliResult<QueryRequest> {
        let t = T::try_parse_from(std::iter::once("q").chain(args.iter().copied()))
            .map_err(|e| CliError::new(e.to_string()))?;
        request(&t.a, 10_000_000)
    }

    #[test]
    fn builds_requests() {
        let r = req(&[
            "cpu{host=~\"h1|h2\"}",
            "--start",
            "-1h",
            "--end",
            "now",
            "--step",
            "5m",
            "--agg",
            "avg",
            "--group-by",
            "host,region",
        ])
        .unwrap();
        // The range is taken as given, never widened to whole steps.
        assert_eq!((r.start, r.end, r.step), (6_400_000, 10_000_000, Some(300_000)));
        assert_eq!(
            (r.agg, r.group_by.clone(), r.tier),
            (Agg::Avg, Some(vec!["host".to_string(), "region".into()]), Tier::Auto)
        );
        let r = req(&["up", "--tier", "5m", "--agg", "quantile", "--quantile", "0.9", "--step", "1h"]).unwrap();
        assert_eq!((r.tier, r.agg), (Tier::FiveMin, Agg::Quantile(0.9)));
        let r = req(&["up", "--tier", "1h", "--agg", "p99", "--step", "1h"]).unwrap();
        assert_eq!((r.tier, r.agg), (Tier::Hour, Agg::Quantile(0.99)));
        assert_eq!(req(&["up", "--agg", "MEAN"]).unwrap().agg, Agg::Avg);
    }

    #[test]
    fn rejects_bad_requests_clearly() {
        let cases: [(&[&str], &str); 10] = [
            (&["cpu{"], "missing '}'"),
            (&["up", "--start", "soon"], "--start: invalid time"),
            (&["up", "--start", "now", "--end", "-1h"], "is after --end"),
            (&["up", "--step", "0"], "--step must be positive"),
            (&["up", "--agg", "quantile", "--step", "1m"], "a quantile needs its q"),
            (&["up", "--agg", "quantile", "--quantile", "1.5"], "not in [0, 1]"),
            (&["up", "--agg", "sum", "--quantile", "0.5"], "only applies to the quantile"),
            (&["up", "--agg", "median"], "unknown aggregation \"median\""),
            (&["up", "--tier", "2h"], "expected auto, raw, 5m or 1h"),
            (&["up", "--top-k", "0"], "at least 1"),
        ];
        for (args, want) in cases {
            let e = req(args).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn promql_expressions_and_time_pick_the_promql_path() {
        let eval = |args: &[&str]| {
            let t = T::try_parse_from(std::iter::once("q").chain(args.iter().copied())).unwrap();
            promql_eval(&t.a, 10_000_000)
        };
        assert_eq!(eval(&["up"]).unwrap(), None, "a bare selector keeps the selector path");
        assert_eq!(eval(&["up", "--step", "1m", "--agg", "avg"]).unwrap(), None);
        assert_eq!(eval(&["rate(x[5m])"]).unwrap(), Some(Eval::Instant(10_000_000)));
        assert_eq!(eval(&["up", "--time", "5"]).unwrap(), Some(Eval::Instant(5_000)));
        assert_eq!(
            eval(&["sum(x)", "--start", "1", "--end", "61", "--step", "30s"]).unwrap(),
            Some(Eval::Range { start: 1_000, end: 61_000, step: 30_000 })
        );
        assert_eq!(
            eval(&["sum(x)", "--step", "1m"]).unwrap(),
            Some(Eval::Range { start: 6_400_000, end: 10_000_000, step: 60_000 })
        );
        let cases: [(&[&str], &str); 6] = [
            (&["sum(x)", "--start", "-1h"], "a range query needs --step"),
            (&["sum(x)", "--agg", "max"], "--agg applies to a series selector"),
            (&["sum(x)", "--group-by", "h"], "--group-by applies to a series selector"),
            (&["sum(x)", "--csv"], "--csv applies to a series selector"),
            (&["sum(x)", "--time", "soon"], "--time: invalid time"),
            (&["sum(x)", "--step", "0"], "--step must be positive"),
        ];
        for (args, want) in cases {
            let e = eval(args).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
        assert!(T::try_parse_from(["q", "x", "--time", "1", "--start", "0"]).is_err());
    }

    #[test]
    fn outputs() {
        let s = vec![ResultSeries {
            labels: strata::Labels::metric("m", [("h", "a")]).unwrap(),
            samples: vec![strata::Sample::new(0, 1.5), strata::Sample::new(1000, f64::NAN)],
        }];
        let mut t = String::new();
        table(&mut t, &s);
        assert_eq!(t, "m{h=\"a\"}  (2 samples)\n  1970-01-01T00:00:00Z  1.5\n  1970-01-01T00:00:01Z  NaN\n");
        let r = req(&["m"]).unwrap();
        let mut j = String::new();
        json(&mut j, &r, &s);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["series"][0]["metric"]["h"], "a");
        assert_eq!(v["series"][0]["values"][1], "NaN");
        assert_eq!(v["agg"], "raw");
    }
}
