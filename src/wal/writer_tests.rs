//! The writer against files that fail or hold their fsyncs on command.

use super::*;
use crate::wal::tests::{id_frame as frame, replay_ids};

/// A file whose writes (short write, then errors) or fsyncs fail on command.
struct Faulty {
    inner: File,
    fail_write: Arc<AtomicBool>,
    fail_sync: Arc<AtomicBool>,
    gate: Arc<Gate>,
}

/// Holds background fsyncs until opened, and tells when one is waiting.
#[derive(Default)]
struct Gate {
    open: parking_lot::Mutex<bool>,
    changed: parking_lot::Condvar,
    waiting: AtomicU64,
}

impl Gate {
    fn pass(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock();
        while !*open {
            self.changed.wait(&mut open);
        }
    }
    fn set(&self, open: bool) {
        *self.open.lock() = open;
        self.changed.notify_all();
    }
}

struct FaultySync {
    inner: File,
    fail_sync: Arc<AtomicBool>,
    gate: Arc<Gate>,
}

impl SyncHandle for FaultySync {
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass();
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected EIO on fsync"));
        }
        self.inner.sync_data()
    }
}

impl Write for Faulty {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.fail_write.swap(false, Ordering::SeqCst) {
            // half the bytes reach the file, then the device is "full"
            self.inner.write_all(&buf[..buf.len() / 2])?;
            return Err(io::Error::other("injected ENOSPC"));
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl WalFile for Faulty {
    fn sync_data(&mut self) -> io::Result<()> {
        if self.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected EIO on fsync"));
        }
        self.inner.sync_data()
    }
    fn sync_handle(&self) -> io::Result<Arc<dyn SyncHandle>> {
        let (inner, fail_sync, gate) = (self.inner.try_clone()?, self.fail_sync.clone(), self.gate.clone());
        Ok(Arc::new(FaultySync { inner, fail_sync, gate }))
    }
}

fn gated_writer(dir: &Path, sync: SyncMode, gate: Arc<Gate>) -> (WalWriter, Arc<AtomicBool>, Arc<AtomicBool>) {
    let (fw, fs) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (fw2, fs2) = (fw.clone(), fs.clone());
    let opener: Opener = Box::new(move |p: &Path| {
        let inner = OpenOptions::new().write(true).create_new(true).open(p)?;
        let (fail_write, fail_sync, gate) = (fw2.clone(), fs2.clone(), gate.clone());
        Ok(Box::new(Faulty { inner, fail_write, fail_sync, gate }) as Box<dyn WalFile>)
    });
    let w = WalWriter::open_with(dir, 0, WalOptions::new(sync, 1 << 20), opener).unwrap();
    (w, fw, fs)
}

fn faulty_writer(dir: &Path, sync: SyncMode) -> (WalWriter, Arc<AtomicBool>, Arc<AtomicBool>) {
    let gate = Gate::default();
    gate.set(true);
    gated_writer(dir, sync, Arc::new(gate))
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn commits_go_on_while_an_interval_fsync_runs() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let (w, _, _) = gated_writer(dir.path(), SyncMode::Interval(std::time::Duration::from_millis(1)), gate.clone());
    w.submit(frame(1)).unwrap().wait().unwrap();
    wait_until("an interval fsync is held at the gate", || gate.waiting.load(Ordering::SeqCst) == 1);
    // the fsync cannot finish, yet later commits are written and acknowledged
    for id in 2..=5 {
        w.submit(frame(id)).unwrap().wait().unwrap();
    }
    assert_eq!(w.fsyncs().0, 0);
    gate.set(true);
    // the writes made during the sync are synced by a later one, and close syncs the rest
    w.close().unwrap();
    assert!(w.fsyncs().0 >= 1);
    assert_eq!(replay_ids(dir.path()), vec![1, 2, 3, 4, 5]);
}

#[test]
fn files_rolled_under_interval_keep_every_frame_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions::new(SyncMode::Interval(std::time::Duration::from_millis(1)), 2048);
    let w = WalWriter::open(dir.path(), 0, opts).unwrap();
    for id in 1..=300 {
        w.submit(frame(id)).unwrap().wait().unwrap();
    }
    assert!(w.current_seq() >= 3, "the test needs several rolls, got {}", w.current_seq());
    w.close().unwrap();
    assert!(w.fsyncs().0 >= w.current_seq(), "every rolled file was synced");
    assert_eq!(replay_ids(dir.path()), (1..=300).collect::<Vec<_>>());
}

#[test]
fn a_failed_interval_fsync_poisons_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, fail_sync) = faulty_writer(dir.path(), SyncMode::Interval(std::time::Duration::from_millis(1)));
    fail_sync.store(true, Ordering::SeqCst);
    // acknowledged once written, as the mode promises; the failed sync follows it
    w.submit(frame(1)).unwrap().wait().unwrap();
    wait_until("the writer is poisoned", || w.poisoned().is_some());
    let cause = w.poisoned().unwrap();
    assert!(cause.contains("fsync of WAL file") && cause.contains("injected EIO"), "{cause}");
    fail_sync.store(false, Ordering::SeqCst);
    assert!(matches!(w.submit(frame(2)), Err(Error::Poisoned { .. })));
    assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
    assert!(w.close().is_err());
}

#[test]
fn failed_fsync_poisons_forever() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _, fail_sync) = faulty_writer(dir.path(), SyncMode::Always);
    w.submit(frame(1)).unwrap().wait().unwrap();
    fail_sync.store(true, Ordering::SeqCst);
    let err = w.submit(frame(2)).unwrap().wait().unwrap_err();
    // the commit that met the failure gets the I/O error, naming the file
    assert!(
        matches!(&err, Error::Io { context, source }
        if context.starts_with("fsync of WAL file") && source.to_string().contains("injected EIO")),
        "{err}"
    );
    // the failure is not retried away: even a now-healthy fsync is never trusted
    fail_sync.store(false, Ordering::SeqCst);
    assert!(w.poisoned().is_some_and(|c| c.contains("fsync")));
    assert!(matches!(w.submit(frame(3)), Err(Error::Poisoned { .. })));
    assert!(matches!(w.rotate(), Err(Error::Poisoned { .. })));
    assert!(matches!(w.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(w.close(), Err(Error::Poisoned { .. })));
    assert!(matches!(w.close(), Err(Error::Poisoned { .. })));
}

#[test]
fn failed_write_is_never_followed_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let (w, fail_write, _) = faulty_writer(dir.path(), SyncMode::Never);
    w.submit(frame(1)).unwrap().wait().unwrap();
    fail_write.store(true, Ordering::SeqCst);
    let t2 = w.submit(frame(2)).unwrap();
    assert!(matches!(t2.wait(), Err(Error::Io { context, source })
        if context.contains("0000000000000000.wal") && source.to_string().contains("injected ENOSPC")));
    assert!(w.poisoned().is_some_and(|c| c.contains("injected ENOSPC")));
    let path = crate::wal::segment_path(dir.path(), 0);
    let len = std::fs::metadata(&path).unwrap().len();
    // writes would succeed again, but nothing may land after the fragment
    assert!(matches!(w.submit(frame(3)), Err(Error::Poisoned { .. })));
    assert!(w.close().is_err());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    // replay drops the fragment as a torn tail; the failed record does not appear
    assert_eq!(replay_ids(dir.path()), vec![1]);
}
