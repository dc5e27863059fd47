//! `strata query`: raw output in every format, and clear errors.
#![cfg(feature = "cli")]

mod cli_support;

use cli_support::{fails, json, ok};
use strata::{Db, Labels, Options};

/// Two series of `m` with samples at 1 s..=5 s (epoch ms 1000..=5000), one NaN.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let mut app = db.appender();
    for h in ["a", "b"] {
        let l = Labels::metric("m", [("host", h)]).unwrap();
        for t in 1..=5 {
            let v = if h == "b" && t == 3 { f64::NAN } else { t as f64 * 1.5 };
            app.append_labels(&l, t * 1000, v).unwrap();
        }
    }
    app.commit().unwrap();
    db.close().unwrap();
    dir
}

#[test]
fn raw_query_table_json_csv_and_plot() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let range = ["--start", "2000", "--end", "1970-01-01T00:00:04Z"];
    let q = |extra: &[&str]| {
        let mut args = vec!["query", "m{host=~\"a|b\"}", "--data", d];
        args.extend(range);
        args.extend(extra);
        ok(&args)
    };
    let table = q(&[]);
    assert_eq!(
        table,
        "m{host=\"a\"}  (3 samples)\n  1970-01-01T00:00:02.000Z  3.0\n  1970-01-01T00:00:03.000Z  4.5\n  \
         1970-01-01T00:00:04.000Z  6.0\n\nm{host=\"b\"}  (3 samples)\n  1970-01-01T00:00:02.000Z  3.0\n  \
         1970-01-01T00:00:03.000Z  NaN\n  1970-01-01T00:00:04.000Z  6.0\n"
    );
    let j = json(&q(&["--json"]));
    assert_eq!(j["series"].as_array().unwrap().len(), 2);
    assert_eq!(j["series"][1]["metric"]["host"], "b");
    assert_eq!(j["series"][1]["timestamps"], serde_json::json!([2000, 3000, 4000]));
    assert_eq!(j["series"][1]["values"], serde_json::json!([3.0, "NaN", 6.0]));
    let csv = q(&["--csv"]);
    assert_eq!(csv.lines().next(), Some("series,timestamp,value"));
    assert_eq!(csv.lines().nth(1), Some("\"m{host=\"\"a\"\"}\",2000,3.0"));
    let plot = q(&["--plot"]);
    assert!(plot.contains("* m{host=\"a\"}") && plot.contains("+ m{host=\"b\"}") && plot.contains("+---"), "{plot}");
    assert_eq!(ok(&["query", "m{host=\"zz\"}", "--data", d, "--start", "0"]), "no series matched in this range\n");
}

#[test]
fn query_errors_say_what_was_wrong() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let e = fails(&["query", "m{host=~\"a\"", "--data", d]);
    assert!(e.contains("invalid selector: missing '}' at column 12"), "{e}");
    let e = fails(&["query", "m", "--data", d, "--start", "yesterday"]);
    assert!(e.contains("--start: invalid time \"yesterday\""), "{e}");
    let e = fails(&["query", "m", "--data", d, "--start", "0", "--step", "5m", "--agg", "avg", "--group-by", "host"]);
    assert!(e.contains("needs the query layer") && e.contains("--agg avg --step 5m --group-by host"), "{e}");
    let e = fails(&["query", "{host=\"\"}", "--data", d]);
    assert!(e.contains("does not match the empty string"), "{e}");
    let e = fails(&["query", "m", "--data", "/nonexistent/strata"]);
    assert!(e.contains("not a Strata data directory"), "{e}");
}

#[test]
fn compact_and_retention_fail_clearly_until_their_layers_land() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let e = fails(&["compact", "--data", d, "--dry-run"]);
    assert!(e.contains("not in this build yet") && e.contains("nothing was changed"), "{e}");
    let e = fails(&["retention", "--data", d, "--raw", "3d", "--max-disk", "1GiB", "--apply"]);
    assert!(e.contains("raw 3d") && e.contains("disk cap 1.0 GiB") && e.contains("nothing was changed"), "{e}");
    let usage = cli_support::strata(&["retention", "--data", d, "--raw", "3 days"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(cli_support::stderr(&usage).contains("invalid duration"));
}
