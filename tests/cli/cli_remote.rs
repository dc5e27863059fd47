//! `strata query`, `stats` and `export` with `--url`: the same output from a running
//! server as from the directory, while the server holds the directory's lock.
#![cfg(all(feature = "cli", feature = "server"))]

use crate::support::cli_support;
use crate::support::cli_support::{fails, json, ok};
use crate::support::server_util;
use strata::{Db, Labels};

/// 2026-01-01T00:00:00Z in ms.
const DAY0: i64 = 1_767_225_600_000;

/// `m{h="a"|"b"}`, one sample a minute for an hour, one NaN, and a nameless series.
fn fill(db: &Db) {
    let mut app = db.appender();
    for h in ["a", "b"] {
        let l = Labels::metric("m", [("h", h)]).unwrap();
        for i in 0..60 {
            let v = if h == "b" && i == 7 { f64::NAN } else { i as f64 * 0.5 };
            app.append_labels(&l, DAY0 + i * 60_000, v).unwrap();
        }
    }
    app.append_labels(&Labels::from_pairs([("job", "x")]).unwrap(), DAY0, 1.0).unwrap();
    app.commit().unwrap();
}

#[test]
fn query_stats_and_export_through_a_server_match_the_local_path() {
    let _serial = cli_support::serial();
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), cli_support::keep_all()).unwrap();
    fill(&db);
    db.close().unwrap();
    let server = server_util::start_with(server_util::opts(), strata::server::Limits::default(), Some("s3cret"));
    fill(&server.db);
    let url = format!("http://{}", server.addr);
    let token = server.dir.path().join("token");
    let (d, t) = (dir.path().to_str().unwrap(), token.to_str().unwrap());
    let both = |args: &[&str]| {
        let mut local = args.to_vec();
        local.extend(["--data", d]);
        let mut remote = args.to_vec();
        remote.extend(["--url", &url, "--token-file", t]);
        (ok(&local), ok(&remote))
    };
    let range = ["--start", "2026-01-01T00:10:00Z", "--end", "2026-01-01T00:40:00Z"];
    for extra in [
        vec![],
        vec!["--json"],
        vec!["--csv"],
        vec!["--step", "15m", "--agg", "count", "--json"],
        vec!["--step", "10m", "--agg", "max", "--group-by", "h"],
        vec!["--agg", "avg", "--group-by", "h", "--json"],
        vec!["--agg", "quantile", "--quantile", "0.5", "--step", "30m", "--top-k", "1"],
    ] {
        let mut args = vec!["query", "m{h=~\"a|b\"}"];
        args.extend(range);
        args.extend(extra.iter().copied());
        let (local, remote) = both(&args);
        assert_eq!(local, remote, "{args:?}");
        assert!(!local.contains("no series matched"), "{args:?}: {local}");
    }

    for format in ["json", "csv", "prometheus"] {
        let (local, remote) = both(&["export", "--format", format]);
        assert_eq!(local, remote, "{format}");
        assert_eq!(local.lines().filter(|l| l.contains("job")).count(), 1, "{format}: the nameless series");
        let (local, remote) = both(&["export", "--format", format, "--match", "m{h=\"b\"}", "--start", range[1]]);
        assert_eq!(local, remote, "{format} with a match and a start");
    }

    let (local, remote) = both(&["stats", "--json"]);
    let (l, r) = (json(&local), json(&remote));
    for k in ["series", "samples", "oldest", "newest"] {
        assert_eq!(l[k], r[k], "{k}");
    }
    assert_eq!(r["series"], 3);
    assert_eq!(r["samples"], 121);

    // Without the token the server's refusal is shown, for a PromQL expression too.
    let e = fails(&["stats", "--url", &url]);
    assert!(e.contains("answered 401"), "{e}");
    let e = fails(&["query", "rate(m[5m])", "--url", &url]);
    assert!(e.contains("401"), "{e}");
}

#[test]
fn flag_names_are_the_same_everywhere() {
    // --target stays an alias of load's --url, --auth-token-file of --token-file.
    assert!(fails(&["load", "--url", "ftp://x"]).contains("invalid --url"));
    assert!(fails(&["load", "--target", "ftp://x"]).contains("invalid --url"));
    let e = fails(&["dashboard", "--url", "http://127.0.0.1:1", "--auth-token-file", "/nonexistent/t", "--once"]);
    assert!(e.contains("/nonexistent/t"), "{e}");
    let e = fails(&["query", "m", "--url", "http://127.0.0.1:1", "--auth-token-file", "/nonexistent/t"]);
    assert!(e.contains("/nonexistent/t"), "{e}");
}
