//! `strata check`: verifies every checksum and format invariant of a data
//! directory, reading files only.
//!
//! It takes no lock and writes nothing, so it can run beside a server. It does not
//! use `wal::replay`, which truncates torn tails: the WAL is scanned here with the
//! frame decoder. On a live directory a file may change or vanish during the scan;
//! the check notices a manifest that changed under it and says so.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;
use strata::codec::chunk::decode_chunk;
use strata::manifest::{Manifest, SegmentRecord, FILE_NAME as MANIFEST};
use strata::segment::{self, Segment};
use strata::wal::record::{decode_frame, decode_header, probe_frame, FrameError, Record, FRAME_HEADER_LEN, HEADER_LEN};
use strata::{ChunkMeta, Labels, Sample};

use super::{fail, human, progress_bar, CliResult, DataDir};

/// Verify every checksum and format invariant, read-only.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Verify a data directory without changing it: the MANIFEST, every listed segment \
        (header, footer, directory, series table, every page's checksum, and every chunk decoded and \
        compared with its metadata), series ids across segments and the WAL, and every WAL frame. \
        Each problem is reported with its file and byte offset. Exit code 0: no errors (warnings, such \
        as a torn WAL tail that the next open will cut, are allowed); 1: errors found. It takes no lock, \
        so it can run while a server uses the directory.",
    after_help = "Examples:\n  strata check --data ./data\n  strata check --data ./data --json"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Output JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
struct Problem {
    severity: Severity,
    file: PathBuf,
    offset: Option<u64>,
    message: String,
}

/// What was checked, for the report.
#[derive(Debug, Default)]
struct Counts {
    generation: u64,
    segments: u64,
    series: u64,
    chunks: u64,
    samples: u64,
    wal_files: u64,
    wal_records: u64,
    wal_samples: u64,
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
    counts: Counts,
    /// Series id → labels, and back, from segments and WAL series records.
    ids: HashMap<u64, Labels>,
    by_labels: HashMap<Labels, u64>,
}

impl Checker {
    fn error(&mut self, file: &Path, offset: Option<u64>, message: impl Into<String>) {
        self.problems.push(Problem { severity: Severity::Error, file: file.into(), offset, message: message.into() });
    }

    fn warn(&mut self, file: &Path, offset: Option<u64>, message: impl Into<String>) {
        self.problems.push(Problem { severity: Severity::Warning, file: file.into(), offset, message: message.into() });
    }

    /// Records a strata error, keeping its file and offset when it has them.
    fn engine_error(&mut self, fallback: &Path, e: strata::Error) {
        match e {
            strata::Error::Corruption { file, offset, reason } => self.error(&file, Some(offset), reason),
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

pub fn run(a: Args) -> CliResult<ExitCode> {
    let dir = &a.data.data;
    if !dir.is_dir() {
        return fail(format!("{} does not exist or is not a directory", dir.display()));
    }
    let mut c = Checker::default();
    let manifest = check_manifest(&mut c, dir)?;
    let seg_dir = dir.join("segments");
    let pb = progress_bar(manifest.as_ref().map(|m| m.segments.len() as u64), a.json);
    if let Some(m) = &manifest {
        for rec in &m.segments {
            pb.set_message(segment::file_name(rec.id));
            check_segment(&mut c, dir, &seg_dir, rec, m.generation);
            pb.inc(1);
        }
    }
    pb.finish_and_clear();
    check_strays(&mut c, dir, &seg_dir, manifest.as_ref());
    check_wal(&mut c, &dir.join("wal"), manifest.as_ref().map_or(0, |m| m.wal_floor));

    let errors = c.problems.iter().filter(|p| p.severity == Severity::Error).count();
    let warnings = c.problems.len() - errors;
    if a.json {
        println!("{}", report_json(&c, errors, warnings));
    } else {
        print!("{}", report_text(&c, manifest.as_ref(), errors, warnings));
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Decodes the manifest. `Ok(None)` when it is missing or broken (reported).
fn check_manifest(c: &mut Checker, dir: &Path) -> CliResult<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !dir.join("segments").is_dir() && !dir.join("wal").is_dir() {
                return fail(format!(
                    "{} is not a Strata data directory (no MANIFEST, segments or wal)",
                    dir.display()
                ));
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
    let seg = match Segment::open(&path) {
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
    for entry in seg.series() {
        c.define(&path, None, entry.id, &entry.labels);
    }
    c.counts.series += info.series;
    if info.tier != 0 {
        return; // Rollup tiers use their own chunk encoding: their pages were checked, not decoded.
    }
    let Ok(mut cursor) = seg.cursor() else {
        return c.error(&path, None, "cannot create a decompressor");
    };
    let mut buf = Vec::new();
    let mut bad: Vec<String> = Vec::new();
    for entry in seg.series() {
        let mut k = 0usize;
        let r = cursor.for_each_chunk(
            entry,
            |_| true,
            |meta, bytes| {
                buf.clear();
                let what = match decode_chunk(bytes, &mut buf) {
                    Err(e) => Some(e.to_string()),
                    Ok(()) => chunk_disagrees(meta, &buf),
                };
                if let Some(w) = what {
                    bad.push(format!("series {} {} chunk {k} (min_t {}): {w}", entry.id, entry.labels, meta.min_t));
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

/// Files the next open would sweep: temporaries and unpublished segments.
fn check_strays(c: &mut Checker, dir: &Path, seg_dir: &Path, m: Option<&Manifest>) {
    let listed: std::collections::HashSet<String> =
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
}

fn check_wal(c: &mut Checker, wal_dir: &Path, floor: u64) {
    let files = match strata::wal::list_segments(wal_dir) {
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
        check_wal_file(c, path, *seq, i + 1 == live.len());
    }
}

fn check_wal_file(c: &mut Checker, path: &Path, seq: u64, newest: bool) {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) => return c.error(path, None, format!("cannot read: {e}")),
    };
    c.counts.wal_files += 1;
    match decode_header(&data) {
        Err(reason) if newest && data.len() <= HEADER_LEN => {
            return c.warn(path, Some(0), format!("torn header ({reason}); the next open removes this file"));
        }
        Err(reason) => return c.error(path, Some(0), reason),
        Ok(s) if s != seq => return c.error(path, Some(0), format!("header names seq {s:016x}, not the file's")),
        Ok(_) => {}
    }
    let mut pos = HEADER_LEN;
    let mut undefined: Option<(u64, u64, u64)> = None; // (first id, offset, count)
    while pos < data.len() {
        match decode_frame(&data[pos..]) {
            Ok((rec, n)) => {
                c.counts.wal_records += 1;
                match rec {
                    Record::Series(list) => {
                        for (id, labels) in &list {
                            c.define(path, Some(pos as u64), *id, labels);
                        }
                    }
                    Record::Samples(batch) => {
                        c.counts.wal_samples += batch.len() as u64;
                        for s in batch.iter().filter(|s| !c.ids.contains_key(&s.series)) {
                            let u = undefined.get_or_insert((s.series, pos as u64, 0));
                            u.2 += 1;
                        }
                    }
                }
                pos += n;
            }
            Err(e) => {
                let reason = match e {
                    FrameError::Incomplete => "frame runs past the end of the file".to_string(),
                    FrameError::Corrupt(r) => r.to_string(),
                };
                let after =
                    (pos + 1..=data.len().saturating_sub(FRAME_HEADER_LEN + 1)).any(|q| probe_frame(&data[q..]));
                if newest && !after {
                    let cut = data.len() - pos;
                    c.warn(path, Some(pos as u64), format!("torn tail ({reason}): the next open cuts {cut} bytes"));
                } else {
                    c.error(path, Some(pos as u64), format!("{reason}, with valid frames after it"));
                }
                break;
            }
        }
    }
    if let Some((id, at, n)) = undefined {
        c.error(path, Some(at), format!("{n} samples for series never defined (first: id {id})"));
    }
}

fn report_json(c: &Checker, errors: usize, warnings: usize) -> serde_json::Value {
    let problems: Vec<serde_json::Value> = c
        .problems
        .iter()
        .map(|p| {
            json!({"severity": if p.severity == Severity::Error { "error" } else { "warning" },
                "file": p.file.display().to_string(), "offset": p.offset, "message": p.message})
        })
        .collect();
    let k = &c.counts;
    json!({
        "ok": errors == 0, "errors": errors, "warnings": warnings, "problems": problems,
        "checked": {"manifest_generation": k.generation, "segments": k.segments, "series": k.series,
            "chunks": k.chunks, "samples": k.samples, "wal_files": k.wal_files, "wal_records": k.wal_records,
            "wal_samples": k.wal_samples},
    })
}

fn report_text(c: &Checker, m: Option<&Manifest>, errors: usize, warnings: usize) -> String {
    let k = &c.counts;
    let mut o = String::new();
    if let Some(m) = m {
        o += &format!(
            "MANIFEST      generation {}, {} segment(s), WAL floor {:016x}\n",
            m.generation,
            m.segments.len(),
            m.wal_floor
        );
    }
    o += &format!(
        "segments      {} checked: {} series, {} chunks decoded, {} samples\n",
        k.segments,
        human::count(k.series),
        human::count(k.chunks),
        human::count(k.samples)
    );
    o += &format!(
        "WAL           {} file(s) checked: {} records, {} samples\n",
        k.wal_files,
        human::count(k.wal_records),
        human::count(k.wal_samples)
    );
    for p in &c.problems {
        let tag = if p.severity == Severity::Error { "ERROR  " } else { "warning" };
        let at = p.offset.map_or(String::new(), |o| format!(" at offset {o}"));
        o += &format!("{tag} {}{at}: {}\n", p.file.display(), p.message);
    }
    o += &if errors + warnings == 0 {
        "OK: no problems found\n".to_string()
    } else {
        format!("{errors} error(s), {warnings} warning(s)\n")
    };
    o
}
