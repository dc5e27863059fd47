//! The export formats cross between the CLI and the server: what `GET /export`
//! writes, `strata import` reads; what `strata export` writes, `POST /import`
//! reads; bit for bit in CSV and JSON lines, with labels holding commas, quotes,
//! backslashes, Unicode and newlines, and NaN/±Inf values.
#![cfg(all(feature = "cli", feature = "server"))]

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::cli_support::{self, json, ok};
use crate::support::server_util;
use strata::{Db, Labels, Matcher};

const STALE: u64 = 0x7ff0_0000_0000_0002;

type Data = BTreeMap<Labels, Vec<(i64, u64)>>;

fn awkward() -> Vec<Labels> {
    vec![
        Labels::metric("x_m", [("odd", "a,b\"c\\d\ne"), ("u", "日本語 é 😀")]).unwrap(),
        Labels::metric("x_m", [("odd", "\"\"\",,\\\\"), ("tab", "\t\r")]).unwrap(),
        Labels::from_pairs([("job", "nameless,\"q\"")]).unwrap(),
    ]
}

fn values() -> Vec<f64> {
    vec![1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::from_bits(STALE), 0.1 + 0.2, 5e-324]
}

fn fill(db: &Db) {
    let mut app = db.appender();
    for l in awkward() {
        for (i, v) in values().into_iter().enumerate() {
            app.append_labels(&l, 1_700_000_000_000 + i as i64 * 1_000, v).unwrap();
        }
    }
    app.commit().unwrap();
}

fn read_all(db: &Db) -> Data {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut out = Data::new();
    for s in q.select_all().unwrap() {
        let (l, it) = s.unwrap();
        out.insert(l, it.map(|s| (s.ts, s.value.to_bits())).collect());
    }
    out
}

fn read_dir(dir: &Path) -> Data {
    let db = Db::open(dir, cli_support::keep_all().background(false)).unwrap();
    read_all(&db)
}

#[test]
fn server_exports_import_through_the_cli() {
    let _serial = cli_support::serial();
    let server = server_util::start();
    fill(&server.db);
    let want = read_all(&server.db);
    assert_eq!(want.len(), 3);
    for format in ["csv", "json"] {
        let r = server.get(&format!("/export?format={format}"));
        assert_eq!(r.status, 200, "{}", r.text());
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join(format!("export.{format}"));
        std::fs::write(&file, &r.body).unwrap();
        let dest = tmp.path().join("data");
        let out = json(&ok(&["import", "--data", dest.to_str().unwrap(), file.to_str().unwrap(), "--json"]));
        assert_eq!(out["format"], format, "detected from the file");
        assert_eq!(out["samples"], 24);
        assert_eq!(read_dir(&dest), want, "{format}");
    }
    // A CSV in the layout earlier server versions wrote imports too.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("old.csv");
    std::fs::write(&file, "metric,labels,timestamp,value\nold,\"a=\"\"x,y\\\\\"\"\",1000,+Inf\n").unwrap();
    let dest = tmp.path().join("data");
    ok(&["import", "--data", dest.to_str().unwrap(), file.to_str().unwrap()]);
    let got = read_dir(&dest);
    let l = Labels::metric("old", [("a", "x,y\\")]).unwrap();
    assert_eq!(got.get(&l), Some(&vec![(1000, f64::INFINITY.to_bits())]));
}

#[test]
fn cli_exports_post_to_the_server() {
    let _serial = cli_support::serial();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let db = Db::open(&src, cli_support::keep_all().background(false)).unwrap();
    fill(&db);
    let want = read_all(&db);
    db.close().unwrap();
    for format in ["csv", "json", "prometheus"] {
        let body = ok(&["export", "--data", src.to_str().unwrap(), "--format", format]);
        let server = server_util::start();
        let r = server.post("/import", body.as_bytes());
        assert_eq!(r.status, 204, "{format}: {}", r.text());
        assert_eq!(r.header("x-strata-samples"), Some("24"));
        let got = read_all(&server.db);
        if format == "prometheus" {
            // The text format has one NaN: payloads (the stale marker) become it.
            let plain = |d: Data| -> Data {
                d.into_iter()
                    .map(|(l, v)| {
                        let v = v
                            .into_iter()
                            .map(|(t, b)| (t, if f64::from_bits(b).is_nan() { f64::NAN.to_bits() } else { b }));
                        (l, v.collect())
                    })
                    .collect()
            };
            assert_eq!(plain(got), plain(want.clone()));
        } else {
            assert_eq!(got, want, "{format}");
        }
        // The server's export of what it imported is the CLI's, byte for byte.
        if format != "prometheus" {
            assert_eq!(server.get(&format!("/export?format={format}")).text(), body, "{format}");
        }
    }
    // An explicit format, and a bad row named by line and column, the rest stored.
    let server = server_util::start();
    let csv = "series,timestamp,value\n\"ok{a=\"\"1\"\"}\",1000,1\n\"ok{a=\"\"1\"\"}\",noon,2\n";
    let r = server.post("/import?format=csv", csv.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    let reason = r.json()["refused_points"][0]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("line 3: column 2 (timestamp): invalid timestamp \"noon\""), "{}", r.text());
    assert_eq!(r.json()["refused_points"][0]["line"], 3);
    assert_eq!(server.db.latest(&[Matcher::eq("__name__", "ok")]).unwrap().len(), 1);
    assert_eq!(server.post("/import?format=xml", b"").status, 400);
}
