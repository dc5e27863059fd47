//! `strata query` ranks both ways (`--top-k`, `--bottom-k`, `--rank-by`) and can ask
//! for one group of everything (`--group-by ""`), in-process and through `POST
//! /query` alike.
#![cfg(all(feature = "cli", feature = "server"))]

use crate::support::cli_support::{self, fails, json, ok};
use crate::support::server_util;
use strata::{Db, Labels};

/// Hosts a (1, 1, 10), b (4, 4, 4), c (2, 2, 2) at 2026-01-01 00:00, 00:01, 00:02.
fn fill(db: &Db) {
    let mut app = db.appender();
    for (h, vs) in [("a", [1.0, 1.0, 10.0]), ("b", [4.0; 3]), ("c", [2.0; 3])] {
        let id = app.series(&Labels::metric("r", [("host", h)]).unwrap()).unwrap();
        for (i, v) in vs.iter().enumerate() {
            app.append(id, 1_767_225_600_000 + i as i64 * 60_000, *v).unwrap();
        }
    }
    app.commit().unwrap();
}

fn hosts(v: &serde_json::Value) -> Vec<String> {
    v["series"].as_array().unwrap().iter().map(|s| s["metric"]["host"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn ranking_both_ways_and_one_group_of_everything() {
    let _serial = cli_support::serial();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), cli_support::keep_all()).unwrap();
    fill(&db);
    db.close().unwrap();
    let server = server_util::start();
    fill(&server.db);
    let d = dir.path().to_str().unwrap();
    let url = format!("http://{}", server.addr);
    // One point a minute: a 1, 1, 10; b 4, 4, 4; c 2, 2, 2. The ranking statistic
    // is taken over each result series' points.
    let range =
        ["--start", "2026-01-01T00:00:00Z", "--end", "2026-01-01T00:05:00Z", "--agg", "avg", "--step", "1m", "--json"];
    let run = |extra: &[&str]| -> serde_json::Value {
        let local = json(&ok(&[&["query", "r", "--data", d][..], &range[..], extra].concat()));
        let remote = json(&ok(&[&["query", "r", "--url", &url][..], &range[..], extra].concat()));
        assert_eq!(local["series"], remote["series"], "{extra:?}");
        local
    };
    // Means: a 4, b 4, c 2 (ties broken by labels).
    assert_eq!(hosts(&run(&["--top-k", "2"])), ["a", "b"]);
    assert_eq!(hosts(&run(&["--bottom-k", "2"])), ["c", "a"]);
    assert_eq!(hosts(&run(&["--bottom-k", "1", "--rank-by", "max"])), ["c"]);
    assert_eq!(hosts(&run(&["--top-k", "1", "--rank-by", "min"])), ["b"]);
    assert_eq!(hosts(&run(&["--bottom-k", "1", "--rank-by", "last"])), ["c"]);
    // One group of all three series: the mean of the hosts each minute.
    let all = run(&["--group-by", ""]);
    let series = all["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{all}");
    let got: Vec<f64> = series[0]["values"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let want = [7.0 / 3.0, 7.0 / 3.0, 16.0 / 3.0];
    assert!(got.len() == 3 && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12), "{all}");
    // Without --group-by: per series.
    assert_eq!(run(&[])["series"].as_array().unwrap().len(), 3);

    assert!(fails(&["query", "r", "--data", d, "--agg", "avg", "--rank-by", "max"]).contains("--rank-by applies to"));
    let both = cli_support::strata(&["query", "r", "--data", d, "--top-k", "1", "--bottom-k", "1"]);
    assert_eq!(both.status.code(), Some(2));
}
