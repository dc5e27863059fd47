//! Durability under SIGKILL: a child process commits with `SyncMode::Always` and
//! prints each acknowledged batch; the parent kills it at random moments
//! (including mid-seal) and checks, after every reopen, that each acknowledged
//! sample is present exactly once and every batch is all-or-nothing.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strata::{Db, Labels, Matcher, Options, RetentionPolicy, SyncMode, TierDurations};

const SERIES: u64 = 20;
const PER_SERIES: i64 = 10;
const CHILD_ENV: &str = "STRATA_CRASH_CHILD_DIR";
const RUN_ENV: &str = "STRATA_CRASH_CHILD_RUN";

fn labels(s: u64) -> Labels {
    Labels::from_pairs([("__name__", "crash_metric".to_string()), ("s", s.to_string())]).unwrap()
}

/// Batch `b` holds, for every series, PER_SERIES samples at ts = b*PER_SERIES + k.
fn value(b: u64, s: u64, k: i64) -> f64 {
    (b * 1000 + s * 10) as f64 + k as f64 / 8.0
}

fn child_opts() -> Options {
    Options::default()
        .sync(SyncMode::Always)
        .block_duration(Duration::from_secs(3600))
        .wal_segment_size(64 << 10)
        .retention(RetentionPolicy::new(TierDurations::forever()).unwrap())
}

/// Runs only as the child: writes batches forever, sealing every few batches.
#[test]
fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let run: u64 = std::env::var(RUN_ENV).unwrap().parse().unwrap();
    let db = Db::open(&dir, child_opts()).unwrap();
    let mut app = db.appender();
    let refs: Vec<_> = (0..SERIES).map(|s| app.series(&labels(s)).unwrap()).collect();
    for i in 0.. {
        let b = run * 100_000 + i;
        for (s, r) in refs.iter().enumerate() {
            for k in 0..PER_SERIES {
                app.append(*r, b as i64 * PER_SERIES + k, value(b, s as u64, k)).unwrap();
            }
        }
        app.commit().unwrap();
        println!("ack {b}");
        if i % 7 == 3 {
            db.flush().unwrap();
            println!("sealed");
        }
    }
}

fn spawn_and_kill(dir: &Path, run: u64, after: Duration) -> BTreeSet<u64> {
    let mut child = crate::support::spawn(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_kill::crash_child_entry", "--nocapture", "--test-threads=1"])
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
        // Only whole lines count: the kill may cut the last one short.
        while r.read_until(b'\n', &mut line).unwrap_or(0) > 0 && line.ends_with(b"\n") {
            let text = String::from_utf8_lossy(&line);
            // libtest may print the test name on the same line as the first ack.
            if let Some((_, b)) = text.trim_end().rsplit_once("ack ") {
                let _ = tx.send(b.parse::<u64>().expect("an ack line names its batch"));
            }
            line.clear();
        }
    });
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    reader.join().unwrap();
    rx.try_iter().collect()
}

/// Batches present in the db, each checked to be complete and exact.
fn present_batches(db: &Db) -> BTreeSet<u64> {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut per_batch: std::collections::BTreeMap<u64, usize> = Default::default();
    for series in q.select(&[Matcher::eq("__name__", "crash_metric")]).unwrap() {
        let (l, samples) = series.unwrap();
        let s: u64 = l.get("s").unwrap().parse().unwrap();
        for smp in samples {
            let b = (smp.ts / PER_SERIES) as u64;
            let k = smp.ts % PER_SERIES;
            assert_eq!(smp.value.to_bits(), value(b, s, k).to_bits(), "wrong value at {} of series {s}", smp.ts);
            *per_batch.entry(b).or_default() += 1;
        }
    }
    for (b, n) in &per_batch {
        assert_eq!(*n as i64, SERIES as i64 * PER_SERIES, "batch {b} is torn: {n} samples");
    }
    per_batch.into_keys().collect()
}

#[test]
fn acknowledged_samples_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let kills = 25;
    let mut worst_open = Duration::ZERO;
    for run in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let after = Duration::from_millis(30 + rng % 250);
        let got = spawn_and_kill(dir.path(), run, after);
        acked.extend(&got);
        let t = Instant::now();
        let db = Db::open(
            dir.path(),
            Options::default().background(false).retention(RetentionPolicy::new(TierDurations::forever()).unwrap()),
        )
        .unwrap();
        worst_open = worst_open.max(t.elapsed());
        let present = present_batches(&db);
        let missing: Vec<_> = acked.difference(&present).collect();
        assert!(missing.is_empty(), "run {run}: acknowledged batches lost: {missing:?}");
        // At most the one in-flight batch of each run may be present without its ack.
        let extra: Vec<_> = present.difference(&acked).collect();
        assert!(extra.len() <= 1, "run {run}: unexpected batches {extra:?}");
        // Exactly once: no sample is counted in two places (segment and replayed WAL).
        let expected = present.len() as u64 * SERIES * PER_SERIES as u64;
        assert_eq!(db.stats().unwrap().samples(), expected, "run {run}: duplicated samples");
        acked.extend(present);
        db.close().unwrap();
    }
    assert!(acked.len() > kills as usize, "the child acknowledged too little to test anything");
    eprintln!("{kills} kills, {} batches acknowledged, slowest reopen {worst_open:?}", acked.len());
}

/// Runs only as the child: commits without `close()` and exits without running destructors.
#[test]
fn exit_child_entry() {
    let Ok(dir) = std::env::var("STRATA_EXIT_CHILD_DIR") else { return };
    let db = Db::open(
        &dir,
        Options::default()
            .sync(SyncMode::Interval(Duration::from_secs(60)))
            .retention(RetentionPolicy::new(TierDurations::forever()).unwrap()),
    )
    .unwrap();
    let mut app = db.appender();
    for b in 0..10u64 {
        for s in 0..SERIES {
            for k in 0..PER_SERIES {
                app.append_labels(&labels(s), b as i64 * PER_SERIES + k, value(b, s, k)).unwrap();
            }
        }
        app.commit().unwrap();
        if b == 4 {
            db.flush().unwrap();
        }
    }
    std::process::exit(0);
}

#[test]
fn reopen_without_close_keeps_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let status = crate::support::status(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_kill::exit_child_entry", "--nocapture", "--test-threads=1"])
            .env("STRATA_EXIT_CHILD_DIR", dir.path())
            .stdout(Stdio::null()),
    )
    .unwrap();
    assert!(status.success());
    let db = Db::open(
        dir.path(),
        Options::default().background(false).retention(RetentionPolicy::new(TierDurations::forever()).unwrap()),
    )
    .unwrap();
    assert_eq!(present_batches(&db), (0..10).collect());
    assert_eq!(db.stats().unwrap().samples(), 10 * SERIES * PER_SERIES as u64);
}
