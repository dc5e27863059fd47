//! `strata load` as seed 004's generator was used: JSON to `/metrics/ingest`
//! (`--protocol ingest`), one `--metric` following a `--pattern`, paced to the wall
//! clock (`--realtime`), bare numbers of seconds for `--duration` and `--interval`,
//! against a real server; and a run without `--duration` stopped by SIGTERM.
#![cfg(all(feature = "cli", feature = "server"))]

use crate::support::cli_support::{self, json};
use crate::support::server_util::{start, TestServer};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strata::Matcher;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// (labels, timestamps, values) of every series named `metric`.
fn stored(s: &TestServer, metric: &str) -> Vec<(String, Vec<i64>, Vec<f64>)> {
    let q = s.db.querier(i64::MIN..i64::MAX);
    let mut out = Vec::new();
    for r in q.select(&[Matcher::eq("__name__", metric)]).unwrap() {
        let (l, it) = r.unwrap();
        let (ts, vs): (Vec<i64>, Vec<f64>) = it.map(|p| (p.ts, p.value)).unzip();
        out.push((l.to_string(), ts, vs));
    }
    out
}

#[test]
fn the_seed_generator_command_runs_in_real_time_through_json_ingest() {
    let s = start();
    let url = format!("http://{}", s.addr);
    let before = now_ms();
    let t = Instant::now();
    // The seed's `--duration 300 --interval 5`, shortened to 3 s of 1 s steps.
    let r = json(&cli_support::ok(&[
        "load",
        "--target",
        &url,
        "--protocol",
        "ingest",
        "--metric",
        "cpu_usage",
        "--pattern",
        "sine_wave",
        "--duration",
        "3",
        "--interval",
        "1",
        "--realtime",
        "--json",
    ]));
    let took = t.elapsed();
    assert_eq!((r["series"].as_u64(), r["samples"].as_u64(), r["steps"].as_u64()), (Some(1), Some(3), Some(3)), "{r}");
    assert_eq!(r["realtime"], true);
    // Paced: the first sample is stamped with the second just passed, and each
    // later one is sent once the clock reaches its stamp, so the third waited
    // more than a second.
    assert!(took > Duration::from_secs(1), "took {took:?}");
    let got = stored(&s, "cpu_usage");
    assert_eq!(got.len(), 1, "{got:?}");
    let (labels, ts, values) = &got[0];
    assert_eq!(labels, "cpu_usage{host=\"host_0\",pattern=\"sine_wave\"}");
    assert_eq!(ts.len(), 3);
    assert!(ts.windows(2).all(|w| w[1] - w[0] == 1000), "{ts:?}");
    assert!(ts[0] > before - 1000 && ts[2] <= now_ms(), "{ts:?} not within the run");
    assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
}

#[test]
fn realtime_without_duration_runs_until_sigterm_and_reports() {
    let s = start();
    let url = format!("http://{}", s.addr);
    let child = crate::support::spawn(
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["load", "--target", &url, "--protocol", "ingest", "--pattern", "noise", "--series", "3"])
            .args(["--metric", "rt", "--interval", "500ms", "--realtime", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    // Wait for a few intervals' samples to arrive, then stop it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored(&s, "rt").iter().map(|x| x.1.len()).sum::<usize>() < 9 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(crate::support::status(Command::new("kill").args(["-TERM", &pid])).unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = json(&String::from_utf8_lossy(&out.stdout));
    let got = stored(&s, "rt");
    assert_eq!(got.len(), 3);
    let total: usize = got.iter().map(|x| x.1.len()).sum();
    // Every sample it reports was stored, and nothing else.
    assert_eq!(r["samples"].as_u64(), Some(total as u64), "{r}");
    assert!(total >= 9, "{total}");
    assert!(got.iter().all(|x| x.1.windows(2).all(|w| w[1] - w[0] == 500)), "{got:?}");
}

#[test]
fn pattern_and_realtime_arguments_are_checked() {
    let fails = cli_support::fails;
    let usage = cli_support::strata(&["load", "--pattern", "square"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(cli_support::stderr(&usage).contains("expected one of noise, sine_wave"));
    let both = cli_support::strata(&["load", "--pattern", "noise", "--workload", "spike"]);
    assert_eq!(both.status.code(), Some(2), "--pattern and --workload conflict");
    let late = cli_support::strata(&["load", "--realtime", "--backfill", "1d"]);
    assert_eq!(late.status.code(), Some(2), "--realtime and --backfill conflict");
    assert!(fails(&["load", "--target", "http://127.0.0.1:1", "--interval", "5", "--duration", "4"])
        .contains("at least one --interval"));
}
