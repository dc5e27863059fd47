//! `strata check`: clean directories pass; damaged segments and WAL files are
//! reported with their file and offset; nothing is modified.
#![cfg(feature = "cli")]

use crate::support::cli_support;
use std::fs;
use std::path::{Path, PathBuf};

use crate::support::cli_support::{json, load_devops, stdout, strata};
use strata::{Db, Labels};

/// A database with a sealed segment (from `load`) and three commits left in the WAL.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    load_devops(dir.path(), 2, "1h");
    let db = Db::open(dir.path(), cli_support::keep_all()).unwrap();
    let mut app = db.appender();
    for k in 0..3 {
        let l = Labels::metric("wal_only", [("k", k.to_string())]).unwrap();
        app.append_labels(&l, 1_000 * k, f64::NAN).unwrap();
        app.commit().unwrap();
    }
    db.close().unwrap();
    dir
}

fn files(dir: &Path, sub: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

/// Every file with its size and bytes, to prove `check` changes nothing.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "segments", "wal"] {
        for e in fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn flip(path: &Path, at: usize) {
    let mut b = fs::read(path).unwrap();
    b[at] ^= 0x10;
    fs::write(path, b).unwrap();
}

#[test]
fn clean_directory_passes_and_is_left_untouched_even_while_open() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    // A Db held open by this process (as a server would) does not stop the check.
    let db = Db::open(dir.path(), cli_support::keep_all().background(false)).unwrap();
    let before = snapshot(dir.path());
    let out = strata(&["check", "--data", d]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("OK: no problems found"), "{text}");
    assert!(text.contains("segments      1 checked: 20 series, 20 chunks decoded, 7,200 samples"), "{text}");
    assert_eq!(snapshot(dir.path()), before, "check must not modify anything");
    let j = json(&stdout(&strata(&["check", "--data", d, "--json"])));
    assert_eq!((j["ok"].as_bool(), j["errors"].as_u64()), (Some(true), Some(0)));
    assert_eq!(j["checked"]["wal_samples"], 3);
    drop(db);
}

#[test]
fn a_flipped_byte_in_a_segment_is_reported_with_its_file() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let seg = files(dir.path(), "segments", ".seg").pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len() as usize;
    for at in [10, len / 3, len / 2, len - 30] {
        flip(&seg, at);
        let out = strata(&["check", "--data", dir.path().to_str().unwrap()]);
        let text = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "flip at {at}: {text}");
        assert!(text.contains(&format!("ERROR   {}", seg.display())), "flip at {at}: {text}");
        assert!(text.contains("1 error(s)"), "flip at {at}: {text}");
        flip(&seg, at); // restore
    }
    let j = json(&stdout(&strata(&["check", "--data", dir.path().to_str().unwrap(), "--json"])));
    assert_eq!(j["ok"], true);
    // The offset is that of the damaged unit: the header (crc) and the footer here.
    for (at, offset) in [(10, 0), (len - 30, len - 88)] {
        flip(&seg, at);
        let j = json(&stdout(&strata(&["check", "--data", dir.path().to_str().unwrap(), "--json"])));
        assert_eq!(j["problems"][0]["offset"].as_u64(), Some(offset as u64), "flip at {at}: {j}");
        flip(&seg, at);
    }
}

#[test]
fn wal_damage_mid_log_is_an_error_and_a_torn_tail_a_warning() {
    let _serial = cli_support::serial();
    let dir = fixture();
    let d = dir.path().to_str().unwrap();
    let wal = files(dir.path(), "wal", ".wal").pop().unwrap();
    let bytes = fs::read(&wal).unwrap();

    flip(&wal, 24 + 10); // inside the first frame, which valid frames follow
    let out = strata(&["check", "--data", d, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&stdout(&out));
    let p = &j["problems"][0];
    assert_eq!((p["severity"].as_str(), p["offset"].as_u64()), (Some("error"), Some(24)));
    assert_eq!(p["file"], wal.display().to_string());

    fs::write(&wal, &bytes[..bytes.len() - 3]).unwrap(); // a crash mid-write
    let out = strata(&["check", "--data", d]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("warning") && text.contains("torn tail") && text.contains("0 error(s), 1 warning(s)"),
        "{text}"
    );
    assert_eq!(fs::read(&wal).unwrap().len(), bytes.len() - 3, "check must not truncate");
}

#[test]
fn missing_manifest_and_missing_directory() {
    let _serial = cli_support::serial();
    let dir = fixture();
    fs::remove_file(dir.path().join("MANIFEST")).unwrap();
    let out = strata(&["check", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("MANIFEST is missing"));
    let e = cli_support::fails(&["check", "--data", "/nonexistent/strata"]);
    assert!(e.contains("does not exist"), "{e}");
}
