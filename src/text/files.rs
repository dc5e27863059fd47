//! The file formats of export and import, one writer and one reader each, used
//! by `strata export`/`strata import` and `GET /export`/`POST /import` alike, so
//! that whatever one side writes the other reads back:
//!
//! - JSON lines ([`super::jsonl`]), one series per line;
//! - CSV ([`super::csv`]), `series,timestamp,value`, one sample per row;
//! - Prometheus text, `name{a="x"} 1.5 1700000000000` (epoch ms): a series
//!   without a metric name is written `{a="x"} ...`, and a name that the text
//!   format's grammar does not allow `{__name__="a-b",a="x"} ...`;
//! - OpenMetrics, as Prometheus text with timestamps in seconds
//!   (`1700000000.500`) and a final `# EOF`; it cannot hold a series without a
//!   (bare) metric name.
//!
//! The text formats also carry metric metadata: `# HELP`, `# TYPE` and `# UNIT`
//! lines before a family's samples ([`write_metadata_lines`]; the reader collects
//! them, [`FileReader::take_metadata`]). JSON lines and CSV carry none.
//!
//! Neither text format can carry a NaN payload (such as Prometheus' stale
//! marker): there every NaN is `NaN`. JSON lines and CSV keep every value bit
//! for bit. [`FileReader`] reads any of them line by line, naming each line it
//! cannot read; [`FileFormat::detect`] tells them apart by their first bytes.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use super::csv::{column_name, parse_csv_fields_cached, split_record, CsvLayout};
use super::jsonl::parse_json_line;
use super::selector::parse_series;
use super::value::{parse_value, write_value};
use crate::{Labels, MetadataUpdate, MetricKind, MetricMetadata, Sample, METRIC_NAME};

/// One of the export and import formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Json,
    Csv,
    Prometheus,
    OpenMetrics,
}

impl FileFormat {
    /// `json`, `csv`, `prometheus`, `openmetrics`.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Json => "json",
            FileFormat::Csv => "csv",
            FileFormat::Prometheus => "prometheus",
            FileFormat::OpenMetrics => "openmetrics",
        }
    }

    /// The HTTP content type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            FileFormat::Json => "application/x-ndjson",
            FileFormat::Csv => "text/csv; charset=utf-8",
            FileFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            FileFormat::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format of an input from its first bytes: JSON lines if it starts with
    /// `{"` (or is empty); Prometheus text or OpenMetrics if its first line that
    /// is not a comment reads as a sample line with a timestamp in ms or in
    /// seconds (one with a fraction: OpenMetrics), or if it holds only comments;
    /// CSV otherwise.
    pub fn detect(first: &[u8]) -> FileFormat {
        let text = String::from_utf8_lossy(first);
        let start = text.trim_start();
        if start.is_empty() {
            return FileFormat::Json;
        }
        if let Some(rest) = start.strip_prefix('{') {
            // `{"metric":...` is JSON; `{host="a"} 1 1000` is a text line without a name.
            if rest.trim_start().starts_with('"') || start.trim_end() == "{" {
                return FileFormat::Json;
            }
        }
        let mut lines = start.lines().map(str::trim).filter(|l| !l.is_empty()).peekable();
        let commented = lines.peek().is_some_and(|l| l.starts_with('#'));
        match lines.find(|l| !l.starts_with('#')) {
            Some(line) if parse_text_line(line, false).is_ok() => FileFormat::Prometheus,
            Some(line) if parse_text_line(line, true).is_ok() => FileFormat::OpenMetrics,
            Some(_) => FileFormat::Csv,
            None if commented => FileFormat::Prometheus,
            None => FileFormat::Csv,
        }
    }
}

impl FromStr for FileFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<FileFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" | "jsonl" | "ndjson" => Ok(FileFormat::Json),
            "csv" => Ok(FileFormat::Csv),
            "prometheus" | "text" => Ok(FileFormat::Prometheus),
            "openmetrics" => Ok(FileFormat::OpenMetrics),
            _ => Err(format!("unknown format {s:?}; expected json, csv, prometheus or openmetrics")),
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ------------------------------------------------------------------ text writers

/// Appends Prometheus text lines. Returns how many NaN values had a payload
/// (such as Prometheus' stale marker): this format has no spelling for one, so
/// they are written as plain `NaN`.
pub fn write_prometheus(out: &mut String, labels: &Labels, samples: &[Sample]) -> u64 {
    let series = match labels.metric_name() {
        Some(name) if is_text_metric_name(name) => exposition_series(labels),
        // No name, or one the grammar cannot hold bare: every label inside the braces.
        _ => {
            let mut series = String::from("{");
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    series.push(',');
                }
                series.push_str(k);
                series.push_str("=\"");
                push_exposition_value(&mut series, v);
                series.push('"');
            }
            series.push('}');
            series
        }
    };
    let mut payloads = 0;
    for s in samples {
        out.push_str(&series);
        out.push(' ');
        payloads += u64::from(push_text_value(out, s.value));
        let _ = writeln!(out, " {}", s.ts);
    }
    payloads
}

/// Appends OpenMetrics lines: as Prometheus text, but timestamps in seconds
/// (`1700000000.500`). Returns false, writing nothing, for a series the format
/// cannot hold: one without a metric name, or with a name it cannot write bare.
/// The caller writes the final `# EOF`.
pub fn write_openmetrics(out: &mut String, labels: &Labels, samples: &[Sample]) -> bool {
    if !labels.metric_name().is_some_and(is_text_metric_name) {
        return false;
    }
    let series = exposition_series(labels);
    for s in samples {
        out.push_str(&series);
        out.push(' ');
        push_text_value(out, s.value);
        let ms = s.ts.unsigned_abs();
        let _ = writeln!(out, " {}{}.{:03}", if s.ts < 0 { "-" } else { "" }, ms / 1000, ms % 1000);
    }
    true
}

/// The last line of an OpenMetrics file.
pub const OPENMETRICS_EOF: &str = "# EOF\n";

/// A value in the text formats; true when it was a NaN whose payload is lost.
fn push_text_value(out: &mut String, v: f64) -> bool {
    if v.is_nan() {
        out.push_str("NaN");
        v.to_bits() != f64::NAN.to_bits()
    } else {
        write_value(out, v);
        false
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the metric names the text formats write bare.
fn is_text_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A label value as the exposition format escapes it: only `\\`, `"` and newlines.
fn push_exposition_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `name{a="x"}` with the exposition format's escapes (`name` alone without labels).
fn exposition_series(labels: &Labels) -> String {
    let mut out = labels.metric_name().unwrap_or("").to_string();
    let mut rest = labels.iter().filter(|(k, _)| *k != METRIC_NAME).peekable();
    if rest.peek().is_none() {
        return out;
    }
    out.push('{');
    for (i, (k, v)) in rest.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"");
        push_exposition_value(&mut out, v);
        out.push('"');
    }
    out.push('}');
    out
}

// ------------------------------------------------------------------ metadata lines

/// Appends the `# HELP`, `# TYPE` and `# UNIT` lines of metric family `name`, each
/// only when it has something to say (no `# TYPE` for `unknown`). Nothing for a name
/// the text formats cannot write bare.
pub fn write_metadata_lines(out: &mut String, format: FileFormat, name: &str, m: &MetricMetadata) {
    if !is_text_metric_name(name) || !matches!(format, FileFormat::Prometheus | FileFormat::OpenMetrics) {
        return;
    }
    if !m.help.is_empty() {
        let _ = write!(out, "# HELP {name} ");
        for c in m.help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '"' if format == FileFormat::OpenMetrics => out.push_str("\\\""),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    if m.kind != MetricKind::Unknown {
        let _ = writeln!(out, "# TYPE {name} {}", m.kind);
    }
    if !m.unit.is_empty() {
        let _ = writeln!(out, "# UNIT {name} {}", m.unit);
    }
}

/// The metadata family of the series named `name`: the name itself when it has
/// metadata, else the name without a suffix that its family's type gives to its
/// series (`_total` of a counter, `_bucket`/`_count`/`_sum` of a histogram, ...).
pub fn metadata_family(
    name: &str,
    lookup: impl Fn(&str) -> Option<MetricMetadata>,
) -> Option<(String, MetricMetadata)> {
    if let Some(m) = lookup(name) {
        return Some((name.to_string(), m));
    }
    const SUFFIXES: [(&str, &[MetricKind]); 8] = [
        ("_total", &[MetricKind::Counter]),
        ("_created", &[MetricKind::Counter, MetricKind::Histogram, MetricKind::Summary]),
        ("_bucket", &[MetricKind::Histogram, MetricKind::GaugeHistogram]),
        ("_count", &[MetricKind::Histogram, MetricKind::Summary]),
        ("_sum", &[MetricKind::Histogram, MetricKind::Summary]),
        ("_gcount", &[MetricKind::GaugeHistogram]),
        ("_gsum", &[MetricKind::GaugeHistogram]),
        ("_info", &[MetricKind::Info]),
    ];
    SUFFIXES.iter().find_map(|(suffix, kinds)| {
        let family = name.strip_suffix(suffix).filter(|f| !f.is_empty())?;
        lookup(family).filter(|m| kinds.contains(&m.kind)).map(|m| (family.to_string(), m))
    })
}

/// Writes each family's metadata lines once, before its first series, for
/// writers that go series by series.
#[derive(Debug, Default)]
pub struct MetadataLines {
    last: Option<String>,
}

impl MetadataLines {
    /// Appends the metadata lines of `labels`' family if the previous series was of another.
    pub fn before_series(
        &mut self,
        out: &mut String,
        format: FileFormat,
        labels: &Labels,
        lookup: impl Fn(&str) -> Option<MetricMetadata>,
    ) {
        let Some(name) = labels.metric_name() else { return };
        let Some((family, m)) = metadata_family(name, lookup) else { return };
        if self.last.as_deref() != Some(family.as_str()) {
            write_metadata_lines(out, format, &family, &m);
            self.last = Some(family);
        }
    }
}

/// Reads a `# HELP`, `# TYPE` or `# UNIT` comment (any other comment is None).
fn parse_metadata_comment(line: &str) -> Result<Option<(String, MetadataUpdate)>, String> {
    let body = line.trim_start().trim_start_matches('#');
    let mut parts = body.trim_start().splitn(2, [' ', '\t']);
    let keyword = parts.next().unwrap_or("");
    if !matches!(keyword, "HELP" | "TYPE" | "UNIT") {
        return Ok(None);
    }
    let rest = parts.next().unwrap_or("").trim_start();
    let (name, value) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    if name.is_empty() {
        return Err(format!("# {keyword} line without a metric name"));
    }
    let mut u = MetadataUpdate::default();
    match keyword {
        "HELP" => u.help = Some(unescape_help(value)),
        "TYPE" => u.kind = Some(value.trim().parse::<MetricKind>().map_err(|e| format!("# TYPE {name}: {e}"))?),
        _ => u.unit = Some(value.trim().to_string()),
    }
    let check = u.apply(None);
    crate::metadata::validate(name, &check).map_err(|e| e.to_string())?;
    Ok(Some((name.to_string(), u)))
}

/// `\\`, `\n` and `\"` as the two formats escape help text; other backslashes stay.
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

// ------------------------------------------------------------------ text readers

/// Parses one sample line of Prometheus text (`seconds` false: epoch ms) or
/// OpenMetrics (`seconds` true: epoch seconds, fraction to the millisecond):
/// `series value timestamp`, the series `name`, `name{...}` or `{...}`. The
/// timestamp is required: an import needs one.
pub fn parse_text_line(line: &str, seconds: bool) -> Result<(Labels, Sample), String> {
    let line = line.trim();
    let series_end = series_end(line)?;
    let labels = parse_series(&line[..series_end]).map_err(|e| e.to_string())?;
    let mut rest = line[series_end..].split_whitespace();
    let value = rest.next().ok_or("expected a value after the series")?;
    let unit = if seconds { "epoch seconds" } else { "epoch milliseconds" };
    let ts = rest.next().ok_or_else(|| format!("expected a timestamp ({unit}) after the value"))?;
    if let Some(extra) = rest.next() {
        return Err(format!("unexpected {extra:?} after the timestamp"));
    }
    let ts = if seconds { parse_seconds(ts) } else { ts.parse::<i64>().ok() }
        .ok_or_else(|| format!("invalid timestamp {ts:?} (expected {unit})"))?;
    Ok((labels, Sample::new(ts, parse_value(value)?)))
}

/// `1700000000`, `1700000000.5`, `-1.250` seconds as ms; digits past the
/// millisecond must be zeros (nothing is rounded silently).
fn parse_seconds(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.bytes().skip(3).any(|b| b != b'0') {
        return None;
    }
    let ms_digits: String = frac.chars().chain("000".chars()).take(3).collect();
    let ms = whole.parse::<i128>().ok()?.checked_mul(1000)?.checked_add(ms_digits.parse::<i128>().ok()?)?;
    i64::try_from(if neg { -ms } else { ms }).ok()
}

/// Byte offset just past the series of a text line: after the `}` that closes
/// its labels (quotes and escapes respected), or at the first space.
fn series_end(line: &str) -> Result<usize, String> {
    let Some(open) = line.find(|c: char| c == '{' || c.is_whitespace()) else {
        return Err("expected a series, a value and a timestamp separated by spaces".into());
    };
    if !line[open..].starts_with('{') {
        return Ok(open);
    }
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in line[open..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Ok(open + i + 1),
            _ => {}
        }
    }
    Err("unterminated '{' in the series".into())
}

// ------------------------------------------------------------------ the reader

/// Why a line of an import was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// 1-based line number (a CSV record spanning lines: its first line).
    pub line: u64,
    /// What was wrong, with the CSV column when there is one.
    pub reason: String,
    /// Samples the line held (1 when it did not parse far enough to tell).
    pub samples: u64,
    /// The engine's label rules refused the series: well-formed input that is
    /// refused, rather than malformed input.
    pub labels: bool,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ReadError {}

/// What one line gave: nothing (blank, comment, header, or the start of a CSV
/// record that continues), or a series with its samples.
pub type ReadLine = Option<(Labels, Vec<Sample>)>;

/// Reads an import line by line in one format; it counts the lines itself.
#[derive(Debug)]
pub struct FileReader {
    format: FileFormat,
    line: u64,
    /// CSV: the layout, known after the first record.
    layout: Option<CsvLayout>,
    /// CSV: a record whose quoted field is still open, and its first line.
    pending: Option<(u64, String)>,
    /// CSV: the previous row's series fields and labels.
    last: Option<(Vec<String>, Labels)>,
    /// Text formats: the metadata comments read, one merged entry per metric.
    metadata: Vec<(String, MetadataUpdate)>,
}

impl FileReader {
    pub fn new(format: FileFormat) -> FileReader {
        FileReader { format, line: 0, layout: None, pending: None, last: None, metadata: Vec::new() }
    }

    /// The metadata read since the last call (`# HELP`, `# TYPE`, `# UNIT` lines),
    /// one entry per metric, later lines replacing earlier ones field by field.
    pub fn take_metadata(&mut self) -> Vec<(String, MetadataUpdate)> {
        std::mem::take(&mut self.metadata)
    }

    fn add_metadata(&mut self, name: String, u: MetadataUpdate) {
        match self.metadata.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => {
                old.kind = u.kind.or(old.kind);
                old.unit = u.unit.or(old.unit.take());
                old.help = u.help.or(old.help.take());
            }
            None => self.metadata.push((name, u)),
        }
    }

    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Lines seen so far.
    pub fn lines(&self) -> u64 {
        self.line
    }

    /// Reads the next line (without its line break; a trailing `\r` is ignored).
    pub fn read_line(&mut self, raw: &str) -> Result<ReadLine, ReadError> {
        self.line += 1;
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        let at = self.line;
        let fail = |reason: String| ReadError { line: at, reason, samples: 1, labels: false };
        match self.format {
            FileFormat::Csv => self.csv_line(text),
            _ if text.trim().is_empty() => Ok(None),
            FileFormat::Json => parse_json_line(text.as_bytes()).map(Some).map_err(|e| ReadError {
                line: at,
                reason: e.message,
                samples: e.samples,
                labels: e.labels,
            }),
            FileFormat::Prometheus | FileFormat::OpenMetrics if text.trim_start().starts_with('#') => {
                if let Some((name, u)) = parse_metadata_comment(text).map_err(fail)? {
                    self.add_metadata(name, u);
                }
                Ok(None)
            }
            f => parse_text_line(text, f == FileFormat::OpenMetrics).map(|(l, s)| Some((l, vec![s]))).map_err(fail),
        }
    }

    /// Ends the input: an error if a quoted CSV field was never closed.
    pub fn finish(&mut self) -> Result<(), ReadError> {
        match self.pending.take() {
            Some((line, _)) => Err(ReadError {
                line,
                reason: "a quoted field is not closed before the end of the input".into(),
                samples: 1,
                labels: false,
            }),
            None => Ok(()),
        }
    }

    fn csv_line(&mut self, text: &str) -> Result<ReadLine, ReadError> {
        let (first, record) = match self.pending.take() {
            Some((first, mut record)) => {
                record.push('\n');
                record.push_str(text);
                (first, record)
            }
            None if text.trim().is_empty() => return Ok(None),
            None => (self.line, text.to_string()),
        };
        let fail = |layout: CsvLayout, e: super::csv::CsvError| {
            let reason =
                if e.column == 0 { e.message } else { format!("{}: {}", column_name(layout, e.column), e.message) };
            ReadError { line: first, reason, samples: 1, labels: e.labels }
        };
        let fields = match split_record(&record) {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.pending = Some((first, record));
                return Ok(None);
            }
            Err(e) => return Err(fail(self.layout.unwrap_or(CsvLayout::Series), e)),
        };
        let layout = match self.layout {
            Some(l) => l,
            None => {
                let header = CsvLayout::from_header(&fields);
                self.layout = Some(header.unwrap_or(CsvLayout::Series));
                if header.is_some() {
                    return Ok(None);
                }
                CsvLayout::Series
            }
        };
        parse_csv_fields_cached(layout, &fields, &mut self.last)
            .map(|(l, s)| Some((l, vec![s])))
            .map_err(|e| fail(layout, e))
    }
}

#[cfg(test)]
mod tests;
