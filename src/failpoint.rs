//! Test-only fault injection for the crate's durable file operations.
//!
//! Every write, fsync, rename and file creation that durability depends on goes
//! through the helpers in `fsutil`, which first ask [`hit`]. Without the
//! `failpoints` feature `hit` is a constant `None` and the helpers are the plain
//! std calls. With it, a process-global injector counts the calls of each kind
//! and fails the Nth one (once, or from then on) with EIO, ENOSPC or a short
//! write. The injector is global because the engine's I/O runs on its own
//! threads (the WAL writer); tests that arm it must not run concurrently.
//!
//! Separately, [`PanicSite`]s mark places in sealing and maintenance where a test
//! can arm a panic (`arm_panic`), to check that it poisons the `Db`.

use std::io;

/// A kind of durable file operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// A write of a buffer to a file (WAL frames and headers, segment sections, manifest).
    Write,
    /// `fsync`/`fdatasync` of a file or a directory.
    Fsync,
    /// A rename that publishes a file.
    Rename,
    /// Creating (opening for writing) a file.
    Create,
}

impl Op {
    pub const ALL: [Op; 4] = [Op::Write, Op::Fsync, Op::Rename, Op::Create];
}

/// What an injected failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The call fails with EIO and has no effect.
    Eio,
    /// The call fails with ENOSPC and has no effect.
    Enospc,
    /// A write stores the first half of its buffer, then fails with ENOSPC (other
    /// operations fail with ENOSPC).
    ShortWrite,
    /// The process is killed with SIGKILL at the call, before it has any effect: a
    /// crash at exactly that point. For tests that run the engine in a child process.
    Kill,
}

/// The OS error codes for EIO and ENOSPC (the same on Linux and the BSDs).
const EIO: i32 = 5;
const ENOSPC: i32 = 28;

impl Fault {
    /// The error the failing call returns.
    pub fn error(self) -> io::Error {
        match self {
            // Kill never returns; EIO keeps the match total.
            Fault::Eio | Fault::Kill => io::Error::from_raw_os_error(EIO),
            Fault::Enospc | Fault::ShortWrite => io::Error::from_raw_os_error(ENOSPC),
        }
    }

    /// Applies the fault to a write of `buf` to `w`.
    pub(crate) fn fail_write<W: io::Write + ?Sized>(self, w: &mut W, buf: &[u8]) -> io::Result<()> {
        if self == Fault::ShortWrite {
            // the device took part of the buffer before it filled up
            let _ = w.write_all(&buf[..buf.len() / 2]).and_then(|()| w.flush());
        }
        Err(self.error())
    }
}

/// Whether an armed failure fires at one call only or at every call from the Nth on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Once,
    Persistent,
}

/// A place in the engine's background work where a test can make the code panic,
/// to check that a panic poisons the `Db` instead of killing a thread silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PanicSite {
    /// Sealing, after the frozen head's segment is written and before it is published.
    Seal,
    /// The start of a background maintenance pass (downsampling, compaction, retention).
    Maintain,
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_op: Op) -> Option<Fault> {
    None
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn panic_point(_site: PanicSite) {}

#[cfg(feature = "failpoints")]
pub use injector::*;

#[cfg(feature = "failpoints")]
mod injector {
    use std::sync::{Mutex, MutexGuard};

    use super::{Fault, Mode, Op, PanicSite};

    /// Calls of each kind since the last [`arm`] or [`reset`].
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Counts {
        pub write: u64,
        pub fsync: u64,
        pub rename: u64,
        pub create: u64,
    }

    impl Counts {
        pub fn get(&self, op: Op) -> u64 {
            match op {
                Op::Write => self.write,
                Op::Fsync => self.fsync,
                Op::Rename => self.rename,
                Op::Create => self.create,
            }
        }

        fn bump(&mut self, op: Op) -> u64 {
            let c = match op {
                Op::Write => &mut self.write,
                Op::Fsync => &mut self.fsync,
                Op::Rename => &mut self.rename,
                Op::Create => &mut self.create,
            };
            *c += 1;
            *c
        }

        pub fn total(&self) -> u64 {
            self.write + self.fsync + self.rename + self.create
        }
    }

    #[derive(Debug, Clone, Copy)]
    struct Armed {
        op: Op,
        nth: u64,
        mode: Mode,
        fault: Fault,
    }

    struct State {
        counts: Counts,
        armed: Option<Armed>,
        fired: u64,
    }

    static STATE: Mutex<State> =
        Mutex::new(State { counts: Counts { write: 0, fsync: 0, rename: 0, create: 0 }, armed: None, fired: 0 });

    /// The site armed to panic, and how many more passes through it panic.
    static PANIC: Mutex<Option<(PanicSite, u64)>> = Mutex::new(None);

    fn panic_state() -> MutexGuard<'static, Option<(PanicSite, u64)>> {
        PANIC.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the next `times` passes through `site` panic (with a message naming it).
    pub fn arm_panic(site: PanicSite, times: u64) {
        *panic_state() = (times > 0).then_some((site, times));
    }

    /// Removes an armed panic.
    pub fn disarm_panic() {
        *panic_state() = None;
    }

    pub(crate) fn panic_point(site: PanicSite) {
        let fire = {
            let mut p = panic_state();
            match p.as_mut() {
                Some((s, left)) if *s == site => {
                    *left -= 1;
                    if *left == 0 {
                        *p = None;
                    }
                    true
                }
                _ => false,
            }
        };
        if fire {
            panic!("injected panic at {site:?}");
        }
    }

    fn state() -> MutexGuard<'static, State> {
        // a panicking test must not wedge the others
        STATE.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resets the counters and fails the `nth` (from 1) call of `op` with `fault`,
    /// and with `Mode::Persistent` every later call of `op` too.
    pub fn arm(op: Op, nth: u64, mode: Mode, fault: Fault) {
        let mut s = state();
        s.counts = Counts::default();
        s.fired = 0;
        s.armed = Some(Armed { op, nth: nth.max(1), mode, fault });
    }

    /// Resets the counters and removes any armed failure: counting mode.
    pub fn reset() {
        let mut s = state();
        s.counts = Counts::default();
        s.fired = 0;
        s.armed = None;
    }

    /// Removes the armed failure, keeping the counters.
    pub fn disarm() {
        state().armed = None;
    }

    pub fn counts() -> Counts {
        state().counts
    }

    /// How many calls failed by injection since the last `arm` or `reset`.
    pub fn fired() -> u64 {
        state().fired
    }

    pub(crate) fn hit(op: Op) -> Option<Fault> {
        let mut s = state();
        let n = s.counts.bump(op);
        let a = s.armed.filter(|a| a.op == op)?;
        let fire = n == a.nth || (a.mode == Mode::Persistent && n > a.nth);
        if fire {
            s.fired += 1;
            if std::env::var_os("FP_TRACE").is_some() {
                eprintln!("FIRE {op:?} {n}\n{}", std::backtrace::Backtrace::force_capture());
            }
        }
        if fire && a.fault == Fault::Kill {
            drop(s);
            kill_self();
        }
        fire.then_some(a.fault)
    }

    /// SIGKILL to this process (through kill(1): the crate has no libc binding), and
    /// abort if that is not possible; never returns.
    fn kill_self() -> ! {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
        std::process::abort()
    }
}
