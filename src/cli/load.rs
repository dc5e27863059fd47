//! `strata load`: drives a workload (`strata::loadgen`) into the engine in-process
//! or into a server over HTTP, and reports throughput, commit latency, disk use
//! and a read-back check.
//!
//! Each worker thread owns a shard of the series and commits its own batches;
//! a sample counts as acknowledged once the commit (or the HTTP request) that
//! carried it returned. The read-back compares, per series, the count and an
//! order-independent fingerprint of what was acknowledged with what is read.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::json;
use strata::loadgen::{fingerprint, Pattern, Shard, Workload, WorkloadKind};
use strata::{Db, Labels, Matcher, SyncMode};

use super::load_http::{HttpSink, Protocol};
use super::serve::parse_sync;
use super::{fail, human, progress_bar, times, CliError, CliResult, DataDir};

/// Generate load: a workload written in-process or to a server.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Generate load. The workload (devops: hosts × 10 cpu metrics; or one of the value \
        patterns noise, sine_wave, linear_trend, spike, combined) is written into the engine in-process \
        (--url embedded, the default) or to a running server (--url http://HOST:PORT). Timestamps \
        end now (or --backfill earlier) and span --duration. Reports samples/s, commit latency \
        percentiles and, in-process, bytes per sample on disk, then reads everything back and checks \
        that every acknowledged sample is there.",
    after_help = "Examples:\n  strata load                                   # devops, 100 hosts, 2h of 10s samples\n  \
        strata load --workload devops --hosts 100 --duration 24h --workers 2\n  \
        strata load --workload combined --series 50 --duration 6h --out-of-order 0.05\n  \
        strata load --workload sine_wave --backfill 3d --duration 1d\n  \
        strata load --url http://127.0.0.1:9464 --protocol line --rate 500k\n  \
        strata load --target http://127.0.0.1:9464 --protocol ingest --metric cpu_usage --pattern sine_wave \\\n      \
        --duration 300 --interval 5 --realtime     # one sample every 5 s for 5 minutes, stamped now"
)]
pub struct Args {
    /// devops, noise, sine_wave, linear_trend, spike or combined.
    #[arg(long, default_value = "devops", value_parser = |s: &str| s.parse::<WorkloadKind>())]
    workload: WorkloadKind,
    /// One metric (--metric) following a value pattern: noise, sine_wave, linear_trend,
    /// spike or combined. The same as --workload PATTERN, with one series unless --series says more.
    #[arg(long, conflicts_with_all = ["workload", "hosts"], value_parser = |s: &str| s.parse::<Pattern>())]
    pattern: Option<Pattern>,
    /// Run in real time: one sample per series every --interval, stamped with the wall
    /// clock, for --duration or, without it, until Ctrl-C (SIGINT) or SIGTERM.
    #[arg(long, conflicts_with_all = ["backfill", "rate", "out_of_order"])]
    realtime: bool,
    /// embedded (in-process, into --data) or a server URL such as http://127.0.0.1:9464
    /// (`--target` is an older name of this flag).
    #[arg(long = "url", alias = "target", value_name = "URL", default_value = "embedded")]
    target: String,
    #[command(flatten)]
    data: DataDir,
    /// Wire format for an HTTP target.
    #[arg(long, value_enum, default_value = "line")]
    protocol: Protocol,
    /// Endpoint path for an HTTP target (default by protocol: /write?precision=ms, /import, /api/v1/write).
    #[arg(long)]
    path: Option<String>,
    /// File holding a bearer token for an HTTP target.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Series to write (devops rounds up to whole hosts of 10 series) [default: 1000, or 1
    /// with --pattern].
    #[arg(long, conflicts_with = "hosts")]
    series: Option<usize>,
    /// devops only: hosts (10 series each), instead of --series.
    #[arg(long)]
    hosts: Option<usize>,
    /// Metric name of the pattern workloads.
    #[arg(long, default_value = "cpu_usage")]
    metric: String,
    /// Time between samples of a series (a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = parse_seconds_or_duration)]
    interval: i64,
    /// Span of generated time, not how long the run takes [default: 2h]; with
    /// --realtime, how long it runs [default: until stopped]. A bare number is seconds.
    #[arg(long, value_parser = parse_seconds_or_duration)]
    duration: Option<i64>,
    /// Cap on samples per second over all workers: a number (500k, 2M) or unlimited.
    #[arg(long, default_value = "unlimited", value_parser = parse_rate)]
    rate: Rate,
    /// Samples per commit (or per HTTP request).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    batch: u64,
    /// Writer threads, each with its own share of the series.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    workers: u64,
    /// Share of samples delivered late (after newer samples of their series), 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    out_of_order: f64,
    /// Move the generated window this far into the past (e.g. 7d); default: it ends now.
    #[arg(long, default_value = "0", value_parser = times::parse_duration)]
    backfill: i64,
    /// Seed of the generators; same seed, same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// WAL durability in-process: always, never, or an fsync interval.
    #[arg(long, default_value = "1s", value_parser = parse_sync)]
    sync: SyncMode,
    /// In-process: the head's memory budget in MiB (`Options::head_memory_budget`);
    /// the engine's default (256 MiB) when not given.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    head_memory_budget: Option<u64>,
    /// Skip the read-back check.
    #[arg(long)]
    no_check: bool,
    /// Output the report as JSON.
    #[arg(long)]
    json: bool,
}

/// A duration as `text::duration` reads it, or a bare number of seconds (seed 004's
/// generator took `--duration 300 --interval 5`).
fn parse_seconds_or_duration(s: &str) -> Result<i64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) => {
            i64::try_from(n).ok().and_then(|n| n.checked_mul(1000)).ok_or_else(|| format!("{s} seconds is too long"))
        }
        Err(_) => times::parse_duration(s),
    }
}

/// How far ahead an unbounded `--realtime` run is planned: it stops on a signal long before.
const REALTIME_HORIZON_MS: i64 = 100 * 365 * 86_400_000;

/// A cap in samples per second; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate(Option<f64>);

/// `unlimited` or samples per second, with an optional k / M suffix.
fn parse_rate(s: &str) -> Result<Rate, String> {
    if s == "unlimited" {
        return Ok(Rate(None));
    }
    let (num, mult) = match s.strip_suffix(['k', 'K']) {
        Some(n) => (n, 1e3),
        None => s.strip_suffix('M').map_or((s, 1.0), |n| (n, 1e6)),
    };
    match num.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Rate(Some(v * mult))),
        _ => Err(format!("invalid rate {s:?}: expected samples per second (e.g. 500k, 2M) or unlimited")),
    }
}

/// What one worker did.
struct WorkerResult {
    samples: u64,
    commits: u64,
    latency: Histogram<u64>,
    /// Per series of the shard: acknowledged samples and their fingerprint sum.
    acked: Vec<(u64, u64)>,
    first: usize,
    /// When its last commit returned.
    done: Instant,
}

/// The read-back verdict.
struct ReadBack {
    series_ok: u64,
    series_bad: Vec<String>,
    samples_read: u64,
    samples_expected: u64,
}

pub fn run(a: Args) -> CliResult {
    let w = workload(&a, times::now_ms())?;
    let http = match a.target.as_str() {
        "embedded" => None,
        t if t.starts_with("http://") => Some(t.to_string()),
        t if t.starts_with("https://") => {
            return fail("https targets are not supported (this build has no TLS); use http:// on loopback")
        }
        t => return fail(format!("invalid --url {t:?}: expected embedded or http://HOST:PORT")),
    };
    let token = match &a.token_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| CliError::new(format!("reading token file {}: {e}", p.display())))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let shards = w.shards(a.workers as usize);
    let per_worker_rate = a.rate.0.map(|r| r / shards.len() as f64);
    let acked = AtomicU64::new(0);
    let stop = Arc::new(AtomicBool::new(false));
    if a.realtime {
        // Ctrl-C or SIGTERM ends the run cleanly: what was sent is reported (and read back).
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, stop.clone())
                .map_err(|e| CliError::new(format!("installing the signal handler: {e}")))?;
        }
    }
    let bounded = !a.realtime || a.duration.is_some();
    let pb = progress_bar(bounded.then(|| w.total_samples()), a.json);

    let db = match &http {
        None => {
            let mut opts = super::options_for(&a.data.data)?.sync(a.sync);
            if let Some(mib) = a.head_memory_budget {
                opts = opts.head_memory_budget((mib as usize) << 20);
            }
            Some(Db::open(&a.data.data, opts)?)
        }
        Some(_) => None,
    };
    let t0 = Instant::now();
    let results: Vec<CliResult<WorkerResult>> = std::thread::scope(|sc| {
        let handles: Vec<_> = shards
            .into_iter()
            .map(|shard| {
                let (w, db, http, token, acked, stop) =
                    (&w, db.as_ref(), http.as_deref(), token.clone(), &acked, &*stop);
                let realtime = a.realtime;
                let (protocol, path, batch) = (a.protocol, a.path.as_deref(), a.batch as usize);
                sc.spawn(move || {
                    let mut sink = match (db, http) {
                        (Some(db), _) => Sink::Embedded(db.appender(), Vec::new()),
                        (None, Some(url)) => {
                            Sink::Http(HttpSink::new(url, path, protocol, token, w, shard.series())?, Vec::new())
                        }
                        (None, None) => return fail("no target"),
                    };
                    let r = drive(w, shard, &mut sink, batch, per_worker_rate, realtime, acked, stop);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed); // let the other workers stop early
                    }
                    r
                })
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
            let n = acked.load(Ordering::Relaxed);
            pb.set_position(n);
            pb.set_message(human::rate(n as f64 / t0.elapsed().as_secs_f64().max(1e-9)));
        }
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| fail("a load worker panicked"))).collect()
    });
    pb.finish_and_clear();
    let results: Vec<WorkerResult> = results.into_iter().collect::<CliResult<_>>()?;
    // From the start to the last acknowledgement (not to when this thread noticed).
    let ingest = results.iter().map(|r| r.done).max().map_or(Duration::ZERO, |d| d.duration_since(t0));

    let mut report = summarize(&a, &w, &results, ingest, http.is_some());
    if a.realtime {
        // What was written, not what was planned.
        let per_series = results.iter().map(|r| r.samples).sum::<u64>() / w.num_series().max(1) as u64;
        report["steps"] = json!(per_series);
        report["end"] = json!(w.start_ms + (per_series.max(1) as i64 - 1) * w.interval_ms);
        report["realtime"] = json!(true);
    }
    if let Some(db) = &db {
        // Seal everything so that the disk figure covers every sample.
        let t = Instant::now();
        db.flush()?;
        let st = db.stats()?;
        report["flush_seconds"] = json!(t.elapsed().as_secs_f64());
        let disk: u64 = st.disk_bytes.iter().sum();
        report["disk"] = json!({"bytes": disk, "segments": st.segments, "segment_samples": st.segment_samples[0],
            "bytes_per_sample": (st.segment_samples[0] > 0).then(|| st.disk_bytes[0] as f64 / st.segment_samples[0] as f64)});
        if !a.no_check {
            let rb = read_back(db, &w, &results)?;
            report["read_back"] = json!({"ok": rb.series_bad.is_empty() && rb.samples_read == rb.samples_expected,
                "series_ok": rb.series_ok, "series_bad": rb.series_bad, "samples_read": rb.samples_read,
                "samples_expected": rb.samples_expected});
        }
        db.close()?;
    }
    if a.json {
        println!("{report}");
    } else {
        print!("{}", to_text(&report));
    }
    if report["read_back"]["ok"] == json!(false) {
        return fail("read-back check failed: acknowledged samples are missing or differ");
    }
    Ok(())
}

/// The workload from the arguments, its window ending at `now - backfill`.
fn workload(a: &Args, now: i64) -> CliResult<Workload> {
    if a.interval <= 0 {
        return fail("--interval must be positive");
    }
    let duration = match (a.duration, a.realtime) {
        (Some(d), _) => d,
        (None, false) => 2 * 3_600_000,
        (None, true) => REALTIME_HORIZON_MS,
    };
    if duration < a.interval {
        return fail("--duration must be at least one --interval");
    }
    if !(0.0..=1.0).contains(&a.out_of_order) {
        return fail("--out-of-order is a share between 0 and 1, e.g. 0.05");
    }
    if a.backfill < 0 {
        return fail("--backfill must not be negative");
    }
    let kind = a.pattern.map_or(a.workload, WorkloadKind::Pattern);
    let series = match (kind, a.hosts) {
        (WorkloadKind::Devops, Some(h)) => h * strata::loadgen::CPU_FIELDS.len(),
        (_, Some(_)) => return fail("--hosts applies to the devops workload; use --series"),
        (_, None) => a.series.unwrap_or(if a.pattern.is_some() { 1 } else { 1000 }),
    };
    if series == 0 {
        return fail("--series must be at least 1");
    }
    let steps = (duration / a.interval) as u64;
    let start = if a.realtime {
        // The first sample is due at once, stamped with the interval boundary just passed.
        now - now.rem_euclid(a.interval)
    } else {
        // The last sample lands on the last whole interval at or before now - backfill.
        let end = now - a.backfill;
        let last = end - end.rem_euclid(a.interval);
        last - (steps as i64 - 1) * a.interval
    };
    let mut w = Workload::new(kind, series, a.interval, start, steps, a.seed);
    w.out_of_order = a.out_of_order;
    w.metric = a.metric.clone();
    w.labels(0).map_err(|e| CliError::new(format!("--metric {:?}: {e}", a.metric)))?;
    Ok(w)
}

enum Sink {
    Embedded(strata::Appender, Vec<strata::SeriesRef>),
    Http(HttpSink, Vec<(usize, i64, f64)>),
}

impl Sink {
    fn pending(&self) -> usize {
        match self {
            Sink::Embedded(app, _) => app.len(),
            Sink::Http(_, batch) => batch.len(),
        }
    }

    fn flush(&mut self) -> CliResult {
        match self {
            Sink::Embedded(app, _) => app.commit().map_err(CliError::from),
            Sink::Http(s, batch) => {
                let r = s.send(batch);
                batch.clear();
                r
            }
        }
    }
}

/// Generates a shard and writes it in batches; measures each commit. In real time,
/// each step waits for the wall clock to reach its timestamp and is sent at once.
#[allow(clippy::too_many_arguments)]
fn drive(
    w: &Workload,
    mut shard: Shard,
    sink: &mut Sink,
    batch: usize,
    rate: Option<f64>,
    realtime: bool,
    acked_total: &AtomicU64,
    stop: &AtomicBool,
) -> CliResult<WorkerResult> {
    let range = shard.series();
    if let Sink::Embedded(app, refs) = sink {
        for i in range.clone() {
            refs.push(app.series(&w.labels(i)?)?);
        }
    }
    let mut latency =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| CliError::new(e.to_string()))?;
    // Counted when appended: a failed commit fails the whole run, so only
    // acknowledged samples are ever compared.
    let mut acked = vec![(0u64, 0u64); range.len()];
    let (mut samples, mut commits) = (0u64, 0u64);
    let t0 = Instant::now();
    let mut step = Vec::new();
    let mut commit = |sink: &mut Sink| -> CliResult {
        let n = sink.pending() as u64;
        let t = Instant::now();
        sink.flush()?;
        latency.saturating_record(t.elapsed().as_micros().max(1) as u64);
        samples += n;
        commits += 1;
        acked_total.fetch_add(n, Ordering::Relaxed);
        if let Some(r) = rate {
            // Pace: never ahead of `rate` samples per second since the start.
            let due = Duration::from_secs_f64(samples as f64 / r);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        Ok(())
    };
    loop {
        step.clear();
        if !shard.next_step(&mut step) || stop.load(Ordering::Relaxed) {
            break;
        }
        if realtime {
            let due = step.iter().map(|s| s.1).max().unwrap_or(i64::MIN);
            if !wait_until(due, stop) {
                break;
            }
        }
        for &(i, ts, v) in &step {
            let j = i - range.start;
            match sink {
                Sink::Embedded(app, refs) => app.append(refs[j], ts, v)?,
                Sink::Http(_, b) => b.push((i, ts, v)),
            }
            let a = &mut acked[j];
            *a = (a.0 + 1, a.1.wrapping_add(fingerprint(ts, v)));
            if sink.pending() >= batch {
                commit(sink)?;
            }
        }
        if realtime && sink.pending() > 0 {
            commit(sink)?;
        }
    }
    if sink.pending() > 0 {
        commit(sink)?;
    }
    Ok(WorkerResult { samples, commits, latency, acked, first: range.start, done: Instant::now() })
}

/// Sleeps until the wall clock reaches `due_ms`, waking often enough to notice
/// `stop`; false if stopped first.
fn wait_until(due_ms: i64, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = due_ms - times::now_ms();
        if left <= 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(left.min(100) as u64));
    }
}

/// Reads the workload's window back and compares each series with what was acknowledged.
fn read_back(db: &Db, w: &Workload, results: &[WorkerResult]) -> CliResult<ReadBack> {
    let mut expected: HashMap<Labels, (u64, u64)> = HashMap::with_capacity(w.num_series());
    for r in results {
        for (j, &acked) in r.acked.iter().enumerate() {
            expected.insert(w.labels(r.first + j)?, acked);
        }
    }
    let matchers = match w.kind {
        WorkloadKind::Devops => vec![Matcher::regex("__name__", "cpu_.+")?, Matcher::regex("hostname", "host_[0-9]+")?],
        WorkloadKind::Pattern(p) => vec![Matcher::eq("__name__", w.metric.as_str()), Matcher::eq("pattern", p.name())],
    };
    let mut rb = ReadBack {
        series_ok: 0,
        series_bad: Vec::new(),
        samples_read: 0,
        samples_expected: expected.values().map(|e| e.0).sum(),
    };
    let q = db.querier(w.start_ms..w.end_ms());
    let mut seen = 0usize;
    for item in q.select(&matchers)? {
        let (labels, samples) = item?;
        let Some(&(count, fp)) = expected.get(&labels) else { continue };
        seen += 1;
        let (mut n, mut f) = (0u64, 0u64);
        for s in samples {
            n += 1;
            f = f.wrapping_add(fingerprint(s.ts, s.value));
        }
        rb.samples_read += n;
        if (n, f) == (count, fp) {
            rb.series_ok += 1;
        } else if rb.series_bad.len() < 10 {
            rb.series_bad.push(format!(
                "{labels}: read {n} samples, acknowledged {count}{}",
                if n == count { " (values differ)" } else { "" }
            ));
        }
    }
    let missing = expected.values().filter(|e| e.0 > 0).count().saturating_sub(seen);
    if missing > 0 {
        rb.series_bad.push(format!("{missing} series with acknowledged samples not found"));
    }
    Ok(rb)
}

fn summarize(a: &Args, w: &Workload, results: &[WorkerResult], ingest: Duration, http: bool) -> serde_json::Value {
    let mut lat = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid");
    for r in results {
        let _ = lat.add(&r.latency);
    }
    let samples: u64 = results.iter().map(|r| r.samples).sum();
    let commits: u64 = results.iter().map(|r| r.commits).sum();
    let secs = ingest.as_secs_f64();
    json!({
        "workload": w.kind.name(),
        "target": if http { format!("{} ({})", a.target, format!("{:?}", a.protocol).to_lowercase()) } else { format!("embedded {}", a.data.data.display()) },
        "series": w.num_series(),
        "interval_ms": w.interval_ms,
        "steps": w.steps,
        "start": w.start_ms,
        "end": w.end_ms() - w.interval_ms,
        "out_of_order": w.out_of_order,
        "workers": results.len(),
        "batch": a.batch,
        "samples": samples,
        "seconds": secs,
        "samples_per_sec": samples as f64 / secs.max(1e-9),
        "commits": commits,
        "latency_us": {"p50": lat.value_at_quantile(0.5), "p90": lat.value_at_quantile(0.9),
            "p99": lat.value_at_quantile(0.99), "p999": lat.value_at_quantile(0.999), "max": lat.max(),
            "mean": lat.mean()},
    })
}

fn to_text(r: &serde_json::Value) -> String {
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let mut o = String::new();
    let mut line = |k: &str, v: String| o.push_str(&format!("{k:<15}{v}\n"));
    line(
        "workload",
        format!(
            "{}: {} series, {} interval, {} samples each{}",
            r["workload"].as_str().unwrap_or(""),
            human::count(u(&r["series"])),
            times::format_duration(r["interval_ms"].as_i64().unwrap_or(0)),
            human::count(u(&r["steps"])),
            if f(&r["out_of_order"]) > 0.0 {
                format!(", {:.1}% late", f(&r["out_of_order"]) * 100.0)
            } else {
                String::new()
            }
        ),
    );
    line(
        "time range",
        format!(
            "{} → {}",
            times::format_ts(r["start"].as_i64().unwrap_or(0)),
            times::format_ts(r["end"].as_i64().unwrap_or(0))
        ),
    );
    line("target", r["target"].as_str().unwrap_or("").to_string());
    line(
        "ingested",
        format!(
            "{} samples in {:.2} s = {} samples/s ({} worker{}, batch {})",
            human::count(u(&r["samples"])),
            f(&r["seconds"]),
            human::rate(f(&r["samples_per_sec"])).trim_end_matches("/s").trim_end(),
            u(&r["workers"]),
            if u(&r["workers"]) == 1 { "" } else { "s" },
            human::count(u(&r["batch"]))
        ),
    );
    let l = &r["latency_us"];
    line(
        "commit latency",
        format!(
            "p50 {}  p99 {}  p99.9 {}  max {}  ({} commits)",
            human::micros(u(&l["p50"])),
            human::micros(u(&l["p99"])),
            human::micros(u(&l["p999"])),
            human::micros(u(&l["max"])),
            human::count(u(&r["commits"]))
        ),
    );
    if !r["disk"].is_null() {
        let d = &r["disk"];
        let bps = match d["bytes_per_sample"].as_f64() {
            Some(b) => format!("{b:.3} bytes/sample ({:.1}× smaller than 16 B raw)", 16.0 / b),
            None => "no samples sealed".into(),
        };
        line(
            "disk",
            format!(
                "{} in {} segment{} after flush ({:.2} s): {bps}",
                human::bytes(u(&d["bytes"])),
                u(&d["segments"]),
                if u(&d["segments"]) == 1 { "" } else { "s" },
                f(&r["flush_seconds"])
            ),
        );
    }
    if !r["read_back"].is_null() {
        let rb = &r["read_back"];
        let verdict = if rb["ok"] == json!(true) {
            format!(
                "OK: {} series, {} samples read back, counts and fingerprints match",
                human::count(u(&rb["series_ok"])),
                human::count(u(&rb["samples_read"]))
            )
        } else {
            let bad: Vec<&str> =
                rb["series_bad"].as_array().map(|v| v.iter().filter_map(|s| s.as_str()).collect()).unwrap_or_default();
            format!(
                "FAILED: read {} of {} acknowledged samples; {}",
                human::count(u(&rb["samples_read"])),
                human::count(u(&rb["samples_expected"])),
                bad.join("; ")
            )
        };
        line("read-back", verdict);
    } else if r["disk"].is_null() {
        line("read-back", "not available over HTTP (check with `strata export` once the server is stopped)".into());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("unlimited"), Ok(Rate(None)));
        assert_eq!(parse_rate("500k"), Ok(Rate(Some(500_000.0))));
        assert_eq!(parse_rate("2M"), Ok(Rate(Some(2_000_000.0))));
        assert_eq!(parse_rate("1500"), Ok(Rate(Some(1500.0))));
        assert!(parse_rate("0").is_err() && parse_rate("fast").is_err() && parse_rate("-5").is_err());
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(parse_seconds_or_duration("300"), Ok(300_000));
        assert_eq!(parse_seconds_or_duration("5"), Ok(5_000));
        assert_eq!(parse_seconds_or_duration("0"), Ok(0));
        assert_eq!(parse_seconds_or_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_seconds_or_duration("500ms"), Ok(500));
        assert!(parse_seconds_or_duration("5x").is_err() && parse_seconds_or_duration("-5").is_err());
        assert!(parse_seconds_or_duration(&u64::MAX.to_string()).is_err());
    }
}
