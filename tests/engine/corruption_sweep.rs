//! Corruption sweep: one bit flipped at every byte offset of a sealed raw
//! segment, of a 5-minute rollup segment and of the MANIFEST, each in a fresh
//! copy of a real data directory.
//!
//! For every case:
//! - `strata::check::check_dir` reports an error naming the damaged file at the
//!   offset promised in docs/reliability/corruption.md (the start of the
//!   checksummed unit holding the byte; magic and version fields at their own
//!   offset; for the MANIFEST, a failing field or else its checksum), and no
//!   error about any other file;
//! - `Db::open` refuses with `Error::Corruption` naming that file and the same
//!   offset, or (damage inside a page, whose checksum is checked when read) opens,
//!   and then every read returns either exactly the original data or
//!   `Error::Corruption` naming that page, and some read does.

use crate::support::options;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strata::check::{check_dir, Severity};
use strata::{Agg, Db, Error, Labels, Matcher, Options, Query, QueryResult, Sample, SyncMode, Tier};

const MIN: i64 = 60_000;
const T0: i64 = 1_700_000_000_000 / (24 * 60 * MIN) * (24 * 60 * MIN);
const END: i64 = T0 + 24 * 60 * MIN;

fn opts() -> Options {
    options::foreground(SyncMode::Never)
}

fn labels(i: usize) -> Labels {
    Labels::metric("sweep", [("host", format!("h{i}"))]).unwrap()
}

/// Two raw segments of 4 series, the 5-minute and hourly rollups of the first,
/// and samples still in the WAL.
fn build(dir: &Path) {
    let db = Db::open(dir, opts()).unwrap();
    let mut app = db.appender();
    let mut x = 7u64;
    for part in 0..3i64 {
        for step in 0..60i64 {
            let ts = T0 + part * 60 * MIN + step * 30_000;
            for i in 0..4 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = if i == 3 { f64::from_bits(x >> 2) } else { (x >> 40) as f64 / 100.0 };
                app.append_labels(&labels(i), ts, v).unwrap();
            }
        }
        app.commit().unwrap();
        if part == 0 {
            db.flush().unwrap();
            assert!(db.downsample().unwrap() > 0);
        } else if part == 1 {
            db.flush().unwrap();
        }
    }
    db.close().unwrap();
}

/// Everything a reader can get back: raw samples per series, and the 5-minute tier.
#[derive(Debug, PartialEq)]
struct Contents {
    raw: Vec<(Labels, Vec<Sample>)>,
    five_min: QueryResult,
}

fn rollup_query() -> Query {
    Query::new()
        .select([Matcher::eq("__name__", "sweep")])
        .range(T0..END)
        .step(Duration::from_secs(300))
        .agg(Agg::Avg)
        .tier(Tier::FiveMin)
}

/// Reads every series on its own, so that one damaged page fails only the series it holds.
fn read_raw(db: &Db) -> Vec<(Labels, strata::Result<Vec<Sample>>)> {
    let q = db.querier(T0..END);
    (0..4)
        .map(|i| {
            let l = labels(i);
            let ms: Vec<Matcher> = l.iter().map(|(k, v)| Matcher::eq(k, v)).collect();
            let got = q.select(&ms).and_then(|mut set| match set.next() {
                Some(r) => r.map(|(_, s)| s.collect()),
                None => Ok(Vec::new()),
            });
            (l, got)
        })
        .collect()
}

fn contents(db: &Db) -> Contents {
    let raw = read_raw(db).into_iter().map(|(l, r)| (l, r.unwrap())).collect();
    Contents { raw, five_min: db.query(&rollup_query()).unwrap() }
}

/// Half-open byte ranges of a segment's checksummed units, parsed from the file.
struct Layout {
    len: u64,
    version: u16,
    pages: Vec<(u64, u64)>,
    table: u64,
    dir: u64,
    footer: u64,
}

impl Layout {
    fn of(b: &[u8]) -> Layout {
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let footer = b.len() - 88;
        let (table, dir) = (u64_at(footer), u64_at(footer + 24));
        let count = u32::from_le_bytes(b[footer + 64..footer + 68].try_into().unwrap()) as usize;
        let pages = (0..count)
            .map(|i| {
                let e = dir as usize + 16 * i;
                let clen = u32::from_le_bytes(b[e + 8..e + 12].try_into().unwrap());
                (u64_at(e), u64_at(e) + 12 + u64::from(clen))
            })
            .collect();
        let version = u16::from_le_bytes([b[8], b[9]]);
        Layout { len: b.len() as u64, version, pages, table, dir, footer: footer as u64 }
    }

    /// The offset a flip at `at` must be reported at.
    fn expected(&self, at: u64) -> u64 {
        match at {
            0..8 => 0, // magic
            8..10 => self.version_flip(at),
            10..24 => 0, // header crc
            _ if at < self.table => self.pages.iter().find(|p| p.0 <= at && at < p.1).expect("pages tile the file").0,
            _ if at < self.dir => self.table,
            _ if at < self.footer => self.dir,
            _ if at >= self.footer + 80 => self.footer + 80, // end magic
            _ => self.footer,
        }
    }

    /// A flip in the version (bit `at % 8` of byte `at`, as the sweep flips) is
    /// reported at the version when it names none this build reads, and by the
    /// header checksum (offset 0) when it names another version still read.
    fn version_flip(&self, at: u64) -> u64 {
        let mut v = self.version.to_le_bytes();
        v[at as usize - 8] ^= 1 << (at % 8);
        if (1..=strata::FORMAT_VERSIONS.segment).contains(&u16::from_le_bytes(v)) {
            0
        } else {
            8
        }
    }

    fn in_page(&self, at: u64) -> bool {
        (24..self.table).contains(&at)
    }
}

/// The MANIFEST offset promised for a flip at `at`: magic, version and payload
/// length are checked by value first; everything else is caught by the trailing crc.
fn manifest_expected(at: u64, len: u64) -> u64 {
    match at {
        0..8 => 0,
        8..10 => 8,
        12..16 => 12,
        _ => len - 4,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    if to.exists() {
        fs::remove_dir_all(to).unwrap();
    }
    for sub in ["", "segments", "wal"] {
        fs::create_dir_all(to.join(sub)).unwrap();
        for e in fs::read_dir(from.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                fs::copy(&p, to.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    cases: usize,
    refused_at_open: usize,
    caught_on_read: usize,
}

/// Flips one bit of `rel` (a path inside the directory) at every offset.
fn sweep_file(
    template: &Path,
    scratch: &Path,
    rel: &str,
    good: &Contents,
    expect: impl Fn(u64) -> u64,
    in_page: impl Fn(u64) -> bool,
) -> Tally {
    let original = fs::read(template.join(rel)).unwrap();
    let mut t = Tally::default();
    for at in 0..original.len() {
        copy_dir(template, scratch);
        let target = scratch.join(rel);
        let mut bytes = original.clone();
        bytes[at] ^= 1 << (at % 8);
        fs::write(&target, &bytes).unwrap();
        let want = expect(at as u64);
        let case = format!("{rel}: bit {} of byte {at}", at % 8);
        let outcome =
            catch_unwind(AssertUnwindSafe(|| one_case(scratch, &target, want, in_page(at as u64), good, &case)));
        match outcome {
            Ok(true) => t.refused_at_open += 1,
            Ok(false) => t.caught_on_read += 1,
            Err(_) => panic!("{case}: panicked (see above)"),
        }
        t.cases += 1;
    }
    t
}

/// Returns true when open refused, false when a read caught the damage.
fn one_case(dir: &Path, target: &Path, want: u64, in_page: bool, good: &Contents, case: &str) -> bool {
    let report = check_dir(dir, |_, _, _| {}).unwrap();
    let errors: Vec<_> = report.problems.iter().filter(|p| p.severity == Severity::Error).collect();
    assert!(!errors.is_empty(), "{case}: check found nothing");
    assert!(errors.iter().all(|p| p.file == target), "{case}: errors about other files: {errors:?}");
    assert!(errors.iter().any(|p| p.offset == Some(want)), "{case}: expected offset {want}, got {errors:?}");

    match Db::open(dir, opts()) {
        Err(Error::Corruption { file, offset, reason }) => {
            assert_eq!((file.as_path(), offset), (target, want), "{case}: {reason}");
            true
        }
        Err(e) => panic!("{case}: open failed with a non-corruption error: {e}"),
        Ok(db) => {
            assert!(in_page, "{case}: damage outside page data must be refused at open");
            let mut failed = 0;
            for ((l, got), (gl, good_samples)) in read_raw(&db).into_iter().zip(&good.raw) {
                assert_eq!(&l, gl);
                match got {
                    Ok(s) => assert_eq!(&s, good_samples, "{case}: wrong samples for {l}"),
                    Err(Error::Corruption { file, offset, .. }) => {
                        assert_eq!((file.as_path(), offset), (target, want), "{case}: read of {l}");
                        failed += 1;
                    }
                    Err(e) => panic!("{case}: read of {l} failed with {e}"),
                }
            }
            match db.query(&rollup_query()) {
                Ok(r) => assert_eq!(r, good.five_min, "{case}: wrong rollup answer"),
                Err(Error::Corruption { file, offset, .. }) => {
                    assert_eq!((file.as_path(), offset), (target, want), "{case}: rollup query");
                    failed += 1;
                }
                Err(e) => panic!("{case}: rollup query failed with {e}"),
            }
            assert!(failed > 0, "{case}: damaged page read back without an error");
            false
        }
    }
}

fn segment_files(dir: &Path) -> Vec<(u8, PathBuf)> {
    let mut v: Vec<(u8, PathBuf)> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (fs::read(&p).unwrap()[10], p))
        .collect();
    v.sort();
    v
}

#[test]
fn every_flipped_bit_is_reported_and_never_read_back_wrong() {
    let started = Instant::now();
    // Each case opens a Db, whose WAL setup fsyncs; on tmpfs that costs nothing,
    // and what is tested (detection and reporting) does not depend on the disk.
    let shm = Path::new("/dev/shm");
    let root = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    let template = root.path().join("template");
    build(&template);
    let segs = segment_files(&template);
    assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 0, 1, 2], "two raw segments, 5m and 1h rollups");
    let good = {
        let db = Db::open(&template, opts()).unwrap();
        let c = contents(&db);
        assert!(c.raw.iter().all(|(_, s)| s.len() == 180));
        assert_eq!(c.five_min.tier, Tier::FiveMin);
        assert!(!c.five_min.series.is_empty());
        c
    };
    let scratch = root.path().join("case");
    let report = check_dir(&template, |_, _, _| {}).unwrap();
    assert_eq!(report.errors() + report.warnings(), 0, "{:?}", report.problems);

    let mut lines = Vec::new();
    let mut total = 0;
    // The first raw segment (its data is also in the rollup), and the rollup segment.
    for (tier, path) in [&segs[0], &segs[2]] {
        let rel = format!("segments/{}", path.file_name().unwrap().to_string_lossy());
        let layout = Layout::of(&fs::read(path).unwrap());
        let t = sweep_file(&template, &scratch, &rel, &good, |at| layout.expected(at), |at| layout.in_page(at));
        assert!(t.refused_at_open > 0 && t.caught_on_read > 0, "{t:?}");
        lines.push(format!("tier-{tier} segment {} bytes, {} pages: {t:?}", layout.len, layout.pages.len()));
        total += t.cases;
    }
    let len = fs::metadata(template.join("MANIFEST")).unwrap().len();
    let t = sweep_file(&template, &scratch, "MANIFEST", &good, |at| manifest_expected(at, len), |_| false);
    assert_eq!(t.refused_at_open, t.cases);
    lines.push(format!("MANIFEST {len} bytes: {t:?}"));
    total += t.cases;
    println!("{}\n{total} cases in {:.1?}", lines.join("\n"), started.elapsed());
}

/// Bytes of one kind of unit in a segment: header, page, series table, directory, footer.
fn damage_sites(layout: &Layout) -> [(&'static str, u64); 5] {
    [
        ("header", 14),
        ("page", layout.pages[0].0 + 20),
        ("series table", layout.table + 3),
        ("directory", layout.dir + 2),
        ("footer", layout.footer + 50),
    ]
}

fn flip_at(path: &Path, at: u64) {
    let mut b = fs::read(path).unwrap();
    b[at as usize] ^= 0x04;
    fs::write(path, b).unwrap();
}

fn repair_opts() -> Options {
    opts().repair(true)
}

/// The samples of `good` in `[from, to)`.
fn window(good: &Contents, from: i64, to: i64) -> Vec<(Labels, Vec<Sample>)> {
    let keep = |s: &&Sample| s.ts >= from && s.ts < to;
    good.raw.iter().map(|(l, s)| (l.clone(), s.iter().filter(keep).copied().collect())).collect()
}

#[test]
fn repair_quarantines_a_damaged_segment_and_serves_the_rest() {
    let root = tempfile::tempdir().unwrap();
    let template = root.path().join("template");
    build(&template);
    let good = contents(&Db::open(&template, opts()).unwrap());
    let segs = segment_files(&template);
    // The second raw segment holds the second hour only; the first hour is also in the rollups.
    let victim = &segs[1].1;
    let name = victim.file_name().unwrap().to_owned();
    let layout = Layout::of(&fs::read(victim).unwrap());
    let hour = 60 * MIN;
    for (what, at) in damage_sites(&layout) {
        let dir = root.path().join("case");
        copy_dir(&template, &dir);
        let seg = dir.join("segments").join(&name);
        flip_at(&seg, at);
        let damaged = fs::read(&seg).unwrap();

        // Without repair: structure damage is refused at open; page damage fails reads.
        match Db::open(&dir, opts()) {
            Err(Error::Corruption { file, offset, .. }) => {
                assert_ne!(what, "page");
                assert_eq!((file, offset), (seg.clone(), layout.expected(at)), "{what}");
            }
            Ok(db) => {
                assert_eq!(what, "page", "{what} damage must be refused at open");
                assert!(read_raw(&db)
                    .iter()
                    .any(|(_, r)| matches!(r, Err(Error::Corruption { file, .. }) if *file == seg)));
            }
            Err(e) => panic!("{what}: {e}"),
        }
        assert_eq!(fs::read(&seg).unwrap(), damaged, "{what}: open without repair must not move anything");

        let db = Db::open(&dir, repair_opts()).unwrap();
        let moved = dir.join("quarantine").join(&name);
        assert_eq!(db.recovery_report().quarantined, vec![moved.clone()], "{what}");
        assert_eq!(db.recovery_report().segments, 3);
        assert!(!seg.exists());
        assert_eq!(fs::read(&moved).unwrap(), damaged, "{what}: quarantined bytes are kept as they were");
        // First hour (segment and rollups) and third hour (WAL) intact; the second is gone.
        let mut want = window(&good, T0, T0 + hour);
        for ((_, w), (_, late)) in want.iter_mut().zip(window(&good, T0 + 2 * hour, END)) {
            w.extend(late);
        }
        assert_eq!(contents(&db).raw, want, "{what}");
        db.close().unwrap();

        // The repair is durable: a plain open agrees, and check reports only the quarantine.
        let manifest = strata::fuzzing::manifest::Manifest::load(&dir).unwrap().unwrap();
        assert_eq!(manifest.segments.len(), 3);
        let db = Db::open(&dir, opts()).unwrap();
        assert!(db.recovery_report().quarantined.is_empty());
        assert_eq!(contents(&db).raw, want, "{what}: after reopening");
        drop(db);
        let report = check_dir(&dir, |_, _, _| {}).unwrap();
        assert_eq!((report.errors(), report.warnings()), (0, 1), "{what}: {:?}", report.problems);
        assert!(report.problems[0].message.contains("quarantined"));
    }
}

#[test]
fn a_quarantined_rollup_is_recomputed_from_raw_data() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    build(&dir);
    let good = contents(&Db::open(&dir, opts()).unwrap());
    let five_min = segment_files(&dir).into_iter().find(|s| s.0 == 1).unwrap().1;
    flip_at(&five_min, 30);
    let db = Db::open(&dir, repair_opts()).unwrap();
    assert_eq!(db.recovery_report().quarantined.len(), 1);
    // The raw segment it summarised is no longer marked rolled up, so the tier is
    // answered from raw data: the same answer as before the damage.
    assert_eq!(contents(&db), good);
    let m = strata::fuzzing::manifest::Manifest::load(&dir).unwrap().unwrap();
    assert!(m
        .segments
        .iter()
        .filter(|s| s.tier == strata::StoredTier::Raw)
        .all(|s| s.flags & strata::fuzzing::manifest::FLAG_ROLLED_UP == 0));
}

#[test]
fn a_damaged_manifest_is_refused_even_under_repair() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    build(&dir);
    let path = dir.join("MANIFEST");
    let len = fs::metadata(&path).unwrap().len();
    flip_at(&path, 40);
    for o in [opts(), repair_opts()] {
        match Db::open(&dir, o) {
            Err(Error::Corruption { file, offset, .. }) => assert_eq!((file, offset), (path.clone(), len - 4)),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened with a damaged MANIFEST"),
        }
    }
    assert!(!dir.join("quarantine").exists());
}

#[test]
fn an_interrupted_repair_is_refused_then_finished_by_repair() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    build(&dir);
    let seg = segment_files(&dir)[1].1.clone();
    let moved = dir.join("quarantine").join(seg.file_name().unwrap());
    // A crash between the rename and the MANIFEST publication.
    fs::create_dir(dir.join("quarantine")).unwrap();
    fs::rename(&seg, &moved).unwrap();
    match Db::open(&dir, opts()) {
        Err(Error::Corruption { file, reason, .. }) => {
            assert!(file == seg && reason.contains("quarantine"), "{reason}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened with a listed segment missing"),
    }
    let db = Db::open(&dir, repair_opts()).unwrap();
    assert_eq!(db.recovery_report().quarantined, vec![moved.clone()]);
    assert!(moved.exists());
}
