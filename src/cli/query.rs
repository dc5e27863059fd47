//! `strata query`: selector and time parsing, execution, and table / JSON / CSV /
//! ASCII-plot output.
//!
//! Execution goes through [`execute`]: raw reads use `db.querier` here; everything
//! else (step, aggregation, grouping, top-k, tiers) goes to `ops::query`,
//! the one place where the query layer plugs in.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};

use strata::Db;

use super::formats::{write_csv_rows, write_json_labels, write_value, CSV_HEADER};
use super::ops::{self, Agg, QueryRequest, ResultSeries, Tier};
use super::{fail, open_existing, plot, times, CliError, CliResult, DataDir};
use strata::text::selector::parse_selector;

/// Query series over a time range.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Query series over a time range. SELECTOR is Prometheus notation: \
        name{label=\"v\",label=~\"regex\",label!=\"v\",label!~\"regex\"}, or {__name__=~\"...\"}. \
        Times are now, -1h, now-30m, RFC 3339 or epoch milliseconds; both ends are inclusive.",
    after_help = "Examples:\n  strata query 'cpu_usage_user{hostname=~\"host_1|host_2\"}' --start -1h\n  \
        strata query 'cpu_usage{host=~\"h1|h2\"}' --start -1h --end now --step 5m --agg avg --group-by host\n  \
        strata query 'cpu_usage_idle{hostname=\"host_3\"}' --start -6h --plot\n  \
        strata query '{__name__=~\"cpu_.*\",hostname=\"host_0\"}' --csv > host0.csv"
)]
pub struct Args {
    /// Series selector, e.g. cpu_usage{host=~"h1|h2"}
    selector: String,
    #[command(flatten)]
    data: DataDir,
    /// Start of the range (inclusive).
    #[arg(long, default_value = "-1h", allow_hyphen_values = true)]
    start: String,
    /// End of the range (inclusive).
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    end: String,
    /// Step of an aggregated query, e.g. 5m.
    #[arg(long)]
    step: Option<String>,
    #[arg(long, value_enum, default_value = "raw")]
    agg: Agg,
    /// The quantile for --agg quantile, in [0, 1].
    #[arg(long)]
    quantile: Option<f64>,
    /// Labels to group by, comma separated.
    #[arg(long, value_delimiter = ',')]
    group_by: Vec<String>,
    /// Keep only the k series with the highest values.
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long, value_enum, default_value = "auto")]
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
}

pub fn run(a: Args) -> CliResult {
    let req = request(&a, times::now_ms())?;
    let db = open_existing(&a.data.data)?;
    let series = execute(&db, &req)?;
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
    match io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => fail(format!("writing the result: {e}")),
        _ => Ok(()),
    }
}

/// Validates the arguments into a request; `now` anchors relative times.
fn request(a: &Args, now: i64) -> CliResult<QueryRequest> {
    let matchers = parse_selector(&a.selector).map_err(|e| CliError::new(format!("{e}\n{}", e.pointer())))?;
    let start = times::parse_time(&a.start, now).map_err(|e| CliError::new(format!("--start: {e}")))?;
    let end = times::parse_time(&a.end, now).map_err(|e| CliError::new(format!("--end: {e}")))?;
    if start > end {
        return fail(format!("--start {} is after --end {}", times::format_ts(start), times::format_ts(end)));
    }
    let step =
        a.step.as_deref().map(times::parse_duration).transpose().map_err(|e| CliError::new(format!("--step: {e}")))?;
    if step == Some(0) {
        return fail("--step must be positive");
    }
    if a.agg == Agg::Quantile && !a.quantile.is_some_and(|q| (0.0..=1.0).contains(&q)) {
        return fail("--agg quantile needs --quantile between 0 and 1, e.g. --quantile 0.99");
    }
    if a.agg != Agg::Quantile && a.quantile.is_some() {
        return fail("--quantile only applies to --agg quantile");
    }
    if a.top_k == Some(0) {
        return fail("--top-k must be at least 1");
    }
    // With a step, widen the range to whole steps: buckets are aligned to multiples
    // of the step anyway, and only whole buckets can be answered from a rollup tier.
    let (start, end) = match step.filter(|s| *s > 0) {
        Some(s) => (start.div_euclid(s) * s, end.div_euclid(s).saturating_mul(s).saturating_add(s - 1)),
        None => (start, end),
    };
    Ok(QueryRequest {
        matchers,
        start,
        end,
        step,
        agg: a.agg,
        quantile: a.quantile,
        group_by: a.group_by.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        top_k: a.top_k,
        tier: a.tier,
    })
}

/// Runs a query: raw reads through the querier, the rest through the query layer.
pub fn execute(db: &Db, req: &QueryRequest) -> CliResult<Vec<ResultSeries>> {
    let raw = req.agg == Agg::Raw
        && req.step.is_none()
        && req.group_by.is_empty()
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
    let agg = format!("{:?}", req.agg).to_lowercase();
    let _ = write!(out, "\"agg\":\"{agg}\",\"series\":[");
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
        // With a step the range widens to whole steps: 6.4e6 down to 6.3e6, 1e7 up to the end of its step.
        assert_eq!((r.start, r.end, r.step), (6_300_000, 10_199_999, Some(300_000)));
        assert_eq!(
            (r.agg, r.group_by.clone(), r.tier),
            (Agg::Avg, vec!["host".to_string(), "region".into()], Tier::Auto)
        );
        let r = req(&["up", "--tier", "5m", "--agg", "quantile", "--quantile", "0.9", "--step", "1h"]).unwrap();
        assert_eq!((r.tier, r.quantile), (Tier::FiveMin, Some(0.9)));
    }

    #[test]
    fn rejects_bad_requests_clearly() {
        let cases: [(&[&str], &str); 6] = [
            (&["cpu{"], "missing '}'"),
            (&["up", "--start", "soon"], "--start: invalid time"),
            (&["up", "--start", "now", "--end", "-1h"], "is after --end"),
            (&["up", "--step", "0"], "--step must be positive"),
            (&["up", "--agg", "quantile", "--step", "1m"], "needs --quantile"),
            (&["up", "--top-k", "0"], "at least 1"),
        ];
        for (args, want) in cases {
            let e = req(args).unwrap_err().to_string();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn outputs() {
        let s = vec![ResultSeries {
            labels: strata::Labels::metric("m", [("h", "a")]).unwrap(),
            samples: vec![strata::Sample::new(0, 1.5), strata::Sample::new(1000, f64::NAN)],
        }];
        let mut t = String::new();
        table(&mut t, &s);
        assert_eq!(t, "m{h=\"a\"}  (2 samples)\n  1970-01-01T00:00:00.000Z  1.5\n  1970-01-01T00:00:01.000Z  NaN\n");
        let r = req(&["m"]).unwrap();
        let mut j = String::new();
        json(&mut j, &r, &s);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["series"][0]["metric"]["h"], "a");
        assert_eq!(v["series"][0]["values"][1], "NaN");
        assert_eq!(v["agg"], "raw");
    }
}
