//! Strata's own metrics (`GET /metrics`) in the Prometheus text exposition format:
//! ingest counters by protocol, HTTP requests by route and status, query latency,
//! and the engine's WAL, head and segment figures read at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::error::{ApiResult, ErrorMessage};
use super::exec::run_read;
use super::values::prom_label_value;
use super::Shared;

/// A write path, for the ingest counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Json,
    Influx,
    RemoteWrite,
    Import,
    Otlp,
}

const PROTOCOLS: [(Protocol, &str); 5] = [
    (Protocol::Json, "json"),
    (Protocol::Influx, "influx"),
    (Protocol::RemoteWrite, "remote_write"),
    (Protocol::Import, "import"),
    (Protocol::Otlp, "otlp"),
];

/// A read path, for the query latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryKind {
    Query,
    Rollup,
    Raw,
    RemoteRead,
    Export,
    Promql,
    Summary,
}

const QUERY_KINDS: [(QueryKind, &str); 7] = [
    (QueryKind::Query, "query"),
    (QueryKind::Rollup, "rollup"),
    (QueryKind::Raw, "raw"),
    (QueryKind::RemoteRead, "remote_read"),
    (QueryKind::Export, "export"),
    (QueryKind::Promql, "promql"),
    (QueryKind::Summary, "summary"),
];

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];

#[derive(Default)]
struct Histogram {
    /// Cumulative in rendering only; each slot counts observations in its own bucket.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS.iter().position(|&b| s <= b).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

#[derive(Default)]
pub(crate) struct Metrics {
    ingested: [AtomicU64; PROTOCOLS.len()],
    influx_string_fields: AtomicU64,
    stream_dropped: AtomicU64,
    /// (route pattern, status) -> requests. Routes are patterns, so the set is bounded.
    http: Mutex<BTreeMap<(String, u16), u64>>,
    queries: [Histogram; QUERY_KINDS.len()],
}

impl Metrics {
    pub fn ingested(&self, p: Protocol, samples: u64) {
        let i = PROTOCOLS.iter().position(|(q, _)| *q == p).unwrap_or(0);
        self.ingested[i].fetch_add(samples, Ordering::Relaxed);
    }

    pub fn skipped_string_fields(&self, n: u64) {
        self.influx_string_fields.fetch_add(n, Ordering::Relaxed);
    }

    pub fn stream_dropped(&self, n: u64) {
        self.stream_dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn query(&self, k: QueryKind, d: Duration) {
        let i = QUERY_KINDS.iter().position(|(q, _)| *q == k).unwrap_or(0);
        self.queries[i].observe(d);
    }

    fn request(&self, route: String, status: u16) {
        *self.http.lock().entry((route, status)).or_insert(0) += 1;
    }
}

/// Middleware counting every response by route pattern and status, and logging every
/// refused one (4xx, 5xx) at debug level with the error message it carried.
pub(crate) async fn track(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().into());
    // Copied only when debug logging is on: this runs on every request.
    let seen = log::log_enabled!(log::Level::Debug).then(|| (req.method().clone(), req.uri().path().to_string()));
    let resp = next.run(req).await;
    let status = resp.status();
    if let (Some((method, path)), true) = (seen, status.as_u16() >= 400) {
        let msg = resp.extensions().get::<ErrorMessage>().map_or("-", |m| m.0.as_str());
        log::debug!("refused {method} {path}: {} {msg}", status.as_u16());
    }
    st.metrics.request(route, status.as_u16());
    resp
}

/// `GET /metrics`.
pub(crate) async fn handler(State(st): State<Shared>) -> ApiResult {
    let db = st.db.clone();
    let (stats, wal) = run_read(move || Ok((db.stats()?, db.wal_stats()))).await?;
    let mut out = String::with_capacity(8 << 10);
    let m = &st.metrics;
    let mut w = Writer(&mut out);

    w.family("strata_ingested_samples_total", "counter", "Samples committed, by write protocol.");
    for (i, (_, name)) in PROTOCOLS.iter().enumerate() {
        w.sample("strata_ingested_samples_total", &[("protocol", name)], m.ingested[i].load(Ordering::Relaxed) as f64);
    }
    w.one(
        "strata_influx_string_fields_skipped_total",
        "counter",
        "Line-protocol string fields skipped (only numbers and booleans are stored).",
        m.influx_string_fields.load(Ordering::Relaxed) as f64,
    );

    w.family("strata_http_requests_total", "counter", "HTTP responses by route pattern and status.");
    for ((route, status), n) in m.http.lock().iter() {
        w.sample("strata_http_requests_total", &[("route", route), ("status", &status.to_string())], *n as f64);
    }

    w.family("strata_query_duration_seconds", "histogram", "Latency of reads, by endpoint.");
    for (i, (_, name)) in QUERY_KINDS.iter().enumerate() {
        let h = &m.queries[i];
        let mut cum = 0u64;
        for (j, le) in BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_string()]).enumerate() {
            cum += h.buckets[j].load(Ordering::Relaxed);
            w.sample("strata_query_duration_seconds_bucket", &[("endpoint", name), ("le", &le)], cum as f64);
        }
        let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        w.sample("strata_query_duration_seconds_sum", &[("endpoint", name)], sum);
        w.sample("strata_query_duration_seconds_count", &[("endpoint", name)], cum as f64);
    }

    w.one("strata_wal_fsyncs_total", "counter", "Data fsyncs of WAL files.", wal.fsyncs as f64);
    w.one("strata_wal_fsync_seconds_total", "counter", "Time spent in WAL fsyncs.", wal.fsync_nanos as f64 / 1e9);
    w.one(
        "strata_wal_last_fsync_seconds",
        "gauge",
        "Duration of the latest WAL fsync.",
        wal.last_fsync_nanos as f64 / 1e9,
    );
    w.one(
        "strata_wal_written_bytes_total",
        "counter",
        "Bytes written to the WAL since start.",
        wal.bytes_written as f64,
    );
    w.one("strata_wal_disk_bytes", "gauge", "Bytes of WAL files on disk.", stats.wal_bytes as f64);
    forward_metrics(&mut w, &st.forwarders.lock().iter().map(|f| f.stats()).collect::<Vec<_>>());
    w.one(
        "strata_writable",
        "gauge",
        "1 while the database accepts writes, 0 once poisoned.",
        f64::from(u8::from(wal.poisoned.is_none())),
    );

    w.one("strata_series", "gauge", "Series known to the index.", stats.series as f64);
    w.one("strata_head_series", "gauge", "Series in the head and frozen heads.", stats.head_series as f64);
    w.one(
        "strata_head_samples",
        "gauge",
        "Distinct samples in the head and frozen heads (one per series and timestamp).",
        stats.head_samples as f64,
    );
    w.one(
        "strata_head_samples_written",
        "gauge",
        "Samples appended to the head and frozen heads, overwrites counted again.",
        stats.head_samples_written as f64,
    );
    w.one("strata_head_bytes", "gauge", "Approximate heap bytes of the heads.", stats.head_bytes as f64);
    w.one("strata_frozen_heads", "gauge", "Heads waiting to be written as segments.", stats.frozen_heads as f64);
    w.one("strata_segments", "gauge", "Live segments, all tiers.", stats.segments as f64);
    w.family("strata_segment_samples", "gauge", "Samples in segments, by tier.");
    for (i, tier) in ["raw", "5m", "1h"].iter().enumerate() {
        w.sample("strata_segment_samples", &[("tier", tier)], stats.segment_samples[i] as f64);
    }
    w.family("strata_disk_bytes", "gauge", "Bytes of segment files, by tier.");
    for (i, tier) in ["raw", "5m", "1h"].iter().enumerate() {
        w.sample("strata_disk_bytes", &[("tier", tier)], stats.disk_bytes[i] as f64);
    }

    let streams = st.limits.max_streams.saturating_sub(st.streams.available_permits());
    w.one("strata_stream_subscribers", "gauge", "Open /stream subscriptions.", streams as f64);
    w.one(
        "strata_stream_dropped_samples_total",
        "counter",
        "Samples not delivered to /stream subscribers that fell behind.",
        m.stream_dropped.load(Ordering::Relaxed) as f64,
    );
    w.one("strata_uptime_seconds", "gauge", "Seconds since the server started.", st.started.elapsed().as_secs_f64());

    removals(&mut w, &st.db.removal_stats());
    query_cache(&mut w, &st.db.query_cache_stats());
    process_and_build(&mut w);

    let mut r = out.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(r)
}

// ---- What retention and deletion removed since start. ----

fn removals(w: &mut Writer, r: &crate::RemovalStats) {
    w.one(
        "strata_retention_removed_segments_total",
        "counter",
        "Segments retention removed whole or trimmed.",
        r.segments as f64,
    );
    w.family(
        "strata_retention_removed_items_total",
        "counter",
        "Samples (raw) and buckets (rollup tiers) retention removed.",
    );
    w.sample("strata_retention_removed_items_total", &[("kind", "samples")], r.samples as f64);
    w.sample("strata_retention_removed_items_total", &[("kind", "buckets")], r.buckets as f64);
    w.one("strata_retention_removed_bytes_total", "counter", "Segment bytes retention freed.", r.bytes as f64);
    w.family("strata_deleted_items_total", "counter", "Samples and buckets removed by delete_series.");
    w.sample("strata_deleted_items_total", &[("kind", "samples")], r.deleted_samples as f64);
    w.sample("strata_deleted_items_total", &[("kind", "buckets")], r.deleted_buckets as f64);
    let archive = [
        ("strata_archive_files_total", "Archive files written before retention removed raw data.", r.archived_files),
        ("strata_archive_rows_total", "Raw samples written to the archive.", r.archived_rows),
        ("strata_archive_bytes_total", "Bytes of archive files written.", r.archived_bytes),
        (
            "strata_archive_failures_total",
            "Retention removals skipped because their archive could not be written.",
            r.archive_failures,
        ),
    ];
    for (name, help, v) in archive {
        w.one(name, "counter", help, v as f64);
    }
}

// ---- The query cache (`Options::query_cache_bytes`). ----

fn query_cache(w: &mut Writer, c: &crate::QueryCacheStats) {
    let counters = [
        ("strata_query_cache_hits_total", "Query cache blocks answered from memory.", c.hits),
        ("strata_query_cache_misses_total", "Query cache blocks read from segments.", c.misses),
        ("strata_query_cache_evictions_total", "Query cache entries dropped to stay within the budget.", c.evictions),
        (
            "strata_query_cache_invalidations_total",
            "Query cache entries dropped because the segments under them changed.",
            c.invalidations,
        ),
        (
            "strata_query_cache_result_hits_total",
            "Bucketed queries that took the final part of their answer from the query cache.",
            c.result_hits,
        ),
        (
            "strata_query_cache_result_misses_total",
            "Bucketed queries the query cache was asked for and evaluated whole.",
            c.result_misses,
        ),
    ];
    for (name, help, v) in counters {
        w.one(name, "counter", help, v as f64);
    }
    w.one("strata_query_cache_bytes", "gauge", "Bytes the query cache holds.", c.bytes as f64);
    w.one("strata_query_cache_max_bytes", "gauge", "The query cache's budget in bytes; 0 = off.", c.max_bytes as f64);
}

// ---- Process and build figures (`process_*`, `strata_build_info`). ----
// Kept apart from the engine and request figures above, which may grow.

fn process_and_build(w: &mut Writer) {
    w.family("strata_build_info", "gauge", "Always 1; the labels describe this build.");
    w.sample("strata_build_info", &[("version", super::VERSION)], 1.0);
    #[cfg(target_os = "linux")]
    {
        let p = super::process::read();
        if let Some(b) = p.resident_bytes {
            w.one("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", b as f64);
        }
        if let Some(cpu) = p.cpu {
            w.one(
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time spent, in seconds.",
                cpu.as_secs_f64(),
            );
        }
        if let Some(n) = p.open_fds {
            w.one("process_open_fds", "gauge", "Open file descriptors.", n as f64);
        }
        if let Some(n) = p.max_fds {
            w.one("process_max_fds", "gauge", "Most file descriptors the process may open.", n as f64);
        }
        if let Some(t) = p.start_time {
            w.one(
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since the Unix epoch, in seconds.",
                t,
            );
        }
    }
}

// ---- End of process and build figures. ----

/// `strata_forward_*`, one series per target (`crate::forward`); nothing without targets.
fn forward_metrics(w: &mut Writer, all: &[crate::forward::ForwardStats]) {
    if all.is_empty() {
        return;
    }
    type Pick = fn(&crate::forward::ForwardStats) -> f64;
    let families: [(&str, &str, &str, Pick); 8] = [
        ("strata_forward_samples_sent_total", "counter", "Samples the forward target acknowledged.", |s| s.sent as f64),
        (
            "strata_forward_samples_failed_total",
            "counter",
            "Samples the forward target refused with a 4xx other than 429 (dropped, not retried).",
            |s| s.failed as f64,
        ),
        (
            "strata_forward_samples_dropped_total",
            "counter",
            "Samples released unsent because the forward backlog passed its cap.",
            |s| s.dropped as f64,
        ),
        ("strata_forward_retries_total", "counter", "Forward requests retried after a 429, a 5xx or no answer.", |s| {
            s.retries as f64
        }),
        ("strata_forward_pending_samples", "gauge", "Samples read from the WAL and not yet sent or refused.", |s| {
            s.pending as f64
        }),
        (
            "strata_forward_lag_seconds",
            "gauge",
            "Seconds since everything in the WAL was last acknowledged by the target (0 when caught up).",
            |s| s.lag_seconds,
        ),
        (
            "strata_forward_metadata_sent_total",
            "counter",
            "Metric families whose metadata the forward target acknowledged (each periodic resend counts).",
            |s| s.metadata_sent as f64,
        ),
        (
            "strata_forward_metadata_failed_total",
            "counter",
            "Metric families whose metadata the forward target refused with a 4xx other than 429.",
            |s| s.metadata_failed as f64,
        ),
    ];
    for (name, kind, help, pick) in families {
        w.family(name, kind, help);
        for s in all {
            w.sample(name, &[("target", &s.target)], pick(s));
        }
    }
}

struct Writer<'a>(&'a mut String);

impl Writer<'_> {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(k);
                self.0.push('=');
                prom_label_value(val, self.0);
            }
            self.0.push('}');
        }
        self.0.push(' ');
        crate::text::value::write_value(self.0, v);
        self.0.push('\n');
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, v: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], v);
    }
}
