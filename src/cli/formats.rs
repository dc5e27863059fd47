//! The interchange formats of `export`, `import` and `query`: the library's
//! `strata::text` writers and readers, the same ones `GET /export` and
//! `POST /import` use (see `strata::text::files` for the formats).

pub use strata::text::csv::{write_csv_rows, CSV_HEADER};
pub use strata::text::files::{
    write_openmetrics, write_prometheus, FileFormat, FileReader, MetadataLines, OPENMETRICS_EOF,
};
pub use strata::text::jsonl::{write_json_labels, write_json_lines, write_json_string, JSON_LINE_MAX_SAMPLES};
pub use strata::text::value::{parse_value, write_value};
use strata::{Labels, Sample};

/// Parses one JSON line into a series and its samples.
pub fn parse_json_line(line: &str) -> Result<(Labels, Vec<Sample>), String> {
    strata::text::jsonl::parse_json_line(line.as_bytes()).map_err(|e| e.message)
}
