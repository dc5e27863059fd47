//! What the dashboard shows, collected into a [`Snapshot`] from a [`Source`]: a
//! database opened here, or a server's HTTP API (`remote.rs`). The view renders
//! snapshots only, so it neither knows nor cares where they came from.
//!
//! Windows end at the newest sample when that is in the past (a directory being
//! inspected offline), else now; the rate is samples per second of data time over
//! the last 5 minutes of that window, and expression alerts are evaluated at its
//! last millisecond.

use strata::{Db, Matcher, Summary, METRIC_NAME};

use super::alert::{value_pairs, Alert, Level, Target};
use super::remote::HttpSource;
use crate::cli::{summary, CliResult};

pub const MINUTE: i64 = 60_000;
pub const RATE_WINDOW: i64 = 5 * MINUTE;
pub const HOUR_BUCKETS: usize = 60;
pub const DAY_BUCKETS: usize = 96;
pub const TOP: usize = 10;

/// Where snapshots come from.
pub enum Source {
    /// A data directory, opened (and locked) by the dashboard; `dir` is for display.
    Local { db: Db, dir: String },
    /// A running server (`--url`).
    Remote(HttpSource),
}

impl Source {
    /// The directory or URL, for the title and messages.
    pub fn label(&self) -> &str {
        match self {
            Source::Local { dir, .. } => dir,
            Source::Remote(h) => h.url(),
        }
    }

    /// Metric names with their series counts, sorted by name.
    pub fn metrics(&self) -> CliResult<Vec<(String, usize)>> {
        match self {
            Source::Local { db, .. } => Ok(db.series_per_value(METRIC_NAME)),
            Source::Remote(h) => h.metrics(),
        }
    }

    /// Collects a snapshot; `selected` indexes the metric names (wrapped), and
    /// the selected metric is summarised over the last `window` ms.
    pub fn collect(&mut self, alerts: &[Alert], selected: usize, window: i64, now: i64) -> CliResult<Snapshot> {
        match self {
            Source::Local { db, dir } => collect(db, dir, alerts, selected, window, now),
            Source::Remote(h) => h.collect(alerts, selected, window, now),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TopSeries {
    pub series: String,
    /// Samples per second over the rate window.
    pub rate: f64,
    pub last: f64,
}

#[derive(Debug, Clone)]
pub struct AlertState {
    pub text: String,
    pub level: Level,
    /// The worst value, and the series that has it (none for a scalar or a
    /// series without labels).
    pub value: Option<f64>,
    pub series: Option<String>,
    /// Why the alert could not be evaluated (its level is then `NoData`).
    pub error: Option<String>,
}

/// count/min/avg/p50/p95/p99/max of every sample of the selected metric over the
/// last `window` ms of the data, all its series together.
#[derive(Debug, Clone, Copy)]
pub struct MetricSummary {
    pub window: i64,
    pub series: usize,
    pub stats: Summary,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub dir: String,
    /// End (exclusive) of the windows, ms.
    pub window_end: i64,
    /// The data ends well before now.
    pub stale: bool,
    pub series: u64,
    pub samples: u64,
    pub disk_bytes: u64,
    pub bytes_per_sample: Option<f64>,
    pub head_bytes: u64,
    pub wal_bytes: u64,
    pub rate: f64,
    /// Metric names with their series counts.
    pub metrics: Vec<(String, usize)>,
    pub selected: usize,
    /// Mean over the selected metric's series: per minute of the last hour, per 15 minutes of the last day.
    pub hour: Vec<Option<f64>>,
    pub day: Vec<Option<f64>>,
    pub top: Vec<TopSeries>,
    /// Of the selected metric; `None` when there is no metric.
    pub summary: Option<MetricSummary>,
    pub alerts: Vec<AlertState>,
    /// Why the latest refresh failed (or what is wrong with the source); the
    /// rest of the snapshot is then the last one that succeeded.
    pub error: Option<String>,
}

impl Snapshot {
    pub fn selected_metric(&self) -> Option<&str> {
        self.metrics.get(self.selected).map(|(n, _)| n.as_str())
    }

    /// The level of the worst alert that reads a metric by name.
    pub fn metric_level(&self, alerts: &[Alert], metric: &str) -> Option<Level> {
        alerts
            .iter()
            .zip(&self.alerts)
            .filter(|(a, _)| a.metrics.iter().any(|m| m == metric))
            .map(|(_, s)| s.level)
            .max()
    }
}

/// Collects a snapshot from a database; `selected` indexes the metric names (wrapped).
fn collect(db: &Db, dir: &str, alerts: &[Alert], selected: usize, window: i64, now: i64) -> CliResult<Snapshot> {
    let st = db.stats()?;
    let end = st.newest.map_or(now, |n| n.min(now)) + 1;
    let metrics = db.series_per_value(METRIC_NAME);
    let selected = if metrics.is_empty() { 0 } else { selected % metrics.len() };
    let mut snap = Snapshot {
        dir: dir.to_string(),
        window_end: end,
        stale: end < now - RATE_WINDOW,
        series: st.series,
        samples: st.samples(),
        disk_bytes: st.disk_bytes.iter().sum(),
        bytes_per_sample: (st.segment_samples[0] > 0).then(|| st.disk_bytes[0] as f64 / st.segment_samples[0] as f64),
        head_bytes: st.head_bytes,
        wal_bytes: st.wal_bytes,
        metrics,
        selected,
        ..Default::default()
    };
    if let Some(name) = snap.selected_metric().map(str::to_string) {
        (snap.hour, snap.day) = sparklines(db, &name, end)?;
        let r = summary::local(db, &[Matcher::eq(METRIC_NAME, name)], end - window, end - 1)?;
        snap.summary = Some(MetricSummary { window, series: r.series.len(), stats: r.overall });
    }
    (snap.top, snap.rate) = top_series(db, end)?;
    snap.alerts = alerts
        .iter()
        .map(|a| match &a.target {
            Target::Latest(m) => {
                let latest = db.latest(m)?;
                Ok(alert_state(a, Ok(latest.into_iter().map(|(l, s)| (l.to_string(), s.value)).collect())))
            }
            Target::Expr(e) => {
                let v = db.promql_instant(e, end - 1).map_err(|e| e.to_string()).and_then(value_pairs);
                Ok(alert_state(a, v))
            }
        })
        .collect::<CliResult<_>>()?;
    Ok(snap)
}

/// An alert graded by the values it looks at (`(series, value)`; an empty
/// series name stands for none), or carrying why they could not be had.
pub fn alert_state(a: &Alert, values: Result<Vec<(String, f64)>, String>) -> AlertState {
    let values = match values {
        Ok(v) => v,
        Err(e) => {
            return AlertState { text: a.text.clone(), level: Level::NoData, value: None, series: None, error: Some(e) }
        }
    };
    let value = a.worst(values.iter().map(|(_, v)| *v));
    let series =
        value.and_then(|v| values.into_iter().find(|(_, x)| *x == v).map(|(l, _)| l)).filter(|l| !l.is_empty());
    AlertState { text: a.text.clone(), level: a.level(value), value, series, error: None }
}

/// Per-bucket means of one metric over the last hour and the last day.
pub type Buckets = Vec<Option<f64>>;

fn sparklines(db: &Db, metric: &str, end: i64) -> CliResult<(Buckets, Buckets)> {
    let day_start = end - 24 * 60 * MINUTE;
    let hour_start = end - 60 * MINUTE;
    let mut hour = vec![(0.0f64, 0u32); HOUR_BUCKETS];
    let mut day = vec![(0.0f64, 0u32); DAY_BUCKETS];
    let q = db.querier(day_start..end);
    for item in q.select(&[Matcher::eq(METRIC_NAME, metric)])? {
        for s in item?.1.filter(|s| s.value.is_finite()) {
            let d = ((s.ts - day_start) / (15 * MINUTE)) as usize;
            if let Some(b) = day.get_mut(d) {
                *b = (b.0 + s.value, b.1 + 1);
            }
            if s.ts >= hour_start {
                if let Some(b) = hour.get_mut(((s.ts - hour_start) / MINUTE) as usize) {
                    *b = (b.0 + s.value, b.1 + 1);
                }
            }
        }
    }
    let mean = |v: Vec<(f64, u32)>| v.into_iter().map(|(s, n)| (n > 0).then(|| s / f64::from(n))).collect();
    Ok((mean(hour), mean(day)))
}

/// The series with the most samples per second over the rate window (ties: the
/// highest latest value), and the total rate.
fn top_series(db: &Db, end: i64) -> CliResult<(Vec<TopSeries>, f64)> {
    let secs = (RATE_WINDOW / 1000) as f64;
    let q = db.querier(end - RATE_WINDOW..end);
    let mut all: Vec<TopSeries> = Vec::new();
    let mut total = 0u64;
    for item in q.select(&[Matcher::regex(METRIC_NAME, ".+")?])? {
        let (labels, samples) = item?;
        let samples: Vec<strata::Sample> = samples.collect();
        total += samples.len() as u64;
        all.push(TopSeries {
            series: labels.to_string(),
            rate: samples.len() as f64 / secs,
            last: samples.last().map_or(f64::NAN, |s| s.value),
        });
    }
    all.sort_by(|a, b| b.rate.total_cmp(&a.rate).then(b.last.total_cmp(&a.last)));
    all.truncate(TOP);
    Ok((all, total as f64 / secs))
}
