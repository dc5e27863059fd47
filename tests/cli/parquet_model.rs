//! `ParquetSink` against a model: random series (0..6 labels besides the name,
//! some without a metric name, some with no other label, values of every bit
//! pattern, NaN payloads included), pushed whole or in pieces into row groups of
//! a few rows (so groups start and end inside series), read back through the
//! `parquet` crate's row API and through `read_rows` (what `strata import` uses):
//! both give every row, in order, bit for bit; each row group's string columns
//! carry the min/max and null count of its rows.

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use parquet::record::Field;
use proptest::prelude::*;
use strata::text::parquet::{read_rows, ParquetSink};
use strata::{Labels, Sample};

/// One series: its labels and its samples (time, value bits), pushed in `pieces`.
type Series = (Labels, Vec<(i64, u64)>, usize);

fn series() -> impl Strategy<Value = Series> {
    let name = prop_oneof![Just(None), "[a-c]{1,2}".prop_map(Some)];
    // Values from a wide set too, so that a row group's dictionary needs several index bits.
    let value = prop_oneof!["[a-d]", "v[0-9]{1,3}", Just("é \" x".to_string())];
    let pairs = prop::collection::btree_map("[a-f]", value, 0..6);
    let samples = prop::collection::vec((any::<i64>(), any::<u64>()), 0..40);
    (name, pairs, samples, 1usize..4).prop_filter_map("a series needs a label", |(name, pairs, samples, pieces)| {
        let mut all: Vec<(String, String)> = pairs.into_iter().collect();
        if let Some(n) = name {
            all.push(("__name__".to_string(), n));
        }
        Some((Labels::from_pairs(all).ok()?, samples, pieces))
    })
}

/// A row through the crate's row API: (name, labels but the name, time, value bits).
pub(crate) type Row = (Option<String>, Vec<(String, String)>, i64, u64);

/// One row of an export file, its columns checked to be exactly the documented four.
pub(crate) fn crate_row(row: &parquet::record::Row) -> Row {
    let (mut name, mut labels, mut ts, mut v) = (None, Vec::new(), None, None);
    for (col, field) in row.get_column_iter() {
        match (col.as_str(), field) {
            ("metric_name", Field::Str(n)) => name = Some(n.clone()),
            ("metric_name", Field::Null) => {}
            ("labels", Field::MapInternal(m)) => {
                for (k, v) in m.entries() {
                    let (Field::Str(k), Field::Str(v)) = (k, v) else { panic!("{k:?} {v:?}") };
                    labels.push((k.clone(), v.clone()));
                }
            }
            ("timestamp", Field::TimestampMillis(t)) => ts = Some(*t),
            ("value", Field::Double(x)) => v = Some(x.to_bits()),
            other => panic!("unexpected column {other:?}"),
        }
    }
    (name, labels, ts.unwrap(), v.unwrap())
}

fn crate_rows(file: std::fs::File) -> Vec<Row> {
    let reader = SerializedFileReader::new(file).unwrap();
    reader.get_row_iter(None).unwrap().map(|row| crate_row(&row.unwrap())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn parquet_rows_equal_the_model(set in prop::collection::vec(series(), 0..12), group_rows in 1usize..50) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        let mut sink = ParquetSink::with_row_group_rows(std::fs::File::create(&path).unwrap(), group_rows).unwrap();
        let mut model: Vec<(Labels, i64, u64)> = Vec::new();
        for (labels, samples, pieces) in &set {
            let s: Vec<Sample> = samples.iter().map(|&(t, v)| Sample::new(t, f64::from_bits(v))).collect();
            for part in s.chunks(s.len().div_ceil(*pieces).max(1)) {
                sink.push(labels, part).unwrap();
            }
            model.extend(samples.iter().map(|&(t, v)| (labels.clone(), t, v)));
        }
        sink.finish().unwrap();

        let want: Vec<Row> = model
            .iter()
            .map(|(l, t, v)| {
                let rest = l.iter().filter(|(k, _)| *k != "__name__").map(|(k, v)| (k.to_string(), v.to_string()));
                (l.metric_name().map(str::to_string), rest.collect(), *t, *v)
            })
            .collect();
        prop_assert_eq!(&crate_rows(std::fs::File::open(&path).unwrap()), &want);

        // Each row group's string statistics: byte-wise min/max and null count of
        // its rows (groups are `group_rows` rows, the last one fewer).
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let groups: Vec<&[Row]> = want.chunks(group_rows).collect();
        prop_assert_eq!(reader.num_row_groups(), groups.len());
        for (g, rows) in groups.iter().enumerate() {
            let names: Vec<&str> = rows.iter().filter_map(|r| r.0.as_deref()).collect();
            let keys: Vec<&str> = rows.iter().flat_map(|r| r.1.iter().map(|p| p.0.as_str())).collect();
            let values: Vec<&str> = rows.iter().flat_map(|r| r.1.iter().map(|p| p.1.as_str())).collect();
            let empty = rows.iter().filter(|r| r.1.is_empty()).count();
            let expect = [(names, rows.len() - rows.iter().filter(|r| r.0.is_some()).count()), (keys, empty), (values, empty)];
            for (c, (strings, nulls)) in expect.into_iter().enumerate() {
                let Some(Statistics::ByteArray(st)) = reader.metadata().row_group(g).column(c).statistics() else {
                    panic!("row group {g} column {c}: no byte array statistics")
                };
                let bytes = |s: Option<&&str>| s.map(|s| s.as_bytes().to_vec());
                prop_assert_eq!(st.min_opt().map(|b| b.data().to_vec()), bytes(strings.iter().min()));
                prop_assert_eq!(st.max_opt().map(|b| b.data().to_vec()), bytes(strings.iter().max()));
                prop_assert_eq!(st.null_count_opt(), Some(nulls as u64));
            }
        }

        let mut got = Vec::new();
        read_rows(std::fs::File::open(&path).unwrap(), |n, row| {
            let (l, s) = row.unwrap_or_else(|e| panic!("row {n}: {e}"));
            got.push((l, s.ts, s.value.to_bits()));
        })
        .unwrap();
        prop_assert_eq!(got, model);
    }
}
