//! `strata import`: JSON lines, CSV, Prometheus text or OpenMetrics (as `strata
//! export` and `GET /export` write them, read by `strata::text::files`, the reader
//! `POST /import` uses), plain or gzip, streamed line by line into the database in batches. A row
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

use super::formats::{FileFormat, FileReader};
use super::{human, io_err, progress_bar, CliError, CliResult, DataDir};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// JSON lines if the input starts with '{"'; Prometheus text (or OpenMetrics, when its
    /// timestamps have a fraction) if its first line that is not a comment is a
    /// `series value timestamp` sample line; CSV otherwise
    Auto,
    Json,
    /// series,timestamp,value rows (also the metric,labels,timestamp,value rows of
    /// earlier server versions); the timestamp in epoch ms or RFC 3339
    Csv,
    /// Prometheus text with timestamps in ms, as `strata export --format prometheus` writes it
    Prometheus,
    /// OpenMetrics text, timestamps in seconds
    Openmetrics,
    /// Apache Parquet as `strata export --format parquet` writes it (a file, not stdin:
    /// its footer is at the end); detected by its PAR1 magic
    Parquet,
}

impl Format {
    fn file_format(self, first: &[u8]) -> FileFormat {
        match self {
            // Parquet is read apart (`import_parquet`) before a text format is chosen.
            Format::Auto | Format::Parquet => FileFormat::detect(first),
            Format::Json => FileFormat::Json,
            Format::Csv => FileFormat::Csv,
            Format::Prometheus => FileFormat::Prometheus,
            Format::Openmetrics => FileFormat::OpenMetrics,
        }
    }
}

/// Import JSON lines, CSV, Prometheus text or OpenMetrics written by `strata export`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Import JSON lines, CSV, Prometheus text or OpenMetrics (with timestamps) as written by \
        `strata export` or `GET /export` (gzip is detected by its magic bytes), creating the data directory if needed. Samples are committed \
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
    if a.input.is_dir() {
        return import_parquet(&a);
    }
    let (raw, size): (Box<dyn Read>, Option<u64>) = if a.input.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let f = File::open(&a.input).map_err(io_err(format!("opening {}", a.input.display())))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let peek = reader.fill_buf().map_err(io_err("reading the input"))?;
    if a.format == Format::Parquet || (a.format == Format::Auto && peek.starts_with(b"PAR1")) {
        return import_parquet(&a);
    }
    let gzip = peek.starts_with(&[0x1f, 0x8b]);
    let mut lines: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    let first = lines.fill_buf().map_err(io_err("reading the input"))?;
    let format = a.format.file_format(first);

    let db = Db::open(&a.data.data, super::options_for(&a.data.data)?)?;
    let t0 = Instant::now();
    // Progress by input bytes when the (uncompressed) size is known.
    let pb = progress_bar(if gzip { None } else { size }, a.json);
    let mut imp = Importer::new(&db, a.batch);
    let mut refused = Refused::default();
    let mut reader = FileReader::new(format);
    let mut line = String::new();
    let mut read = 0u64;
    loop {
        line.clear();
        let n = lines.read_line(&mut line).map_err(io_err(format!("reading line {}", reader.lines() + 1)))?;
        if n == 0 {
            break;
        }
        read += n as u64;
        let parsed = reader.read_line(line.strip_suffix('\n').unwrap_or(&line));
        let lineno = reader.lines();
        match parsed {
            Ok(None) => {}
            Ok(Some((labels, samples))) => {
                for s in samples {
                    match imp.add(&labels, s.ts, s.value) {
                        Ok(()) => {}
                        Err(e) if e.is_input_error() => refused.add(lineno, e.to_string()),
                        Err(e) => return Err(CliError::new(format!("{} line {lineno}: {e}", a.input.display()))),
                    }
                }
            }
            Err(e) => refused.add(e.line, e.reason),
        }
        if lineno.is_multiple_of(1024) {
            pb.set_position(read);
            pb.set_message(format!("{} samples", human::count(imp.samples)));
        }
    }
    if let Err(e) = reader.finish() {
        refused.add(e.line, e.reason);
    }
    let lineno = reader.lines();
    imp.app.commit()?;
    // `# HELP`, `# TYPE` and `# UNIT` lines, checked when read.
    let metrics_described = db.update_metadata(&reader.take_metadata())?;
    let (series, samples) = (imp.series, imp.samples);
    drop(imp);
    db.close()?;
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let first: Vec<_> =
            refused.first.iter().map(|(line, why)| serde_json::json!({"line": line, "reason": why})).collect();
        let v = serde_json::json!({"series": series, "samples": samples, "lines": lineno, "seconds": secs,
            "format": format.name(), "gzip": gzip, "refused": refused.count,
            "refused_rows": first, "metadata_changed": metrics_described});
        println!("{v}");
    } else {
        println!(
            "imported {} samples of {} series from {} lines in {secs:.2} s ({})",
            human::count(samples),
            human::count(series),
            human::count(lineno),
            human::rate(samples as f64 / secs.max(1e-9))
        );
        if metrics_described > 0 {
            println!("metadata (HELP/TYPE/UNIT) recorded for {}", plural_metrics(metrics_described));
        }
    }
    refused.into_result(&a.input, "line")
}

/// Every `.parquet` file under `dir` (a retention archive, one of its `date=`
/// partitions, or a directory of exports), sorted by path; `.tmp` files are not
/// finished files and are left out.
fn parquet_files(dir: &std::path::Path) -> CliResult<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).map_err(io_err(format!("listing {}", d.display())))? {
            let p = e.map_err(io_err(format!("listing {}", d.display())))?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(CliError::new(format!("{}: no .parquet files in this directory or below", dir.display())));
    }
    Ok(out)
}

/// `--format parquet`, or a directory of Parquet files: rows read by
/// `strata::text::parquet::read_rows`; a row that cannot be a sample, or that the
/// engine refuses, is refused alone (named by file and row).
fn import_parquet(a: &Args) -> CliResult {
    if a.input.as_os_str() == "-" {
        return Err(CliError::new(
            "a Parquet file cannot be read from stdin (its footer is at the end): give its path",
        ));
    }
    let files = if a.input.is_dir() { parquet_files(&a.input)? } else { vec![a.input.clone()] };
    let db = Db::open(&a.data.data, super::options_for(&a.data.data)?)?;
    let t0 = Instant::now();
    let pb = progress_bar(None, a.json);
    let mut imp = Importer::new(&db, a.batch);
    let mut refused = Refused::default();
    let mut fatal = None;
    let mut rows = 0u64;
    for path in &files {
        let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        let shown = |n: u64| if files.len() > 1 { format!("{} row {n}", path.display()) } else { n.to_string() };
        let base = rows;
        strata::text::parquet::read_rows(file, |n, row| {
            rows = base + n;
            if fatal.is_some() {
                return;
            }
            match row.map(|(labels, s)| imp.add(&labels, s.ts, s.value)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.is_input_error() => refused.add_named(rows, shown(n), e.to_string()),
                Ok(Err(e)) => fatal = Some(CliError::new(format!("{} row {n}: {e}", path.display()))),
                Err(why) => refused.add_named(rows, shown(n), why),
            }
            if n.is_multiple_of(65_536) {
                pb.set_message(format!("{} samples", human::count(imp.samples)));
                pb.tick();
            }
        })
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
        if let Some(e) = fatal {
            return Err(e);
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
            refused.first.iter().map(|(row, why)| serde_json::json!({"row": row, "reason": why})).collect();
        let v = serde_json::json!({"series": series, "samples": samples, "rows": rows, "files": files.len(),
            "seconds": secs, "format": "parquet", "gzip": false, "refused": refused.count, "refused_rows": first});
        println!("{v}");
    } else {
        println!(
            "imported {} samples of {} series from {} Parquet rows{} in {secs:.2} s ({})",
            human::count(samples),
            human::count(series),
            human::count(rows),
            if files.len() > 1 { format!(" in {} files", files.len()) } else { String::new() },
            human::rate(samples as f64 / secs.max(1e-9))
        );
    }
    refused.into_result(&a.input, "row")
}

fn plural_metrics(n: usize) -> String {
    if n == 1 {
        "1 metric".into()
    } else {
        format!("{n} metrics")
    }
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

    /// A refusal at overall row `n`, whose place in its own file is `shown` (the same
    /// number for one file; "FILE row N" when a directory is imported).
    fn add_named(&mut self, n: u64, shown: String, why: String) {
        if shown == n.to_string() {
            self.add(n, why)
        } else {
            self.add(n, format!("({shown}) {why}"))
        }
    }

    fn add(&mut self, line: u64, why: String) {
        self.count += 1;
        if self.first.len() < Self::LISTED {
            self.first.push((line, why));
        }
    }

    /// Ok when nothing was refused; otherwise the error that counts them and names
    /// the first few by `unit` (line or row) number.
    fn into_result(self, input: &std::path::Path, unit: &str) -> CliResult {
        if self.count == 0 {
            return Ok(());
        }
        let mut msg = format!("{} refused (the rest was imported):", plural(self.count));
        for (n, why) in &self.first {
            msg.push_str(&format!("\n  {} {unit} {n}: {why}", input.display()));
        }
        if self.count > self.first.len() as u64 {
            msg.push_str(&format!("\n  ... and {} more", self.count - self.first.len() as u64));
        }
        Err(CliError::new(msg))
    }
}

/// Resolves each series once and commits every `batch` samples.
struct Importer {
    app: strata::Appender,
    refs: HashMap<Labels, SeriesRef>,
    /// The series of the previous sample: inputs hold a series' samples together, and
    /// comparing labels (a pointer compare for the same `Labels`) is cheaper than hashing.
    last: Option<(Labels, SeriesRef)>,
    batch: u64,
    series: u64,
    samples: u64,
}

impl Importer {
    fn new(db: &Db, batch: u64) -> Importer {
        Importer { app: db.appender(), refs: HashMap::new(), last: None, batch, series: 0, samples: 0 }
    }

    fn add(&mut self, labels: &Labels, ts: i64, v: f64) -> strata::Result<()> {
        let r = match &self.last {
            Some((l, r)) if l == labels => *r,
            _ => {
                let r = match self.refs.get(labels) {
                    Some(r) => *r,
                    None => {
                        let r = self.app.series(labels)?;
                        self.refs.insert(labels.clone(), r);
                        self.series += 1;
                        r
                    }
                };
                self.last = Some((labels.clone(), r));
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
