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
    names: Vec<ByteArray>,
    name_def: Vec<i16>,
    keys: Vec<ByteArray>,
    values: Vec<ByteArray>,
    label_def: Vec<i16>,
    label_rep: Vec<i16>,
    ts: Vec<i64>,
    vs: Vec<f64>,
}

impl<W: Write + Send> ParquetSink<W> {
    pub fn new(out: W) -> parquet::errors::Result<Self> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // Times are regular and values close: delta and byte-split beat a dictionary.
            .set_column_dictionary_enabled(ColumnPath::from("timestamp"), false)
            .set_column_encoding(ColumnPath::from("timestamp"), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(ColumnPath::from("value"), false)
            .set_column_encoding(ColumnPath::from("value"), Encoding::BYTE_STREAM_SPLIT)
            // Min/max of label strings prune nothing useful and cost a compare per row.
            .set_column_statistics_enabled(ColumnPath::from("labels.key_value.key"), EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("labels.key_value.value"), EnabledStatistics::None)
            .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(ParquetSink {
            writer: SerializedFileWriter::new(out, schema, Arc::new(props))?,
            names: Vec::new(),
            name_def: Vec::new(),
            keys: Vec::new(),
            values: Vec::new(),
            label_def: Vec::new(),
            label_rep: Vec::new(),
            ts: Vec::new(),
            vs: Vec::new(),
        })
    }

    /// Adds one row per sample of a series.
    pub fn push(&mut self, labels: &Labels, samples: &[Sample]) -> parquet::errors::Result<()> {
        // One buffer per string, shared (reference-counted) by every row of the series.
        let name = labels.metric_name().map(|n| ByteArray::from(n.as_bytes().to_vec()));
        let pairs: Vec<(ByteArray, ByteArray)> = labels
            .iter()
            .filter(|(k, _)| *k != crate::METRIC_NAME)
            .map(|(k, v)| (ByteArray::from(k.as_bytes().to_vec()), ByteArray::from(v.as_bytes().to_vec())))
            .collect();
        let mut rest = samples;
        while !rest.is_empty() {
            let room = ROW_GROUP_ROWS - self.ts.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            for s in now {
                match &name {
                    Some(n) => {
                        self.names.push(n.clone());
                        self.name_def.push(1);
                    }
                    None => self.name_def.push(0),
                }
                if pairs.is_empty() {
                    self.label_def.push(0);
                    self.label_rep.push(0);
                }
                for (i, (k, v)) in pairs.iter().enumerate() {
                    self.keys.push(k.clone());
                    self.values.push(v.clone());
                    self.label_def.push(1);
                    self.label_rep.push(i16::from(i > 0));
                }
                self.ts.push(s.ts);
                self.vs.push(s.value);
            }
            if self.ts.len() == ROW_GROUP_ROWS {
                self.flush()?;
            }
            rest = later;
        }
        Ok(())
    }

    fn flush(&mut self) -> parquet::errors::Result<()> {
        if self.ts.is_empty() {
            return Ok(());
        }
        let mut rg = self.writer.next_row_group()?;
        let mut col = 0;
        while let Some(mut c) = rg.next_column()? {
            match col {
                0 => {
                    c.typed::<ByteArrayType>().write_batch(&self.names, Some(&self.name_def), None)?;
                }
                1 => {
                    c.typed::<ByteArrayType>().write_batch(&self.keys, Some(&self.label_def), Some(&self.label_rep))?;
                }
                2 => {
                    c.typed::<ByteArrayType>().write_batch(
                        &self.values,
                        Some(&self.label_def),
                        Some(&self.label_rep),
                    )?;
                }
                3 => {
                    c.typed::<Int64Type>().write_batch(&self.ts, None, None)?;
                }
                _ => {
                    c.typed::<DoubleType>().write_batch(&self.vs, None, None)?;
                }
            }
            c.close()?;
            col += 1;
        }
        rg.close()?;
        self.names.clear();
        self.name_def.clear();
        self.keys.clear();
        self.values.clear();
        self.label_def.clear();
        self.label_rep.clear();
        self.ts.clear();
        self.vs.clear();
        Ok(())
    }

    /// Writes the last row group and the footer.
    pub fn finish(mut self) -> parquet::errors::Result<W> {
        self.flush()?;
        self.writer.into_inner()
    }
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

/// Reads a file [`ParquetSink`] wrote (or any file with its four columns), row by
/// row: `f(row number from 1, the row's series and sample, or why it cannot be one)`.
/// A file without those columns is refused whole, naming what it lacks.
pub fn read_rows(
    file: std::fs::File,
    mut f: impl FnMut(u64, std::result::Result<(Labels, Sample), String>),
) -> std::result::Result<(), String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    let reader = SerializedFileReader::new(file).map_err(|e| format!("not a Parquet file: {e}"))?;
    let schema = reader.metadata().file_metadata().schema();
    let names: Vec<&str> = schema.get_fields().iter().map(|t| t.name()).collect();
    if names != ["metric_name", "labels", "timestamp", "value"] {
        return Err(format!(
            "expected the columns metric_name, labels, timestamp, value (as strata export --format parquet \
             writes them), found {}",
            names.join(", ")
        ));
    }
    let rows = reader.get_row_iter(None).map_err(|e| e.to_string())?;
    // Rows of one series are usually consecutive: build its labels once.
    let mut last: Option<(Vec<(String, String)>, Labels)> = None;
    for (i, row) in rows.enumerate() {
        let n = i as u64 + 1;
        let row = row.map_err(|e| format!("row {n}: {e}"))?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        let (mut ts, mut value) = (None, None);
        let mut bad = None;
        for (name, field) in row.get_column_iter() {
            match (name.as_str(), field) {
                ("metric_name", Field::Str(s)) => pairs.push((crate::METRIC_NAME.to_string(), s.clone())),
                ("metric_name", Field::Null) => {}
                ("labels", Field::MapInternal(m)) => {
                    for (k, v) in m.entries() {
                        match (k, v) {
                            (Field::Str(k), Field::Str(v)) => pairs.push((k.clone(), v.clone())),
                            _ => bad = Some(format!("labels: expected string keys and values, got {k} = {v}")),
                        }
                    }
                }
                ("labels", Field::Null) => {}
                ("timestamp", Field::TimestampMillis(t)) => ts = Some(*t),
                ("timestamp", Field::Long(t)) => ts = Some(*t),
                ("value", Field::Double(v)) => value = Some(*v),
                (col, other) => bad = Some(format!("{col}: unexpected value {other}")),
            }
        }
        let parsed = match (bad, ts, value) {
            (Some(why), _, _) => Err(why),
            (None, None, _) => Err("timestamp: missing".to_string()),
            (None, _, None) => Err("value: missing".to_string()),
            (None, Some(ts), Some(v)) => {
                let labels = match &last {
                    Some((p, l)) if *p == pairs => Ok(l.clone()),
                    _ => Labels::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .inspect(|l| last = Some((pairs, l.clone())))
                        .map_err(|e| format!("labels: {e}")),
                };
                labels.map(|l| (l, Sample::new(ts, v)))
            }
        };
        f(n, parsed);
    }
    Ok(())
}
