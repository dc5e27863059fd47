//! `strata import`: JSON lines, CSV or Prometheus text (as `strata export` writes
//! them), plain or gzip, streamed line by line into the database in batches. A row
//! that cannot be read, or that the engine refuses (older than retention, invalid
//! labels, ...), is refused alone: every other row is stored, and the refused ones
//! are counted and named by line number before the command fails.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::time::Instant;

use clap::ValueEnum;
use strata::{Db, Labels, SeriesRef};

use super::formats::{parse_csv_row, parse_json_line, parse_prometheus_line, CSV_HEADER};
use super::{human, io_err, progress_bar, CliError, CliResult, DataDir};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON lines if the input starts with '{"', Prometheus text if its first line is a
    /// comment or a `series value timestamp` sample line, CSV otherwise
    Auto,
    Json,
    Csv,
    /// Prometheus text with timestamps, as `strata export --format prometheus` writes it
    Prometheus,
}

/// Import JSON lines, CSV or Prometheus text written by `strata export`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Import JSON lines, CSV or Prometheus text (with timestamps) as written by `strata export` \
        (gzip is detected by its magic bytes), creating the data directory if needed. Samples are committed \
        in batches. A line that cannot be read, or a sample the database refuses (e.g. older than retention \
        allows), is refused alone and the rest is imported; the refused ones are counted and the first few \
        named by line number, and the command then exits non-zero.",
    after_help = "Examples:\n  strata import --data ./restored cpu.json\n  strata import --data ./restored all.csv.gz\n  \
        zcat dump.json.gz | strata import --data ./restored -"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Input file, or - for stdin.
    #[arg(value_name = "FILE")]
    input: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    format: Format,
    /// Samples per commit.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult {
    let (raw, size): (Box<dyn Read>, Option<u64>) = if a.input.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(&a.input).map_err(io_err(format!("opening {}", a.input.display())))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let peek = reader.fill_buf().map_err(io_err("reading the input"))?;
    let gzip = peek.starts_with(&[0x1f, 0x8b]);
    let mut lines: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    let first = lines.fill_buf().map_err(io_err("reading the input"))?;
    let format = match a.format {
        Format::Auto => detect(first),
        f => f,
    };

    let db = Db::open(&a.data.data, super::options_for(&a.data.data)?)?;
    let t0 = Instant::now();
    // Progress by input bytes when the (uncompressed) size is known.
    let pb = progress_bar(if gzip { None } else { size }, a.json);
    let mut imp = Importer { app: db.appender(), refs: HashMap::new(), batch: a.batch, series: 0, samples: 0 };
    let mut refused = Refused::default();
    let mut line = String::new();
    let (mut lineno, mut read) = (0u64, 0u64);
    loop {
        line.clear();
        let n = lines.read_line(&mut line).map_err(io_err(format!("reading line {}", lineno + 1)))?;
        if n == 0 {
            break;
        }
        lineno += 1;
        read += n as u64;
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() || (format == Format::Csv && lineno == 1 && line == CSV_HEADER) {
            continue;
        }
        if format == Format::Prometheus && text.trim_start().starts_with('#') {
            continue;
        }
        let at = |e: String| CliError::new(format!("{} line {lineno}: {e}", a.input.display()));
        let parsed = match format {
            Format::Json => parse_json_line(text),
            Format::Prometheus => parse_prometheus_line(text).map(|(labels, s)| (labels, vec![s])),
            _ => parse_csv_row(text).map(|(labels, s)| (labels, vec![s])),
        };
        match parsed {
            Ok((labels, samples)) => {
                for s in samples {
                    match imp.add(&labels, s.ts, s.value) {
                        Ok(()) => {}
                        Err(e) if e.is_input_error() => refused.add(lineno, e.to_string()),
                        Err(e) => return Err(at(e.to_string())),
                    }
                }
            }
            Err(e) => refused.add(lineno, e),
        }
        if lineno.is_multiple_of(1024) {
            pb.set_position(read);
            pb.set_message(format!("{} samples", human::count(imp.samples)));
        }
    }
    imp.app.commit()?;
    let (series, samples) = (imp.series, imp.samples);
    drop(imp);
    db.close()?;
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let first: Vec<_> =
            refused.first.iter().map(|(line, why)| serde_json::json!({"line": line, "reason": why})).collect();
        let v = serde_json::json!({"series": series, "samples": samples, "lines": lineno, "seconds": secs,
            "format": format_name(format), "gzip": gzip, "refused": refused.count,
            "refused_rows": first});
        println!("{v}");
    } else {
        println!(
            "imported {} samples of {} series from {} lines in {secs:.2} s ({})",
            human::count(samples),
            human::count(series),
            human::count(lineno),
            human::rate(samples as f64 / secs.max(1e-9))
        );
    }
    if refused.count == 0 {
        return Ok(());
    }
    let mut msg = format!("{} refused (the rest was imported):", plural(refused.count));
    for (line, why) in &refused.first {
        msg.push_str(&format!("\n  {} line {line}: {why}", a.input.display()));
    }
    if refused.count > refused.first.len() as u64 {
        msg.push_str(&format!("\n  ... and {} more", refused.count - refused.first.len() as u64));
    }
    Err(CliError::new(msg))
}

fn plural(n: u64) -> String {
    if n == 1 {
        "1 row or sample was".to_string()
    } else {
        format!("{n} rows or samples were")
    }
}

/// Rows and samples refused: counted, the first few kept with their line numbers.
#[derive(Default)]
struct Refused {
    count: u64,
    first: Vec<(u64, String)>,
}

impl Refused {
    const LISTED: usize = 10;

    fn add(&mut self, line: u64, why: String) {
        self.count += 1;
        if self.first.len() < Self::LISTED {
            self.first.push((line, why));
        }
    }
}

/// The format of an input from its first bytes (see `Format::Auto`).
fn detect(first: &[u8]) -> Format {
    let text = String::from_utf8_lossy(first);
    let start = text.trim_start();
    if start.is_empty() {
        return Format::Json;
    }
    let Some(rest) = start.strip_prefix('{') else {
        let line = start.lines().next().unwrap_or("");
        let prom = line.starts_with('#') || parse_prometheus_line(line).is_ok();
        return if line.is_empty() || !prom { Format::Csv } else { Format::Prometheus };
    };
    // `{"metric":...` is JSON; `{host="a"} 1 1000` is a Prometheus line without a name.
    if rest.trim_start().starts_with('"') || start.trim_end() == "{" {
        Format::Json
    } else {
        Format::Prometheus
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Json | Format::Auto => "json",
        Format::Csv => "csv",
        Format::Prometheus => "prometheus",
    }
}

/// Resolves each series once and commits every `batch` samples.
struct Importer {
    app: strata::Appender,
    refs: HashMap<Labels, SeriesRef>,
    batch: u64,
    series: u64,
    samples: u64,
}

impl Importer {
    fn add(&mut self, labels: &Labels, ts: i64, v: f64) -> strata::Result<()> {
        let r = match self.refs.get(labels) {
            Some(r) => *r,
            None => {
                let r = self.app.series(labels)?;
                self.refs.insert(labels.clone(), r);
                self.series += 1;
                r
            }
        };
        self.app.append(r, ts, v)?;
        self.samples += 1;
        if self.app.len() as u64 >= self.batch {
            self.app.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_format_from_the_first_bytes() {
        let d = |s: &str| detect(s.as_bytes());
        assert_eq!(d("{\"metric\":{}}\n"), Format::Json);
        assert_eq!(d("  { \"metric\":{}}"), Format::Json);
        assert_eq!(d(""), Format::Json);
        assert_eq!(d("{host=\"a\"} 1 1000\n"), Format::Prometheus);
        assert_eq!(d("up{a=\"b\"} NaN 5\n"), Format::Prometheus);
        assert_eq!(d("up 1 5\n"), Format::Prometheus);
        assert_eq!(d("# HELP up\nup 1 5\n"), Format::Prometheus);
        assert_eq!(d("series,timestamp,value\n\"up{}\",1,2\n"), Format::Csv);
        assert_eq!(d("up,1,2\n"), Format::Csv);
    }
}
