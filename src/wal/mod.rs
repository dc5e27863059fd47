//! The write-ahead log: every accepted write is framed, checksummed and appended here
//! before it is acknowledged, so that the head can be rebuilt after a crash.
//!
//! - [`record`]: the byte format (file header, frames, Series and Samples records).
//! - [`writer`]: a background thread that writes with group commit and poisons itself
//!   on the first I/O failure; [`syncer`] makes its interval fsyncs on a second thread.
//! - [`scan`]: the one reading of a file's frames and of what a bad frame is (a torn
//!   tail of the newest file, or damage), used by replay and by `strata check`.
//! - [`log`]: what a `Db` logs to: the writer, or nothing (an in-memory database).
//! - [`reader`]: replay, which truncates a torn tail of the newest file and refuses
//!   (or, under repair, cuts off) corruption anywhere else.
//!
//! The format is specified in `docs/format/wal.md`.

pub(crate) mod log;
pub mod reader;
pub mod record;
pub mod scan;
mod syncer;
pub mod writer;

pub use reader::{list_segments, remove_below, replay, reuse_empty_tail, segment_file_name};
pub use record::{encode_samples_frame, encode_series_frame, Record, WalSample};
pub use writer::{WalOptions, WalWriter};
#[cfg(test)]
pub(crate) use {
    reader::{segment_path, ReplayReport},
    writer::Ticket,
};

#[cfg(test)]
mod tests {
    //! Writer and reader together: files on disk, rotation, torn tails, corruption.

    use std::fs;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::record::{decode_frame, HEADER_LEN};
    use super::*;
    use crate::error::Error;
    use crate::labels::Labels;
    use crate::options::SyncMode;

    const STALE: u64 = 0x7ff0_0000_0000_0002;

    fn opts(segment_size: u64) -> WalOptions {
        WalOptions::new(SyncMode::Never, segment_size)
    }

    /// A varied record: series or samples with awkward values and timestamps.
    fn record(i: u64) -> Record {
        if i.is_multiple_of(4) {
            let l = Labels::metric("m", [("i", i.to_string())]).unwrap();
            return Record::Series(vec![(i, l)]);
        }
        let values = [f64::NAN, -0.0, f64::from_bits(STALE), f64::INFINITY, 1.5, f64::from_bits(0x7ff8_dead_beef_0001)];
        let tss = [i64::MIN, i64::MAX, 0, -1, 1_700_000_000_000];
        Record::Samples(
            (0..(i % 7))
                .map(|k| WalSample {
                    series: i * 31 + k,
                    ts: tss[((i + k) % 5) as usize].wrapping_add(k as i64),
                    value: values[((i + k) % 6) as usize],
                })
                .collect(),
        )
    }

    fn frame(r: &Record) -> Vec<u8> {
        let mut b = Vec::new();
        r.encode(&mut b);
        b
    }

    /// A one-sample frame whose series id is `i`.
    pub(super) fn id_frame(i: u64) -> Vec<u8> {
        let mut b = Vec::new();
        encode_samples_frame(&[WalSample { series: i, ts: i as i64, value: i as f64 }], &mut b);
        b
    }

    /// Series ids of all replayed samples, in order.
    pub(super) fn replay_ids(dir: &Path) -> Vec<u64> {
        let mut ids = Vec::new();
        replay(dir, 0, false, |r| {
            if let Record::Samples(s) = r {
                ids.extend(s.iter().map(|s| s.series));
            }
            Ok(())
        })
        .unwrap();
        ids
    }

    fn replay_all(dir: &Path, repair: bool) -> crate::Result<(Vec<Record>, ReplayReport)> {
        let mut got = Vec::new();
        let rep = replay(dir, 0, repair, |r| {
            got.push(r);
            Ok(())
        })?;
        Ok((got, rep))
    }

    /// Records of one file, decoded directly, with each frame's end offset.
    fn frames_in(path: &Path) -> Vec<(Record, usize)> {
        let data = fs::read(path).unwrap();
        let mut pos = HEADER_LEN;
        let mut out = Vec::new();
        while pos < data.len() {
            let (r, n) = decode_frame(&data[pos..]).unwrap();
            pos += n;
            out.push((r, pos));
        }
        out
    }

    /// Writes `per_file` records into each of `files` files; returns records and paths.
    fn write_files(dir: &Path, files: usize, per_file: u64) -> (Vec<Record>, Vec<PathBuf>) {
        let w = WalWriter::open(dir, 0, opts(u64::MAX)).unwrap();
        let mut recs = Vec::new();
        for f in 0..files as u64 {
            if f > 0 {
                w.rotate().unwrap();
            }
            for i in 0..per_file {
                let r = record(f * 100 + i + 1);
                w.submit(frame(&r)).unwrap().wait().unwrap();
                recs.push(r);
            }
        }
        w.close().unwrap();
        (recs, list_segments(dir).unwrap().into_iter().map(|(_, p)| p).collect())
    }

    #[test]
    fn round_trip_across_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let w = WalWriter::open(dir.path(), 5, opts(2048)).unwrap();
        let mut want = Vec::new();
        let mut tickets = Vec::new();
        for i in 0..400u64 {
            let r = record(i);
            let mut buf = frame(&r);
            want.push(r);
            if i.is_multiple_of(3) {
                // two frames in one submit
                let r2 = record(i + 1000);
                r2.encode(&mut buf);
                want.push(r2);
            }
            tickets.push(w.submit(buf).unwrap());
            if i.is_multiple_of(97) {
                w.rotate().unwrap();
            }
        }
        for t in tickets {
            t.wait().unwrap();
        }
        w.close().unwrap();
        let segs = list_segments(dir.path()).unwrap();
        assert!(segs.len() > 5, "only {} files", segs.len());
        assert_eq!(segs[0].0, 5);
        let (got, rep) = replay_all(dir.path(), false).unwrap();
        assert_eq!(got.len(), want.len());
        assert!(got == want, "records differ");
        assert_eq!(rep.records as usize, want.len());
        assert_eq!(rep.files, segs.len());
        assert_eq!(rep.truncated_bytes, 0);
        assert_eq!(rep.bytes, w.bytes_written());
    }

    #[test]
    fn rotate_separates_before_and_after() {
        let dir = tempfile::tempdir().unwrap();
        let w = WalWriter::open(dir.path(), 0, opts(u64::MAX)).unwrap();
        let (a, b, c) = (record(1), record(2), record(3));
        let ta = w.submit(frame(&a)).unwrap();
        let s1 = w.rotate().unwrap();
        let tb = w.submit(frame(&b)).unwrap();
        let s2 = w.rotate().unwrap();
        let tc = w.submit(frame(&c)).unwrap();
        assert_eq!((s1, s2, w.current_seq()), (1, 2, 2));
        for t in [ta, tb, tc] {
            t.wait().unwrap();
        }
        w.close().unwrap();
        let files: Vec<Vec<Record>> = list_segments(dir.path())
            .unwrap()
            .iter()
            .map(|(_, p)| frames_in(p).into_iter().map(|(r, _)| r).collect())
            .collect();
        assert_eq!(files, vec![vec![a], vec![b.clone()], vec![c.clone()]]);
        let mut got = Vec::new();
        replay(dir.path(), 1, false, |r| {
            got.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, vec![b, c]);
        assert_eq!(remove_below(dir.path(), 2).unwrap(), 2);
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    }

    /// Puts `bytes` as the only WAL file in an empty `dir`.
    fn reset(dir: &Path, bytes: &[u8]) -> PathBuf {
        for (_, p) in list_segments(dir).unwrap() {
            fs::remove_file(p).unwrap();
        }
        let p = segment_path(dir, 0);
        fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn torn_tail_every_truncation_and_bit_flip() {
        let src = tempfile::tempdir().unwrap();
        let w = WalWriter::open(src.path(), 0, opts(u64::MAX)).unwrap();
        let l = Labels::metric("up", [("job", "x")]).unwrap();
        let recs = vec![
            record(4),
            record(6),
            record(13),
            Record::Series(vec![(9, l)]),
            Record::Samples(vec![
                WalSample { series: 9, ts: 10, value: f64::from_bits(STALE) },
                WalSample { series: 9, ts: 20, value: -0.0 },
            ]),
        ];
        for r in &recs {
            w.submit(frame(r)).unwrap().wait().unwrap();
        }
        w.close().unwrap();
        let orig = fs::read(segment_path(src.path(), 0)).unwrap();
        let ends: Vec<usize> = frames_in(&segment_path(src.path(), 0)).into_iter().map(|(_, e)| e).collect();
        let (start3, start4) = (ends[2], ends[3]);
        let dir = tempfile::tempdir().unwrap();
        let mut cases = 0;

        // Replays a damaged copy; expects the first `keep` records and a cut at `good_end`.
        let check = |bytes: &[u8], keep: usize, good_end: usize, repair: bool| {
            let path = reset(dir.path(), bytes);
            let (got, rep) = replay_all(dir.path(), repair).unwrap();
            assert_eq!(got, recs[..keep].to_vec());
            assert_eq!(rep.truncated_bytes, (bytes.len() - good_end) as u64);
            assert_eq!(fs::metadata(&path).unwrap().len(), good_end as u64);
            let (again, rep2) = replay_all(dir.path(), false).unwrap();
            assert_eq!(again, recs[..keep].to_vec());
            assert_eq!(rep2.truncated_bytes, 0);
        };

        for len in start3..orig.len() {
            let keep = ends.iter().filter(|&&e| e <= len).count();
            let good_end = if keep == 0 { HEADER_LEN } else { ends[keep - 1] };
            check(&orig[..len], keep, good_end, false);
            cases += 1;
        }
        for byte in start3..orig.len() {
            for bit in 0..8 {
                let mut bad = orig.clone();
                bad[byte] ^= 1 << bit;
                if byte >= start4 {
                    // the last record: a torn tail, cut without asking
                    check(&bad, 4, start4, false);
                } else {
                    // a valid record follows: corruption, refused unless repairing
                    let path = reset(dir.path(), &bad);
                    match replay_all(dir.path(), false) {
                        Err(Error::Corruption { file, offset, .. }) => {
                            assert_eq!((file, offset), (path, start3 as u64));
                        }
                        other => panic!("flip at {byte}:{bit}: expected corruption, got {other:?}"),
                    }
                    check(&bad, 3, start3, true);
                }
                cases += 1;
            }
        }
        println!("torn tail: {cases} damaged copies checked");
    }

    #[test]
    fn torn_header_of_newest_file_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (recs, paths) = write_files(dir.path(), 2, 3);
        let header = fs::read(&paths[1]).unwrap()[..HEADER_LEN].to_vec();
        for torn in [Vec::new(), header[..10].to_vec(), vec![0u8; HEADER_LEN]] {
            let p = segment_path(dir.path(), 2);
            fs::write(&p, &torn).unwrap();
            let (got, rep) = replay_all(dir.path(), false).unwrap();
            assert_eq!(got, recs);
            assert_eq!(rep.truncated_bytes, torn.len() as u64);
            assert_eq!(rep.truncated_file, Some(p.clone()));
            assert!(!p.exists());
        }
        // a bad header on an older file is corruption
        let mut bad = fs::read(&paths[0]).unwrap();
        bad[3] ^= 0x40;
        fs::write(&paths[0], &bad).unwrap();
        assert!(matches!(replay_all(dir.path(), false), Err(Error::Corruption { offset: 0, .. })));
        let (got, rep) = replay_all(dir.path(), true).unwrap();
        assert!(got.is_empty());
        assert_eq!(rep.truncated_file.as_deref(), Some(paths[0].as_path()));
        assert!(list_segments(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn corruption_mid_log_is_refused_or_repaired() {
        for damaged in [1usize, 2] {
            // file 1 is not the newest; file 2 is, with 4 valid records after the damage
            let dir = tempfile::tempdir().unwrap();
            let (recs, paths) = write_files(dir.path(), 3, 5);
            let mut bytes = fs::read(&paths[damaged]).unwrap();
            bytes[HEADER_LEN + 10] ^= 0xff;
            fs::write(&paths[damaged], &bytes).unwrap();
            match replay_all(dir.path(), false) {
                Err(Error::Corruption { file, offset, reason }) => {
                    assert_eq!((&file, offset), (&paths[damaged], HEADER_LEN as u64), "{reason}");
                }
                other => panic!("expected corruption, got {other:?}"),
            }
            let (got, rep) = replay_all(dir.path(), true).unwrap();
            assert_eq!(got, recs[..5 * damaged].to_vec());
            assert_eq!(rep.truncated_file.as_ref(), Some(&paths[damaged]));
            assert_eq!(list_segments(dir.path()).unwrap().len(), damaged + 1);
            assert_eq!(fs::metadata(&paths[damaged]).unwrap().len(), HEADER_LEN as u64);
            let (again, rep) = replay_all(dir.path(), false).unwrap();
            assert_eq!((again.len(), rep.truncated_bytes), (got.len(), 0));
        }
    }

    #[test]
    fn damaged_tail_of_an_older_file_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (recs, paths) = write_files(dir.path(), 2, 3);
        let len = fs::metadata(&paths[0]).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(&paths[0]).unwrap();
        f.set_len(len - 1).unwrap();
        match replay_all(dir.path(), false) {
            Err(Error::Corruption { file, .. }) => assert_eq!(file, paths[0]),
            other => panic!("expected corruption, got {other:?}"),
        }
        let (got, _) = replay_all(dir.path(), true).unwrap();
        assert_eq!(got, recs[..2].to_vec());
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn missing_file_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let (recs, paths) = write_files(dir.path(), 3, 2);
        fs::remove_file(&paths[1]).unwrap();
        fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        match replay_all(dir.path(), false) {
            Err(Error::Corruption { file, offset: 0, .. }) => assert_eq!(file, paths[2]),
            other => panic!("expected corruption, got {other:?}"),
        }
        let (got, rep) = replay_all(dir.path(), true).unwrap();
        assert_eq!(got, recs[..2].to_vec());
        assert_eq!(rep.truncated_file.as_ref(), Some(&paths[2]));
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn callback_error_aborts_replay() {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path(), 1, 5);
        let mut n = 0;
        let r = replay(dir.path(), 0, false, |_| {
            n += 1;
            if n == 3 {
                return Err(Error::InvalidArgument("stop".into()));
            }
            Ok(())
        });
        assert!(matches!(r, Err(Error::InvalidArgument(_))));
        assert_eq!(n, 3);
        assert_eq!(replay(Path::new("/nonexistent/wal"), 0, false, |_| Ok(())).unwrap(), ReplayReport::default());
    }

    #[test]
    fn group_commit_shares_fsyncs() {
        let dir = tempfile::tempdir().unwrap();
        let w = WalWriter::open(dir.path(), 0, WalOptions::new(SyncMode::Always, 1 << 20)).unwrap();
        let (threads, per) = (4u64, 100u64);
        std::thread::scope(|s| {
            for t in 0..threads {
                let w = &w;
                s.spawn(move || {
                    for i in 0..per {
                        w.submit(id_frame(t * 1000 + i)).unwrap().wait().unwrap();
                    }
                });
            }
        });
        let (count, nanos) = w.fsyncs();
        println!("group commit: {} commits, {count} fsyncs, {} us total", threads * per, nanos / 1000);
        assert!(count < threads * per, "{count} fsyncs for {} commits", threads * per);
        w.close().unwrap();
        let mut ids = replay_ids(dir.path());
        ids.sort_unstable();
        let mut want: Vec<u64> = (0..threads).flat_map(|t| (0..per).map(move |i| t * 1000 + i)).collect();
        want.sort_unstable();
        assert_eq!(ids, want);
    }

    #[test]
    fn interval_mode_syncs_an_idle_log() {
        let dir = tempfile::tempdir().unwrap();
        let mode = SyncMode::Interval(Duration::from_millis(20));
        let w = WalWriter::open(dir.path(), 0, WalOptions::new(mode, 1 << 20)).unwrap();
        w.submit(id_frame(1)).unwrap().wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while w.fsyncs().0 == 0 {
            assert!(Instant::now() < deadline, "idle log was never synced");
            std::thread::sleep(Duration::from_millis(5));
        }
        w.close().unwrap();
    }

    #[test]
    fn close_is_idempotent_and_drop_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let w = WalWriter::open(dir.path(), 0, WalOptions::new(SyncMode::Never, 1 << 20)).unwrap();
        let t = w.submit(id_frame(1)).unwrap();
        w.close().unwrap();
        t.wait().unwrap();
        w.close().unwrap();
        assert!(matches!(w.submit(id_frame(2)), Err(Error::Closed)));
        assert!(matches!(w.sync(), Err(Error::Closed)));
        assert!(WalWriter::open(dir.path(), 0, WalOptions::new(SyncMode::Never, 1)).is_err());
        drop(w);
        let w = WalWriter::open(dir.path(), 1, WalOptions::new(SyncMode::Never, 1 << 20)).unwrap();
        let _ = w.submit(id_frame(3)).unwrap();
        drop(w); // no close: Drop must write it and return
        assert_eq!(replay_ids(dir.path()), vec![1, 3]);
    }

    #[test]
    fn empty_tail_files_are_reused_and_nothing_with_records_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let header_only = |seq: u64| WalWriter::open(d, seq, opts(u64::MAX)).unwrap().close().unwrap();
        // 3 holds a record; 4, 5 and 6 only their headers; 1 lies below the floor.
        header_only(1);
        let w = WalWriter::open(d, 3, opts(u64::MAX)).unwrap();
        w.submit(id_frame(7)).unwrap().wait().unwrap();
        w.close().unwrap();
        for seq in 4..=6 {
            header_only(seq);
        }
        let seqs = |d: &Path| list_segments(d).unwrap().into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(reuse_empty_tail(d, 3).unwrap(), 4);
        assert_eq!(seqs(d), vec![1, 3], "only the empty tail goes");
        let mut ids = Vec::new();
        replay(d, 3, false, |r| {
            if let Record::Samples(s) = r {
                ids.extend(s.iter().map(|s| s.series));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(ids, vec![7]);
        // The file with a record stays, whatever else is empty.
        assert_eq!(reuse_empty_tail(d, 3).unwrap(), 4);
        assert_eq!(seqs(d), vec![1, 3]);
        // An empty file at the floor is reused; the seq never drops below the floor.
        fs::remove_file(segment_path(d, 3)).unwrap();
        header_only(3);
        assert_eq!(reuse_empty_tail(d, 3).unwrap(), 3);
        assert_eq!(seqs(d), vec![1]);
        assert_eq!(reuse_empty_tail(d, 3).unwrap(), 3, "a file below the floor does not lower the seq");
        assert_eq!(seqs(d), vec![1], "nor is it touched");
        // A torn (short) file is not taken for an empty one: replay deals with it.
        fs::write(segment_path(d, 2), [0u8; 5]).unwrap();
        assert_eq!(reuse_empty_tail(d, 0).unwrap(), 3);
        assert_eq!(seqs(d), vec![1, 2]);
        assert_eq!(reuse_empty_tail(tempfile::tempdir().unwrap().path(), 0).unwrap(), 1);
    }

    #[test]
    fn writer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<WalWriter>();
        check::<Ticket>();
    }
}
