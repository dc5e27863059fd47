//! `strata backup`: a consistent copy of a data directory, cheap because sealed
//! segments are immutable and can be hard-linked.
//!
//! Order (why it is consistent): open the Db (holding its lock, so no other writer
//! runs), flush the head into a segment, read the manifest, hard-link every segment
//! it lists, copy the WAL files at or above its floor, then write the manifest
//! last and fsync. A crash midway leaves DEST without a MANIFEST, which `Db::open`
//! refuses (segments but no manifest), never a silently partial database.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use strata::manifest::{Manifest, FILE_NAME as MANIFEST};
use strata::segment;

use strata::Db;

use super::{fail, human, io_err, CliResult, DataDir};

/// Make a consistent snapshot of a data directory (hard links + copied WAL).
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Make a consistent snapshot of a data directory in DEST: the head is flushed into a \
        segment, every segment in the MANIFEST is hard-linked (copied if DEST is on another file \
        system), the WAL files still needed are copied, and the MANIFEST is written last, all fsynced. \
        `strata stats --data DEST` then shows every sample acknowledged before the backup started. \
        The directory must not be in use: a running server holds its lock, so back up a live server \
        through the server instead.",
    after_help = "Examples:\n  strata backup /backups/strata-2025-12-03 --data ./data"
)]
pub struct Args {
    /// Where to put the snapshot: a new or empty directory.
    #[arg(value_name = "DEST")]
    dest: PathBuf,
    #[command(flatten)]
    data: DataDir,
    /// Output JSON.
    #[arg(long)]
    json: bool,
}

/// What a backup did.
#[derive(Debug, Default)]
struct Report {
    linked: u64,
    copied: u64,
    segment_bytes: u64,
    wal_files: u64,
    wal_bytes: u64,
    samples: u64,
}

pub fn run(a: Args) -> CliResult {
    check_dest(&a.dest)?;
    let t0 = Instant::now();
    if !a.data.data.join(MANIFEST).is_file() {
        return fail(format!("{} is not a Strata data directory (it has no MANIFEST)", a.data.data.display()));
    }
    let db = match Db::open(&a.data.data, super::base_options().background(false)) {
        Err(strata::Error::Locked { .. }) => {
            return fail(format!(
                "{} is in use by another process (a running `strata serve`?); a live server is backed up \
                 through the server's backup endpoint, not from outside",
                a.data.data.display()
            ))
        }
        r => r?,
    };
    db.flush()?;
    let r = snapshot(&a.data.data, &a.dest)?;
    db.close()?;
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let v = serde_json::json!({"dest": a.dest.display().to_string(), "segments_linked": r.linked,
            "segments_copied": r.copied, "segment_bytes": r.segment_bytes, "wal_files": r.wal_files,
            "wal_bytes": r.wal_bytes, "samples_in_segments": r.samples, "seconds": secs});
        println!("{v}");
    } else {
        println!(
            "backup of {} in {}: {} segment(s) ({} hard-linked, {} copied, {}), {} WAL file(s) ({}), {} samples, {secs:.2} s",
            a.data.data.display(),
            a.dest.display(),
            r.linked + r.copied,
            r.linked,
            r.copied,
            human::bytes(r.segment_bytes),
            r.wal_files,
            human::bytes(r.wal_bytes),
            human::count(r.samples)
        );
    }
    Ok(())
}

/// DEST must be new or an empty directory.
fn check_dest(dest: &Path) -> CliResult {
    match fs::read_dir(dest) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return fail(format!("{} is not empty: back up into a new or empty directory", dest.display()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => fail(format!("{}: {e}", dest.display())),
    }
}

/// Copies the published state of `src` (flushed, not written to meanwhile) to `dest`.
fn snapshot(src: &Path, dest: &Path) -> CliResult<Report> {
    let manifest_path = src.join(MANIFEST);
    let bytes = fs::read(&manifest_path).map_err(io_err(format!("reading {}", manifest_path.display())))?;
    let m = Manifest::decode(&bytes, &manifest_path)?;
    let (seg_src, seg_dst) = (src.join("segments"), dest.join("segments"));
    let (wal_src, wal_dst) = (src.join("wal"), dest.join("wal"));
    for d in [&seg_dst, &wal_dst] {
        fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
    }
    let mut r = Report::default();
    for rec in &m.segments {
        let name = segment::file_name(rec.id);
        let (from, to) = (seg_src.join(&name), seg_dst.join(&name));
        // Segments never change after publication, so a link is a snapshot.
        match fs::hard_link(&from, &to) {
            Ok(()) => r.linked += 1,
            Err(_) => {
                copy_synced(&from, &to)?;
                r.copied += 1;
            }
        }
        r.segment_bytes += rec.file_size;
        r.samples += rec.samples;
    }
    for (seq, from) in strata::wal::list_segments(&wal_src)? {
        if seq < m.wal_floor {
            continue; // already contained in segments
        }
        let to = wal_dst.join(strata::wal::segment_file_name(seq));
        r.wal_bytes += copy_synced(&from, &to)?;
        r.wal_files += 1;
    }
    sync_dir(&seg_dst)?;
    sync_dir(&wal_dst)?;
    // The manifest last: without it DEST is not a database.
    let tmp = dest.join(format!("{MANIFEST}.tmp"));
    let mut f = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(io_err(format!("writing {}", tmp.display())))?;
    drop(f);
    let final_path = dest.join(MANIFEST);
    fs::rename(&tmp, &final_path).map_err(io_err(format!("renaming {}", tmp.display())))?;
    sync_dir(dest)?;
    if let Some(parent) = dest.canonicalize().ok().and_then(|p| p.parent().map(Path::to_path_buf)) {
        sync_dir(&parent)?;
    }
    Ok(r)
}

/// Copies a file and fsyncs the copy; returns its size.
fn copy_synced(from: &Path, to: &Path) -> CliResult<u64> {
    let n = fs::copy(from, to).map_err(io_err(format!("copying {} to {}", from.display(), to.display())))?;
    OpenOptions::new()
        .write(true)
        .open(to)
        .and_then(|f| f.sync_all())
        .map_err(io_err(format!("fsync of {}", to.display())))?;
    Ok(n)
}

fn sync_dir(dir: &Path) -> CliResult {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(format!("fsync of directory {}", dir.display())))
}
