//! `strata export --format parquet`: one row per sample, read back with the
//! `parquet` crate and by `strata import` bit for bit (NaN payloads, infinities, -0.0, a series without a
//! metric name, one with no other label, several row groups), and by DuckDB
//! (`STRATA_DUCKDB_PYTHON`: a Python with the duckdb package, which `.ci/run`
//! installs) whose counts and per-series sums must equal Strata's own query.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use parquet::file::reader::{FileReader, SerializedFileReader};
use strata::{Db, Labels, Matcher};

use crate::support::cli_support::{self, fails, json, ok};
use crate::support::external_required;

type Data = BTreeMap<Vec<(String, String)>, Vec<(i64, u64)>>;

fn fixture(dir: &Path) -> Data {
    let db = Db::open(dir, cli_support::keep_all().background(false)).unwrap();
    let specials = [f64::NAN, f64::from_bits(0x7ff0_0000_0000_0002), f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.1 + 0.2];
    let series = [
        Labels::metric("cpu", [("host", "a"), ("zone", "é\"1")]).unwrap(),
        Labels::metric("cpu", [("host", "b")]).unwrap(),
        Labels::metric("bare", Vec::<(&str, &str)>::new()).unwrap(),
        Labels::from_pairs([("job", "nameless")]).unwrap(),
    ];
    let mut app = db.appender();
    for (i, l) in series.iter().enumerate() {
        // 150,000 rows in all: more than one row group.
        for k in 0..37_500i64 {
            let v = if k < specials.len() as i64 { specials[k as usize] } else { (k * (i as i64 + 1)) as f64 / 10.0 };
            app.append_labels(l, 1_700_000_000_000 + k * 1000, v).unwrap();
        }
        if i == 1 {
            app.commit().unwrap();
            db.flush().unwrap(); // part sealed, part in the head
            app = db.appender();
        }
    }
    app.commit().unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    let mut out = Data::new();
    for r in q.select_all().unwrap() {
        let (l, it) = r.unwrap();
        let key = l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        out.insert(key, it.map(|s| (s.ts, s.value.to_bits())).collect());
    }
    db.close().unwrap();
    out
}

fn read_parquet(path: &Path) -> (Data, usize) {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let groups = reader.metadata().num_row_groups();
    let mut out = Data::new();
    for row in reader.get_row_iter(None).unwrap() {
        let (name, mut key, ts, v) = crate::parquet_model::crate_row(&row.unwrap());
        key.extend(name.map(|n| ("__name__".to_string(), n)));
        key.sort();
        out.entry(key).or_default().push((ts, v));
    }
    (out, groups)
}

#[test]
fn parquet_holds_every_sample_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let want = fixture(&data);
    let file = dir.path().join("all.parquet");
    let d = data.to_str().unwrap();
    let report = json(&ok(&["export", "--data", d, "--format", "parquet", "-o", file.to_str().unwrap(), "--json"]));
    assert_eq!((report["series"].as_u64(), report["samples"].as_u64()), (Some(4), Some(150_000)), "{report}");
    let (got, groups) = read_parquet(&file);
    assert!(groups > 1, "{groups} row groups");
    assert_eq!(got.len(), want.len());
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "{k:?}");
    }
    // A part: one selector, a time range.
    let part = dir.path().join("part.parquet");
    ok(&["export", "--data", d, "--match", "cpu{host=\"b\"}", "--start", "1700000010000", "--format", "parquet", "-o"]
        .into_iter()
        .chain([part.to_str().unwrap()])
        .collect::<Vec<_>>());
    let (got, _) = read_parquet(&part);
    assert_eq!(got.len(), 1);
    assert_eq!(got.values().next().unwrap().len(), 37_500 - 10);
    // `strata import` brings the file back: every sample, bit for bit (format detected).
    let back = dir.path().join("back");
    let b = back.to_str().unwrap();
    let r = json(&ok(&["import", "--data", b, file.to_str().unwrap(), "--json"]));
    assert_eq!(
        (r["format"].as_str(), r["samples"].as_u64(), r["series"].as_u64()),
        (Some("parquet"), Some(150_000), Some(4))
    );
    let db = Db::open(&back, cli_support::keep_all().background(false)).unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    let mut again = Data::new();
    for r in q.select_all().unwrap() {
        let (l, it) = r.unwrap();
        let key = l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        again.insert(key, it.map(|s| (s.ts, s.value.to_bits())).collect());
    }
    drop(q);
    db.close().unwrap();
    assert_eq!(again, want);
    let err = fails(&["import", "--data", b, "--format", "parquet", "-"]);
    assert!(err.contains("cannot be read from stdin"), "{err}");
    let err =
        fails(&["import", "--data", b, "--format", "parquet", part.to_str().unwrap().replace("part", "nope").as_str()]);
    assert!(err.contains("opening"), "{err}");
    // A JSON file given as Parquet is refused whole, naming why.
    let jl = dir.path().join("x.json");
    std::fs::write(&jl, ok(&["export", "--data", d, "--match", "bare"])).unwrap();
    let err = fails(&["import", "--data", b, "--format", "parquet", jl.to_str().unwrap()]);
    assert!(err.contains("not a Parquet file"), "{err}");

    // Parquet compresses itself.
    let err = fails(&["export", "--data", d, "--format", "parquet", "-o", "x.parquet.gz"]);
    assert!(err.contains("drop --gzip"), "{err}");
}

#[test]
fn duckdb_reads_what_strata_holds() {
    let python = match std::env::var("STRATA_DUCKDB_PYTHON") {
        Ok(p) => p,
        Err(_) => {
            let why = "STRATA_DUCKDB_PYTHON is not set (a Python with the duckdb package)";
            assert!(!external_required(), "duckdb test cannot run: {why}; STRATA_REQUIRE_EXTERNAL is set");
            eprintln!("SKIPPED duckdb_reads_what_strata_holds: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    cli_support::load_devops(&data, 20, "6h");
    let file = dir.path().join("devops.parquet");
    let d = data.to_str().unwrap();
    ok(&["export", "--data", d, "--format", "parquet", "-o", file.to_str().unwrap()]);

    // Strata's own answer: samples and the sum per series, from its query engine.
    let db = Db::open(&data, cli_support::keep_all().background(false)).unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    let mut want: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for r in q.select(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap() {
        let (l, it) = r.unwrap();
        let key = format!("{}/{}", l.metric_name().unwrap(), l.get("hostname").unwrap());
        let e = want.entry(key).or_default();
        for s in it {
            e.0 += 1;
            e.1 += s.value;
        }
    }
    drop(q);
    db.close().unwrap();

    let script = format!(
        "import duckdb, json\n\
         rows = duckdb.sql(\"select metric_name || '/' || labels['hostname'], count(*), sum(value) \
         from read_parquet('{}') group by all\").fetchall()\n\
         print(json.dumps({{k: [n, s] for k, n, s in rows}}))",
        file.display()
    );
    let out = Command::new(&python).args(["-c", &script]).output().expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: BTreeMap<String, (u64, f64)> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got.len(), 200);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, (n, sum)) in &want {
        let (gn, gsum) = got[k];
        assert_eq!(gn, *n, "{k}");
        // DuckDB sums in its own order: equal within rounding.
        assert!((gsum - sum).abs() <= sum.abs() * 1e-12, "{k}: {gsum} against {sum}");
    }
}
