//! `strata export` → `strata import` into an empty directory restores every
//! series and every value bit for bit (NaN payloads, -0.0 and infinities included),
//! in each importable format, plain and gzip.
#![cfg(feature = "cli")]

use crate::support::cli_support;
use std::collections::BTreeMap;
use std::path::Path;

use crate::support::cli_support::{fails, json, ok};
use strata::{Db, Labels, Matcher};

const STALE: u64 = 0x7ff0_0000_0000_0002;

type Data = BTreeMap<Labels, Vec<(i64, u64)>>;

/// Reads every series as (ts, value bits).
fn read_all(dir: &Path) -> Data {
    let db = Db::open(dir, cli_support::keep_all().background(false)).unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    let mut out = Data::new();
    for s in q.select(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap() {
        let (l, it) = s.unwrap();
        out.insert(l, it.map(|s| (s.ts, s.value.to_bits())).collect());
    }
    out
}

/// Series with awkward labels and values, part sealed into a segment, part in the WAL.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), cli_support::keep_all().background(false)).unwrap();
    let specials = [
        f64::NAN,
        -f64::NAN,
        f64::from_bits(STALE),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.1 + 0.2,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        1e300,
        -123.456,
    ];
    let mut app = db.appender();
    for i in 0..20usize {
        let l =
            Labels::metric(&format!("m_{}", i % 4), [("i", i.to_string()), ("odd", "a\"b,c\\d\ne{}=é".to_string())])
                .unwrap();
        for t in 0..300i64 {
            let v = if t % 7 == 0 {
                specials[(t as usize / 7 + i) % specials.len()]
            } else {
                (t as f64 * 0.37).sin() * 1e3
            };
            app.append_labels(&l, 1_700_000_000_000 + t * 15_000, v).unwrap();
        }
        if i == 10 {
            app.commit().unwrap();
            db.flush().unwrap();
        }
    }
    app.commit().unwrap();
    db.close().unwrap();
    dir
}

#[test]
fn export_import_round_trips_bit_for_bit() {
    let _serial = cli_support::serial();
    let src = fixture();
    let want = read_all(src.path());
    assert_eq!(want.len(), 20);
    let work = tempfile::tempdir().unwrap();
    for (format, file) in [("json", "e.json"), ("json", "e.json.gz"), ("csv", "e.csv"), ("csv", "e.csv.gz")] {
        let path = work.path().join(file);
        let p = path.to_str().unwrap();
        let r = json(&ok(&["export", "--data", src.path().to_str().unwrap(), "--format", format, "-o", p, "--json"]));
        assert_eq!((r["series"].as_u64(), r["samples"].as_u64()), (Some(20), Some(6000)), "{file}");
        let gz = std::fs::read(&path).unwrap().starts_with(&[0x1f, 0x8b]);
        assert_eq!(gz, file.ends_with(".gz"), "{file}");

        let dest = work.path().join(format!("db-{file}"));
        let d = dest.to_str().unwrap();
        let r = json(&ok(&["import", "--data", d, p, "--json"]));
        assert_eq!((r["series"].as_u64(), r["samples"].as_u64()), (Some(20), Some(6000)), "{file}");
        assert_eq!(read_all(&dest), want, "{file}: data differs after the round trip");
        // And the second export is byte for byte the first.
        let again = work.path().join(format!("again-{file}"));
        ok(&["export", "--data", d, "--format", format, "-o", again.to_str().unwrap()]);
        if !gz {
            assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&path).unwrap(), "{file}");
        }
    }
    // Stdin works too, and the JSON names NaN payloads.
    let text = ok(&["export", "--data", src.path().to_str().unwrap(), "--match", "m_0{i=\"0\"}"]);
    assert!(text.contains("\"NaN(0x7ff0000000000002)\"") && text.contains("\"+Inf\"") && text.contains("-0.0"));
}

#[test]
fn match_start_end_and_prometheus_text() {
    let _serial = cli_support::serial();
    let src = fixture();
    let s = src.path().to_str().unwrap();
    // A union of two selectors exports each series once.
    let text = ok(&[
        "export",
        "--data",
        s,
        "--match",
        "m_1",
        "--match",
        "{i=~\"1|5|9\"}",
        "--start",
        "1700000000000",
        "--end",
        "1700000015000",
    ]);
    assert_eq!(text.lines().count(), 5, "{text}"); // m_1 is i = 1, 5, 9, 13, 17
    let first = json(text.lines().next().unwrap());
    assert_eq!(first["timestamps"], serde_json::json!([1_700_000_000_000i64, 1_700_000_015_000i64]));
    let prom = ok(&["export", "--data", s, "--format", "prometheus", "--match", "m_2{i=\"2\"}"]);
    let line = prom.lines().next().unwrap();
    assert_eq!(line, "m_2{i=\"2\",odd=\"a\\\"b,c\\\\d\\ne{}=é\"} NaN 1700000000000");
    assert_eq!(prom.lines().count(), 300);
    assert!(fails(&["export", "--data", s, "--start", "now", "--end", "-1d"]).contains("is after --end"));
}

#[test]
fn import_reports_the_bad_line() {
    let _serial = cli_support::serial();
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("bad.json");
    std::fs::write(&f, "{\"metric\":{\"__name__\":\"a\"},\"values\":[1],\"timestamps\":[1]}\n{\"metric\":{}}\n")
        .unwrap();
    let d = work.path().join("db");
    let e = fails(&["import", "--data", d.to_str().unwrap(), f.to_str().unwrap()]);
    assert!(e.contains("bad.json line 2: invalid JSON line"), "{e}");
    let c = work.path().join("bad.csv");
    std::fs::write(&c, "series,timestamp,value\nup,1,2\nup,x,2\n").unwrap();
    let e = fails(&["import", "--data", d.to_str().unwrap(), c.to_str().unwrap()]);
    assert!(e.contains("bad.csv line 3: column 2 (timestamp): invalid timestamp \"x\""), "{e}");
    assert!(
        fails(&["import", "--data", d.to_str().unwrap(), "/nonexistent.json"]).contains("opening /nonexistent.json")
    );
}

/// Every series, named or not, through the whole range of `Querier::select_all`.
fn read_everything(dir: &Path) -> Data {
    let db = Db::open(dir, cli_support::keep_all().background(false)).unwrap();
    let q = db.querier(i64::MIN..i64::MAX);
    let mut out = Data::new();
    for s in q.select_all().unwrap() {
        let (l, it) = s.unwrap();
        out.insert(l, it.map(|s| (s.ts, s.value.to_bits())).collect());
    }
    out
}

#[test]
fn series_without_a_metric_name_round_trip_in_every_format() {
    let _serial = cli_support::serial();
    let src = tempfile::tempdir().unwrap();
    {
        let db = Db::open(src.path(), cli_support::keep_all().background(false)).unwrap();
        let mut app = db.appender();
        let nameless = [
            Labels::from_pairs([("host", "a")]).unwrap(),
            Labels::from_pairs([("host", "b} 1 2"), ("zone", "q\"x")]).unwrap(),
        ];
        for (k, l) in nameless.iter().enumerate() {
            for t in 0..50i64 {
                let v = if t == 3 { f64::NEG_INFINITY } else { t as f64 * 0.5 - k as f64 };
                app.append_labels(l, 1_600_000_000_000 + t * 1000, v).unwrap();
            }
        }
        for h in ["a", "b", "c"] {
            app.append_labels(&Labels::metric("named", [("host", h)]).unwrap(), 1_600_000_000_000, 1.0).unwrap();
        }
        app.commit().unwrap();
        db.flush().unwrap();
        db.close().unwrap();
    }
    let s = src.path().to_str().unwrap();
    let want = read_everything(src.path());
    assert_eq!(want.len(), 5);
    let stats = json(&ok(&["stats", "--data", s, "--json"]));
    assert_eq!(stats["series"].as_u64(), Some(5), "{stats}");
    let work = tempfile::tempdir().unwrap();
    for (format, file) in [("json", "n.json"), ("csv", "n.csv"), ("prometheus", "n.prom"), ("prometheus", "n.prom.gz")]
    {
        let path = work.path().join(file);
        let p = path.to_str().unwrap();
        let r = json(&ok(&["export", "--data", s, "--format", format, "-o", p, "--json"]));
        assert_eq!((r["series"].as_u64(), r["samples"].as_u64()), (Some(5), Some(103)), "{file}: {r}");
        if format == "prometheus" && !file.ends_with(".gz") {
            let text = std::fs::read_to_string(&path).unwrap();
            // Series come in label order: `named` (its `__name__` sorts first), then the nameless.
            assert!(text.starts_with("named{host=\"a\"} 1.0 1600000000000\n"), "{text}");
            assert!(text.contains("\n{host=\"a\"} 0.0 1600000000000\n"), "{text}");
        }
        let dest = work.path().join(format!("db-{file}"));
        let r = json(&ok(&["import", "--data", dest.to_str().unwrap(), p, "--json"]));
        assert_eq!((r["series"].as_u64(), r["samples"].as_u64()), (Some(5), Some(103)), "{file}: {r}");
        assert_eq!(r["format"].as_str(), Some(format), "{file}: detected format");
        assert_eq!(read_everything(&dest), want, "{file}: data differs after the round trip");
    }
}

#[test]
fn an_export_that_finds_nothing_says_what_lies_outside_the_range() {
    let _serial = cli_support::serial();
    let src = fixture();
    let s = src.path().to_str().unwrap();
    let out = cli_support::strata(&["export", "--data", s, "--start", "1800000000000", "-o", "/dev/null"]);
    assert!(out.status.success());
    let err = cli_support::stderr(&out);
    assert!(
        err.contains("no samples in 2027-01-15T08:00:00Z")
            && err.contains("the selected 20 series hold 6,000 samples outside it, from 2023-11-14T22:13:20Z to"),
        "{err}"
    );
    let out = cli_support::strata(&["export", "--data", s, "--match", "nothing_here", "-o", "/dev/null"]);
    let err = cli_support::stderr(&out);
    assert!(err.contains("the selection matches no readable series (the database holds 20 series"), "{err}");
}
