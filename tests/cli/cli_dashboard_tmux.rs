//! `strata dashboard` in a real terminal: the binary runs in a detached tmux
//! session of 120×40 (a private tmux server, its socket in the test's temporary
//! directory), and the test reads the screen with `tmux capture-pane -p`, prints
//! it, and checks the metric's percentile panel and the alerts on it. Then `j`
//! switches the metric and `q` quits with status 0.
//!
//! Without tmux the test skips, unless `STRATA_REQUIRE_EXTERNAL=1` (which
//! `.ci/run` sets, after installing tmux): then it fails.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::cli_support::{keep_all, serial};
use crate::support::{external_binary, external_required, output};
use strata::{Db, Labels};

/// 2025-12-03T12:00:00Z, the newest sample: the dashboard's windows end there.
const END: i64 = 1_764_763_200_000;
/// 7 s apart, so no sample sits exactly on a 5-minute window's start.
const STEP: i64 = 7_000;
const N: i64 = 60;

/// Job `api` rises 0.1, 0.2, … 6.0 s; job `batch` cycles 1, 2, 3 s. The
/// counters grow by 50 requests and 4 errors per sample.
fn write(dir: &Path) {
    let db = Db::open(dir, keep_all()).unwrap();
    let mut app = db.appender();
    let l = |name: &str, job: &str| Labels::metric(name, [("job", job)]).unwrap();
    for i in 0..N {
        let ts = END - (N - 1 - i) * STEP;
        app.append_labels(&l("task_duration_seconds", "api"), ts, 0.1 * (i + 1) as f64).unwrap();
        app.append_labels(&l("task_duration_seconds", "batch"), ts, 1.0 + (i % 3) as f64).unwrap();
        app.append_labels(&l("requests_total", "web"), ts, 10_000.0 + 50.0 * i as f64).unwrap();
        app.append_labels(&l("errors_total", "web"), ts, 1_000.0 + 4.0 * i as f64).unwrap();
    }
    app.commit().unwrap();
    db.close().unwrap();
}

/// Prometheus's quantile: linear interpolation between the closest ranks.
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let h = q * (v.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

/// A value as the dashboard shows numbers between 1 and 10: at most 5 decimals.
fn shown(v: f64) -> String {
    let s = format!("{v:.5}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A tmux server of this test's own; killed however the test ends.
struct Tmux {
    bin: PathBuf,
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-S").arg(&self.socket).args(args).env_remove("TMUX");
        output(&mut cmd).expect("tmux runs")
    }

    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "dash"]).stdout).into_owned()
    }

    /// The screen with its colours, as escape sequences (`capture-pane -e`).
    fn capture_colours(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-e", "-t", "dash"]).stdout).into_owned()
    }

    /// Captures until `done` holds (the dashboard draws within a second or so;
    /// a slow machine gets up to 60 s), and returns the last capture either way.
    fn capture_until(&self, done: impl Fn(&str) -> bool) -> String {
        let mut screen = String::new();
        for _ in 0..240 {
            screen = self.capture();
            if done(&screen) {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn the_dashboard_draws_percentiles_and_alerts_in_tmux() {
    let Some(bin) = external_binary("tmux", "STRATA_TMUX") else {
        assert!(
            !external_required(),
            "cli_dashboard_tmux cannot run: tmux is not on PATH; STRATA_REQUIRE_EXTERNAL is set, so this fails \
             (Debian: apt-get install tmux)"
        );
        eprintln!("SKIPPED cli_dashboard_tmux: tmux is not on PATH (Debian: apt-get install tmux)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        // The Db is closed before the dashboard opens the directory.
        let _serial = serial();
        write(&data);
    }
    let tmux = Tmux { bin, socket: dir.path().join("tmux.sock") };
    let strata = env!("CARGO_BIN_EXE_strata");
    let data_arg = data.to_str().unwrap();
    let p99_alert = "p99(task_duration_seconds[5m]) > 5";
    let ratio_alert = "rate(errors_total[5m]) / rate(requests_total[5m]) > 0.05:0.1";
    // The dashboard runs under sh, which records its exit status in a file: tmux's own
    // `pane_dead_status` is not always filled in (tmux 3.3).
    let status = dir.path().join("status");
    let args = [
        strata,
        "dashboard",
        "--data",
        data_arg,
        "--metric",
        "task_duration_seconds",
        "--refresh",
        "1h",
        "--alert",
        p99_alert,
        "--alert",
        ratio_alert,
        "--alert",
        "task_duration_seconds{job=\"batch\"} > 10",
    ];
    let quoted: Vec<String> = args.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let script = dir.path().join("run.sh");
    std::fs::write(&script, format!("{}\necho $? > '{}'\n", quoted.join(" "), status.display())).unwrap();
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        "dash",
        "sh",
        script.to_str().unwrap(),
        ";",
        "set-option",
        "-t",
        "dash",
        "remain-on-exit",
        "on",
    ]);
    assert!(started.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&started.stderr));

    let screen = tmux.capture_until(|s| s.contains("q: quit") && s.contains("● OK"));
    println!("--- tmux capture-pane -p (120x40) ---\n{screen}--- end of capture ---");

    // Every sample of the metric (the window, 1h, holds them all).
    let all: Vec<f64> = (0..N).flat_map(|i| [0.1 * (i + 1) as f64, 1.0 + (i % 3) as f64]).collect();
    let (p50, p95, p99) = (quantile(all.clone(), 0.5), quantile(all.clone(), 0.95), quantile(all, 0.99));
    assert_eq!((shown(p50), shown(p95), shown(p99)), ("2.05".into(), "5.405".into(), "5.881".into()));
    assert!(screen.contains(" task_duration_seconds: last 1h, 2 series "), "{screen}");
    let panel = format!(
        "count 120 │ min 0.1 │ avg 2.525 │ p50 {} │ p95 {} │ p99 {} │ max 6",
        shown(p50),
        shown(p95),
        shown(p99)
    );
    assert!(screen.contains(&panel), "want {panel:?}:\n{screen}");

    // The p99 over the last 5 minutes (samples i = 17..=59 of job api) is over 5:
    // critical. The error ratio is 4/50 = 0.08, between 0.05 and 0.1: warning.
    let p99_api = quantile((17..N).map(|i| 0.1 * (i + 1) as f64).collect(), 0.99);
    let crit = format!("● CRIT {p99_alert}  {} at {{job=\"api\"}}", shown(p99_api));
    assert!(screen.contains(&crit), "want {crit:?}:\n{screen}");
    assert!(screen.contains(&format!("● WARN {ratio_alert}  0.08")), "{screen}");
    assert!(screen.contains("● OK   task_duration_seconds{job=\"batch\"} > 10  3 at"), "{screen}");
    assert!(screen.lines().count() >= 39 && screen.lines().next().unwrap().contains("Strata dashboard"), "{screen}");

    // The colours the terminal got: red, yellow, green (ANSI colours 1, 3, 2),
    // whether tmux writes them as 256-colour indexes or as basic SGR codes.
    let coloured = tmux.capture_colours();
    for (n, word) in [(1, "CRIT"), (3, "WARN"), (2, "OK  ")] {
        let (indexed, basic) = (format!("\x1b[38;5;{n}m● {word} "), format!("\x1b[3{n}m● {word} "));
        assert!(coloured.contains(&indexed) || coloured.contains(&basic), "{word} in colour {n}:\n{coloured:?}");
    }

    // `j` moves to the next metric (wrapping to the first): errors_total.
    tmux.run(&["send-keys", "-t", "dash", "j"]);
    let screen = tmux.capture_until(|s| s.contains(" errors_total: last 1h, 1 series "));
    assert!(screen.contains(" errors_total: last 1h, 1 series "), "after j:\n{screen}");
    assert!(screen.contains("count 60 │ min 1000 │"), "after j:\n{screen}");

    // `q` quits cleanly.
    tmux.run(&["send-keys", "-t", "dash", "q"]);
    let mut code = String::new();
    for _ in 0..240 {
        code = std::fs::read_to_string(&status).unwrap_or_default().trim().to_string();
        if !code.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(code, "0", "the dashboard exits with status 0 on q");
}
