//! SIGKILL while sealing, downsampling and compacting: a child keeps writing
//! windows of data, sealing after each and compacting after most; the parent
//! kills it at random moments. After every reopen each acknowledged sample is
//! present exactly once (raw tier sample count equals the distinct samples), and
//! rollups agree with raw data.

use crate::support::options;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use strata::{Agg, Db, Labels, Matcher, Options, Query, SyncMode, Tier};

const SERIES: u64 = 10;
const PER_BATCH: i64 = 120; // samples per series per batch, one per minute: 2 h windows
const CHILD_ENV: &str = "STRATA_COMPACT_CHILD_DIR";
const RUN_ENV: &str = "STRATA_COMPACT_CHILD_RUN";
const HOUR: i64 = 3_600_000;

fn opts() -> Options {
    options::foreground(SyncMode::Always)
}

fn labels(s: u64) -> Labels {
    Labels::from_pairs([("__name__", "cm".to_string()), ("s", s.to_string())]).unwrap()
}

fn ts(b: u64, k: i64) -> i64 {
    (b as i64 * PER_BATCH + k) * 60_000
}

fn value(b: u64, s: u64, k: i64) -> f64 {
    (b * 7 + s * 3) as f64 + k as f64 / 4.0
}

#[test]
fn compaction_child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let run: u64 = std::env::var(RUN_ENV).unwrap().parse().unwrap();
    let db = Db::open(&dir, opts()).unwrap();
    let mut app = db.appender();
    for i in 0.. {
        let b = run * 1000 + i;
        for s in 0..SERIES {
            for k in 0..PER_BATCH {
                app.append_labels(&labels(s), ts(b, k), value(b, s, k)).unwrap();
            }
        }
        app.commit().unwrap();
        println!("ack {b}");
        db.flush().unwrap();
        if i % 4 != 3 {
            db.compact().unwrap();
        }
    }
}

fn spawn_and_kill(dir: &Path, run: u64, after: Duration) -> BTreeSet<u64> {
    let mut child = crate::support::spawn(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_during_compaction::compaction_child_entry", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir)
            .env(RUN_ENV, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )
    .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = Vec::new();
        while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 && line.ends_with(b"\n") {
            let text = String::from_utf8_lossy(&line);
            if let Some((_, b)) = text.trim_end().rsplit_once("ack ") {
                let _ = tx.send(b.parse::<u64>().expect("an ack line names its batch"));
            }
            line.clear();
        }
    });
    std::thread::sleep(after);
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    rx.try_iter().collect()
}

fn present(db: &Db) -> BTreeSet<u64> {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut per_batch: std::collections::BTreeMap<u64, i64> = Default::default();
    for series in q.select(&[Matcher::eq("__name__", "cm")]).unwrap() {
        let (l, samples) = series.unwrap();
        let s: u64 = l.get("s").unwrap().parse().unwrap();
        for smp in samples {
            let b = (smp.ts / 60_000 / PER_BATCH) as u64;
            let k = smp.ts / 60_000 % PER_BATCH;
            assert_eq!(smp.value.to_bits(), value(b, s, k).to_bits(), "wrong value at {}", smp.ts);
            *per_batch.entry(b).or_default() += 1;
        }
    }
    for (b, n) in &per_batch {
        assert_eq!(*n, SERIES as i64 * PER_BATCH, "batch {b} is torn");
    }
    per_batch.into_keys().collect()
}

#[test]
fn acknowledged_samples_survive_sigkill_during_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeSet::new();
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let kills = 24;
    for run in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        acked.extend(spawn_and_kill(dir.path(), run, Duration::from_millis(40 + rng % 300)));
        let db = Db::open(dir.path(), opts()).unwrap();
        let have = present(&db);
        let lost: Vec<_> = acked.difference(&have).collect();
        assert!(lost.is_empty(), "run {run}: lost acknowledged batches {lost:?}");
        assert!(have.difference(&acked).count() <= 1, "run {run}: unexpected batches");
        let st = db.stats().unwrap();
        assert_eq!(st.samples(), have.len() as u64 * SERIES * PER_BATCH as u64, "run {run}: a sample is stored twice");
        // Whatever the downsampler published agrees with raw data.
        let q = Query::new()
            .select([Matcher::eq("__name__", "cm")])
            .range(0..ts(run * 1000 + 1000, 0) / HOUR * HOUR)
            .step(Duration::from_secs(3600))
            .agg(Agg::Sum);
        let raw = db.query(&q.clone().tier(Tier::Raw)).unwrap();
        let hourly = db.query(&q.tier(Tier::Hour)).unwrap();
        assert_eq!(raw.series, hourly.series, "run {run}: hourly rollups disagree with raw data");
        acked.extend(have);
        db.close().unwrap();
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let report = db.compact().unwrap();
    eprintln!("{kills} kills, {} batches acknowledged; final compaction: {report:?}", acked.len());
    assert!(acked.len() > kills as usize);
}
