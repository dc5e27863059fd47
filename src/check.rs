//! Read-only verification of a data directory: the MANIFEST, every listed
//! segment (structure, every page's checksum, every raw chunk decoded and
//! compared with its metadata), series ids across files, the index checkpoint
//! against the segments it names, and every WAL frame.
//! `strata check` prints what [`check_dir`] returns.
//!
//! It takes no lock and writes nothing, so it can run beside a live `Db`. It does
//! not use `wal::replay`, which truncates torn tails, but the scan replay is built
//! on (`wal::scan_file`), so a torn tail is told from damage by the same rule. On a live directory a file may change or vanish during the
//! scan; the check notices a manifest that changed under it and says so.
//!
//! Offsets: a problem found by a checksum or a format rule carries the offset
//! that `Segment::open`, `Segment::verify` or `Manifest::decode` reports (the
//! start of the damaged header, page, series table, directory or footer; the
//! MANIFEST's failing field or its checksum). Problems found by decoding chunks
//! or by comparing files carry no offset.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::codec::chunk::decode_chunk;
use crate::error::{Error, Result};
use crate::index::checkpoint::{self, Checkpoint};
use crate::labels::Labels;
use crate::manifest::{Manifest, SegmentRecord, FILE_NAME as MANIFEST};
use crate::sample::{ChunkMeta, Sample};
use crate::segment::{self, Segment};
use crate::wal::record::Record;
use crate::wal::scan::{scan_file, FileEnd};

/// Where quarantined segments go (see `Options::repair`).
pub const QUARANTINE_DIR: &str = "quarantine";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The data is damaged or inconsistent.
    Error,
    /// Something the next open cleans up (a torn WAL tail, leftover files).
    Warning,
}

/// One finding, with the file and, when known, the byte offset it concerns.
#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    pub file: PathBuf,
    pub offset: Option<u64>,
    pub message: String,
}

/// What was checked.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub generation: u64,
    pub segments: u64,
    pub series: u64,
    pub chunks: u64,
    pub samples: u64,
    pub wal_files: u64,
    pub wal_records: u64,
    pub wal_samples: u64,
}

/// The result of [`check_dir`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The decoded MANIFEST; None when it is missing or damaged (then a problem says so).
    pub manifest: Option<Manifest>,
    pub problems: Vec<Problem>,
    pub counts: Counts,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.severity == Severity::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.problems.len() - self.errors()
    }
}

/// Checks the data directory `dir`, reading only. `on_segment(done, total, file)` is
/// called before each listed segment is checked (for progress display).
/// Fails only when `dir` is not a directory or not a Strata data directory
/// (`Error::InvalidArgument`); everything else is a problem in the report.
pub fn check_dir(dir: &Path, on_segment: impl FnMut(usize, usize, &str)) -> Result<Report> {
    check_dir_with(dir, on_segment, |_| {})
}

/// [`check_dir`], calling `before_wal_read` just before each WAL file is read (a seam
/// for tests that remove a file between listing and reading, as a live `Db` does).
fn check_dir_with(
    dir: &Path,
    mut on_segment: impl FnMut(usize, usize, &str),
    mut before_wal_read: impl FnMut(&Path),
) -> Result<Report> {
    if !dir.is_dir() {
        return Err(Error::InvalidArgument(format!("{} does not exist or is not a directory", dir.display())));
    }
    let mut c = Checker::default();
    let manifest = check_manifest(&mut c, dir)?;
    if let Err(e) = crate::metadata::load(dir) {
        c.engine_error(&dir.join(crate::metadata::METADATA_FILE), e);
    }
    let seg_dir = dir.join("segments");
    if let Some(m) = &manifest {
        for (i, rec) in m.segments.iter().enumerate() {
            on_segment(i, m.segments.len(), &segment::file_name(rec.id));
            check_segment(&mut c, dir, &seg_dir, rec, m.generation);
        }
    }
    check_index(&mut c, dir);
    check_strays(&mut c, dir, &seg_dir, manifest.as_ref());
    check_wal(&mut c, dir, manifest.as_ref().map_or(0, |m| m.wal_floor), &mut before_wal_read);
    Ok(Report { manifest, problems: c.problems, counts: c.counts })
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    counts: Counts,
    /// Series id → labels, and back, from segments and WAL series records.
    ids: HashMap<u64, Labels>,
    by_labels: HashMap<Labels, u64>,
    /// Per segment id: its series table checksum and series ids, to check `INDEX` by.
    tables: HashMap<u64, (u32, Vec<u64>)>,
    /// A WAL file was sealed away during the check: series it defined are now in a
    /// segment this check did not read, so later samples may refer to them.
    wal_vanished: bool,
}

impl Checker {
    fn error(&mut self, file: &Path, offset: Option<u64>, message: impl Into<String>) {
        self.problems.push(Problem { severity: Severity::Error, file: file.into(), offset, message: message.into() });
    }

    fn warn(&mut self, file: &Path, offset: Option<u64>, message: impl Into<String>) {
        self.problems.push(Problem { severity: Severity::Warning, file: file.into(), offset, message: message.into() });
    }

    /// Records an engine error, keeping its file and offset when it has them.
    fn engine_error(&mut self, fallback: &Path, e: Error) {
        match e {
            Error::Corruption { file, offset, reason } => self.error(&file, Some(offset), reason),
            other => self.error(fallback, None, other.to_string()),
        }
    }

    /// Series ids must mean the same labels everywhere, and labels have one id.
    fn define(&mut self, file: &Path, offset: Option<u64>, id: u64, labels: &Labels) {
        if let Some(old) = self.ids.get(&id) {
            if old != labels {
                let msg = format!("series id {id} is {labels} here but {old} elsewhere");
                self.error(file, offset, msg);
            }
            return;
        }
        if let Some(&other) = self.by_labels.get(labels) {
            let msg = format!("series {labels} has id {id} here but {other} elsewhere");
            self.error(file, offset, msg);
            return;
        }
        self.ids.insert(id, labels.clone());
        self.by_labels.insert(labels.clone(), id);
    }
}

/// Decodes the manifest. `Ok(None)` when it is missing or broken (reported).
fn check_manifest(c: &mut Checker, dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !dir.join("segments").is_dir() && !dir.join("wal").is_dir() {
                return Err(Error::InvalidArgument(format!(
                    "{} is not a Strata data directory (no MANIFEST, segments or wal)",
                    dir.display()
                )));
            }
            c.error(&path, None, "MANIFEST is missing");
            return Ok(None);
        }
        Err(e) => {
            c.error(&path, None, format!("cannot read: {e}"));
            return Ok(None);
        }
    };
    match Manifest::decode(&bytes, &path) {
        Ok(m) => {
            c.counts.generation = m.generation;
            Ok(Some(m))
        }
        Err(e) => {
            c.engine_error(&path, e);
            Ok(None)
        }
    }
}

fn check_segment(c: &mut Checker, dir: &Path, seg_dir: &Path, rec: &SegmentRecord, generation: u64) {
    let path = seg_dir.join(segment::file_name(rec.id));
    if !path.exists() {
        // A compaction may have replaced it since the manifest was read.
        let changed = Manifest::load(dir).ok().flatten().is_some_and(|m| m.generation != generation);
        if changed {
            c.warn(&path, None, "vanished during the check and the MANIFEST changed (live database?): re-run");
        } else {
            c.error(&path, None, "listed in the MANIFEST but missing");
        }
        return;
    }
    let mut labels: Vec<(u64, Labels)> = Vec::new();
    let mut keep = |id: u64, pairs: &[(&str, &str)]| {
        labels.push((id, Labels::from_checked(pairs)));
        Ok(())
    };
    let seg = match Segment::open_with(&path, &mut keep) {
        Ok(s) => s,
        Err(e) => return c.engine_error(&path, e),
    };
    c.counts.segments += 1;
    let info = seg.info().clone();
    let expect = (rec.id, rec.tier, rec.min_t, rec.max_t, rec.samples, rec.series, rec.file_size);
    let found = (info.id, info.tier, info.min_t, info.max_t, info.samples, info.series, info.file_size);
    if expect != found {
        c.error(
            &path,
            None,
            format!(
                "disagrees with the MANIFEST: manifest says (id, tier, min_t, max_t, samples, series, size) = \
                 {expect:?}, the file {found:?}"
            ),
        );
    }
    if let Err(e) = seg.verify() {
        return c.engine_error(&path, e);
    }
    for (id, l) in &labels {
        c.define(&path, None, *id, l);
    }
    c.tables.insert(rec.id, (seg.table_crc(), labels.iter().map(|(id, _)| *id).collect()));
    c.counts.series += info.series;
    if info.tier.is_rollup() {
        return; // Rollup tiers use their own chunk encoding: their pages were checked, not decoded.
    }
    let Ok(mut cursor) = seg.cursor() else {
        return c.error(&path, None, "cannot create a decompressor");
    };
    let metas = match seg.chunk_metas() {
        Ok(m) => m,
        Err(e) => return c.engine_error(&path, e),
    };
    let mut metas = metas.iter();
    let mut buf = Vec::new();
    let mut bad: Vec<String> = Vec::new();
    // `labels` is in id order, as `series()` and `chunk_metas()` are.
    for (entry, (_, series_labels)) in seg.series().zip(&labels) {
        let mut k = 0usize;
        let r = cursor.for_each_chunk(
            &entry,
            |_| true,
            |chunk, bytes| {
                buf.clear();
                let what = match (decode_chunk(bytes, &mut buf), metas.next()) {
                    (Err(e), _) => Some(e.to_string()),
                    (Ok(()), Some(meta)) => chunk_disagrees(meta, &buf),
                    (Ok(()), None) => Some("has no metadata".into()),
                };
                if let Some(w) = what {
                    bad.push(format!("series {} {} chunk {k} (min_t {}): {w}", entry.id, series_labels, chunk.min_t));
                }
                k += 1;
                Ok(())
            },
        );
        if let Err(e) = r {
            c.engine_error(&path, e);
        }
        c.counts.chunks += k as u64;
    }
    c.counts.samples += info.samples;
    const SHOWN: usize = 20;
    let more = bad.len().saturating_sub(SHOWN);
    for b in bad.into_iter().take(SHOWN) {
        c.error(&path, None, b);
    }
    if more > 0 {
        c.error(&path, None, format!("... and {more} more bad chunks"));
    }
}

/// The index checkpoint, if any: readable (else a warning: the next open rebuilds
/// it) and, when it names only listed segments (a stale one is normal after seals
/// and merges, and is not used), holding exactly their series with the labels they
/// have, and postings that agree with those labels.
fn check_index(c: &mut Checker, dir: &Path) {
    let path = dir.join(checkpoint::FILE_NAME);
    let rebuilt = "; the next open rebuilds it from the segments";
    let decoded = Checkpoint::read(dir).and_then(|ck| ck.map(|ck| ck.decode().map(|d| (ck, d))).transpose());
    let (ck, (series, postings)) = match decoded {
        Ok(None) => return,
        Ok(Some(x)) => x,
        Err(Error::Corruption { offset, reason, .. }) => {
            return c.warn(&path, Some(offset), format!("{reason}{rebuilt}"));
        }
        Err(e) => return c.warn(&path, None, format!("{e}{rebuilt}")),
    };
    if ck.segments.iter().any(|(id, crc)| c.tables.get(id).map(|t| t.0) != Some(*crc)) {
        return;
    }
    let mut want: HashSet<u64> = ck.segments.iter().flat_map(|(id, _)| c.tables[id].1.iter().copied()).collect();
    let mut bad = Vec::new();
    for (id, labels) in &series {
        if !want.remove(id) {
            bad.push(format!("holds series {id} {labels}, which no segment it names holds"));
        } else if c.ids.get(id) != Some(labels) {
            let seg = c.ids.get(id).map_or_else(String::new, |l| l.to_string());
            bad.push(format!("says series {id} is {labels}, the segments say {seg}"));
        }
    }
    if let Some(id) = want.iter().min() {
        bad.push(format!("lacks {} series of the segments it names (the first: id {id})", want.len()));
    }
    let mut expect: checkpoint::Postings = HashMap::new();
    for (id, labels) in &series {
        for (k, v) in labels.iter() {
            expect.entry(k.to_string()).or_default().entry(v.to_string()).or_default().push(*id);
        }
    }
    if expect != postings {
        bad.push("postings disagree with its series' labels".into());
    }
    for b in bad.into_iter().take(20) {
        c.error(&path, None, b);
    }
}

/// Whether decoded samples contradict their chunk's metadata; says how.
fn chunk_disagrees(meta: &ChunkMeta, s: &[Sample]) -> Option<String> {
    let (Some(first), Some(last)) = (s.first(), s.last()) else {
        return Some("decodes to no samples".into());
    };
    if s.len() != meta.count as usize {
        return Some(format!("decodes to {} samples, metadata says {}", s.len(), meta.count));
    }
    if first.ts != meta.min_t || last.ts != meta.max_t {
        return Some(format!("spans {}..{}, metadata says {}..{}", first.ts, last.ts, meta.min_t, meta.max_t));
    }
    if let Some(w) = s.windows(2).find(|w| w[0].ts >= w[1].ts) {
        return Some(format!("timestamps not increasing at {} then {}", w[0].ts, w[1].ts));
    }
    let m = ChunkMeta::of(s);
    let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    // The sum may be accumulated differently by another writer: allow rounding.
    let close = |a: f64, b: f64| same(a, b) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0);
    if !same(m.min, meta.min) || !same(m.max, meta.max) || !close(m.sum, meta.sum) {
        return Some(format!(
            "values give min {} max {} sum {}, metadata says {} {} {}",
            m.min, m.max, m.sum, meta.min, meta.max, meta.sum
        ));
    }
    None
}

/// Files the next open would sweep (temporaries, unpublished segments), and
/// segments an earlier repair set aside.
fn check_strays(c: &mut Checker, dir: &Path, seg_dir: &Path, m: Option<&Manifest>) {
    let listed: HashSet<String> =
        m.map(|m| m.segments.iter().map(|s| segment::file_name(s.id)).collect()).unwrap_or_default();
    for d in [dir, seg_dir] {
        let Ok(rd) = fs::read_dir(d) else { continue };
        let mut names: Vec<(String, PathBuf)> =
            rd.flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())).collect();
        names.sort();
        for (name, path) in names {
            if name.ends_with(".tmp") {
                c.warn(&path, None, "leftover temporary file; the next open removes it");
            } else if d == seg_dir && name.ends_with(".seg") && m.is_some() && !listed.contains(&name) {
                c.warn(&path, None, "segment not in the MANIFEST (never published); the next open removes it");
            }
        }
    }
    let q = dir.join(QUARANTINE_DIR);
    let n = fs::read_dir(&q).map(|rd| rd.flatten().count()).unwrap_or(0);
    if n > 0 {
        c.warn(&q, None, format!("{n} quarantined file(s): set aside by a repair, not served"));
    }
}

fn check_wal(c: &mut Checker, dir: &Path, floor: u64, before_read: &mut dyn FnMut(&Path)) {
    let wal_dir = dir.join("wal");
    let wal_dir = wal_dir.as_path();
    let files = match crate::wal::list_segments(wal_dir) {
        Ok(f) => f,
        Err(e) => return c.engine_error(wal_dir, e),
    };
    let live: Vec<(u64, PathBuf)> = files.into_iter().filter(|(s, _)| *s >= floor).collect();
    for w in live.windows(2) {
        if w[0].0 + 1 != w[1].0 {
            let msg = format!("WAL files {:016x} to {:016x} are missing", w[0].0 + 1, w[1].0 - 1);
            c.error(&w[1].1, Some(0), msg);
        }
    }
    for (i, (seq, path)) in live.iter().enumerate() {
        before_read(path);
        check_wal_file(c, dir, path, *seq, i + 1 == live.len());
    }
}

fn check_wal_file(c: &mut Checker, dir: &Path, path: &Path, seq: u64, newest: bool) {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return wal_vanished(c, dir, path, seq),
        Err(e) => return c.error(path, None, format!("cannot read: {e}")),
    };
    c.counts.wal_files += 1;
    let mut undefined: Option<(u64, u64, u64)> = None; // (first id, offset, count)
                                                       // The same scan and classification as replay: what replay would cut is a warning.
    let end = scan_file(&data, seq, newest, |pos, rec| {
        c.counts.wal_records += 1;
        match rec {
            Record::Series(list) => {
                for (id, labels) in &list {
                    c.define(path, Some(pos), *id, labels);
                }
            }
            Record::Samples(batch) => {
                c.counts.wal_samples += batch.len() as u64;
                for s in batch.iter().filter(|s| !c.ids.contains_key(&s.series)) {
                    let u = undefined.get_or_insert((s.series, pos, 0));
                    u.2 += 1;
                }
            }
            Record::Metadata(_) => {}
        }
        Ok(())
    });
    match end {
        Ok(FileEnd::Clean) => {}
        Ok(FileEnd::TornHeader { reason }) => {
            c.warn(path, Some(0), format!("torn header ({reason}); the next open removes this file"))
        }
        Ok(FileEnd::TornTail { offset, reason }) => {
            let cut = data.len() as u64 - offset;
            c.warn(path, Some(offset), format!("torn tail ({reason}): the next open cuts {cut} bytes"))
        }
        Ok(FileEnd::Corrupt { offset, reason }) => c.error(path, Some(offset), reason),
        Err(e) => c.engine_error(path, e),
    }
    if let Some((id, at, n)) = undefined {
        let msg = format!("{n} samples for series never defined (first: id {id})");
        if c.wal_vanished {
            c.warn(path, Some(at), format!("{msg}; a WAL file was sealed during the check: re-run"));
        } else {
            c.error(path, Some(at), msg);
        }
    }
}

/// A WAL file listed a moment ago is gone. A live `Db` removes the files below a
/// new WAL floor after a seal, so when the MANIFEST now puts the floor above this
/// file its records are in a segment: a notice, as for a segment that vanishes.
fn wal_vanished(c: &mut Checker, dir: &Path, path: &Path, seq: u64) {
    let floor = Manifest::load(dir).ok().flatten().map(|m| m.wal_floor);
    if floor.is_some_and(|f| f > seq) {
        c.wal_vanished = true;
        c.warn(path, None, "sealed into a segment and removed during the check (live database?): re-run");
    } else {
        c.error(path, None, "vanished during the check, and the MANIFEST's WAL floor does not cover it");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, Labels, Options, RetentionPolicy, SyncMode, TierDurations};

    fn opts() -> Options {
        let forever = RetentionPolicy::new(TierDurations::forever()).unwrap();
        Options::default().sync(SyncMode::Never).background(false).retention(forever)
    }

    /// A directory whose data is only in the WAL, over two files.
    fn wal_only() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..2 {
            let db = Db::open(dir.path(), opts()).unwrap();
            let mut app = db.appender();
            let l = Labels::metric("chk", [("round", round.to_string())]).unwrap();
            app.append_labels(&l, round, 1.0).unwrap();
            app.commit().unwrap();
            db.close().unwrap();
        }
        assert_eq!(crate::wal::list_segments(&dir.path().join("wal")).unwrap().len(), 2);
        dir
    }

    #[test]
    fn wal_files_sealed_away_mid_scan_are_a_notice() {
        let dir = wal_only();
        let mut sealed = false;
        // A live Db seals between the listing and the first read, removing every listed file.
        let r = check_dir_with(
            dir.path(),
            |_, _, _| {},
            |_| {
                if !std::mem::replace(&mut sealed, true) {
                    let db = Db::open(dir.path(), opts()).unwrap();
                    db.flush().unwrap();
                    db.close().unwrap();
                }
            },
        )
        .unwrap();
        assert_eq!(r.errors(), 0, "{:?}", r.problems);
        assert_eq!(r.warnings(), 2, "{:?}", r.problems);
        assert!(r.problems.iter().all(|p| p.message.contains("sealed into a segment")), "{:?}", r.problems);
        // A clean re-run sees the segment.
        let again = check_dir(dir.path(), |_, _, _| {}).unwrap();
        assert_eq!((again.errors(), again.warnings()), (0, 0), "{:?}", again.problems);
        assert_eq!(again.counts.samples, 2);
    }

    #[test]
    fn a_wal_file_lost_without_a_seal_is_an_error() {
        let dir = wal_only();
        let r = check_dir_with(dir.path(), |_, _, _| {}, |p| drop(fs::remove_file(p))).unwrap();
        assert_eq!(r.errors(), 2, "{:?}", r.problems);
        assert!(r.problems[0].message.contains("does not cover it"), "{:?}", r.problems);
    }

    #[test]
    fn the_index_checkpoint_is_checked_against_the_segments() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        let mut app = db.appender();
        for i in 0..50 {
            app.append_labels(&Labels::metric("idx", [("i", i.to_string())]).unwrap(), 1, 1.0).unwrap();
        }
        app.commit().unwrap();
        db.flush().unwrap();
        db.close().unwrap();
        drop(db);
        drop(Db::open(dir.path(), opts()).unwrap());
        let path = dir.path().join(checkpoint::FILE_NAME);
        let good = fs::read(&path).unwrap();
        let r = check_dir(dir.path(), |_, _, _| {}).unwrap();
        assert_eq!((r.errors(), r.warnings()), (0, 0), "{:?}", r.problems);

        // Damage is a warning: nothing is lost, the next open rebuilds it.
        let mut bad = good.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        fs::write(&path, &bad).unwrap();
        let r = check_dir(dir.path(), |_, _, _| {}).unwrap();
        assert_eq!((r.errors(), r.warnings()), (0, 1), "{:?}", r.problems);
        assert!(r.problems[0].message.contains("checksum mismatch"), "{:?}", r.problems);

        // Well-formed but saying other labels than the segments: an error.
        let other = tempfile::tempdir().unwrap();
        let idx = crate::index::SeriesIndex::new(1, 100);
        for i in 0..50 {
            idx.get_or_create(&Labels::metric("idx", [("i", (i + 1).to_string())]).unwrap()).unwrap();
        }
        idx.finish_load();
        let ck = checkpoint::Checkpoint::read(dir.path()).ok().flatten();
        assert!(ck.is_none());
        fs::write(&path, &good).unwrap();
        let names = checkpoint::Checkpoint::read(dir.path()).unwrap().unwrap().segments;
        checkpoint::write(other.path(), &idx, &names).unwrap();
        fs::copy(other.path().join(checkpoint::FILE_NAME), &path).unwrap();
        let r = check_dir(dir.path(), |_, _, _| {}).unwrap();
        assert!(r.errors() >= 1, "{:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.message.contains("the segments say")), "{:?}", r.problems);
    }
}
