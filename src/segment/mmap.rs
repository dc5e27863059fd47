//! The bytes of a sealed segment: a read-only memory map of its file, or (in an
//! in-memory database) the buffer the writer produced. This is the crate's only `unsafe`.

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// A whole sealed segment, mapped read-only or owned. The variant is chosen when the
/// segment is opened; readers take `bytes()` once per page, never per sample.
pub(crate) enum Mapped {
    File(Mmap),
    Owned(Box<[u8]>),
}

impl Mapped {
    /// Maps `file` (opened from `path`, which is only used in error reports).
    pub(crate) fn open(file: &File, path: &Path) -> Result<Mapped> {
        let len = file.metadata().map_err(|e| Error::io(format!("stat of {}", path.display()), e))?.len();
        if len == 0 {
            return Err(Error::corruption(path, 0, "empty file"));
        }
        // The crate root denies `unsafe_code`; this map is its single exception.
        // SAFETY: a mapping is only sound while nobody modifies or truncates the file
        // (truncating a mapped file makes reads past the new end raise SIGBUS). Segment
        // files are written under a `.tmp` name and are never modified or truncated after
        // they are renamed into place; they are unlinked only after leaving the manifest,
        // and unlinking keeps the mapping valid for as long as the `Segment` (held by
        // `Arc`) that owns this `Mapped` lives.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(file) }.map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
        Ok(Mapped::File(map))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Mapped::File(map) => map,
            Mapped::Owned(b) => b,
        }
    }
}
