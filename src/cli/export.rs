//! `strata export`: series to JSON lines, CSV or Prometheus text, series by series.
//!
//! Memory is bounded by the largest single series in the range: the querier reads
//! one series at a time and each is written out before the next is read.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::ValueEnum;
use strata::{Labels, Matcher};

use super::formats::{
    parse_json_line, write_csv_rows, write_json_lines, write_openmetrics, write_prometheus, FileFormat, MetadataLines,
    CSV_HEADER, OPENMETRICS_EOF,
};
use super::remote::{encode, Remote, Target};
use super::upload::Upload;
use super::{fail, human, io_err, open_existing, progress_bar, times, CliError, CliResult, DataDir};
use strata::text::parquet::{Drain, ParquetSink};
use strata::text::selector::parse_selector;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per series: {"metric":{...},"values":[...],"timestamps":[...]}
    Json,
    /// series,timestamp,value rows
    Csv,
    /// Prometheus text exposition lines with timestamps (`strata import` reads them back)
    Prometheus,
    /// OpenMetrics text: timestamps in seconds, `# EOF` at the end (series without a
    /// metric name cannot be written and are counted as skipped)
    Openmetrics,
    /// Apache Parquet, one row per sample: metric_name, labels (a map), timestamp, value
    Parquet,
}

/// Export series as JSON lines, CSV or Prometheus text.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Export series as JSON lines (default), CSV or Prometheus text, streaming one series at a \
        time. Values are exact: every float is written as its shortest round-trip decimal, NaN and \
        infinities as \"NaN\", \"+Inf\", \"-Inf\" (NaN payloads as \"NaN(0x...)\"), so `strata import` \
        restores them bit for bit.",
    after_help = "Examples:\n  strata export --data ./data --match 'cpu_usage_user' --start -1d -o cpu.json\n  \
        strata export --format csv --gzip -o all.csv.gz\n  strata export --format prometheus --match '{hostname=\"host_1\"}'\n  \
        strata export --url http://127.0.0.1:9464 --format csv -o all.csv"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    target: Target,
    /// Series to export; repeat for a union. Default: every series, with or without a metric name.
    #[arg(long = "match", value_name = "SELECTOR")]
    matches: Vec<String>,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Start of the range (inclusive): now, -1h, RFC 3339, epoch seconds or ms. Default: the beginning.
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
    /// POST the export, streamed, to this URL instead of writing it: for example
    /// VictoriaMetrics' `/api/v1/import` (JSON lines) or `/api/v1/import/prometheus`.
    /// A non-2xx answer is an error. User and password may be given in the URL.
    #[arg(long, value_name = "URL", conflicts_with = "output")]
    to: Option<String>,
    /// A header for the --to request, as "Name: value" (repeatable), e.g. an Authorization.
    #[arg(long, value_name = "HEADER", requires = "to")]
    to_header: Vec<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult {
    let (start, end) = times::inclusive_range(a.start.as_deref(), a.end.as_deref()).map_err(CliError::new)?;
    let selectors =
        a.matches.iter().map(|m| parse_selector(m).map_err(|e| CliError::new(format!("{e}\n{}", e.pointer()))));
    let selectors = selectors.collect::<CliResult<Vec<Vec<Matcher>>>>()?;
    let remote = Remote::from(&a.target)?;
    let db = match remote {
        Some(_) => None,
        None => Some(open_existing(&a.data.data)?),
    };

    let gzip = a.gzip || a.output.as_ref().is_some_and(|p| p.extension().is_some_and(|e| e == "gz"));
    let parquet = a.format == Format::Parquet;
    if parquet && gzip {
        return fail("--format parquet compresses its columns itself (zstd): drop --gzip or the .gz name");
    }
    if parquet && a.output.is_none() && a.to.is_none() && io::IsTerminal::is_terminal(&io::stdout()) {
        return fail("--format parquet is binary: give -o FILE or --to URL, or redirect stdout");
    }
    let mut upload = None;
    let sink: Box<dyn Write> = match (&a.output, &a.to) {
        (Some(p), _) => Box::new(File::create(p).map_err(io_err(format!("creating {}", p.display())))?),
        (None, Some(url)) => {
            let (w, u) = Upload::start(url, a.format, gzip, &a.to_header)?;
            upload = Some(u);
            Box::new(w)
        }
        (None, None) => Box::new(io::stdout().lock()),
    };
    let mut out: Box<dyn Write> = if gzip {
        Box::new(flate2::write::GzEncoder::new(BufWriter::with_capacity(1 << 20, sink), flate2::Compression::fast()))
    } else {
        Box::new(BufWriter::with_capacity(1 << 20, sink))
    };

    let t0 = Instant::now();
    let pb = progress_bar(None, a.json || (a.output.is_none() && a.to.is_none()));
    let mut seen: HashSet<Labels> = HashSet::new();
    let (mut series, mut samples, mut nan_payloads, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    let mut buf = String::with_capacity(1 << 20);
    if a.format == Format::Csv {
        buf.push_str(CSV_HEADER);
    }
    let mut last: Option<Labels> = None;
    let mut last_skipped: Option<Labels> = None;
    // Writes one series (or, from a server, one JSON line of it); false when the reader went away.
    // Text formats: each family's HELP/TYPE/UNIT lines before its first series.
    let metadata: std::collections::HashMap<String, strata::MetricMetadata> = match (&db, &remote) {
        _ if !matches!(a.format, Format::Prometheus | Format::Openmetrics) => Default::default(),
        (Some(db), _) => db.all_metadata().into_iter().collect(),
        (None, Some(remote)) => remote_metadata(remote)?,
        (None, None) => Default::default(),
    };
    let mut meta_lines = MetadataLines::default();
    // Parquet is written into a shared buffer that is drained to `out` after each series.
    let drain = Drain::default();
    let mut pq = match parquet {
        true => Some(ParquetSink::new(drain.clone()).map_err(pq_err)?),
        false => None,
    };
    let mut emit = |labels: Labels, s: Vec<strata::Sample>, out: &mut Box<dyn Write>| -> CliResult<bool> {
        if let Some(f) = text_format(a.format) {
            meta_lines.before_series(&mut buf, f, &labels, |n| metadata.get(n).cloned());
        }
        match a.format {
            Format::Json => write_json_lines(&mut buf, &labels, &s),
            Format::Csv => write_csv_rows(&mut buf, &labels, &s),
            Format::Prometheus => nan_payloads += write_prometheus(&mut buf, &labels, &s),
            Format::Parquet => {
                if let Some(p) = pq.as_mut() {
                    p.push(&labels, &s).map_err(pq_err)?;
                }
                if !write_bytes(out, &drain.take())? {
                    return Ok(false);
                }
            }
            Format::Openmetrics => {
                if !write_openmetrics(&mut buf, &labels, &s) {
                    if last_skipped.as_ref() != Some(&labels) {
                        skipped += 1;
                        last_skipped = Some(labels);
                    }
                    return Ok(true);
                }
            }
        }
        // A long series arrives from a server as several lines: count it once.
        if last.as_ref() != Some(&labels) {
            series += 1;
            last = Some(labels);
        }
        samples += s.len() as u64;
        let more = write_out(out, &mut buf)?;
        pb.set_message(format!("{} series, {} samples", human::count(series), human::count(samples)));
        pb.tick();
        Ok(more)
    };
    match (&db, &remote) {
        (Some(db), _) => {
            let q = db.querier(start..end.saturating_add(1));
            // No --match: every series, including those without a metric name.
            let sets = if selectors.is_empty() {
                vec![q.select_all()?]
            } else {
                selectors.iter().map(|m| q.select(m)).collect::<strata::Result<Vec<_>>>()?
            };
            for set in sets {
                for item in set {
                    let (labels, iter) = item?;
                    // A series matched by two selectors is written once.
                    if selectors.len() > 1 && !seen.insert(labels.clone()) {
                        continue;
                    }
                    if !emit(labels, iter.collect(), &mut out)? {
                        return stopped(out, upload); // the reader went away (e.g. `| head`)
                    }
                }
            }
        }
        (None, Some(remote)) => {
            // The server's JSON lines carry every value exactly; they are written out
            // here in the asked format, so the output is the local path's.
            let mut path = String::from("/export?format=json");
            for m in &a.matches {
                path.push_str(&format!("&match%5B%5D={}", encode(m)));
            }
            for (k, t) in [("start", start), ("end", end)] {
                if t != i64::MIN && t != i64::MAX {
                    path.push_str(&format!("&{k}={}", encode(&times::format_ts(t))));
                }
            }
            let reader = BufReader::new(remote.get_stream(&path)?);
            for (i, line) in reader.lines().enumerate() {
                let line = line.map_err(io_err("reading the server's export"))?;
                if line.trim().is_empty() {
                    continue;
                }
                let (labels, s) = parse_json_line(&line)
                    .map_err(|e| CliError::new(format!("the server's export, line {}: {e}", i + 1)))?;
                if !emit(labels, s, &mut out)? {
                    return stopped(out, upload);
                }
            }
        }
        (None, None) => return fail("no database and no --url"),
    }
    if a.format == Format::Openmetrics {
        buf.push_str(OPENMETRICS_EOF);
    }
    if let Some(p) = pq.take() {
        p.finish().map_err(pq_err)?;
        if !write_bytes(&mut out, &drain.take())? {
            return stopped(out, upload);
        }
    }
    if !write_out(&mut out, &mut buf)? {
        return stopped(out, upload);
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return stopped(out, upload),
        r => r.map_err(io_err("writing the export"))?,
    }
    drop(out); // finishes the gzip stream (and, with --to, the request body)
    if let Some(u) = upload.take() {
        u.finish(true)?;
    }
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let dest = match (&a.output, &a.to) {
        (Some(p), _) => p.display().to_string(),
        (None, Some(url)) => url.clone(),
        (None, None) => "stdout".to_string(),
    };
    let summary = if a.json {
        serde_json::json!({"series": series, "samples": samples, "skipped_series": skipped, "output": dest,
            "gzip": gzip, "seconds": secs, "nan_payloads_lost": nan_payloads})
        .to_string()
    } else {
        let mut s = format!(
            "exported {} series, {} samples to {dest} in {secs:.2} s",
            human::count(series),
            human::count(samples)
        );
        if skipped > 0 {
            s.push_str(&format!(
                " ({skipped} series without a metric name skipped: OpenMetrics cannot hold them; JSON and CSV can)"
            ));
        }
        if nan_payloads > 0 {
            s.push_str(&format!(
                " ({nan_payloads} NaN values with a payload, such as stale markers, written as plain NaN: \
                 Prometheus text has no spelling for them; JSON and CSV keep them)"
            ));
        }
        s
    };
    if samples == 0 {
        match &db {
            Some(db) => eprintln!("{}", nothing_found(db, &selectors, start, end)?),
            None => eprintln!(
                "no samples in {} .. {} on {}",
                times::format_ts(start),
                times::format_ts(end),
                a.target.url.as_deref().unwrap_or_default()
            ),
        }
    }
    // The summary goes to stdout only when the data does not.
    if a.output.is_some() || a.to.is_some() {
        println!("{summary}");
    } else {
        eprintln!("{summary}");
    }
    Ok(())
}

/// Why an export wrote nothing: what the selection holds outside the range, or
/// that it matches nothing stored.
fn nothing_found(db: &strata::Db, selectors: &[Vec<Matcher>], start: i64, end: i64) -> CliResult<String> {
    let range = format!("{} .. {}", times::format_ts(start), times::format_ts(end));
    let q = db.querier(i64::MIN..i64::MAX);
    let sets = if selectors.is_empty() {
        vec![q.select_all()?]
    } else {
        selectors.iter().map(|m| q.select(m)).collect::<strata::Result<Vec<_>>>()?
    };
    let mut seen: HashSet<Labels> = HashSet::new();
    let (mut series, mut outside, mut span) = (0u64, 0u64, None::<(i64, i64)>);
    for set in sets {
        for item in set {
            let (labels, iter) = item?;
            if !seen.insert(labels) {
                continue;
            }
            series += 1;
            for s in iter {
                outside += 1;
                span = Some(span.map_or((s.ts, s.ts), |(a, b)| (a.min(s.ts), b.max(s.ts))));
            }
        }
    }
    Ok(match span {
        Some((a, b)) => format!(
            "no samples in {range}: the selected {} series hold {} samples outside it, from {} to {}",
            human::count(series),
            human::count(outside),
            times::format_ts(a),
            times::format_ts(b)
        ),
        None => {
            let st = db.stats()?;
            format!(
                "no samples in {range}: the selection matches no readable series (the database holds {} series, \
                 {} samples)",
                human::count(st.series),
                human::count(st.samples())
            )
        }
    })
}

/// Writes and clears `buf`; false when the reader closed the pipe.
/// The reader went away: fine for stdout (`| head`), an error for an upload.
fn stopped(out: Box<dyn Write>, upload: Option<Upload>) -> CliResult {
    drop(out);
    upload.map_or(Ok(()), |u| u.finish(false))
}

fn write_out(out: &mut Box<dyn Write>, buf: &mut String) -> CliResult<bool> {
    let r = write_bytes(out, buf.as_bytes());
    buf.clear();
    r
}

fn write_bytes(out: &mut Box<dyn Write>, bytes: &[u8]) -> CliResult<bool> {
    match out.write_all(bytes) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError::new(format!("writing the export: {e}"))),
    }
}

/// The text format a `--format` names, for the metadata lines.
fn text_format(f: Format) -> Option<FileFormat> {
    match f {
        Format::Prometheus => Some(FileFormat::Prometheus),
        Format::Openmetrics => Some(FileFormat::OpenMetrics),
        Format::Json | Format::Csv | Format::Parquet => None,
    }
}

/// A server's metric metadata, from its `/api/v1/metadata`.
fn remote_metadata(remote: &Remote) -> CliResult<std::collections::HashMap<String, strata::MetricMetadata>> {
    let v = remote.call("GET", "/api/v1/metadata", None)?;
    let mut out = std::collections::HashMap::new();
    let Some(data) = v.get("data").and_then(|d| d.as_object()) else {
        return fail("the server's /api/v1/metadata answer has no \"data\" object");
    };
    for (name, list) in data {
        let Some(m) = list.as_array().and_then(|l| l.first()) else { continue };
        let text = |k: &str| m.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
        let kind = text("type").parse().map_err(|e| CliError::new(format!("/api/v1/metadata, {name}: {e}")))?;
        out.insert(name.clone(), strata::MetricMetadata::new(kind, text("unit"), text("help")));
    }
    Ok(out)
}

fn pq_err(e: parquet::errors::ParquetError) -> CliError {
    CliError::new(format!("writing Parquet: {e}"))
}
