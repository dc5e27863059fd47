//! Opening listed segments, and setting aside the ones that fail (`Options::repair`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::LiveSegment;
use crate::check::QUARANTINE_DIR;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::manifest::{Manifest, SegmentRecord, FLAG_ROLLED_UP};
use crate::segment::Segment;
use crate::tier::StoredTier;

/// Opens a listed segment (labels not read when its table's crc is `known_crc`,
/// see [`Segment::open_indexed`]). Under repair every page is verified too, so that
/// a damaged page is set aside now rather than failing reads later.
pub fn open_listed(
    dir: &Path,
    path: &Path,
    tier: StoredTier,
    repair: bool,
    known_crc: Option<u32>,
    labels: &mut crate::segment::LabelSink<'_>,
) -> Result<(Segment, bool)> {
    if !path.exists() {
        if let Some(name) = path.file_name() {
            if dir.join(QUARANTINE_DIR).join(name).exists() {
                let why = "listed in the MANIFEST but moved to quarantine/ by an interrupted repair; \
                           open with repair to finish it";
                return Err(Error::corruption(path, 0, why));
            }
        }
    }
    let (seg, skipped) = Segment::open_indexed(path, known_crc, labels)?;
    if seg.info().tier != tier {
        let why = format!("tier {} but the manifest says {tier}", seg.info().tier);
        return Err(Error::corruption(path, 0, why));
    }
    if repair {
        seg.verify()?;
    }
    Ok((seg, skipped))
}

/// Moves a damaged segment into `<dir>/quarantine/` durably (both directories
/// fsynced) and returns its new path. Never deletes: an existing name gets a suffix.
/// An interrupted earlier repair may have moved it already; that move is kept.
pub fn quarantine(dir: &Path, path: &Path, why: &Error) -> Result<PathBuf> {
    let qdir = dir.join(QUARANTINE_DIR);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !path.exists() && qdir.join(&name).exists() {
        log::error!("{}: segment already in quarantine ({why}); dropping it from the MANIFEST", path.display());
        return Ok(qdir.join(name));
    }
    fs::create_dir_all(&qdir).map_err(|e| Error::io(format!("creating {}", qdir.display()), e))?;
    fsutil::sync_dir(dir)?;
    let mut to = qdir.join(&name);
    for k in 1.. {
        if !to.exists() {
            break;
        }
        to = qdir.join(format!("{name}.{k}"));
    }
    fsutil::rename_durable(path, &to)?;
    if let Some(from) = path.parent() {
        fsutil::sync_dir(from)?;
    }
    log::error!(
        "REPAIR: segment {} is damaged ({why}); moved to {} and no longer served",
        path.display(),
        to.display()
    );
    Ok(to)
}

/// Publishes a manifest without the set-aside segments. Finer segments whose
/// buckets a set-aside rollup held lose their rolled-up flag, so reads and the
/// downsampler go back to the finer data instead of trusting a missing tier.
pub fn drop_from_manifest(
    dir: &Path,
    m: &mut Manifest,
    gone: &[SegmentRecord],
    kept: &[Arc<LiveSegment>],
) -> Result<()> {
    m.segments.retain(|s| !gone.iter().any(|g| g.id == s.id));
    for g in gone.iter().filter(|g| g.tier.is_rollup()) {
        for s in m.segments.iter_mut() {
            if s.tier.coarser() == Some(g.tier) && s.min_t <= g.max_t && s.max_t >= g.min_t {
                s.flags &= !FLAG_ROLLED_UP;
                if let Some(live) = kept.iter().find(|l| l.info().id == s.id) {
                    live.rolled.store(false, Ordering::Release);
                }
            }
        }
    }
    m.store(dir)
}
