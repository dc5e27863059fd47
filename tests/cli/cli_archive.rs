//! The retention archive from the command line: `strata retention set --archive-dir`,
//! `strata compact` reporting what it archived, `strata archive ls` reading the files'
//! footers, and `strata import` of the archive directory restoring exactly the data
//! retention removed.
#![cfg(feature = "cli")]

use std::collections::BTreeMap;
use std::path::Path;

use strata::{Db, Matcher, Options, RetentionPolicy};

use crate::support::cli_support::{fails, json, load_devops, ok, serial};

/// Every stored sample, with nothing hidden by retention: the policy is set to keep
/// everything first.
fn samples(dir: &Path) -> BTreeMap<(String, i64), u64> {
    let db = Db::open(dir, Options::default().background(false)).unwrap();
    db.set_retention(RetentionPolicy::forever()).unwrap();
    let mut out = BTreeMap::new();
    for s in db.querier(i64::MIN..i64::MAX).select(&[Matcher::regex("__name__", ".+").unwrap()]).unwrap() {
        let (l, v) = s.unwrap();
        for x in v {
            out.insert((l.to_string(), x.ts), x.value.to_bits());
        }
    }
    db.close().unwrap();
    out
}

#[test]
fn archive_set_listed_and_imported_back() {
    let _one = serial();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let d = data.to_str().unwrap();
    load_devops(&data, 2, "3d");
    let before = {
        // A copy to read the original set from, since reading resets the policy.
        let copy = tmp.path().join("copy");
        ok(&["backup", "--data", d, copy.to_str().unwrap()]);
        samples(&copy)
    };

    let set = ok(&["retention", "set", "--data", d, "--raw", "1d", "--archive-dir", "arch"]);
    assert!(set.contains("archive to arch"), "{set}");
    assert!(ok(&["retention", "--data", d]).contains("archive   arch"));
    let report = json(&ok(&["compact", "--data", d, "--json"]));
    let archived = report["archived"].as_array().unwrap();
    assert!(archived.len() >= 2, "three days of data cut at one day span several days: {report}");
    let rows: u64 = archived.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
    assert!(report["archive_errors"].as_array().unwrap().is_empty());

    let ls = json(&ok(&["archive", "ls", "--data", d, "--json"]));
    assert_eq!(ls["rows"].as_u64(), Some(rows), "{ls}");
    let files = ls["files"].as_array().unwrap();
    assert_eq!(files.len(), archived.len());
    for f in files {
        let day = f["day"].as_str().unwrap();
        assert_eq!(f["tier"], "raw");
        assert!(f["series"].as_u64().unwrap() > 0);
        for k in ["min_t", "max_t"] {
            let t = f[k].as_i64().unwrap();
            assert_eq!(strata::retention::archive::day_name(t.div_euclid(86_400_000)), day, "{f}");
        }
    }
    let arch = data.join("arch");
    let by_dir = json(&ok(&["archive", "ls", "--dir", arch.to_str().unwrap(), "--json"]));
    assert_eq!(by_dir["rows"], ls["rows"]);
    let text = ok(&["archive", "ls", "--data", d]);
    assert!(text.contains("tier=raw/date=") && text.contains(&format!("{} files", files.len())), "{text}");

    // The whole archive back into a new directory: with what stayed, exactly the original.
    let restored = tmp.path().join("restored");
    ok(&["import", "--data", restored.to_str().unwrap(), "--format", "parquet", arch.to_str().unwrap()]);
    let (kept, back) = (samples(&data), samples(&restored));
    assert_eq!(back.len() as u64, rows);
    assert!(back.keys().all(|k| !kept.contains_key(k)), "an archived sample is still stored");
    let mut union = kept;
    union.extend(back);
    assert_eq!(union, before, "stored plus archived is the original data, values bit for bit");

    // One file alone imports too.
    let one = files[0]["path"].as_str().unwrap();
    let single = tmp.path().join("single");
    let out = json(&ok(&["import", "--data", single.to_str().unwrap(), one, "--json"]));
    assert_eq!(out["samples"], files[0]["rows"]);

    assert!(ok(&["retention", "set", "--data", d, "--archive-dir", "none"]).contains("retention now"));
    let e = fails(&["archive", "ls", "--data", d]);
    assert!(e.contains("has no archive directory"), "{e}");
}
