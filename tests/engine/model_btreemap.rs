//! The engine against a BTreeMap model: random appends (in and out of order,
//! duplicates, NaN and other special values), commits, rollbacks, flushes,
//! compactions, reopens, range selects and latest lookups. The same cases run
//! against a database on disk and one in memory (where a reopen would start
//! empty, so it is skipped).

use crate::support::options;
use std::collections::BTreeMap;

use proptest::prelude::*;
use strata::{Db, Labels, Matcher, Options, Sample, SyncMode};

#[derive(Debug, Clone)]
enum Op {
    Commit(Vec<(u8, i64, u64)>),
    Rollback(Vec<(u8, i64, u64)>),
    Flush,
    Compact,
    Reopen,
    Select { series: Option<u8>, start: i64, end: i64 },
    Latest(u8),
}

fn value_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (-1000i32..1000).prop_map(|v| (f64::from(v) / 10.0).to_bits()),
        1 => any::<u64>(),
        1 => Just(f64::NAN.to_bits()),
        1 => Just(0x7ff0_0000_0000_0002u64),
        1 => Just((-0.0f64).to_bits()),
        1 => Just(f64::INFINITY.to_bits()),
    ]
}

fn batch() -> impl Strategy<Value = Vec<(u8, i64, u64)>> {
    prop::collection::vec((0u8..5, 0i64..300, value_bits()), 1..20)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => batch().prop_map(Op::Commit),
        1 => batch().prop_map(Op::Rollback),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        2 => Just(Op::Reopen),
        4 => (prop::option::of(0u8..5), -10i64..310, 0i64..320)
            .prop_map(|(series, start, len)| Op::Select { series, start, end: start + len }),
        2 => (0u8..5).prop_map(Op::Latest),
    ]
}

fn labels(s: u8) -> Labels {
    Labels::from_pairs([("__name__", "model"), ("s", &s.to_string())]).unwrap()
}

fn opts() -> Options {
    options::foreground(SyncMode::Never)
}

/// The model checks logic, not durability: a tmpfs (where fsync costs nothing)
/// keeps 256 cases fast. Durability has its own crash tests.
fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

/// Where the database under test keeps its data.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Disk,
    Memory,
}

fn run(mode: Mode, ops: Vec<Op>) {
    let dir = (mode == Mode::Disk).then(scratch_dir);
    let open = || match &dir {
        Some(d) => Db::open(d.path(), opts()).unwrap(),
        None => Db::open_in_memory(opts()).unwrap(),
    };
    let mut db = Some(open());
    let mut model: BTreeMap<(u8, i64), u64> = BTreeMap::new();
    for op in ops {
        let d = db.as_ref().unwrap();
        match op {
            Op::Commit(b) | Op::Rollback(b) if b.is_empty() => {}
            Op::Commit(b) => {
                let mut app = d.appender();
                for &(s, ts, v) in &b {
                    app.append_labels(&labels(s), ts, f64::from_bits(v)).unwrap();
                }
                app.commit().unwrap();
                for (s, ts, v) in b {
                    model.insert((s, ts), v);
                }
            }
            Op::Rollback(b) => {
                let mut app = d.appender();
                for &(s, ts, v) in &b {
                    app.append_labels(&labels(s), ts, f64::from_bits(v)).unwrap();
                }
                app.rollback();
                app.commit().unwrap();
            }
            Op::Flush => d.flush().unwrap(),
            Op::Compact => {
                d.compact().unwrap();
            }
            Op::Reopen if mode == Mode::Memory => {}
            Op::Reopen => {
                db.take().unwrap().close().unwrap();
                db = Some(open());
            }
            Op::Select { series, start, end } => {
                let matchers = match series {
                    Some(s) => vec![Matcher::eq("s", s.to_string())],
                    None => vec![Matcher::eq("__name__", "model")],
                };
                let q = d.querier(start..end);
                let mut got: BTreeMap<u8, Vec<Sample>> = BTreeMap::new();
                for r in q.select(&matchers).unwrap() {
                    let (l, samples) = r.unwrap();
                    got.insert(l.get("s").unwrap().parse().unwrap(), samples.collect());
                }
                let mut want: BTreeMap<u8, Vec<Sample>> = BTreeMap::new();
                for (&(s, ts), &v) in &model {
                    if series.is_none_or(|x| x == s) && ts >= start && ts < end {
                        want.entry(s).or_default().push(Sample::new(ts, f64::from_bits(v)));
                    }
                }
                assert_eq!(got, want, "select {series:?} [{start}, {end})");
            }
            Op::Latest(s) => {
                let got = d.latest(&[Matcher::eq("s", s.to_string())]).unwrap();
                let want = model.range((s, i64::MIN)..=(s, i64::MAX)).next_back();
                match want {
                    None => assert!(got.is_empty()),
                    Some((&(_, ts), &v)) => {
                        assert_eq!(got.len(), 1);
                        assert_eq!(got[0].1, Sample::new(ts, f64::from_bits(v)));
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2000, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_btreemap_model(ops in prop::collection::vec(op(), 1..200)) {
        run(Mode::Disk, ops);
    }

    #[test]
    fn in_memory_engine_matches_btreemap_model(ops in prop::collection::vec(op(), 1..200)) {
        run(Mode::Memory, ops);
    }
}
