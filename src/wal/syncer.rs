//! Interval fsyncs off the writer thread.
//!
//! Under `SyncMode::Interval` nothing waits for the periodic fsync, yet when the writer
//! thread made it itself, every commit queued behind it waited for the disk (30–70 ms
//! stalls at a few M samples/s). Now the writer hands a second handle of its file to this
//! thread and goes on writing. Invariants:
//! - At most one fsync is in flight, always of the writer's current file: the writer
//!   waits for it before it syncs inline (roll, `Sync`, close), so a file is never left
//!   behind with a sync still running on it.
//! - A sync covers what was written before it started. The writer only marks itself clean
//!   when nothing was written while the sync ran, and times the next interval from the
//!   sync's start.
//! - A failed sync poisons the writer as an inline one does (no fsync is retried and then
//!   trusted).
//! - A file made by a roll under `Interval` or `Never` has its header and its directory
//!   entry made durable by the next sync, not before its first frame: losing that file
//!   to a power cut loses only a suffix of what was acknowledged less than an interval
//!   ago, which the mode allows. The file before it is always fsynced before the roll,
//!   so a power cut can never leave a hole.

use std::fs::File;
use std::io;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::error::{Error, Result};
use crate::fsutil;

/// A handle that can make a WAL file's data durable from another thread.
pub(crate) trait SyncHandle: Send + Sync {
    fn sync_data(&self) -> io::Result<()>;
}

impl SyncHandle for File {
    fn sync_data(&self) -> io::Result<()> {
        fsutil::sync_data(self)
    }
}

/// The outcome of one background fsync and how long it took.
pub(crate) struct Synced {
    pub result: Result<()>,
    pub nanos: u64,
}

/// The fsyncs to make, in order, with their errors named.
pub(crate) type Work = Box<dyn FnOnce() -> Result<()> + Send>;

type Job = (Work, Sender<Synced>);

/// The fsync thread. Dropping it lets the thread finish the sync under way and stop.
pub(crate) struct Syncer {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    pub fn start() -> io::Result<Syncer> {
        let (jobs, rx) = unbounded::<Job>();
        let thread = std::thread::Builder::new().name("strata-wal-sync".into()).spawn(move || {
            for (work, done) in rx {
                let start = Instant::now();
                let result = work();
                let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let _ = done.send(Synced { result, nanos });
            }
        })?;
        Ok(Syncer { jobs: Some(jobs), thread: Some(thread) })
    }

    /// Starts `work`; the receiver yields its outcome. A thread that is gone (it cannot
    /// be, short of a panic) yields an error, which poisons the writer.
    pub fn submit(&self, work: Work) -> Receiver<Synced> {
        let (done, rx) = bounded(1);
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send((work, done));
        }
        rx
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The outcome of a sync whose thread vanished before answering.
pub(crate) fn lost() -> Synced {
    Synced { result: Err(Error::Poisoned { cause: "the WAL fsync thread stopped before answering".into() }), nanos: 0 }
}
