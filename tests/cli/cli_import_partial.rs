//! `strata import` stores every row it can, and names the refused ones.

use crate::support::cli_support;
use std::process::Command;

#[test]
fn import_stores_good_rows_and_names_refused_ones() {
    let _serial = cli_support::serial();
    let work = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let f = work.path().join("mixed.json");
    // Line 2 is not JSON; line 3 holds one sample older than the 7 days kept.
    std::fs::write(
        &f,
        format!(
            "{{\"metric\":{{\"__name__\":\"a\"}},\"values\":[1],\"timestamps\":[{now}]}}\n\
             {{\"metric\":{{}}}}\n\
             {{\"metric\":{{\"__name__\":\"a\",\"h\":\"x\"}},\"values\":[2,3],\"timestamps\":[1000,{now}]}}\n"
        ),
    )
    .unwrap();
    let d = work.path().join("db");
    let run = |args: &[&str]| {
        crate::support::output(Command::new(env!("CARGO_BIN_EXE_strata")).args(args).args(["--retention", "raw=7d"]))
            .unwrap()
    };
    let out = run(&["import", "--data", d.to_str().unwrap(), "--json", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((summary["samples"].as_u64(), summary["refused"].as_u64()), (Some(2), Some(2)));
    let lines: Vec<u64> =
        summary["refused_rows"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [2, 3]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 rows or samples were refused"), "{stderr}");
    assert!(stderr.contains("mixed.json line 2: invalid JSON line"), "{stderr}");
    assert!(
        stderr.contains(
            "mixed.json line 3: sample for a{h=\"x\"} at 1000 (1970-01-01T00:00:01Z) is older than retention"
        ),
        "{stderr}"
    );
    let out = run(&["export", "--data", d.to_str().unwrap(), "--match", "a"]);
    assert!(out.status.success(), "{out:?}");
    let exported = String::from_utf8_lossy(&out.stdout);
    assert_eq!(exported.lines().count(), 2, "{exported}");
    let hx = exported.lines().find(|l| l.contains("\"h\":\"x\"")).unwrap_or_else(|| panic!("{exported}"));
    assert!(hx.contains(&format!("\"timestamps\":[{now}]")), "{hx}");
}
