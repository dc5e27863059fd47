//! File-system steps that durability depends on, in one place.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Suffix of files being written; swept on open.
pub const TMP_SUFFIX: &str = ".tmp";

/// fsync a directory so that a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io(format!("opening directory {}", dir.display()), e))?;
    d.sync_all().map_err(|e| Error::io(format!("fsync of directory {}", dir.display()), e))
}

/// Publishes `bytes` at `path` atomically: write `path.tmp`, fsync it, rename over
/// `path`, fsync the directory. A crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
    f.write_all(bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    f.sync_data().map_err(|e| Error::io(format!("fsync of {}", tmp.display()), e))?;
    drop(f);
    rename_durable(&tmp, path)
}

/// Renames `from` to `to` and fsyncs the parent directory of `to`.
pub fn rename_durable(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(format!("renaming {} to {}", from.display(), to.display()), e))?;
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
