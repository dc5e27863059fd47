//! `strata export`: series to JSON lines, CSV or Prometheus text, series by series.
//!
//! Memory is bounded by the largest single series in the range: the querier reads
//! one series at a time and each is written out before the next is read.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::ValueEnum;
use strata::{Labels, Matcher};

use super::formats::{write_csv_rows, write_json_lines, write_prometheus, CSV_HEADER};
use super::{fail, human, io_err, open_existing, progress_bar, times, CliError, CliResult, DataDir};
use strata::text::selector::parse_selector;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per series: {"metric":{...},"values":[...],"timestamps":[...]}
    Json,
    /// series,timestamp,value rows
    Csv,
    /// Prometheus text exposition lines with timestamps (not importable)
    Prometheus,
}

/// Export series as JSON lines, CSV or Prometheus text.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Export series as JSON lines (default), CSV or Prometheus text, streaming one series at a \
        time. Values are exact: every float is written as its shortest round-trip decimal, NaN and \
        infinities as \"NaN\", \"+Inf\", \"-Inf\" (NaN payloads as \"NaN(0x...)\"), so `strata import` \
        restores them bit for bit.",
    after_help = "Examples:\n  strata export --data ./data --match 'cpu_usage_user' --start -1d -o cpu.json\n  \
        strata export --format csv --gzip -o all.csv.gz\n  strata export --format prometheus --match '{hostname=\"host_1\"}'"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Series to export; repeat for a union. Default: every series with a metric name.
    #[arg(long = "match", value_name = "SELECTOR")]
    matches: Vec<String>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Start of the range (inclusive): now, -1h, RFC 3339, epoch ms. Default: the beginning.
    #[arg(long, allow_hyphen_values = true)]
    start: Option<String>,
    /// End of the range (inclusive). Default: the end of time.
    #[arg(long, allow_hyphen_values = true)]
    end: Option<String>,
    /// Compress the output with gzip (implied by an output name ending in .gz).
    #[arg(long)]
    gzip: bool,
    /// Output file; default stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult {
    let now = times::now_ms();
    let start = a.start.as_deref().map(|s| times::parse_time(s, now)).transpose().map_err(CliError::new)?;
    let end = a.end.as_deref().map(|s| times::parse_time(s, now)).transpose().map_err(CliError::new)?;
    let (start, end) = (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
    if start > end {
        return fail(format!("--start ({}) is after --end ({})", times::format_ts(start), times::format_ts(end)));
    }
    let selectors = selectors(&a.matches)?;
    let db = open_existing(&a.data.data)?;

    let gzip = a.gzip || a.output.as_ref().is_some_and(|p| p.extension().is_some_and(|e| e == "gz"));
    let sink: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(File::create(p).map_err(io_err(format!("creating {}", p.display())))?),
        None => Box::new(io::stdout().lock()),
    };
    let mut out: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(BufWriter::with_capacity(1 << 20, sink), flate2::Compression::fast()))
    } else {
        Box::new(BufWriter::with_capacity(1 << 20, sink))
    };

    let t0 = Instant::now();
    let pb = progress_bar(None, a.json || a.output.is_none());
    let q = db.querier(start..end.saturating_add(1));
    let mut seen: HashSet<Labels> = HashSet::new();
    let (mut series, mut samples, mut skipped) = (0u64, 0u64, 0u64);
    let mut buf = String::with_capacity(1 << 20);
    if a.format == Format::Csv {
        buf.push_str(CSV_HEADER);
    }
    for matchers in &selectors {
        for item in q.select(matchers)? {
            let (labels, iter) = item?;
            // A series matched by two selectors is written once.
            if selectors.len() > 1 && !seen.insert(labels.clone()) {
                continue;
            }
            let s: Vec<strata::Sample> = iter.collect();
            match a.format {
                Format::Json => write_json_lines(&mut buf, &labels, &s),
                Format::Csv => write_csv_rows(&mut buf, &labels, &s),
                Format::Prometheus => {
                    if !write_prometheus(&mut buf, &labels, &s) {
                        skipped += 1;
                        continue;
                    }
                }
            }
            series += 1;
            samples += s.len() as u64;
            if !write_out(&mut out, &mut buf)? {
                return Ok(()); // the reader went away (e.g. `| head`)
            }
            pb.set_message(format!("{} series, {} samples", human::count(series), human::count(samples)));
            pb.tick();
        }
    }
    if !write_out(&mut out, &mut buf)? {
        return Ok(());
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
        r => r.map_err(io_err("writing the export"))?,
    }
    drop(out); // finishes the gzip stream
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let dest = a.output.as_ref().map_or("stdout".to_string(), |p| p.display().to_string());
    let summary = if a.json {
        serde_json::json!({"series": series, "samples": samples, "skipped_series": skipped, "output": dest,
            "gzip": gzip, "seconds": secs})
        .to_string()
    } else {
        let mut s = format!(
            "exported {} series, {} samples to {dest} in {secs:.2} s",
            human::count(series),
            human::count(samples)
        );
        if skipped > 0 {
            s.push_str(&format!(" ({skipped} series without a metric name skipped: Prometheus text needs one)"));
        }
        s
    };
    // The summary goes to stdout only when the data does not.
    if a.output.is_some() {
        println!("{summary}");
    } else {
        eprintln!("{summary}");
    }
    Ok(())
}

/// Parsed `--match` selectors; every series with a metric name when none are given.
fn selectors(matches: &[String]) -> CliResult<Vec<Vec<Matcher>>> {
    if matches.is_empty() {
        let all = Matcher::regex(strata::METRIC_NAME, ".+")?;
        return Ok(vec![vec![all]]);
    }
    matches.iter().map(|m| parse_selector(m).map_err(|e| CliError::new(format!("{e}\n{}", e.pointer())))).collect()
}

/// Writes and clears `buf`; false when the reader closed the pipe.
fn write_out(out: &mut Box<dyn Write>, buf: &mut String) -> CliResult<bool> {
    let r = out.write_all(buf.as_bytes());
    buf.clear();
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::new(format!("writing the export: {e}"))),
    }
}
