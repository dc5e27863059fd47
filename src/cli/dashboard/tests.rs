//! The dashboard over a real database: a snapshot collected from data written
//! here, rendered with ratatui's `TestBackend`. Every expected figure is computed
//! in this file from the values the test wrote, not by the code under test.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;
use strata::{Db, Labels, Options, RetentionPolicy, TierDurations};

use super::alert::{Alert, Level};
use super::source::{Snapshot, Source};
use super::view::{num, render};

/// 2025-12-03T12:00:00Z: the newest sample; the data ends in the past, so the
/// dashboard's windows end here.
const END: i64 = 1_764_763_200_000;
/// Samples are 7 s apart: no sample sits exactly on a 5-minute window's start.
const STEP: i64 = 7_000;
const N: i64 = 60;
const HOUR: i64 = 3_600_000;

/// `task_duration_seconds` of job `api` at `END - k * STEP`: rising from 0.1 to 6.0.
fn api(k: i64) -> f64 {
    0.1 * (N - k) as f64
}

/// Of job `batch`: 1, 2 or 3.
fn batch(k: i64) -> f64 {
    1.0 + ((N - 1 - k) % 3) as f64
}

/// Counters: 50 requests and 4 errors per step, from large starting values (so
/// `rate` extrapolates both alike and the ratio is 4 / 50).
fn requests(k: i64) -> f64 {
    10_000.0 + 50.0 * (N - k) as f64
}
fn errors(k: i64) -> f64 {
    1_000.0 + 4.0 * (N - k) as f64
}

fn write(dir: &std::path::Path) -> Db {
    let db =
        Db::open(dir, Options::default().retention(RetentionPolicy::new(TierDurations::forever()).unwrap())).unwrap();
    let mut app = db.appender();
    let l = |name: &str, job: &str| Labels::from_pairs([("__name__", name), ("job", job)]).unwrap();
    for k in (0..N).rev() {
        let ts = END - k * STEP;
        app.append_labels(&l("task_duration_seconds", "api"), ts, api(k)).unwrap();
        app.append_labels(&l("task_duration_seconds", "batch"), ts, batch(k)).unwrap();
        app.append_labels(&l("requests_total", "web"), ts, requests(k)).unwrap();
        app.append_labels(&l("errors_total", "web"), ts, errors(k)).unwrap();
    }
    app.commit().unwrap();
    db
}

/// Linear interpolation between closest ranks, as Prometheus's quantile_over_time.
fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let h = q * (v.len() - 1) as f64;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

fn collect(dir: &std::path::Path, alerts: &[Alert], metric: usize, window: i64) -> Snapshot {
    let mut src = Source::Local { db: write(dir), dir: "d".into() };
    // `now` is long after the data: the windows end at the newest sample.
    src.collect(alerts, metric, window, END + 30 * 24 * HOUR).unwrap()
}

fn draw(snap: &Snapshot, alerts: &[Alert]) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
    t.draw(|f| render(f, snap, alerts, 5)).unwrap();
    t.backend().buffer().clone()
}

fn row(b: &Buffer, y: u16) -> String {
    (0..b.area.width).map(|x| b[(x, y)].symbol().to_string()).collect()
}

/// Column and row of `text`'s first character on screen.
fn find(b: &Buffer, text: &str) -> Option<(u16, u16)> {
    (0..b.area.height).find_map(|y| {
        let r = row(b, y);
        r.find(text).map(|byte| (r[..byte].chars().count() as u16, y))
    })
}

fn screen(b: &Buffer) -> String {
    (0..b.area.height).map(|y| row(b, y).trim_end().to_string() + "\n").collect()
}

#[test]
fn summary_panel_shows_the_selected_metrics_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    // Metrics sort by name: errors_total, requests_total, task_duration_seconds.
    let snap = collect(dir.path(), &[], 2, HOUR);
    assert_eq!(snap.selected_metric(), Some("task_duration_seconds"));
    let all: Vec<f64> = (0..N).flat_map(|k| [api(k), batch(k)]).collect();
    let (min, max) = (0.1 * 1.0, 6.0);
    let avg = all.iter().sum::<f64>() / all.len() as f64;
    let (p50, p95, p99) = (quantile(all.clone(), 0.5), quantile(all.clone(), 0.95), quantile(all.clone(), 0.99));

    let b = draw(&snap, &[]);
    let s = screen(&b);
    assert!(s.contains(" task_duration_seconds: last 1h, 2 series "), "{s}");
    let want = format!(
        "count 120 │ min {} │ avg {} │ p50 {} │ p95 {} │ p99 {} │ max {}",
        num(min),
        num(avg),
        num(p50),
        num(p95),
        num(p99),
        num(max)
    );
    assert!(s.contains(&want), "want {want:?} in\n{s}");
    // By hand: 120 values, h = 0.99 * 119 = 117.81 between the 118th (5.8) and 119th (5.9).
    assert!(s.contains("p99 5.881 │ max 6"), "{s}");

    // A window of 70 s ends with the newest sample and starts just after the
    // sample 70 s older: it holds the last 10 samples of each series.
    let dir = tempfile::tempdir().unwrap();
    let snap = collect(dir.path(), &[], 2, 70_000);
    let recent: Vec<f64> = (0..10).flat_map(|k| [api(k), batch(k)]).collect();
    let s = screen(&draw(&snap, &[]));
    assert!(s.contains(" task_duration_seconds: last 1m10s, 2 series "), "{s}");
    assert!(s.contains("count 20 │ min 1 │"), "{s}");
    assert!(s.contains(&format!("p99 {} │ max 6", num(quantile(recent, 0.99)))), "{s}");
}

#[test]
fn alerts_on_a_percentile_and_a_ratio_are_graded_and_coloured() {
    let alerts: Vec<Alert> = [
        "p99(task_duration_seconds[5m]) > 5",
        "rate(errors_total[5m]) / rate(requests_total[5m]) > 0.05:0.1",
        "task_duration_seconds{job=\"batch\"} > 10",
        "p50(missing_metric[5m]) > 1",
    ]
    .iter()
    .map(|a| Alert::parse(a).unwrap())
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let snap = collect(dir.path(), &alerts, 2, HOUR);

    // The last 5 minutes, both ends inclusive: k * 7 s <= 300 s, so k = 0..=42.
    let window = |f: fn(i64) -> f64| (0..=42).map(f).collect::<Vec<f64>>();
    let p99_api = quantile(window(api), 0.99);
    let p99_batch = quantile(window(batch), 0.99);
    assert!(p99_api > p99_batch);
    let [p, r, latest, none] = &snap.alerts[..] else { panic!("{:?}", snap.alerts) };
    assert_eq!(p.level, Level::Critical, "{p:?}");
    assert!((p.value.unwrap() - p99_api).abs() < 1e-9, "{p:?} vs {p99_api}");
    assert_eq!(p.series.as_deref(), Some("{job=\"api\"}"));
    // Both counters grow by the same factor over the same samples: 4 / 50.
    let ratio = (errors(0) - errors(42)) / (requests(0) - requests(42));
    assert_eq!(r.level, Level::Warning, "{r:?}");
    assert!((r.value.unwrap() - ratio).abs() < 1e-12 && (ratio - 0.08).abs() < 1e-12, "{r:?}");
    assert_eq!((latest.level, latest.value), (Level::Ok, Some(batch(0))));
    assert_eq!((none.level, none.value, &none.error), (Level::NoData, None, &None));

    let b = draw(&snap, &alerts);
    let s = screen(&b);
    for (text, colour) in [
        (format!("● CRIT p99(task_duration_seconds[5m]) > 5  {} at {{job=\"api\"}}", num(p99_api)), Color::Red),
        ("● WARN rate(errors_total[5m]) / rate(requests_total[5m]) > 0.05:0.1  0.08".to_string(), Color::Yellow),
        (
            "● OK   task_duration_seconds{job=\"batch\"} > 10  3 at task_duration_seconds{job=\"batch\"}".into(),
            Color::Green,
        ),
        ("● ---- p50(missing_metric[5m]) > 1  no data".into(), Color::DarkGray),
    ] {
        let (x, y) = find(&b, &text).unwrap_or_else(|| panic!("{text:?} in\n{s}"));
        assert_eq!(b[(x, y)].fg, colour, "{text}");
        assert_eq!(b[(x + 7, y)].fg, colour, "the alert's text is coloured too: {text}");
    }
    // The selected metric has a critical alert: its p99 figure is red.
    let (x, y) = find(&b, "p99 5.881").unwrap();
    assert_eq!(b[(x + 4, y)].fg, Color::Red);
}

#[test]
fn an_alert_that_cannot_be_evaluated_says_why() {
    // Both sides have two series with equal labels once the name is dropped:
    // many-to-many matching is an execution error, found only when evaluating.
    let alerts = vec![Alert::parse("task_duration_seconds / ignoring(job) task_duration_seconds > 1").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let snap = collect(dir.path(), &alerts, 0, HOUR);
    let a = &snap.alerts[0];
    assert_eq!(a.level, Level::NoData);
    assert!(a.error.as_deref().is_some_and(|e| e.contains("many-to-many")), "{a:?}");
    let b = draw(&snap, &alerts);
    let (x, y) = find(&b, "● ERR  task_duration_seconds / ignoring(job)").expect("an ERR line");
    assert_eq!(b[(x, y)].fg, Color::Magenta);
    assert!(row(&b, y).contains("cannot evaluate: execution: "), "{}", row(&b, y));
}

#[test]
fn formats_numbers_in_six_significant_digits_or_as_integers() {
    for (v, s) in [
        (95.05000000000001, "95.05"),
        (0.08000000000000002, "0.08"),
        (512.0, "512"),
        (5.881, "5.881"),
        (1234567.0, "1234567"),
        (1234567.89, "1234568"),
        (0.00012345678, "0.000123457"),
        (1.5e-7, "1.5e-7"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (f64::NAN, "NaN"),
        (f64::NEG_INFINITY, "-Inf"),
    ] {
        assert_eq!(num(v), s, "{v}");
    }
}
