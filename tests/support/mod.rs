//! Shared by every test binary: the grouped ones (`tests/engine`, `tests/server`,
//! `tests/cli`) include this module with `#[path = "../support/mod.rs"]`, the separate
//! ones (`tests/server_abuse.rs`, `tests/fault_*.rs`) with a plain `mod support;`.

#![allow(dead_code)] // each binary uses a different subset

#[cfg(feature = "cli")]
pub mod cli_support;
pub mod options;
#[cfg(feature = "server")]
pub mod served;
#[cfg(feature = "server")]
pub mod server_util;

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

// A child forked while a test holds a Db open inherits the Db's LOCK descriptor
// until it execs. Had that test closed the Db and started `strata` on the same
// directory in the meantime, `strata` would find it locked. So a test that opens a
// Db in this process and later hands its directory to a child holds `serial()` for
// its whole run, and every child of a test binary is started through `spawn`,
// `output` or `status`, which fork only while no other thread holds `serial()`.
// (`Command::spawn` returns once the child has exec'd, so the lock is held for the
// fork and exec only, not while the child runs.)
static SERIAL: Mutex<()> = Mutex::new(());

thread_local! {
    static HOLDS_SERIAL: Cell<bool> = const { Cell::new(false) };
}

/// Held for the whole of a test that opens a Db in this process; see above.
pub struct Serial {
    _guard: MutexGuard<'static, ()>,
}

impl Drop for Serial {
    fn drop(&mut self) {
        HOLDS_SERIAL.with(|h| h.set(false));
    }
}

pub fn serial() -> Serial {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    HOLDS_SERIAL.with(|h| h.set(true));
    Serial { _guard: guard }
}

/// `cmd.spawn()`, while no other thread holds `serial()`.
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    if HOLDS_SERIAL.with(|h| h.get()) {
        return cmd.spawn();
    }
    let _fork = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    cmd.spawn()
}

/// `cmd.output()` (stdin closed, stdout and stderr captured), forking as `spawn` does.
pub fn output(cmd: &mut Command) -> io::Result<Output> {
    spawn(cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()))?.wait_with_output()
}

/// `cmd.status()`, forking as `spawn` does.
pub fn status(cmd: &mut Command) -> io::Result<ExitStatus> {
    spawn(cmd)?.wait()
}

/// `$env_var` if set (a path that is not a file counts as absent), else `name` on
/// the PATH or in /usr/bin: a real tool a test runs against (Prometheus, promtool).
pub fn external_binary(name: &str, env_var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .chain([PathBuf::from("/usr/bin").join(name)])
        .find(|p| p.is_file())
}

/// `STRATA_REQUIRE_EXTERNAL=1` (set by `.ci/run`): a missing tool is a failure, not a skip.
pub fn external_required() -> bool {
    std::env::var("STRATA_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}

/// A child process killed and reaped however the test ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes a golden fixture at `dst` unless it exists: `write` makes the file in the
/// temporary directory it is given and returns its path. Fixtures are never rewritten,
/// so a format change cannot silently replace the bytes an older reader is tested on.
pub fn write_fixture_once(dst: &std::path::Path, write: impl FnOnce(&std::path::Path) -> PathBuf) {
    if dst.exists() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(write(tmp.path()), dst).unwrap();
    println!("wrote {}", dst.display());
}
