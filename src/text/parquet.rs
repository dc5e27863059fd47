//! Parquet export (`strata export --format parquet`, `GET /export?format=parquet`): one row per sample, for DuckDB, Spark, Trino
//! and pyarrow. The schema (docs/format/parquet-export.md):
//!
//! - `metric_name`: optional string (null for a series without one);
//! - `labels`: map of string to string, every label but the metric name;
//! - `timestamp`: int64 `TIMESTAMP(MILLIS, UTC)`;
//! - `value`: double, bit for bit (NaN payloads included).
//!
//! Rows of one series are consecutive, so every string column is a run of one
//! dictionary entry per series and compresses to almost nothing.

use std::io::Write;
use std::sync::Arc;

use crate::text::parquet_groups::{Batch, Encoded, Pipeline};
use crate::text::parquet_strings::ZSTD_LEVEL;
use crate::{Labels, Sample};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::ColumnPath;

const SCHEMA: &str = "message strata_samples {
  optional binary metric_name (STRING);
  required group labels (MAP) {
    repeated group key_value {
      required binary key (STRING);
      required binary value (STRING);
    }
  }
  required int64 timestamp (TIMESTAMP(MILLIS, true));
  required double value;
}";

/// Rows buffered before a row group is written.
const ROW_GROUP_ROWS: usize = 1 << 17;

pub struct ParquetSink<W: Write + Send> {
    writer: SerializedFileWriter<W>,
    /// The row group being gathered.
    batch: Batch,
    pipeline: Pipeline,
    /// The series of the last rows pushed, to extend its run.
    last: Option<Labels>,
    group_rows: usize,
}

impl<W: Write + Send> ParquetSink<W> {
    pub fn new(out: W) -> parquet::errors::Result<Self> {
        Self::with_row_group_rows(out, ROW_GROUP_ROWS)
    }

    /// [`new`](Self::new) with row groups of at most `rows` rows (at least 1)
    /// instead of 2^17: smaller groups bound memory tighter, larger ones compress
    /// a little better.
    pub fn with_row_group_rows(out: W, rows: usize) -> parquet::errors::Result<Self> {
        let rows = rows.max(1);
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        // The properties matter for the time and value columns only: the string
        // columns are encoded by `parquet_strings`.
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_max_row_group_row_count(Some(rows))
                // Times are regular and values close: delta and byte-split beat a dictionary.
                .set_column_dictionary_enabled(ColumnPath::from("timestamp"), false)
                .set_column_encoding(ColumnPath::from("timestamp"), Encoding::DELTA_BINARY_PACKED)
                .set_column_dictionary_enabled(ColumnPath::from("value"), false)
                .set_column_encoding(ColumnPath::from("value"), Encoding::BYTE_STREAM_SPLIT)
                .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")))
                .build(),
        );
        let writer = SerializedFileWriter::new(out, schema, props.clone())?;
        let descrs = writer.schema_descr().columns().to_vec();
        let mut pipeline = Pipeline::new(descrs, props)?;
        Ok(ParquetSink { writer, batch: pipeline.batch(), pipeline, last: None, group_rows: rows })
    }

    /// Adds one row per sample of a series.
    pub fn push(&mut self, labels: &Labels, samples: &[Sample]) -> parquet::errors::Result<()> {
        let mut same = self.last.as_ref() == Some(labels);
        if !same {
            self.last = Some(labels.clone());
        }
        let mut rest = samples;
        while !rest.is_empty() {
            let b = &mut self.batch;
            let room = self.group_rows - b.ts.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            let pairs = labels.iter().filter(|(k, _)| *k != crate::METRIC_NAME);
            let name = labels.metric_name().map(str::as_bytes);
            b.strings.add(same, name, pairs.map(|(k, v)| (k.as_bytes(), v.as_bytes())), now.len());
            b.ts.extend(now.iter().map(|s| s.ts));
            b.vs.extend(now.iter().map(|s| s.value));
            if b.ts.len() == self.group_rows {
                self.flush()?;
                same = false; // a new row group starts a new run
            }
            rest = later;
        }
        Ok(())
    }

    /// Hands the gathered row group to the pipeline, writing those it has encoded.
    fn flush(&mut self) -> parquet::errors::Result<()> {
        if self.batch.ts.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, self.pipeline.batch());
        let writer = &mut self.writer;
        self.pipeline.submit(batch, &mut |e| write_group(writer, e))
    }

    /// Writes the last row group and the footer.
    pub fn finish(self) -> parquet::errors::Result<W> {
        self.finish_with(&[])
    }

    /// [`finish`](Self::finish), adding `key = value` pairs to the footer's key-value
    /// metadata (the archive records its series count and source there).
    pub fn finish_with(mut self, kv: &[(&str, String)]) -> parquet::errors::Result<W> {
        self.flush()?;
        let writer = &mut self.writer;
        self.pipeline.finish(&mut |e| write_group(writer, e))?;
        for (k, v) in kv {
            self.writer.append_key_value_metadata(parquet::file::metadata::KeyValue::new(k.to_string(), v.clone()));
        }
        self.writer.into_inner()
    }
}

/// Splices a row group's encoded column chunks into the file.
fn write_group<W: Write + Send>(writer: &mut SerializedFileWriter<W>, e: Encoded) -> parquet::errors::Result<()> {
    let mut rg = writer.next_row_group()?;
    for (bytes, close) in e {
        rg.append_column(&bytes, close)?;
    }
    rg.close()?;
    Ok(())
}

/// A `Write + Send` buffer to hand the writer, drained by its owner after each
/// [`ParquetSink::push`] to stream the file as it is written.
#[derive(Clone, Default)]
pub struct Drain(Arc<parking_lot::Mutex<Vec<u8>>>);

impl Drain {
    /// The bytes written since the last call.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock())
    }
}

impl Write for Drain {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a file [`ParquetSink`] wrote (or any file with its five leaf columns),
/// row by row: `f(row number from 1, the row's series and sample, or why it cannot
/// be one)`. Columns are read whole per row group, not through the crate's row API,
/// which would build every row's label map anew. A file with other columns is
/// refused whole, naming what it holds.
pub fn read_rows(
    file: std::fs::File,
    mut f: impl FnMut(u64, std::result::Result<(Labels, Sample), String>),
) -> std::result::Result<(), String> {
    use parquet::basic::Type as Physical;
    use parquet::column::reader::get_typed_column_reader;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let reader = SerializedFileReader::new(file).map_err(|e| format!("not a Parquet file: {e}"))?;
    let descr = reader.metadata().file_metadata().schema_descr_ptr();
    let want: [(&str, Physical, i16, i16); 5] = [
        ("metric_name", Physical::BYTE_ARRAY, 1, 0),
        ("labels.key_value.key", Physical::BYTE_ARRAY, 1, 1),
        ("labels.key_value.value", Physical::BYTE_ARRAY, 1, 1),
        ("timestamp", Physical::INT64, 0, 0),
        ("value", Physical::DOUBLE, 0, 0),
    ];
    let have: Vec<(String, Physical, i16, i16)> = descr
        .columns()
        .iter()
        .map(|c| (c.path().string(), c.physical_type(), c.max_def_level(), c.max_rep_level()))
        .collect();
    let matches = have.len() == want.len()
        && have.iter().zip(&want).all(|(h, w)| h.0 == w.0 && h.1 == w.1 && h.2 == w.2 && h.3 == w.3);
    if !matches {
        let cols: Vec<String> = have.iter().map(|h| format!("{} ({})", h.0, h.1)).collect();
        return Err(format!(
            "expected the columns metric_name, labels (a map of strings), timestamp (int64 ms) and value \
             (double), as strata export --format parquet writes them; found {}",
            cols.join(", ")
        ));
    }
    let err = |e: parquet::errors::ParquetError| e.to_string();
    let mut n = 0u64;
    // Rows of one series are consecutive: its labels are built once.
    let mut last: Option<(Vec<u8>, Labels)> = None;
    let mut key = Vec::new();
    for g in 0..reader.num_row_groups() {
        let rg = reader.get_row_group(g).map_err(err)?;
        let rows = usize::try_from(rg.metadata().num_rows()).map_err(|_| format!("row group {g}: bad row count"))?;
        let mut names = Column::<ByteArrayType>::default();
        names.read(get_typed_column_reader(rg.get_column_reader(0).map_err(err)?), rows, true, false)?;
        let mut keys = Column::<ByteArrayType>::default();
        keys.read(get_typed_column_reader(rg.get_column_reader(1).map_err(err)?), rows, true, true)?;
        let mut values = Column::<ByteArrayType>::default();
        values.read(get_typed_column_reader(rg.get_column_reader(2).map_err(err)?), rows, true, true)?;
        let mut ts = Column::<Int64Type>::default();
        ts.read(get_typed_column_reader(rg.get_column_reader(3).map_err(err)?), rows, false, false)?;
        let mut vs = Column::<DoubleType>::default();
        vs.read(get_typed_column_reader(rg.get_column_reader(4).map_err(err)?), rows, false, false)?;
        if ts.values.len() != rows || vs.values.len() != rows || names.def.len() != rows {
            return Err(format!("row group {g}: columns disagree on the number of rows"));
        }
        if keys.def.len() != values.def.len() || keys.values.len() != values.values.len() {
            return Err(format!("row group {g}: label keys and values disagree"));
        }
        let (mut name_at, mut level, mut pair_at) = (0usize, 0usize, 0usize);
        for r in 0..rows {
            n += 1;
            // The row's identity, as bytes: name, then key and value per label.
            key.clear();
            let name = if names.def[r] == 1 {
                name_at += 1;
                Some(names.values[name_at - 1].data())
            } else {
                None
            };
            // Length-prefixed parts, so that no two different rows share a key.
            let part = |key: &mut Vec<u8>, b: Option<&[u8]>| {
                key.extend_from_slice(&b.map_or(u32::MAX, |b| b.len() as u32).to_le_bytes());
                key.extend_from_slice(b.unwrap_or_default());
            };
            part(&mut key, name);
            let first_pair = pair_at;
            loop {
                if level >= keys.def.len() {
                    break;
                }
                if keys.def[level] == 1 {
                    part(&mut key, Some(keys.values[pair_at].data()));
                    part(&mut key, Some(values.values[pair_at].data()));
                    pair_at += 1;
                }
                level += 1;
                if keys.rep.get(level).is_none_or(|&x| x == 0) {
                    break;
                }
            }
            let labels = match &last {
                Some((k, l)) if *k == key => Ok(l.clone()),
                _ => build_labels(name, &keys.values[first_pair..pair_at], &values.values[first_pair..pair_at])
                    .inspect(|l| last = Some((key.clone(), l.clone()))),
            };
            f(n, labels.map(|l| (l, Sample::new(ts.values[r], vs.values[r]))));
        }
    }
    Ok(())
}

fn build_labels(name: Option<&[u8]>, keys: &[ByteArray], values: &[ByteArray]) -> std::result::Result<Labels, String> {
    let text =
        |b: &[u8], what: &str| std::str::from_utf8(b).map(str::to_string).map_err(|_| format!("{what}: not UTF-8"));
    let mut pairs = Vec::with_capacity(keys.len() + 1);
    if let Some(n) = name {
        pairs.push((crate::METRIC_NAME.to_string(), text(n, "metric_name")?));
    }
    for (k, v) in keys.iter().zip(values) {
        pairs.push((text(k.data(), "labels key")?, text(v.data(), "labels value")?));
    }
    Labels::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(|e| format!("labels: {e}"))
}

/// One leaf column of a row group, read whole.
struct Column<T: parquet::data_type::DataType> {
    values: Vec<T::T>,
    def: Vec<i16>,
    rep: Vec<i16>,
}

impl<T: parquet::data_type::DataType> Default for Column<T> {
    fn default() -> Self {
        Column { values: Vec::new(), def: Vec::new(), rep: Vec::new() }
    }
}

impl<T: parquet::data_type::DataType> Column<T> {
    fn read(
        &mut self,
        mut r: parquet::column::reader::ColumnReaderImpl<T>,
        rows: usize,
        def: bool,
        rep: bool,
    ) -> std::result::Result<(), String> {
        let mut done = 0;
        while done < rows {
            let (records, _, _) = r
                .read_records(rows - done, def.then_some(&mut self.def), rep.then_some(&mut self.rep), &mut self.values)
                .map_err(|e| e.to_string())?;
            if records == 0 {
                return Err(format!("a column ends after {done} of {rows} rows"));
            }
            done += records;
        }
        Ok(())
    }
}
