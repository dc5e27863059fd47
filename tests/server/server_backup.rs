//! `POST /backup` of a live server: writers keep committing during the backup, and
//! the snapshot opens with every sample acknowledged before the request.
#![cfg(feature = "server")]

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use crate::support::server_util::{opts, start_configured, start_with};
use strata::server::Limits;
use strata::{Db, Labels, Matcher};

fn count(db: &Db) -> usize {
    let q = db.querier(i64::MIN..i64::MAX);
    q.select(&[Matcher::eq("__name__", "bk")]).unwrap().map(|s| s.unwrap().1.len()).sum()
}

#[test]
fn backup_of_a_live_server_holds_everything_acknowledged_before_it() {
    let s = start_configured(opts(), Limits::default(), None, true);
    let l = Labels::from_pairs([("__name__", "bk"), ("k", "v")]).unwrap();
    {
        let mut app = s.db.appender();
        for t in 0..5_000 {
            app.append_labels(&l, t, t as f64).unwrap();
        }
        app.commit().unwrap();
        s.db.flush().unwrap(); // some data sealed, some only in the WAL
        for t in 5_000..6_000 {
            app.append_labels(&l, t, t as f64).unwrap();
        }
        app.commit().unwrap();
    }
    // A writer keeps committing while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicI64::new(6_000));
    let writer = {
        let (db, stop, acked, l) = (s.db.clone(), stop.clone(), acked.clone(), l.clone());
        std::thread::spawn(move || {
            let mut app = db.appender();
            let mut t = 6_000;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..100 {
                    app.append_labels(&l, t, t as f64).unwrap();
                    t += 1;
                }
                app.commit().unwrap();
                acked.store(t, Ordering::SeqCst);
            }
        })
    };
    while acked.load(Ordering::SeqCst) < 20_000 {
        std::thread::yield_now();
    }
    let before = acked.load(Ordering::SeqCst);
    let r = s.post("/backup", b"");
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let path = r.json()["path"].as_str().unwrap().to_string();
    assert!(path.starts_with(s.dir.path().join("backups").to_str().unwrap()), "{path}");
    let snap = Db::open(&path, opts()).unwrap();
    let q = snap.querier(0..before);
    let (_, samples) = q.select(&[Matcher::eq("__name__", "bk")]).unwrap().next().unwrap().unwrap();
    let got: Vec<i64> = samples.map(|s| s.ts).collect();
    assert_eq!(got, (0..before).collect::<Vec<_>>(), "every sample acknowledged before the backup");
    assert!(count(&snap) as i64 >= before);
}

#[test]
fn backup_is_refused_unless_the_operator_allowed_it() {
    let s = start_with(opts(), Limits::default(), None);
    let r = s.post("/backup", b"");
    assert_eq!(r.status, 403);
    assert!(r.error().contains("--backup-dir"), "{}", r.error());
}
