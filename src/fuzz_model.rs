//! A model-based fuzz target: bytes become a sequence of `Db` operations (append
//! in and out of order with duplicates and odd float bit patterns, commit,
//! rollback, flush, compact, reopen, range queries) checked against a `BTreeMap`.
//! With the `failpoints` feature an operation can also arm an I/O failure at the
//! Nth call of a kind; after any error the Db is reopened and what it holds is
//! checked (acknowledged samples all there, others only from failed commits).
//!
//! `fuzz/fuzz_targets/db_model.rs` runs it under libFuzzer and
//! `tests/fault_injection.rs` replays the corpus and random inputs.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;
use crate::labels::{Labels, Matcher};
use crate::options::{Options, SyncMode};
use crate::retention::{RetentionPolicy, TierDurations};
use crate::Db;

/// Bounds the work one input can ask for.
const MAX_OPS: usize = 200;
const MAX_REOPENS: usize = 6;
const SERIES: u8 = 4;

type Key = (u8, i64);

/// Consumes the input a byte (or eight) at a time; zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.byte()))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Mostly a small range, so timestamps collide (duplicates, overwrites) and
    /// arrive out of order; sometimes the extremes.
    fn ts(&mut self) -> i64 {
        let b = self.byte();
        match b {
            0 => i64::MIN + i64::from(self.byte()),
            1 => i64::MAX - 1 - i64::from(self.byte()),
            2 => i64::from(self.byte()) * 3_600_000,
            _ => i64::from(b) * 1000 + i64::from(self.byte() % 4),
        }
    }

    fn value(&mut self) -> u64 {
        match self.byte() % 8 {
            0 => f64::NAN.to_bits(),
            1 => 0x7ff0_0000_0000_0002, // the Prometheus stale marker
            2 => (-0.0f64).to_bits(),
            3 => f64::NEG_INFINITY.to_bits(),
            4 => self.u64(),
            _ => (f64::from(self.byte()) / 4.0).to_bits(),
        }
    }
}

fn labels(s: u8) -> Labels {
    Labels::from_pairs([("__name__", "fm".to_string()), ("s", s.to_string())]).expect("valid labels")
}

fn opts() -> Options {
    Options::default()
        .sync(SyncMode::Always)
        .background(false)
        .wal_segment_size(4096)
        .retention(RetentionPolicy::new(TierDurations::forever()).expect("valid policy"))
}

/// Samples of every series in `[from, to)`, as the Db returns them; checks that
/// timestamps strictly increase (no sample twice).
fn read(db: &Db, from: i64, to: i64) -> BTreeMap<Key, u64> {
    let mut out = BTreeMap::new();
    let q = db.querier(from..to);
    for item in q.select(&[Matcher::eq("__name__", "fm")]).expect("valid matchers") {
        let (l, samples) = item.expect("query of a healthy Db");
        let s: u8 = l.get("s").and_then(|v| v.parse().ok()).expect("series label");
        let mut last = None;
        for x in samples {
            assert!(last < Some(x.ts), "series {s}: {} after {last:?}", x.ts);
            last = Some(x.ts);
            out.insert((s, x.ts), x.value.to_bits());
        }
    }
    out
}

/// Runs the Db against the model; see the module docs.
pub fn db_model(data: &[u8]) {
    db_model_report(data);
}

/// What one input exercised, so a replay can show it did more than nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub samples_acked: u64,
    pub queries: u64,
    pub reopens: u64,
    /// Operations that failed because of an injected I/O failure.
    pub failures: u64,
}

/// [`db_model`], returning what the input exercised.
pub fn db_model_report(data: &[u8]) -> Report {
    let Ok(dir) = scratch_dir() else { return Report::default() };
    reset_failpoints();
    let mut m = Model::new(dir.path());
    m.run(&mut Bytes(data));
    reset_failpoints();
    m.report
}

struct Model<'a> {
    dir: &'a Path,
    db: Option<Db>,
    acked: BTreeMap<Key, u64>,
    /// Values of failed commits: each may or may not have survived.
    maybe: BTreeMap<Key, Vec<u64>>,
    batch: Vec<(u8, i64, u64)>,
    reopens: usize,
    armed: bool,
    report: Report,
}

impl<'a> Model<'a> {
    fn new(dir: &'a Path) -> Model<'a> {
        let db = Db::open(dir, opts()).expect("opening a fresh Db");
        Model {
            dir,
            db: Some(db),
            acked: BTreeMap::new(),
            maybe: BTreeMap::new(),
            batch: Vec::new(),
            reopens: 0,
            armed: false,
            report: Report::default(),
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("the Db is open")
    }

    fn run(&mut self, input: &mut Bytes<'_>) {
        for _ in 0..MAX_OPS {
            if input.is_empty() {
                break;
            }
            match input.byte() % 12 {
                0..=4 => {
                    let s = input.byte() % SERIES;
                    self.batch.push((s, input.ts(), input.value()));
                }
                5 => self.commit(),
                6 => self.batch.clear(),
                7 => {
                    let r = self.db().flush();
                    self.after(r);
                }
                8 => {
                    let r = self.db().compact().map(|_| ());
                    self.after(r);
                }
                9 if self.reopens < MAX_REOPENS => self.reopen(),
                10 => {
                    let (a, b) = (input.ts(), input.ts());
                    self.query(a.min(b), a.max(b));
                }
                11 => self.arm(input),
                _ => {}
            }
        }
        self.commit();
        self.reopen();
    }

    fn commit(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let mut app = self.db().appender();
        for &(s, ts, v) in &batch {
            app.append_labels(&labels(s), ts, f64::from_bits(v)).expect("appending to a forever-retention Db");
        }
        match app.commit() {
            Ok(()) => {
                self.report.samples_acked += batch.len() as u64;
                for (s, ts, v) in batch {
                    self.acked.insert((s, ts), v);
                    self.maybe.remove(&(s, ts));
                }
            }
            Err(e) => {
                // within a batch the last write of a key wins, as in the head
                let mut last = BTreeMap::new();
                for (s, ts, v) in batch {
                    last.insert((s, ts), v);
                }
                for (k, v) in last {
                    self.maybe.entry(k).or_default().push(v);
                }
                self.after(Err(e));
            }
        }
    }

    /// Any error must come from an injected failure; the Db is then reopened.
    fn after(&mut self, r: crate::Result<()>) {
        let Err(e) = r else { return };
        assert!(self.armed, "an error without an injected failure: {e}");
        assert!(matches!(e, Error::Io { .. } | Error::Poisoned { .. }), "not a storage error: {e:?}");
        self.report.failures += 1;
        self.reopen();
    }

    fn query(&mut self, from: i64, to: i64) {
        self.report.queries += 1;
        let got = read(self.db(), from, to);
        if self.maybe.is_empty() {
            let want: BTreeMap<Key, u64> =
                self.acked.iter().filter(|(k, _)| (from..to).contains(&k.1)).map(|(k, v)| (*k, *v)).collect();
            assert_eq!(got, want, "range {from}..{to}");
        }
    }

    /// Closes and reopens without injection, checks everything, and takes what the
    /// Db holds as the model (failed commits are now either durable or gone).
    fn reopen(&mut self) {
        self.reopens += 1;
        self.report.reopens += 1;
        reset_failpoints();
        self.armed = false;
        if let Some(db) = self.db.take() {
            let _ = db.close();
        }
        let db = Db::open(self.dir, opts()).unwrap_or_else(|e| panic!("reopen failed: {e}"));
        let got = read(&db, i64::MIN, i64::MAX);
        for (k, v) in &self.acked {
            let ok =
                got.get(k) == Some(v) || self.maybe.get(k).is_some_and(|m| got.get(k).is_some_and(|g| m.contains(g)));
            assert!(ok, "acknowledged {k:?} = {v:#x} came back as {:?}", got.get(k));
        }
        for (k, v) in &got {
            let ok = self.acked.get(k) == Some(v) || self.maybe.get(k).is_some_and(|m| m.contains(v));
            assert!(ok, "{k:?} = {v:#x} was never written");
        }
        self.acked = got;
        self.maybe.clear();
        self.db = Some(db);
    }

    #[cfg(feature = "failpoints")]
    fn arm(&mut self, input: &mut Bytes<'_>) {
        use crate::failpoint::{self, Fault, Mode, Op};
        let b = input.byte();
        let op = Op::ALL[usize::from(b % 4)];
        let fault = [Fault::Eio, Fault::Enospc, Fault::ShortWrite][usize::from(b / 4 % 3)];
        let mode = if b & 0x80 != 0 { Mode::Persistent } else { Mode::Once };
        failpoint::arm(op, u64::from(input.byte() % 16) + 1, mode, fault);
        self.armed = true;
    }

    #[cfg(not(feature = "failpoints"))]
    fn arm(&mut self, input: &mut Bytes<'_>) {
        input.byte();
        input.byte();
    }
}

fn reset_failpoints() {
    #[cfg(feature = "failpoints")]
    crate::failpoint::reset();
}

/// fsync costs nothing on tmpfs, where there is one.
fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return Ok(d);
        }
    }
    tempfile::tempdir()
}
