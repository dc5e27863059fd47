//! Tier acceleration at the edges: windows ending and starting on every
//! millisecond around bucket bounds, samples on the first and last millisecond
//! of buckets, signed zeros, values whose sum overflows in one order only, and
//! a bucket holding a staleness marker. Each compared with raw evaluation
//! (`use_tiers: false`), and the tiers checked to be used at all.

use super::{Options, Value};
use crate::db::windows::Need;
use crate::retention::{RetentionPolicy, TierDurations};
use crate::rollup::{FIVE_MIN_MS as FIVE, HOUR_MS as HOUR};
use crate::{Db, Labels, SyncMode};

const STALE: f64 = f64::from_bits(super::eval::STALE_NAN_BITS);
/// An hour boundary, so that 5-minute and hourly buckets start on it.
const T0: i64 = 1_700_000_000_000 / HOUR * HOUR;

fn sealed(series: &[(&str, Vec<(i64, f64)>)]) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let opts = crate::Options::default()
        .sync(SyncMode::Never)
        .background(false)
        .retention(RetentionPolicy::new(TierDurations::forever()).unwrap());
    let db = Db::open(dir.path(), opts).unwrap();
    let mut app = db.appender();
    for (name, points) in series {
        let l = Labels::metric(name, [("k", "v")]).unwrap();
        for &(t, v) in points {
            app.append_labels(&l, t, v).unwrap();
        }
    }
    app.commit().unwrap();
    db.flush().unwrap();
    db.downsample().unwrap();
    (dir, db)
}

/// The one value of an instant query, with tiers and without; `None` for no element.
fn both(db: &Db, q: &str, t: i64) -> (Option<f64>, Option<f64>) {
    let one = |opts: &Options| match db.promql_instant_with(q, t, opts).unwrap() {
        Value::Vector(v) => {
            assert!(v.len() <= 1, "{q}");
            v.first().map(|s| s.v)
        }
        other => panic!("{q}: {other:?}"),
    };
    (one(&Options::default()), one(&Options { use_tiers: false, ..Options::default() }))
}

fn same_bits(a: Option<f64>, b: Option<f64>) -> bool {
    a.map(f64::to_bits) == b.map(f64::to_bits)
}

#[test]
fn window_edges_on_every_millisecond_around_bucket_bounds() {
    // A sample every 7 s, and on the two ms either side of every 5-minute bound.
    let mut pts: Vec<(i64, f64)> = (0..(2 * HOUR / 7000)).map(|i| (T0 + i * 7000, (i % 13) as f64)).collect();
    for k in 1..24 {
        for d in -2..=2 {
            pts.push((T0 + k * FIVE + d, (100 + k * 5 + d) as f64));
        }
    }
    pts.sort_by_key(|p| p.0);
    pts.dedup_by_key(|p| p.0);
    let (_d, db) = sealed(&[("m", pts.clone())]);
    let fns = ["count_over_time", "sum_over_time", "avg_over_time", "min_over_time", "max_over_time"];
    for (lo_b, hi_b) in [(T0 + FIVE, T0 + 3 * FIVE), (T0 + 2 * FIVE, T0 + HOUR + 3 * FIVE), (T0, T0 + HOUR)] {
        for dl in -3..=3 {
            for dh in -3..=3 {
                let (lo, hi) = (lo_b + dl, hi_b + dh);
                let want = pts.iter().filter(|p| p.0 >= lo && p.0 <= hi).count() as f64;
                for f in fns {
                    let q = format!("{f}(m[{}ms])", hi - lo);
                    let (a, b) = both(&db, &q, hi);
                    let exact = !matches!(f, "sum_over_time" | "avg_over_time");
                    let close = a.zip(b).is_some_and(|(a, b)| (a - b).abs() <= 1e-12 * a.abs().max(b.abs()));
                    assert!(same_bits(a, b) || (!exact && close), "{q} at {hi}: {a:?} vs {b:?}");
                    if f == "count_over_time" {
                        assert_eq!(a, Some(want), "{q} at {hi}");
                    }
                }
            }
        }
    }
    // And the buckets stood in for raw samples.
    let windows = [(T0 + 2 * FIVE - 1, T0 + 2 * HOUR + 1)];
    let r = db.window_reader(&windows, Need { max: true, ..Need::default() });
    let ids = r.select(&[crate::Matcher::eq("__name__", "m")]);
    let sw = r.read(ids[0]).unwrap().unwrap();
    // 10 five-minute buckets, then the second hour; the ragged ms read raw.
    assert_eq!(sw.buckets_used, 10 + 1, "{}", sw.loaded);
    assert_eq!(sw.aggs[0].max, pts.iter().filter(|p| p.0 >= windows[0].0).map(|p| p.1).fold(f64::MIN, f64::max));
}

/// Rust leaves `f64::min(0.0, -0.0)` unspecified (x86 keeps the first, aarch64's
/// `fminnm` gives -0.0), so a rollup's zero min or max is never trusted.
#[test]
fn signed_zeros_keep_the_first_extreme() {
    // Bucket 1 holds -0.0 then 0.0; bucket 2 holds 0.0 then -0.0; nothing below zero.
    let pts = vec![
        (T0 + 10, 1.0),
        (T0 + FIVE + 10, -0.0),
        (T0 + FIVE + 20, 0.0),
        (T0 + 2 * FIVE + 10, 0.0),
        (T0 + 2 * FIVE + 20, -0.0),
        (T0 + 3 * FIVE + 10, 2.0),
    ];
    let (_d, db) = sealed(&[("z", pts)]);
    for (f, from) in [("min_over_time", FIVE), ("min_over_time", 2 * FIVE), ("max_over_time", FIVE)] {
        for end in [2 * FIVE, 3 * FIVE, 4 * FIVE] {
            let (lo, hi) = (T0 + from, T0 + end - 1);
            if lo > hi {
                continue;
            }
            let q = format!("{f}(z[{}ms])", hi - lo);
            let (a, b) = both(&db, &q, hi);
            assert!(same_bits(a, b), "{q} at {hi}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn sums_that_overflow_in_one_order_follow_raw_order() {
    // Raw order: 1e308 + 1e308 overflows to +Inf and stays there; the second bucket
    // alone sums to 0, so adding bucket sums would give 1e308.
    let pts = vec![(T0 + FIVE - 10, 1e308), (T0 + FIVE + 10, 1e308), (T0 + FIVE + 20, -1e308)];
    let (_d, db) = sealed(&[("o", pts)]);
    let hi = T0 + 2 * FIVE;
    let q = format!("sum_over_time(o[{}ms])", hi - (T0 + FIVE - 20));
    let (a, b) = both(&db, &q, hi);
    assert_eq!(b, Some(f64::INFINITY));
    assert!(same_bits(a, b), "{a:?} vs {b:?}");
    let q = q.replace("sum_", "avg_");
    let (a, b) = both(&db, &q, hi);
    assert!(same_bits(a, b), "{a:?} vs {b:?}");
}

#[test]
fn a_bucket_with_a_staleness_marker_is_read_raw() {
    let pts = vec![(T0 + 10, 1.0), (T0 + 20, STALE), (T0 + 30, 3.0), (T0 + FIVE + 10, 4.0)];
    let (_d, db) = sealed(&[("s", pts)]);
    let hi = T0 + 2 * FIVE - 1;
    let (a, b) = both(&db, &format!("count_over_time(s[{}ms])", hi - T0), hi);
    assert_eq!((a, b), (Some(3.0), Some(3.0)));
    let (a, b) = both(&db, &format!("sum_over_time(s[{}ms])", hi - T0), hi);
    assert_eq!((a, b), (Some(8.0), Some(8.0)));
}
