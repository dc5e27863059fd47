//! CSV samples, one per row (RFC 4180), as `strata export` and `GET /export`
//! write them and `strata import` and `POST /import` read them:
//!
//! ```text
//! series,timestamp,value
//! "cpu{host=""a,b""}",1700000000000,1.5
//! ```
//!
//! - `series` is the canonical series notation of [`selector::write_series`]
//!   (`cpu{host="a"}`, `{job="x"}` without a name), whose Go string escapes keep
//!   every label value on one line; the field is always quoted, quotes doubled.
//! - `timestamp` is written as epoch milliseconds. On input an integer is epoch
//!   milliseconds whatever its size (a file is exact, never guessed), and
//!   anything else is read as RFC 3339 (`2025-12-03T12:00:00.250Z`).
//! - `value` is written by `text::value` (`1.5`, `NaN`, `+Inf`, `NaN(0x...)`),
//!   bit for bit, and read in every spelling it accepts.
//!
//! The reader also takes the layout that earlier versions of the server wrote,
//! header `metric,labels,timestamp,value`, labels as `host="a",region="b"` with
//! the exposition format's escapes (`\\`, `\"`, `\n`), so their exports import.
//! A file without a header is read as `series,timestamp,value`. Quoted fields
//! may span lines (RFC 4180); the reader joins them.

use std::fmt::Write as _;

use super::selector::{parse_series, write_series};
use super::value::{parse_value, write_value};
use crate::{Labels, Sample, METRIC_NAME};

/// The header line the writers put first.
pub const CSV_HEADER: &str = "series,timestamp,value\n";

/// The header of the layout earlier versions of the server wrote.
pub const OLD_SERVER_CSV_HEADER: &str = "metric,labels,timestamp,value\n";

/// Which columns a CSV input has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvLayout {
    /// `series,timestamp,value`.
    Series,
    /// `metric,labels,timestamp,value` (earlier server exports).
    MetricLabels,
}

impl CsvLayout {
    /// The layout a header row names, `None` when the row is not a header.
    pub fn from_header(fields: &[String]) -> Option<CsvLayout> {
        let names: Vec<String> = fields.iter().map(|f| f.trim().to_ascii_lowercase()).collect();
        match names.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["series", "timestamp", "value"] => Some(CsvLayout::Series),
            ["metric", "labels", "timestamp", "value"] => Some(CsvLayout::MetricLabels),
            _ => None,
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            CsvLayout::Series => &["series", "timestamp", "value"],
            CsvLayout::MetricLabels => &["metric", "labels", "timestamp", "value"],
        }
    }
}

/// Why a CSV row did not read: the 1-based column (0 for the row as a whole)
/// and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    pub column: usize,
    pub message: String,
    /// The engine's label rules refused the series (rather than a syntax error).
    pub labels: bool,
}

impl CsvError {
    fn row(message: impl Into<String>) -> CsvError {
        CsvError { column: 0, message: message.into(), labels: false }
    }
}

/// Appends the CSV rows of one series; its series field is built once.
pub fn write_csv_rows(out: &mut String, labels: &Labels, samples: &[Sample]) {
    let mut series = String::new();
    let _ = write_series(&mut series, labels);
    let quoted = format!("\"{}\"", series.replace('"', "\"\""));
    for s in samples {
        out.push_str(&quoted);
        let _ = write!(out, ",{},", s.ts);
        write_value(out, s.value);
        out.push('\n');
    }
}

/// The fields of one record, or `Ok(None)` when a quoted field is still open at
/// the end of `record` (it continues on the next line).
pub fn split_record(record: &str) -> Result<Option<Vec<String>>, CsvError> {
    let mut fields = Vec::new();
    let mut chars = record.chars().peekable();
    loop {
        let column = fields.len() + 1;
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Ok(None),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(Some(fields));
                }
                Some(',') => fields.push(field),
                Some(c) => {
                    return Err(CsvError {
                        column,
                        message: format!("expected ',' after the closing quote, found {c:?}"),
                        labels: false,
                    })
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(Some(fields));
                    }
                    Some(',') => break,
                    // A quote inside an unquoted field is kept as it is (as the
                    // CLI's earlier reader did): `cpu{host="a"},1000,1` reads.
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// One data row of `layout` as a series and its sample.
pub fn parse_csv_fields(layout: CsvLayout, fields: &[String]) -> Result<(Labels, Sample), CsvError> {
    parse_csv_fields_cached(layout, fields, &mut None)
}

/// [`parse_csv_fields`], reusing the series of the previous row when its
/// series fields are the same text (rows of one series come together, and
/// parsing the series is most of a row's cost). `last` holds that row's series
/// fields and labels.
pub fn parse_csv_fields_cached(
    layout: CsvLayout,
    fields: &[String],
    last: &mut Option<(Vec<String>, Labels)>,
) -> Result<(Labels, Sample), CsvError> {
    let cols = layout.columns();
    if fields.len() != cols.len() {
        let hint = if fields.len() > cols.len() { "; quote a field that holds a comma" } else { "" };
        return Err(CsvError::row(format!(
            "expected {} fields ({}), found {}{hint}",
            cols.len(),
            cols.join(","),
            fields.len()
        )));
    }
    let at = |column: usize, message: String| CsvError { column, message, labels: false };
    let key = &fields[..cols.len() - 2];
    let labels = match last.as_ref() {
        Some((k, labels)) if k.as_slice() == key => labels.clone(),
        _ => {
            let labels = row_labels(layout, fields)?;
            *last = Some((key.to_vec(), labels.clone()));
            labels
        }
    };
    let n = cols.len();
    let ts = parse_file_timestamp(&fields[n - 2]).map_err(|e| at(n - 1, e))?;
    let value = parse_value(&fields[n - 1]).map_err(|e| at(n, e))?;
    Ok((labels, Sample::new(ts, value)))
}

/// The series of a row whose field count is checked.
fn row_labels(layout: CsvLayout, fields: &[String]) -> Result<Labels, CsvError> {
    let at = |column: usize, message: String| CsvError { column, message, labels: false };
    Ok(match layout {
        CsvLayout::Series => parse_series(fields[0].trim()).map_err(|e| at(1, e.to_string()))?,
        CsvLayout::MetricLabels => {
            let inner = fields[1].trim();
            let rest = if inner.is_empty() {
                None
            } else {
                Some(parse_series(&format!("{{{inner}}}")).map_err(|e| at(2, e.to_string()))?)
            };
            let name = fields[0].trim();
            let pairs = rest
                .iter()
                .flat_map(Labels::iter)
                .filter(|(k, _)| *k != METRIC_NAME)
                .map(|(k, v)| (k.to_string(), v.to_string()));
            let pairs =
                (!name.is_empty()).then(|| (METRIC_NAME.to_string(), name.to_string())).into_iter().chain(pairs);
            Labels::from_pairs(pairs).map_err(|e| CsvError { column: 1, message: e.to_string(), labels: true })?
        }
    })
}

/// A timestamp column: an integer is epoch milliseconds, anything else RFC 3339.
pub fn parse_file_timestamp(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("timestamp {t:?} is out of range for epoch milliseconds"));
    }
    crate::text::time::parse_time(t, crate::text::time::now_ms())
        .map_err(|_| format!("invalid timestamp {t:?}: expected epoch milliseconds or RFC 3339"))
}

/// The column's name for error messages: `column 2 (timestamp)`.
pub fn column_name(layout: CsvLayout, column: usize) -> String {
    match layout.columns().get(column.wrapping_sub(1)) {
        Some(name) => format!("column {column} ({name})"),
        None => format!("column {column}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str) -> Vec<String> {
        split_record(s).unwrap().unwrap()
    }

    #[test]
    fn splits_rfc4180_records() {
        assert_eq!(fields("a,b,c"), ["a", "b", "c"]);
        assert_eq!(fields("\"a,\"\"b\"\"\",,\"\""), ["a,\"b\"", "", ""]);
        assert_eq!(split_record("\"open"), Ok(None));
        assert_eq!(split_record("\"a\"x,1").unwrap_err().column, 1);
        assert_eq!(
            fields("cpu{host=\"a\"},1,2"),
            ["cpu{host=\"a\"}", "1", "2"],
            "quotes inside an unquoted field stay"
        );
        let (l, _) = parse_csv_fields(CsvLayout::Series, &fields("cpu{host=\"a\"},1,2")).unwrap();
        assert_eq!(l.to_string(), "cpu{host=\"a\"}");
        let e = parse_csv_fields(CsvLayout::Series, &fields("cpu{a=\"1\",b=\"2\"},1,2")).unwrap_err();
        assert!(e.message.contains("found 4; quote a field that holds a comma"), "{e:?}");
    }

    #[test]
    fn reads_both_layouts() {
        let (l, s) = parse_csv_fields(CsvLayout::Series, &fields("\"up{a=\"\"x\"\"}\",1000,NaN")).unwrap();
        assert_eq!((l.to_string().as_str(), s.ts, s.value.is_nan()), ("up{a=\"x\"}", 1000, true));
        let old = fields("up,\"a=\"\"x\\\\y\"\",b=\"\"1\"\"\",2000,-Inf");
        let (l, s) = parse_csv_fields(CsvLayout::MetricLabels, &old).unwrap();
        assert_eq!(l, Labels::metric("up", [("a", "x\\y"), ("b", "1")]).unwrap());
        assert_eq!((s.ts, s.value), (2000, f64::NEG_INFINITY));
        let (l, _) = parse_csv_fields(CsvLayout::MetricLabels, &fields(",\"job=\"\"j\"\"\",1,1")).unwrap();
        assert_eq!(l, Labels::from_pairs([("job", "j")]).unwrap());
    }

    #[test]
    fn timestamps_are_ms_or_rfc3339() {
        assert_eq!(parse_file_timestamp("1000"), Ok(1000));
        assert_eq!(parse_file_timestamp("-5"), Ok(-5));
        assert_eq!(parse_file_timestamp("1970-01-01T00:00:01.5Z"), Ok(1500));
        assert!(parse_file_timestamp("soon").unwrap_err().contains("\"soon\""));
    }

    #[test]
    fn errors_name_the_column() {
        let e = |s: &str| parse_csv_fields(CsvLayout::Series, &fields(s)).unwrap_err();
        let bad_ts = e("\"up\",noon,1");
        assert_eq!((bad_ts.column, column_name(CsvLayout::Series, bad_ts.column)), (2, "column 2 (timestamp)".into()));
        assert_eq!(e("\"up\",1,one").column, 3);
        assert_eq!(e("\"up{\",1,1").column, 1);
        assert!(e("up,1").message.contains("expected 3 fields (series,timestamp,value), found 2"));
        let e = parse_csv_fields(CsvLayout::MetricLabels, &fields("\"a-b\",\"\",1,1")).unwrap_err();
        assert!(e.labels && e.column == 1, "{e:?}");
    }
}
