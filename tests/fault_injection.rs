//! Fault injection through the `failpoints` file layer.
//!
//! One scenario (ingest under `SyncMode::Always`, seal, downsample, compact,
//! reopen, retention, more ingest) is first run in counting mode to learn how
//! many writes, fsyncs, renames and creates it makes. Then, for every call N of
//! every kind, in "once" and "persistent" modes, with EIO, ENOSPC and (for
//! writes) a short write, it runs again with call N failing. Each run checks:
//! - every error names the file or operation and carries the injected OS error;
//! - after a failed fsync the Db is poisoned, and no commit is acknowledged after
//!   the Db is poisoned;
//! - the live Db still serves every acknowledged sample;
//! - after reopening without injection every acknowledged sample is present
//!   exactly once, bit for bit, unacknowledged ones at most once, the rollup
//!   tiers agree with raw data, and new writes succeed.
//!
//! The injector is process-global, so the tests here take one lock.
//! Run: `cargo test --release --features failpoints --test fault_injection`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use strata::failpoint::{self, Fault, Mode, Op};
use strata::{Agg, Db, Error, Labels, Matcher, Options, Query, RetentionPolicy, SyncMode, Tier, TierDurations};

static SERIAL: Mutex<()> = Mutex::new(());

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const SERIES: usize = 3;
const STALE: u64 = 0x7ff0_0000_0000_0002;
/// The short retention of the scenario's second half keeps raw data from `base + CUT` on.
const CUT: i64 = 6 * HOUR;

type Key = (usize, i64);
type Batch = Vec<(usize, i64, u64)>;

fn labels(s: usize) -> Labels {
    Labels::from_pairs([("__name__", "fi".to_string()), ("s", s.to_string())]).unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn opts(policy: &RetentionPolicy) -> Options {
    // small WAL files, so that commits also roll over to new files; each open brings
    // its policy and records it (`update_retention`), which is a fault point too
    Options::default()
        .sync(SyncMode::Always)
        .background(false)
        .wal_segment_size(1024)
        .retention(policy.clone())
        .update_retention(true)
}

/// fsync is what the scenario does most; on tmpfs it costs nothing.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

/// Values with awkward bit patterns: NaN payloads, the stale marker, -0.0, infinity.
fn value(i: i64) -> u64 {
    match i % 9 {
        0 => f64::NAN.to_bits(),
        1 => STALE,
        2 => (-0.0f64).to_bits(),
        3 => f64::INFINITY.to_bits(),
        4 => 0x7ff8_dead_beef_0001,
        _ => (i as f64 / 4.0).to_bits(),
    }
}

/// One batch per series over `count` steps of `step` ms from `from`.
fn window(from: i64, count: i64, step: i64, salt: i64) -> Batch {
    (0..SERIES).flat_map(|s| (0..count).map(move |k| (s, from + k * step, value(k * 7 + s as i64 + salt)))).collect()
}

/// Acknowledged values, and values of commits that failed (they may or may not survive).
#[derive(Default)]
struct Model {
    acked: BTreeMap<Key, u64>,
    maybe: BTreeMap<Key, Vec<u64>>,
}

impl Model {
    fn ack(&mut self, b: &Batch) {
        for &(s, ts, v) in b {
            self.acked.insert((s, ts), v);
            self.maybe.remove(&(s, ts));
        }
    }

    fn unsure(&mut self, b: &Batch) {
        for &(s, ts, v) in b {
            self.maybe.entry((s, ts)).or_default().push(v);
        }
    }

    /// Checks every series the Db returns: strictly increasing timestamps (no sample
    /// twice), each value acknowledged or from a failed commit, and every acknowledged
    /// sample at or after `from` present.
    fn check(&self, db: &Db, from: i64, what: &str) {
        let q = db.querier(i64::MIN..i64::MAX);
        let mut seen = 0usize;
        for item in q.select(&[Matcher::eq("__name__", "fi")]).unwrap() {
            let (l, samples) = item.unwrap();
            let samples: Vec<_> = samples.collect();
            let s: usize = l.get("s").unwrap().parse().unwrap();
            for w in samples.windows(2) {
                assert!(w[0].ts < w[1].ts, "{what}: series {s}: {} then {}", w[0].ts, w[1].ts);
            }
            for x in &samples {
                let key = (s, x.ts);
                assert!(x.ts >= from, "{what}: series {s} at {} is before {from}", x.ts);
                let bits = x.value.to_bits();
                let ok = self.acked.get(&key) == Some(&bits) || self.maybe.get(&key).is_some_and(|v| v.contains(&bits));
                assert!(ok, "{what}: series {s} at {}: {bits:#x}, acked {:?}", x.ts, self.acked.get(&key));
                seen += usize::from(self.acked.contains_key(&key));
            }
        }
        let want = self.acked.keys().filter(|k| k.1 >= from).count();
        assert_eq!(seen, want, "{what}: acknowledged samples missing");
    }
}

/// What one run observed.
struct Outcome {
    errors: Vec<String>,
    acked: usize,
}

struct Scenario {
    base: i64,
    forever: RetentionPolicy,
    short: RetentionPolicy,
}

impl Scenario {
    fn new() -> Scenario {
        // Data sits 2-3 days back, far from every boundary, so wall time passing
        // during the test changes nothing: same calls, same retention outcome.
        let base = (now_ms() - 2 * DAY).div_euclid(DAY) * DAY;
        let keep = Duration::from_millis((now_ms() - (base + CUT)) as u64);
        Scenario {
            base,
            forever: RetentionPolicy::new(TierDurations::forever()).unwrap(),
            short: RetentionPolicy::new(TierDurations::new(keep, TierDurations::FOREVER, TierDurations::FOREVER))
                .unwrap(),
        }
    }

    /// Runs the scenario in `dir` with whatever is armed; `fault` is what to expect in errors.
    fn run(&self, dir: &Path, fault: Option<(Op, Fault)>, m: &mut Model) -> Outcome {
        let mut r =
            Runner { dir, fault, errors: Vec::new(), acked: 0, poisoned: false, must_be_poisoned: false, fired: 0 };
        let b = self.base;
        'run: {
            let Some(db) = r.step(Db::open(dir, opts(&self.forever))) else { break 'run };
            r.commit(&db, m, window(b, 30, MIN, 0));
            r.commit(&db, m, window(b + 30 * MIN, 30, MIN, 1));
            r.flush(&db);
            r.commit(&db, m, window(b + 10 * HOUR, 60, MIN, 2));
            // out of order, overwrites of sealed samples, and new in-between timestamps
            r.commit(&db, m, window(b, 15, 4 * MIN, 3));
            r.commit(&db, m, window(b + 10 * HOUR + MIN / 2, 20, 3 * MIN, 4));
            r.flush(&db);
            r.commit(&db, m, window(b + 11 * HOUR, 30, MIN, 5));
            r.step(db.downsample());
            r.step(db.compact());
            r.poll(&db);
            m.check(&db, i64::MIN, "live, after compaction");
            r.close(db);

            let Some(db) = r.step(Db::open(dir, opts(&self.forever))) else { break 'run };
            r.checkpoint(&db);
            m.check(&db, i64::MIN, "reopened mid-run");
            if r.step(db.set_retention(self.short.clone())).is_none() {
                r.close(db);
                break 'run;
            }
            r.step(db.apply_retention());
            r.poll(&db);
            m.check(&db, b + CUT, "live, after retention");
            r.commit(&db, m, window(b + 12 * HOUR, 20, MIN, 6));
            r.flush(&db);
            r.commit(&db, m, window(b + 13 * HOUR, 10, MIN, 7));
            r.close(db);
        }
        Outcome { errors: r.errors, acked: r.acked }
    }

    /// Reopens without injection and checks the model, the tiers and new writes.
    fn verify(&self, dir: &Path, m: &mut Model, what: &str) {
        let db = Db::open(dir, opts(&self.short)).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
        m.check(&db, self.base + CUT, what);
        let q = Query::new()
            .select([Matcher::eq("__name__", "fi")])
            .range(self.base + 9 * HOUR..self.base + 15 * HOUR)
            .step(Duration::from_secs(3600))
            .agg(Agg::Count);
        let raw = db.query(&q.clone().tier(Tier::Raw)).unwrap();
        for tier in [Tier::FiveMin, Tier::Hour] {
            let rolled = db.query(&q.clone().tier(tier)).unwrap();
            assert_eq!(rolled.series, raw.series, "{what}: tier {tier:?} disagrees with raw");
        }
        let fresh = window(self.base + 20 * HOUR, 5, MIN, 8);
        let mut app = db.appender();
        for &(s, ts, v) in &fresh {
            app.append_labels(&labels(s), ts, f64::from_bits(v)).unwrap();
        }
        app.commit().unwrap_or_else(|e| panic!("{what}: a write after recovery failed: {e}"));
        m.ack(&fresh);
        db.flush().unwrap();
        m.check(&db, self.base + CUT, what);
        db.close().unwrap();
    }
}

/// Drives one run: records errors, checks each is clear, tracks poisoning.
struct Runner<'a> {
    dir: &'a Path,
    fault: Option<(Op, Fault)>,
    errors: Vec<String>,
    acked: usize,
    /// The current Db instance has reported itself poisoned.
    poisoned: bool,
    /// An injected fsync failure surfaced: the Db must be poisoned from now on.
    must_be_poisoned: bool,
    /// Injected failures seen so far.
    fired: u64,
}

impl Runner<'_> {
    fn step<T>(&mut self, r: strata::Result<T>) -> Option<T> {
        let fired = std::mem::replace(&mut self.fired, failpoint::fired());
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.check_clear(&e);
                if matches!(self.fault, Some((Op::Fsync, _))) && self.fired > fired {
                    self.must_be_poisoned = true;
                }
                self.errors.push(e.to_string());
                None
            }
        }
    }

    fn commit(&mut self, db: &Db, m: &mut Model, b: Batch) {
        let mut app = db.appender();
        for &(s, ts, v) in &b {
            app.append_labels(&labels(s), ts, f64::from_bits(v)).unwrap();
        }
        match app.commit() {
            Ok(()) => {
                assert!(!self.poisoned, "a commit was acknowledged after the Db was poisoned");
                self.acked += b.len();
                m.ack(&b);
            }
            Err(e) => {
                m.unsure(&b);
                self.step::<()>(Err(e));
            }
        }
        self.poll(db);
    }

    fn flush(&mut self, db: &Db) {
        self.step(db.flush());
        self.poll(db);
    }

    fn close(&mut self, db: Db) {
        self.step(db.close());
        self.poisoned = false;
        self.must_be_poisoned = false;
    }

    /// Notes whether the Db is poisoned; after a failed fsync it must be.
    fn poll(&mut self, db: &Db) {
        self.poisoned |= db.wal_stats().poisoned.is_some();
        if self.must_be_poisoned {
            assert!(self.poisoned, "an fsync failed but the Db still accepts writes: {:?}", self.errors);
        }
    }

    /// The error must carry the injected OS error and name a file of this Db.
    /// A failed write of the index checkpoint does not fail the open (it costs
    /// only the next open's time); the recovery report says why, as clearly.
    fn checkpoint(&mut self, db: &Db) {
        if let Some(e) = &db.recovery_report().index_checkpoint_error {
            let Some((_, fault)) = self.fault else { panic!("error without injection: {e}") };
            let code = fault.error().raw_os_error().unwrap();
            let dir = self.dir.display().to_string();
            assert!(e.contains(&format!("os error {code}")) && e.contains(&dir), "unclear: {e}");
            self.errors.push(e.clone());
        }
    }

    fn check_clear(&self, e: &Error) {
        let Some((_, fault)) = self.fault else { panic!("error without injection: {e}") };
        let code = fault.error().raw_os_error().unwrap();
        let dir = self.dir.display().to_string();
        let ok = match e {
            Error::Io { context, source } => source.raw_os_error() == Some(code) && context.contains(&dir),
            Error::Poisoned { cause } => cause.contains(&format!("os error {code}")) && cause.contains(&dir),
            _ => false,
        };
        assert!(ok, "unclear error for {:?}: {e:?}", self.fault);
    }
}

/// The kinds of failure injected for each operation.
fn faults(op: Op) -> &'static [Fault] {
    match op {
        Op::Write => &[Fault::Eio, Fault::Enospc, Fault::ShortWrite],
        _ => &[Fault::Eio, Fault::Enospc],
    }
}

#[test]
fn every_fault_point_keeps_acknowledged_data() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sc = Scenario::new();
    let start = Instant::now();

    // Counting mode: how many calls of each kind the scenario makes, twice, to be sure
    // the sequence is deterministic (otherwise "call N" would mean different things).
    let mut counts = Vec::new();
    for _ in 0..2 {
        let dir = scratch_dir();
        let mut m = Model::default();
        failpoint::reset();
        let out = sc.run(dir.path(), None, &mut m);
        counts.push(failpoint::counts());
        assert!(out.errors.is_empty(), "{:?}", out.errors);
        assert!(out.acked > 600, "only {} samples acknowledged", out.acked);
        sc.verify(dir.path(), &mut m, "no injection");
    }
    assert_eq!(counts[0], counts[1], "the scenario's I/O is not deterministic");
    let counts = counts[0];
    println!("scenario I/O calls: {counts:?}");

    // STRATA_FAULT_POINT=Fsync13 runs one point (with STRATA_FAILPOINT_TRACE=1: where it fired)
    let only = std::env::var("STRATA_FAULT_POINT").ok();
    let mut points = 0u64;
    let mut by_op: BTreeMap<String, u64> = BTreeMap::new();
    for op in Op::ALL {
        for &fault in faults(op) {
            for mode in [Mode::Once, Mode::Persistent] {
                for n in 1..=counts.get(op) {
                    if std::env::var("FP_ONLY").is_ok_and(|v| v != format!("{op:?}{n}")) {
                        continue;
                    }
                    let what = format!("{op:?} #{n} {mode:?} {fault:?}");
                    let dir = scratch_dir();
                    let mut m = Model::default();
                    failpoint::arm(op, n, mode, fault);
                    let out = sc.run(dir.path(), Some((op, fault)), &mut m);
                    let fired = failpoint::fired();
                    failpoint::reset();
                    assert!(fired > 0, "{what}: the armed call never happened");
                    assert!(!out.errors.is_empty(), "{what}: the failure was swallowed");
                    sc.verify(dir.path(), &mut m, &what);
                    points += 1;
                    *by_op.entry(format!("{op:?}")).or_default() += 1;
                }
            }
        }
    }
    println!("fault injection: {points} fault points {by_op:?} in {:.1} s", start.elapsed().as_secs_f64());
    if only.is_none() {
        assert_eq!(points, 2 * (3 * counts.write + 2 * (counts.fsync + counts.rename + counts.create)));
    }
}

/// The `db_model` fuzz target (with injected failures): its checked-in corpus, then
/// a few hundred pseudo-random inputs, so a regression shows without a fuzzer.
#[test]
fn db_model_corpus_and_random_inputs() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/db_model");
    let mut files = 0;
    let mut total = strata::fuzz_model::Report::default();
    let mut add = |r: strata::fuzz_model::Report| {
        total.samples_acked += r.samples_acked;
        total.queries += r.queries;
        total.reopens += r.reopens;
        total.failures += r.failures;
    };
    for entry in std::fs::read_dir(&root).unwrap() {
        add(strata::fuzz_model::db_model_report(&std::fs::read(entry.unwrap().path()).unwrap()));
        files += 1;
    }
    assert!(files >= 5, "the db_model corpus is missing: {files} files in {}", root.display());
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let start = Instant::now();
    for _ in 0..300 {
        let len = (next() % 400) as usize;
        let input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        add(strata::fuzz_model::db_model_report(&input));
    }
    println!(
        "db_model: {files} corpus files and 300 random inputs in {:.1} s: {total:?}",
        start.elapsed().as_secs_f64()
    );
    assert!(total.samples_acked > 1000 && total.queries > 100 && total.reopens > 300, "{total:?}");
    assert!(total.failures > 20, "too few injected failures surfaced: {total:?}");
}

/// `Db::backup` with each of its I/O calls failing: a clear error naming the
/// destination, the Db not poisoned and still writable, and a retry into a new
/// directory gives a backup that opens with every acknowledged sample.
#[test]
fn backup_failures_leave_the_db_writable() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sc = Scenario::new();
    let dir = scratch_dir();
    let mut m = Model::default();
    let db = Db::open(dir.path(), opts(&sc.forever)).unwrap();
    let mut r = Runner {
        dir: dir.path(),
        fault: None,
        errors: Vec::new(),
        acked: 0,
        poisoned: false,
        must_be_poisoned: false,
        fired: 0,
    };
    r.commit(&db, &mut m, window(sc.base, 30, MIN, 0));
    r.flush(&db);
    r.commit(&db, &mut m, window(sc.base + HOUR, 30, MIN, 1));
    failpoint::reset();
    db.backup(&dir.path().join("counted")).unwrap();
    let counts = failpoint::counts();
    assert!(counts.total() > 5, "{counts:?}");
    let mut points = 0;
    for op in Op::ALL {
        for n in 1..=counts.get(op) {
            let dest = dir.path().join(format!("b-{op:?}-{n}"));
            failpoint::arm(op, n, Mode::Once, Fault::Eio);
            let err = db.backup(&dest).expect_err("an injected failure was ignored");
            failpoint::reset();
            let clear = matches!(&err, Error::Io { context, source }
                if source.raw_os_error() == Some(5) && context.contains(&*dest.display().to_string()));
            assert!(clear, "{op:?} #{n}: {err:?}");
            assert!(db.wal_stats().poisoned.is_none(), "{op:?} #{n}: a failed backup poisoned the Db");
            let b = (points % 1000) as i64;
            r.commit(&db, &mut m, window(sc.base + 2 * HOUR + b * MIN, 1, MIN, 2));
            points += 1;
        }
    }
    let dest = dir.path().join("retry");
    db.backup(&dest).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let copy = Db::open(&dest, opts(&sc.forever)).unwrap();
    m.check(&copy, i64::MIN, "backup after failed attempts");
    println!("backup: {points} fault points ({counts:?})");
}

// ---- Db::delete killed at every durable file operation ----

const KILL_DIR: &str = "STRATA_DELETE_KILL_DIR";
const KILL_AT: &str = "STRATA_DELETE_KILL_AT";
const T0: i64 = 1_700_000_000_000;
/// Two days sealed into segments, then half a day only in the WAL.
const SEALED: i64 = 2 * DAY / MIN;
const ALL: i64 = SEALED + DAY / 2 / MIN;
/// From day 0.5 into the WAL-only part, at odd milliseconds.
const DEL: (i64, i64) = (T0 + DAY / 2 + 7, T0 + 2 * DAY + 6 * HOUR + 3);

fn host(h: &str) -> Labels {
    Labels::from_pairs([("__name__", "cpu"), ("host", h)]).unwrap()
}

fn delete_opts() -> Options {
    Options::default().sync(SyncMode::Always).background(false)
}

fn delete_fixture(dir: &Path) {
    let db = Db::open(dir, delete_opts().retention(RetentionPolicy::forever())).unwrap();
    let mut app = db.appender();
    for (from, to) in [(0, SEALED), (SEALED, ALL)] {
        for h in ["a", "b", "c"] {
            for i in from..to {
                app.append_labels(&host(h), T0 + i * MIN, i as f64).unwrap();
            }
        }
        app.commit().unwrap();
        if from == 0 {
            db.flush().unwrap();
            db.compact().unwrap();
        }
    }
    // Dropped unsealed: the last half day stays in the WAL only.
}

fn delete_a(db: &Db) -> strata::Result<strata::DeleteReport> {
    db.delete(&[Matcher::eq("host", "a")], DEL.0..=DEL.1)
}

fn timestamps(db: &Db, h: &str) -> Vec<i64> {
    let q = db.querier(i64::MIN..i64::MAX);
    let mut s = q.select(&[Matcher::eq("host", h)]).unwrap();
    s.next().map(|r| r.unwrap().1.map(|s| s.ts).collect()).unwrap_or_default()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// Runs only as the child: opens the directory, arms a kill at one durable operation
/// and deletes.
#[test]
fn delete_kill_child() {
    let (Ok(dir), Ok(at)) = (std::env::var(KILL_DIR), std::env::var(KILL_AT)) else { return };
    let (op, n) = at.split_once(':').unwrap();
    let op = Op::ALL.into_iter().find(|o| format!("{o:?}") == op).unwrap();
    let db = Db::open(&dir, delete_opts()).unwrap();
    failpoint::arm(op, n.parse().unwrap(), Mode::Once, Fault::Kill);
    delete_a(&db).unwrap();
    println!("not killed");
}

#[test]
fn delete_killed_at_every_durable_operation_is_all_or_nothing() {
    use std::os::unix::process::ExitStatusExt;
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    failpoint::reset();
    let base = scratch_dir();
    let template = base.path().join("template");
    delete_fixture(&template);
    let every: Vec<i64> = (0..ALL).map(|i| T0 + i * MIN).collect();
    let kept: Vec<i64> = every.iter().copied().filter(|t| *t < DEL.0 || *t > DEL.1).collect();
    // Count the delete's durable operations (after the open).
    let probe = base.path().join("probe");
    copy_dir(&template, &probe);
    let db = Db::open(&probe, delete_opts()).unwrap();
    failpoint::reset();
    let r = delete_a(&db).unwrap();
    let counts = failpoint::counts();
    drop(db);
    assert_eq!(r.samples as usize, every.len() - kept.len());
    let (mut points, mut gone) = (0, 0);
    for op in Op::ALL {
        for n in 1..=counts.get(op) {
            let d = base.path().join(format!("{op:?}{n}"));
            copy_dir(&template, &d);
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "delete_kill_child", "--nocapture", "--test-threads=1"])
                .env(KILL_DIR, &d)
                .env(KILL_AT, format!("{op:?}:{n}"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.signal(), Some(9), "{op:?} {n}: not killed: {text}");
            let db = Db::open(&d, delete_opts()).unwrap();
            let a = timestamps(&db, "a");
            if a == kept {
                gone += 1;
            } else {
                assert_eq!(a, every, "{op:?} {n}: a partial delete is visible");
            }
            assert_eq!(timestamps(&db, "b"), every, "{op:?} {n}: another series changed");
            assert_eq!(timestamps(&db, "c"), every, "{op:?} {n}: another series changed");
            // Run again to completion: then the range is gone for good.
            delete_a(&db).unwrap();
            db.compact().unwrap();
            drop(db);
            let db = Db::open(&d, delete_opts()).unwrap();
            assert_eq!(timestamps(&db, "a"), kept, "{op:?} {n}");
            assert_eq!(timestamps(&db, "b"), every, "{op:?} {n}");
            drop(db);
            std::fs::remove_dir_all(&d).unwrap();
            points += 1;
        }
    }
    assert!(points >= 20, "only {points} durable operations: {counts:?}");
    assert!(gone > 0 && gone < points, "kills fell on both sides of the publication: {gone} of {points}");
    eprintln!("{points} kill points ({counts:?}): {gone} after the delete's publication");
}

/// Runs only as the child: opens the directory with a kill armed at one durable
/// operation of the open (which writes the index checkpoint).
#[test]
fn checkpoint_kill_child() {
    let (Ok(dir), Ok(at)) = (std::env::var(CK_KILL_DIR), std::env::var(KILL_AT)) else { return };
    let (op, n) = at.split_once(':').unwrap();
    let op = Op::ALL.into_iter().find(|o| format!("{o:?}") == op).unwrap();
    failpoint::arm(op, n.parse().unwrap(), Mode::Once, Fault::Kill);
    drop(Db::open(&dir, delete_opts()).unwrap());
    println!("not killed");
}

const CK_KILL_DIR: &str = "STRATA_CK_KILL_DIR";

#[test]
fn killed_while_writing_the_index_checkpoint_reopens_intact() {
    use std::os::unix::process::ExitStatusExt;
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    failpoint::reset();
    let base = scratch_dir();
    let template = base.path().join("template");
    delete_fixture(&template);
    let _ = std::fs::remove_file(template.join("INDEX"));
    let every: Vec<i64> = (0..ALL).map(|i| T0 + i * MIN).collect();
    // Count the open's durable operations: creating the WAL file and writing INDEX.
    let probe = base.path().join("probe");
    copy_dir(&template, &probe);
    failpoint::reset();
    drop(Db::open(&probe, delete_opts()).unwrap());
    let counts = failpoint::counts();
    assert!(probe.join("INDEX").exists());
    let mut points = 0;
    for op in Op::ALL {
        for n in 1..=counts.get(op) {
            let d = base.path().join(format!("ck{op:?}{n}"));
            copy_dir(&template, &d);
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "checkpoint_kill_child", "--nocapture", "--test-threads=1"])
                .env(CK_KILL_DIR, &d)
                .env(KILL_AT, format!("{op:?}:{n}"))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.signal(), Some(9), "{op:?} {n}: not killed: {text}");
            // Whatever the kill left (no INDEX, a partial INDEX.tmp), the next open
            // serves everything and leaves a checkpoint the open after uses.
            for round in 0..2 {
                let db = Db::open(&d, delete_opts()).unwrap();
                for h in ["a", "b", "c"] {
                    assert_eq!(timestamps(&db, h), every, "{op:?} {n} round {round}: series {h}");
                }
                if round == 1 {
                    assert_eq!(db.recovery_report().series_from_checkpoint, 3, "{op:?} {n}");
                }
            }
            std::fs::remove_dir_all(&d).unwrap();
            points += 1;
        }
    }
    assert!(points >= 4, "only {points} durable operations: {counts:?}");
    eprintln!("{points} kill points while opening and writing INDEX ({counts:?})");
}
