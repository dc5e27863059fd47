//! `Db::stats` counts samples as queries return them: a sample written again (a
//! retry, a re-import, an overwrite) counts once, whether the copies sit in one
//! head, in a head and a segment, or in two segments that overlap in time.

use crate::support::options;
use std::collections::BTreeMap;

use proptest::prelude::*;
use strata::{Db, Labels, Matcher, SyncMode};

#[derive(Debug, Clone)]
enum Op {
    Commit(Vec<(u8, i64)>),
    Flush,
    Compact,
    Reopen,
    Delete(u8, i64, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop::collection::vec((0u8..4, 0i64..120), 1..60).prop_map(Op::Commit),
        3 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
        1 => (0u8..4, 0i64..120, 0i64..40).prop_map(|(s, a, n)| Op::Delete(s, a, a + n)),
    ]
}

fn labels(s: u8) -> Labels {
    Labels::from_pairs([("__name__", "dup"), ("s", &s.to_string())]).unwrap()
}

fn queried(db: &Db) -> usize {
    let q = db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("__name__", "dup")]).unwrap().map(|r| r.unwrap().1.count()).sum()
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = || options::foreground(SyncMode::Never);
    let mut db = Db::open(dir.path(), opts()).unwrap();
    let mut model: BTreeMap<(u8, i64), ()> = BTreeMap::new();
    let mut written_since_flush = 0u64;
    for op in ops {
        match &op {
            Op::Commit(b) => {
                let mut app = db.appender();
                for &(s, ts) in b {
                    app.append_labels(&labels(s), ts * 1000, ts as f64).unwrap();
                    model.insert((s, ts * 1000), ());
                }
                app.commit().unwrap();
                written_since_flush += b.len() as u64;
            }
            Op::Flush => {
                db.flush().unwrap();
                written_since_flush = 0;
            }
            Op::Compact => {
                db.compact().unwrap();
            }
            Op::Reopen => {
                db.close().unwrap();
                db = Db::open(dir.path(), opts()).unwrap();
                // Replay appends each logged sample to the head once: overwrites stay counted.
                written_since_flush = db.stats().unwrap().head_samples_written;
            }
            &Op::Delete(s, a, b) => {
                db.delete(&[Matcher::eq("s", s.to_string())], a * 1000..=b * 1000).unwrap();
                model.retain(|&(ms, ts), _| !(ms == s && (a * 1000..=b * 1000).contains(&ts)));
                // A delete that matches a series seals the head first.
                let now = db.stats().unwrap().head_samples_written;
                assert!(now == written_since_flush || now == 0, "{now} after a delete");
                written_since_flush = now;
            }
        }
        let st = db.stats().unwrap();
        assert_eq!(st.samples(), model.len() as u64, "after {op:?}");
        assert_eq!(queried(&db), model.len(), "after {op:?}");
        assert_eq!(st.head_samples_written, written_since_flush);
        assert!(st.head_samples <= st.head_samples_written);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn stats_count_what_queries_return(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

/// The same batch written three times counts once, in the head, after a flush of
/// each copy into its own overlapping segment, and after the merge.
#[test]
fn a_batch_written_three_times_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options::foreground(SyncMode::Never)).unwrap();
    let write = || {
        let mut app = db.appender();
        for s in 0..4u8 {
            for ts in 0..500i64 {
                app.append_labels(&labels(s), ts * 10_000, ts as f64).unwrap();
            }
        }
        app.commit().unwrap();
    };
    for _ in 0..3 {
        write();
    }
    let st = db.stats().unwrap();
    assert_eq!((st.samples(), st.head_samples, st.head_samples_written), (2000, 2000, 6000));
    db.flush().unwrap();
    write();
    db.flush().unwrap();
    write();
    db.flush().unwrap();
    let st = db.stats().unwrap();
    assert!(st.segment_samples[0] >= 4000, "the segments overlap: {:?}", st.segment_samples);
    assert_eq!((st.samples(), st.head_samples), (2000, 0));
    db.compact().unwrap();
    let st = db.stats().unwrap();
    assert_eq!((st.samples(), st.segment_samples[0]), (2000, 2000));
}
