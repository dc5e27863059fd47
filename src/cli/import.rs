//! `strata import`: JSON lines, CSV or Prometheus text (as `strata export` writes
//! them), plain or gzip, streamed line by line into the database in batches.

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
        (gzip is detected by its magic \
        bytes), creating the data directory if needed. Samples are committed in batches; a bad line \
        stops the import with its line number, after the batches before it were committed.",
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
    let json = format == Format::Json;

    let db = Db::open(&a.data.data, super::base_options())?;
    let t0 = Instant::now();
    // Progress by input bytes when the (uncompressed) size is known.
    let pb = progress_bar(if gzip { None } else { size }, a.json);
    let mut imp = Importer { app: db.appender(), refs: HashMap::new(), batch: a.batch, series: 0, samples: 0 };
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
        if json {
            let (labels, samples) = parse_json_line(text).map_err(at)?;
            for s in samples {
                imp.add(&labels, s.ts, s.value).map_err(|e| at(e.to_string()))?;
            }
        } else {
            let parsed = if format == Format::Csv { parse_csv_row(text) } else { parse_prometheus_line(text) };
            let (labels, s) = parsed.map_err(at)?;
            imp.add(&labels, s.ts, s.value).map_err(|e| at(e.to_string()))?;
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
        let v = serde_json::json!({"series": series, "samples": samples, "lines": lineno, "seconds": secs,
            "format": format_name(format), "gzip": gzip});
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
    Ok(())
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
