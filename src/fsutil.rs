//! File-system steps that durability depends on, in one place.
//!
//! Every durable write, fsync, rename and file creation goes through the small
//! helpers below, which consult the test-only fault injector (`failpoint`) and
//! are the plain std calls when the `failpoints` feature is off.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::failpoint::{self, Op};

/// Suffix of files being written; swept on open.
pub const TMP_SUFFIX: &str = ".tmp";

/// How the context of every fsync error starts: see [`is_sync_failure`].
const FSYNC_CONTEXT: &str = "fsync of ";

/// Opens (usually creates) a file for writing.
#[inline]
pub(crate) fn create(opts: &OpenOptions, path: &Path) -> io::Result<File> {
    if let Some(f) = failpoint::hit(Op::Create) {
        return Err(f.error());
    }
    opts.open(path)
}

/// `write_all`; on failure an unknown prefix of `buf` may have reached the file.
#[inline]
pub(crate) fn write_all<W: Write + ?Sized>(w: &mut W, buf: &[u8]) -> io::Result<()> {
    if let Some(f) = failpoint::hit(Op::Write) {
        return f.fail_write(w, buf);
    }
    w.write_all(buf)
}

#[inline]
pub(crate) fn sync_data(f: &File) -> io::Result<()> {
    if let Some(f) = failpoint::hit(Op::Fsync) {
        return Err(f.error());
    }
    f.sync_data()
}

#[inline]
pub(crate) fn sync_all(f: &File) -> io::Result<()> {
    if let Some(f) = failpoint::hit(Op::Fsync) {
        return Err(f.error());
    }
    f.sync_all()
}

#[inline]
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(f) = failpoint::hit(Op::Rename) {
        return Err(f.error());
    }
    fs::rename(from, to)
}

/// The error for a failed fsync of `what` (a path, or a description naming one).
pub(crate) fn sync_error(what: impl std::fmt::Display, e: io::Error) -> Error {
    Error::io(format!("{FSYNC_CONTEXT}{what}"), e)
}

/// True for an error made by [`sync_error`]. After a failed fsync the kernel may have
/// dropped the dirty pages and will not report it again (fsyncgate), so what is on disk
/// is unknown: the Db stops writing until it is reopened.
pub(crate) fn is_sync_failure(e: &Error) -> bool {
    matches!(e, Error::Io { context, .. } if context.starts_with(FSYNC_CONTEXT))
}

/// fsync a directory so that a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io(format!("opening directory {}", dir.display()), e))?;
    sync_all(&d).map_err(|e| sync_error(format_args!("directory {}", dir.display()), e))
}

/// Publishes `bytes` at `path` atomically: write `path.tmp`, fsync it, rename over
/// `path`, fsync the directory. A crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut f = create(OpenOptions::new().write(true).create(true).truncate(true), &tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    write_all(&mut f, bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    sync_data(&f).map_err(|e| sync_error(tmp.display(), e))?;
    drop(f);
    rename_durable(&tmp, path)
}

/// Renames `from` to `to` and fsyncs the parent directory of `to`.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    rename(from, to).map_err(|e| Error::io(format!("renaming {} to {}", from.display(), to.display()), e))?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

pub fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(TMP_SUFFIX);
    s.into()
}

/// Removes leftover `*.tmp` files in `dir` (from a crash mid-publish). Returns how many.
pub fn sweep_tmp(dir: &Path) -> Result<usize> {
    let mut n = 0;
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            fs::remove_file(entry.path()).map_err(|e| Error::io(format!("removing {}", entry.path().display()), e))?;
            n += 1;
        }
    }
    Ok(n)
}
