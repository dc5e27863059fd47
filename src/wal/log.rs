//! The log a `Db` writes to: WAL files, or none at all for an in-memory database.
//!
//! Chosen once at open. Without files there is nothing to recover after a restart,
//! so a commit is acknowledged as soon as its turn comes (tickets are complete from
//! the start), and a rotation only advances the sequence number that marks which
//! head a batch belongs to, so sealing splits batches between heads exactly as it
//! does on disk.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::writer::Ticket;
use super::WalWriter;
use crate::error::{Error, Result};

pub(crate) enum Log {
    Files(WalWriter),
    /// No log: `seq` numbers heads as WAL files would; `closed` refuses work after close.
    Absent {
        seq: AtomicU64,
        closed: AtomicBool,
    },
}

impl Log {
    pub fn absent() -> Log {
        Log::Absent { seq: AtomicU64::new(1), closed: AtomicBool::new(false) }
    }

    /// Whether commits are written to files (and so worth encoding as frames).
    pub fn keeps_files(&self) -> bool {
        matches!(self, Log::Files(_))
    }

    fn check(closed: &AtomicBool) -> Result<()> {
        if closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub fn submit(&self, frames: Vec<u8>) -> Result<Ticket> {
        match self {
            Log::Files(w) => w.submit(frames),
            Log::Absent { closed, .. } => Self::check(closed).map(|()| Ticket::done()),
        }
    }

    /// The sequence number of the next head's first batch.
    pub fn rotate(&self) -> Result<u64> {
        match self {
            Log::Files(w) => w.rotate(),
            Log::Absent { seq, closed } => {
                Self::check(closed)?;
                Ok(seq.fetch_add(1, Ordering::AcqRel) + 1)
            }
        }
    }

    pub fn sync(&self) -> Result<()> {
        match self {
            Log::Files(w) => w.sync(),
            Log::Absent { closed, .. } => Self::check(closed),
        }
    }

    pub fn close(&self) -> Result<()> {
        match self {
            Log::Files(w) => w.close(),
            Log::Absent { closed, .. } => {
                closed.store(true, Ordering::Release);
                Ok(())
            }
        }
    }

    pub fn bytes_written(&self) -> u64 {
        match self {
            Log::Files(w) => w.bytes_written(),
            Log::Absent { .. } => 0,
        }
    }

    pub fn fsyncs(&self) -> (u64, u64) {
        match self {
            Log::Files(w) => w.fsyncs(),
            Log::Absent { .. } => (0, 0),
        }
    }

    pub fn last_fsync_nanos(&self) -> u64 {
        match self {
            Log::Files(w) => w.last_fsync_nanos(),
            Log::Absent { .. } => 0,
        }
    }
}
