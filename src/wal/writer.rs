//! The WAL writer: one background thread owns the open file and does all I/O.
//!
//! Callers enqueue encoded frames and get a [`Ticket`]; the thread drains whatever is
//! queued into one group, writes it with one `write_all`, and (under `SyncMode::Always`)
//! makes the whole group durable with one `sync_data` before completing its tickets.
//!
//! Invariants:
//! - A group is written to exactly one file, in submission order.
//! - After any failed write or fsync the writer is poisoned for good and drops its file
//!   handle, so nothing can ever be written after a fragment (no "adopting" a torn write)
//!   and no fsync is retried and then trusted (fsyncgate). The commits of the failing
//!   group get the `Error::Io` itself; every later request gets `Error::Poisoned`.
//! - A file is created new (never reopened for append), its header fsynced, then the
//!   directory fsynced, before any frame is written to it.
//! - Under `SyncMode::Interval` the periodic fsync runs on a second thread
//!   ([`super::syncer`]), so no commit waits behind it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;

use super::reader::segment_path;
use super::record::{encode_header, HEADER_LEN};
use super::syncer::{self, SyncHandle, Synced, Syncer};
use crate::error::{Error, Result};
use crate::fsutil::{self, sync_dir};
use crate::options::{Options, SyncMode};

/// Most bytes one group collects before it is written.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Writer settings, normally taken from [`Options`].
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    pub sync: SyncMode,
    /// A file at least this large is closed before the next group and file seq+1 begins.
    pub segment_size: u64,
}

impl WalOptions {
    pub fn new(sync: SyncMode, segment_size: u64) -> Self {
        WalOptions { sync, segment_size }
    }
}

impl From<&Options> for WalOptions {
    fn from(o: &Options) -> Self {
        WalOptions { sync: o.sync, segment_size: o.wal_segment_size }
    }
}

/// What the writer thread needs from a file; a seam for fault injection in tests.
pub(crate) trait WalFile: Write + Send {
    fn sync_data(&mut self) -> io::Result<()>;
    /// A second handle of the same file, for fsyncs on another thread.
    fn sync_handle(&self) -> io::Result<Arc<dyn SyncHandle>>;
}

impl WalFile for File {
    fn sync_data(&mut self) -> io::Result<()> {
        fsutil::sync_data(self)
    }
    fn sync_handle(&self) -> io::Result<Arc<dyn SyncHandle>> {
        Ok(Arc::new(self.try_clone()?))
    }
}

/// Creates a new file at the path; must fail if it exists.
pub(crate) type Opener = Box<dyn FnMut(&Path) -> io::Result<Box<dyn WalFile>> + Send>;

fn create_new_file(path: &Path) -> io::Result<Box<dyn WalFile>> {
    Ok(Box::new(fsutil::create(OpenOptions::new().write(true).create_new(true), path)?))
}

enum Cmd {
    Write { frames: Vec<u8>, done: Sender<Result<()>> },
    Rotate { done: Sender<Result<u64>> },
    Sync { done: Sender<Result<()>> },
    Close { done: Sender<Result<()>> },
}

/// State visible to both the callers and the thread.
struct Shared {
    seq: AtomicU64,
    bytes: AtomicU64,
    fsyncs: AtomicU64,
    fsync_nanos: AtomicU64,
    last_fsync_nanos: AtomicU64,
    poison: Mutex<Option<String>>,
    closed: AtomicBool,
}

impl Shared {
    /// The error for a request the thread can no longer answer.
    fn gone(&self) -> Error {
        if let Some(cause) = self.poison.lock().clone() {
            Error::Poisoned { cause }
        } else if self.closed.load(Ordering::Acquire) {
            Error::Closed
        } else {
            Error::Poisoned { cause: "the WAL writer thread stopped unexpectedly".into() }
        }
    }

    /// Refuses new work once poisoned or closed.
    fn check(&self) -> Result<()> {
        if let Some(cause) = self.poison.lock().clone() {
            return Err(Error::Poisoned { cause });
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

/// Appends frames to a directory of WAL files through a background thread. `Send + Sync`.
pub struct WalWriter {
    tx: Sender<Cmd>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Completes when the submitted frames are as durable as the `SyncMode` promises.
#[must_use = "a ticket must be waited on to know the frames were logged"]
pub struct Ticket {
    /// `None` for a ticket that is complete from the start (no log to wait for).
    pending: Option<(Receiver<Result<()>>, Arc<Shared>)>,
}

impl Ticket {
    /// A ticket with nothing to wait for: an in-memory database logs nothing.
    pub(crate) fn done() -> Ticket {
        Ticket { pending: None }
    }

    pub fn wait(self) -> Result<()> {
        match self.pending {
            Some((rx, shared)) => rx.recv().unwrap_or_else(|_| Err(shared.gone())),
            None => Ok(()),
        }
    }
}

impl WalWriter {
    /// Creates a NEW file with sequence `seq` in `dir` (never appends to an existing file:
    /// replay may have truncated a torn tail, and a new file guarantees no later write
    /// adopts a fragment), fsyncs its header and the directory, and starts the thread.
    pub fn open(dir: &Path, seq: u64, opts: WalOptions) -> Result<WalWriter> {
        Self::open_with(dir, seq, opts, Box::new(create_new_file))
    }

    pub(crate) fn open_with(dir: &Path, seq: u64, opts: WalOptions, mut opener: Opener) -> Result<WalWriter> {
        let file = create_segment(&mut opener, dir, seq, true)?;
        let shared = Arc::new(Shared {
            seq: AtomicU64::new(seq),
            bytes: AtomicU64::new(HEADER_LEN as u64),
            fsyncs: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            last_fsync_nanos: AtomicU64::new(0),
            poison: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        let state = WriterThread {
            dir: dir.to_path_buf(),
            opts,
            opener,
            file: Some(file),
            seq,
            file_len: HEADER_LEN as u64,
            dirty: false,
            last_sync: Instant::now(),
            shared: shared.clone(),
            bufs: Vec::new(),
            waiters: Vec::new(),
            group_bytes: 0,
            scratch: Vec::new(),
            // Without the thread (it could not start), interval fsyncs run inline as before.
            syncer: matches!(opts.sync, SyncMode::Interval(_)).then(Syncer::start).and_then(|r| r.ok()),
            sync_handle: None,
            in_flight: None,
            writes: 0,
            dir_unsynced: false,
        };
        let (tx, rx) = unbounded();
        let handle = std::thread::Builder::new()
            .name("strata-wal".into())
            .spawn(move || state.run(rx))
            .map_err(|e| Error::io("starting the WAL writer thread", e))?;
        Ok(WalWriter { tx, shared, thread: Mutex::new(Some(handle)) })
    }

    /// Enqueues complete, already-encoded frames. They are written contiguously to one
    /// file, in submission order. Never blocks on I/O.
    pub fn submit(&self, frames: Vec<u8>) -> Result<Ticket> {
        self.shared.check()?;
        let (done, rx) = bounded(1);
        self.tx.send(Cmd::Write { frames, done }).map_err(|_| self.shared.gone())?;
        Ok(Ticket { pending: Some((rx, self.shared.clone())) })
    }

    /// Starts a new file and returns its seq. Frames submitted before this call are in
    /// files with a lower seq, frames submitted after it in files with this seq or higher.
    /// The old file is fsynced first, whatever the `SyncMode`.
    pub fn rotate(&self) -> Result<u64> {
        self.request(|done| Cmd::Rotate { done })
    }

    /// fsyncs everything submitted so far, whatever the `SyncMode`.
    pub fn sync(&self) -> Result<()> {
        self.request(|done| Cmd::Sync { done })
    }

    /// Writes and fsyncs everything submitted, then stops the thread. Later calls return
    /// `Ok` (or the poison error); later submits return `Error::Closed`.
    pub fn close(&self) -> Result<()> {
        let mut thread = self.thread.lock();
        let Some(handle) = thread.take() else {
            return match self.shared.poison.lock().clone() {
                Some(cause) => Err(Error::Poisoned { cause }),
                None => Ok(()),
            };
        };
        let (done, rx) = bounded(1);
        let result = match self.tx.send(Cmd::Close { done }) {
            Ok(()) => rx.recv().unwrap_or_else(|_| Err(self.shared.gone())),
            Err(_) => Err(self.shared.gone()),
        };
        self.shared.closed.store(true, Ordering::Release);
        let _ = handle.join();
        result
    }

    /// Sequence number of the file frames are currently written to.
    pub fn current_seq(&self) -> u64 {
        self.shared.seq.load(Ordering::Acquire)
    }

    /// Bytes written to WAL files since open, headers included.
    pub fn bytes_written(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Data fsyncs of WAL files (not counting the header fsync of a new file) and their
    /// total duration in nanoseconds.
    pub fn fsyncs(&self) -> (u64, u64) {
        (self.shared.fsyncs.load(Ordering::Relaxed), self.shared.fsync_nanos.load(Ordering::Relaxed))
    }

    /// Duration of the most recent data fsync, in nanoseconds.
    pub fn last_fsync_nanos(&self) -> u64 {
        self.shared.last_fsync_nanos.load(Ordering::Relaxed)
    }

    /// The failure that poisoned the writer, if one did.
    pub fn poisoned(&self) -> Option<String> {
        self.shared.poison.lock().clone()
    }

    fn request<T>(&self, make: impl FnOnce(Sender<Result<T>>) -> Cmd) -> Result<T> {
        self.shared.check()?;
        let (done, rx) = bounded(1);
        self.tx.send(make(done)).map_err(|_| self.shared.gone())?;
        rx.recv().unwrap_or_else(|_| Err(self.shared.gone()))
    }
}

impl Drop for WalWriter {
    /// Same as `close`, ignoring its result. The thread answers `Close` promptly, so this
    /// waits at most for the I/O already under way.
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Creates file `seq` and writes its header; when `durable`, fsyncs the header and then
/// the directory.
fn create_segment(opener: &mut Opener, dir: &Path, seq: u64, durable: bool) -> Result<Box<dyn WalFile>> {
    let path = segment_path(dir, seq);
    let mut file = opener(&path).map_err(|e| Error::io(format!("creating WAL file {}", path.display()), e))?;
    fsutil::write_all(&mut *file, &encode_header(seq))
        .map_err(|e| Error::io(format!("writing the header of WAL file {}", path.display()), e))?;
    if durable {
        file.sync_data().map_err(|e| fsutil::sync_error(format_args!("WAL file {}", path.display()), e))?;
        sync_dir(dir)?;
    }
    Ok(file)
}

/// The background thread's state. Only this thread touches the file.
struct WriterThread {
    dir: PathBuf,
    opts: WalOptions,
    opener: Opener,
    /// `None` once poisoned: no write can follow a failure.
    file: Option<Box<dyn WalFile>>,
    seq: u64,
    file_len: u64,
    /// Bytes written since the last successful fsync.
    dirty: bool,
    last_sync: Instant,
    shared: Arc<Shared>,
    // the group being collected
    bufs: Vec<Vec<u8>>,
    waiters: Vec<Sender<Result<()>>>,
    group_bytes: usize,
    /// Reused buffer that joins a group's frames for a single write.
    scratch: Vec<u8>,
    /// The interval fsync thread (`SyncMode::Interval` only).
    syncer: Option<Syncer>,
    /// The current file's second handle for `syncer`, made at its first interval sync.
    sync_handle: Option<Arc<dyn SyncHandle>>,
    /// The background fsync under way, if any.
    in_flight: Option<InFlight>,
    /// Writes so far, to tell whether any happened while a background fsync ran.
    writes: u64,
    /// The current file's directory entry (and header) await their fsync.
    dir_unsynced: bool,
}

struct InFlight {
    done: Receiver<Synced>,
    started: Instant,
    writes: u64,
    /// The sync covers the directory entry too.
    dir: bool,
}

enum Event {
    Cmd(Cmd),
    SyncDue,
    Synced(Synced),
    Disconnected,
}

impl WriterThread {
    /// The next command, or a reason to act without one.
    fn next_event(&self, rx: &Receiver<Cmd>) -> Event {
        if let Some(f) = &self.in_flight {
            return crossbeam_channel::select! {
                recv(rx) -> cmd => cmd.map_or(Event::Disconnected, Event::Cmd),
                recv(f.done) -> s => Event::Synced(s.unwrap_or_else(|_| syncer::lost())),
            };
        }
        match self.sync_deadline() {
            None => rx.recv().map_or(Event::Disconnected, Event::Cmd),
            Some(deadline) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(cmd) => Event::Cmd(cmd),
                Err(RecvTimeoutError::Timeout) => Event::SyncDue,
                Err(RecvTimeoutError::Disconnected) => Event::Disconnected,
            },
        }
    }

    fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let first = match self.next_event(&rx) {
                Event::Cmd(cmd) => cmd,
                // an idle log still gets its interval fsync; failure poisons
                Event::SyncDue => {
                    self.begin_interval_sync();
                    continue;
                }
                Event::Synced(s) => {
                    self.finish_sync(s);
                    continue;
                }
                Event::Disconnected => return self.shutdown(),
            };
            // collect everything already queued; control commands split the group
            let mut next = Some(first);
            while let Some(cmd) = next.take() {
                match cmd {
                    Cmd::Write { frames, done } => {
                        self.group_bytes += frames.len();
                        self.bufs.push(frames);
                        self.waiters.push(done);
                    }
                    Cmd::Rotate { done } => {
                        self.commit_group();
                        let _ = done.send(self.rotate());
                    }
                    Cmd::Sync { done } => {
                        self.commit_group();
                        let _ = done.send(self.sync_if_dirty());
                    }
                    Cmd::Close { done } => {
                        self.commit_group();
                        let _ = done.send(self.sync_if_dirty());
                        self.shared.closed.store(true, Ordering::Release);
                        return;
                    }
                }
                if self.group_bytes < MAX_GROUP_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            self.commit_group();
            self.interval_sync();
        }
    }

    /// All handles dropped without close: make what was written durable anyway.
    fn shutdown(mut self) {
        let _ = self.sync_if_dirty();
        self.shared.closed.store(true, Ordering::Release);
    }

    /// When the next interval fsync is due, if one is pending and none is under way.
    fn sync_deadline(&self) -> Option<Instant> {
        match self.opts.sync {
            SyncMode::Interval(d) if self.dirty && self.file.is_some() && self.in_flight.is_none() => {
                self.last_sync.checked_add(d)
            }
            _ => None,
        }
    }

    /// Starts the interval fsync when due, and early in the last quarter of a file, so
    /// that the fsync a roll must make inline finds little left to write.
    fn interval_sync(&mut self) {
        let due = self.sync_deadline().is_some_and(|t| t <= Instant::now());
        let size = self.opts.segment_size;
        let ending = self.in_flight.is_none()
            && self.dirty
            && matches!(self.opts.sync, SyncMode::Interval(_))
            && self.file_len >= size - size / 4;
        if due || ending {
            self.begin_interval_sync();
        }
    }

    /// Hands the interval fsync to the sync thread, or makes it here when there is none.
    fn begin_interval_sync(&mut self) {
        let Some(file) = self.file.as_ref() else { return };
        if self.sync_handle.is_none() {
            self.sync_handle = file.sync_handle().ok();
        }
        match (&self.syncer, &self.sync_handle) {
            (Some(syncer), Some(handle)) => {
                let (handle, path) = (handle.clone(), segment_path(&self.dir, self.seq));
                let dir = self.dir_unsynced.then(|| self.dir.clone());
                let with_dir = dir.is_some();
                let work = Box::new(move || {
                    handle
                        .sync_data()
                        .map_err(|e| fsutil::sync_error(format_args!("WAL file {}", path.display()), e))?;
                    dir.map_or(Ok(()), |d| sync_dir(&d))
                });
                let done = syncer.submit(work);
                self.in_flight = Some(InFlight { done, started: Instant::now(), writes: self.writes, dir: with_dir });
            }
            _ => {
                let _ = self.fsync();
            }
        }
    }

    /// Takes in the outcome of the background fsync.
    fn finish_sync(&mut self, s: Synced) {
        let Some(f) = self.in_flight.take() else { return };
        self.count_fsync(s.nanos);
        match s.result {
            Ok(()) => {
                self.last_sync = f.started;
                if self.writes == f.writes {
                    self.dirty = false;
                }
                if f.dir {
                    self.dir_unsynced = false;
                }
            }
            Err(e) if self.file.is_some() => {
                self.poison(e);
            }
            Err(_) => {}
        }
    }

    /// Waits for the background fsync under way, if any.
    fn settle_sync(&mut self) {
        if let Some(f) = &self.in_flight {
            let s = f.done.recv().unwrap_or_else(|_| syncer::lost());
            self.finish_sync(s);
        }
    }

    /// Writes the collected group, fsyncs it under `Always`, then answers its tickets.
    fn commit_group(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
        let result = self.write_group();
        self.bufs.clear();
        self.group_bytes = 0;
        for done in self.waiters.drain(..) {
            let _ = done.send(result.as_ref().map(|_| ()).map_err(duplicate));
        }
    }

    fn write_group(&mut self) -> Result<()> {
        self.poison_cause()?;
        if self.file_len >= self.opts.segment_size {
            self.roll()?;
        }
        let bytes: &[u8] = if self.bufs.len() == 1 {
            &self.bufs[0]
        } else {
            self.scratch.clear();
            for b in &self.bufs {
                self.scratch.extend_from_slice(b);
            }
            &self.scratch
        };
        if !bytes.is_empty() {
            let n = bytes.len();
            let file = self.file.as_mut().ok_or_else(not_open)?;
            if let Err(e) = fsutil::write_all(&mut **file, bytes) {
                let path = segment_path(&self.dir, self.seq);
                return Err(self.poison(Error::io(format!("writing {n} bytes to WAL file {}", path.display()), e)));
            }
            self.file_len += n as u64;
            self.dirty = true;
            self.writes += 1;
            self.shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        if self.scratch.capacity() > MAX_GROUP_BYTES * 2 {
            self.scratch = Vec::new(); // don't keep a huge one-off buffer forever
        }
        if self.opts.sync == SyncMode::Always {
            self.sync_if_dirty()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<u64> {
        self.roll()?;
        Ok(self.seq)
    }

    /// fsyncs the current file and switches to file seq+1.
    fn roll(&mut self) -> Result<()> {
        self.poison_cause()?;
        self.sync_if_dirty()?;
        let Some(next) = self.seq.checked_add(1) else {
            return Err(self.poison(Error::Poisoned { cause: "WAL sequence number overflow".into() }));
        };
        // Under Always the new file is durable before its first frame; otherwise its
        // header and name are synced with the first interval fsync (see `syncer`).
        let durable = self.opts.sync == SyncMode::Always;
        match create_segment(&mut self.opener, &self.dir, next, durable) {
            Ok(file) => {
                self.file = Some(file);
                self.sync_handle = None;
                self.dir_unsynced = !durable;
                self.dirty = !durable;
                self.seq = next;
                self.file_len = HEADER_LEN as u64;
                self.shared.bytes.fetch_add(HEADER_LEN as u64, Ordering::Relaxed);
                self.shared.seq.store(next, Ordering::Release);
                Ok(())
            }
            // the new file may hold a torn header; replay of the newest file drops it
            Err(e) => Err(self.poison(e)),
        }
    }

    fn sync_if_dirty(&mut self) -> Result<()> {
        self.settle_sync();
        self.poison_cause()?;
        if self.dirty {
            self.fsync()?;
        }
        Ok(())
    }

    fn fsync(&mut self) -> Result<()> {
        let file = self.file.as_mut().ok_or_else(not_open)?;
        let start = Instant::now();
        let r = file.sync_data();
        self.count_fsync(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        self.last_sync = Instant::now();
        if let Err(e) = r {
            let path = segment_path(&self.dir, self.seq);
            return Err(self.poison(fsutil::sync_error(format_args!("WAL file {}", path.display()), e)));
        }
        self.dirty = false;
        if self.dir_unsynced {
            sync_dir(&self.dir).map_err(|e| self.poison(e))?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    fn count_fsync(&self, nanos: u64) {
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.shared.fsync_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.shared.last_fsync_nanos.store(nanos, Ordering::Relaxed);
    }

    fn poison_cause(&self) -> Result<()> {
        match self.shared.poison.lock().as_ref() {
            Some(cause) => Err(Error::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Records the first failure for good and drops the file so nothing more is
    /// written; returns the failure itself for the request that met it.
    fn poison(&mut self, e: Error) -> Error {
        log::error!("WAL writer poisoned: {e}");
        self.file = None;
        self.sync_handle = None;
        self.dirty = false;
        self.shared.poison.lock().get_or_insert_with(|| e.to_string());
        e
    }
}

fn not_open() -> Error {
    Error::Poisoned { cause: "the WAL file is not open".into() }
}

/// A copy of a WAL failure for each commit of the group that met it (`io::Error`
/// is not `Clone`; the OS error code and the message are kept).
fn duplicate(e: &Error) -> Error {
    match e {
        Error::Io { context, source } => {
            let source = match source.raw_os_error() {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::new(source.kind(), source.to_string()),
            };
            Error::Io { context: context.clone(), source }
        }
        Error::Poisoned { cause } => Error::Poisoned { cause: cause.clone() },
        other => Error::Poisoned { cause: other.to_string() },
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
