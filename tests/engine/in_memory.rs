//! `Db::open_in_memory`: the same writes give the same answers as on disk through
//! seals, rollup tiers, compaction, retention and deletion, and the process
//! creates no file while it does all of that.

use crate::support::options;
use std::path::Path;
use std::time::Duration;

use strata::{
    Agg, Db, Labels, Matcher, MetricMetadata, Options, Query, RetentionPolicy, SyncMode, Tier, TierDurations,
};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn opts() -> Options {
    options::foreground(SyncMode::Never)
}

fn labels(i: usize) -> Labels {
    let kind = if i.is_multiple_of(2) { "gauge" } else { "counter" };
    Labels::from_pairs([("__name__", kind.to_string()), ("host", format!("h{}", i % 3)), ("i", i.to_string())]).unwrap()
}

/// Where the load starts: ten days ago, aligned to a day.
fn t0() -> i64 {
    (strata::text::time::now_ms() - 10 * DAY) / DAY * DAY
}

/// Ten days of 6 series at 60 s, with late writes and overwrites, a gap from day 6
/// to day 8 (so a 3-day raw retention has a clean edge), seals at irregular points,
/// compactions, downsampling, metadata and a deletion. Returns the load's end.
fn load(db: &Db, t0: i64) -> i64 {
    let mut app = db.appender();
    let steps = 10 * DAY / MIN;
    for step in 0..steps {
        let ts = t0 + step * MIN;
        if (6 * DAY..8 * DAY).contains(&(ts - t0)) {
            continue;
        }
        for i in 0..6 {
            let v =
                if i % 2 == 0 { ((step * 7 + i as i64) % 100) as f64 / 4.0 } else { (step * (i as i64 + 1)) as f64 };
            app.append_labels(&labels(i), ts, v).unwrap();
        }
        if step % 97 == 0 && step > 10 {
            // A late write and an overwrite of an earlier sample.
            app.append_labels(&labels(1), ts - 5 * MIN, -1.0).unwrap();
            app.append_labels(&labels(2), ts - 30_000, 3.5).unwrap();
        }
        if step % 60 == 59 {
            app.commit().unwrap();
        }
        if step % 1777 == 1776 {
            db.flush().unwrap();
        }
        if step % 4001 == 4000 {
            db.compact().unwrap();
        }
    }
    app.commit().unwrap();
    let meta = MetricMetadata { kind: strata::MetricKind::Gauge, unit: "percent".into(), help: "a gauge".into() };
    db.set_metadata("gauge", meta).unwrap();
    db.flush().unwrap();
    db.downsample().unwrap();
    db.compact().unwrap();
    let report = db.delete(&[Matcher::eq("i", "4")], t0 + DAY..=t0 + 2 * DAY).unwrap();
    assert!(report.samples > 0, "{report:?}");
    // Recent data stays in the head, so reads merge it with the segments.
    let mut app = db.appender();
    for i in 0..6 {
        app.append_labels(&labels(i), t0 + steps * MIN, 1.0).unwrap();
    }
    app.commit().unwrap();
    t0 + steps * MIN + MIN
}

/// Every answer the two databases give over the data: raw samples, each tier's
/// aggregates, PromQL, latest, label values, metadata and stats.
fn answers(db: &Db, t0: i64, end: i64) -> Vec<String> {
    let mut out = Vec::new();
    let all = [Matcher::regex("__name__", "gauge|counter").unwrap()];
    for r in db.querier(t0..end).select(&all).unwrap() {
        let (l, samples) = r.unwrap();
        let samples: Vec<(i64, u64)> = samples.map(|s| (s.ts, s.value.to_bits())).collect();
        out.push(format!("raw {l} {} {:?}", samples.len(), samples));
    }
    for (tier, step) in [(Tier::Raw, 5 * MIN), (Tier::FiveMin, 5 * MIN), (Tier::FiveMin, HOUR), (Tier::Hour, 6 * HOUR)]
    {
        for agg in [Agg::Avg, Agg::Max, Agg::Count, Agg::Increase] {
            // Whole days, so that every tier can answer.
            let q = Query::new()
                .select(all.clone())
                .range(t0..(end / DAY + 1) * DAY)
                .step(Duration::from_millis(step as u64))
                .agg(agg)
                .tier(tier)
                .group_by(["host"]);
            out.push(format!("{tier:?} {agg:?} {step} {:?}", db.query(&q).unwrap()));
        }
    }
    let promql = db.promql_range("sum by (host) (rate(counter[10m]))", t0 + DAY, end - MIN, HOUR).unwrap();
    out.push(format!("promql {promql:?}"));
    out.push(format!("latest {:?}", db.latest(&all).unwrap()));
    out.push(format!("hosts {:?}", db.label_values("host")));
    out.push(format!("metadata {:?}", db.metadata("gauge")));
    let s = db.stats().unwrap();
    out.push(format!(
        "stats series {} samples {} head {} segments per tier {:?}",
        s.series,
        s.samples(),
        s.head_samples,
        s.segment_samples
    ));
    out
}

fn same(disk: &[String], mem: &[String]) {
    assert_eq!(disk.len(), mem.len());
    for (d, m) in disk.iter().zip(mem) {
        assert_eq!(d, m);
    }
}

#[test]
fn in_memory_answers_as_on_disk_through_seals_tiers_compaction_retention_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Db::open(dir.path(), opts()).unwrap();
    let mem = Db::open_in_memory(opts()).unwrap();
    assert!(mem.is_in_memory() && !disk.is_in_memory());
    assert_eq!(mem.path(), Path::new(strata::IN_MEMORY_PATH));
    let t0 = t0();
    let end = load(&disk, t0);
    assert_eq!(load(&mem, t0), end);
    let st = mem.stats().unwrap();
    assert!(st.segments > 0 && st.segment_samples[1] > 0 && st.segment_samples[2] > 0 && st.head_samples > 0, "{st:?}");
    assert_eq!((st.wal_bytes, mem.wal_stats().bytes_written), (0, 0));
    same(&answers(&disk, t0, end), &answers(&mem, t0, end));

    // Retention: raw data older than 3 days goes (the edge falls in the load's gap).
    let policy = RetentionPolicy::new(TierDurations {
        raw: Duration::from_secs(3 * 86_400),
        five_min: Duration::from_secs(3650 * 86_400),
        hour: Duration::from_secs(3650 * 86_400),
    })
    .unwrap();
    for db in [&disk, &mem] {
        db.set_retention(policy.clone()).unwrap();
        let r = db.apply_retention().unwrap();
        assert!(!r.removed.is_empty(), "{r:?}");
        db.compact().unwrap();
    }
    let (d, m) = (answers(&disk, t0, end), answers(&mem, t0, end));
    same(&d, &m);
    assert!(!m.iter().any(|l| l.starts_with("raw") && l.contains(&format!("({t0}, "))), "old raw data is gone");
    assert_eq!(mem.retention_summary(), disk.retention_summary());
}

#[test]
fn in_memory_head_budget_seals_into_compressed_segments() {
    let mem = Db::open_in_memory(opts().head_memory_budget(64 << 10)).unwrap();
    let mut app = mem.appender();
    let t0 = t0();
    for step in 0..20_000i64 {
        for i in 0..4 {
            app.append_labels(&labels(i), t0 + step * 10_000, (step % 50) as f64).unwrap();
        }
        if step % 100 == 99 {
            app.commit().unwrap();
        }
    }
    app.commit().unwrap();
    let st = mem.stats().unwrap();
    // The head never held everything: the budget sealed it, as on disk.
    assert!(st.segments >= 2, "{st:?}");
    assert!(st.head_bytes <= 2 * (64 << 10), "{st:?}");
    assert_eq!(st.samples(), 80_000);
    let bytes: u64 = st.disk_bytes.iter().sum();
    assert!(bytes < st.segment_samples[0] * 4, "segments are compressed: {bytes} bytes, {st:?}");
}

#[test]
fn in_memory_refuses_what_needs_files_and_closes_cleanly() {
    let e = Db::open_in_memory(opts().repair(true)).err().expect("repair is refused");
    assert!(e.to_string().contains("in-memory") && e.to_string().contains("repair"), "{e}");
    let mem = Db::open_in_memory(opts()).unwrap();
    let live = mem.subscribe(vec![Matcher::eq("i", "0")]);
    let mut app = mem.appender();
    app.append_labels(&labels(0), 1_000, 1.0).unwrap();
    app.commit().unwrap();
    // Subscribers are fed once a commit is acknowledged, as on disk.
    assert_eq!(live.try_recv().unwrap(), vec![(labels(0), strata::Sample::new(1_000, 1.0))]);
    // A backup writes real files that `Db::open` serves, head included.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("copy");
    let r = mem.backup(&dest).unwrap();
    assert_eq!((r.samples_in_segments, r.wal_files), (1, 0));
    let copy = Db::open(&dest, opts()).unwrap();
    assert_eq!(copy.latest(&[Matcher::eq("i", "0")]).unwrap().len(), 1);
    mem.close().unwrap();
    let mut app = mem.appender();
    app.append_labels(&labels(0), 2_000, 1.0).unwrap();
    assert!(matches!(app.commit(), Err(strata::Error::Closed)));
    assert_eq!(mem.latest(&[Matcher::eq("i", "0")]).unwrap().len(), 1, "still readable until dropped");
}

const CHILD: &str = "STRATA_IN_MEMORY_CHILD";

/// The whole load, with a background worker too, in a child process whose working
/// directory and TMPDIR are empty directories: they must stay empty.
#[test]
fn in_memory_db_creates_no_files() {
    if std::env::var_os(CHILD).is_some() {
        let mem = Db::open_in_memory(options::keep_all().head_memory_budget(256 << 10)).unwrap();
        let t0 = t0();
        let end = load(&mem, t0);
        mem.set_retention(RetentionPolicy::tiered()).unwrap();
        mem.apply_retention().unwrap();
        answers(&mem, t0, end);
        drop(mem);
        return;
    }
    let cwd = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["in_memory::in_memory_db_creates_no_files", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("TMPDIR", tmp.path())
        .current_dir(cwd.path())
        .status()
        .unwrap();
    assert!(status.success());
    for d in [cwd.path(), tmp.path()] {
        let left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(left.is_empty(), "files created: {left:?}");
    }
}
