//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`) through the fuzz entry
//! points, and sweeps every truncation and bit flip of fresh seeds, so decoder
//! regressions show under `cargo test` without a fuzzer.

use std::path::Path;

use strata::fuzzing;
use strata::{Db, Labels, Options, RetentionPolicy, SyncMode, TierDurations};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 6] = [
    ("wal_frames", fuzzing::wal_frames),
    ("segment_file", fuzzing::segment_file),
    ("manifest", fuzzing::manifest),
    ("chunk", fuzzing::chunk),
    ("labels", fuzzing::labels),
    ("xor_chunk", fuzzing::xor_chunk),
];

#[test]
fn checked_in_corpus_never_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut files = 0;
    for (name, target) in TARGETS {
        let Ok(dir) = std::fs::read_dir(root.join(name)) else { continue };
        for entry in dir {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            target(&data);
            files += 1;
        }
    }
    assert!(files >= TARGETS.len(), "the corpus is missing: {files} files");
}

/// Valid files from a real database: one WAL file, one segment, the manifest.
fn seeds() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options::default()
            .sync(SyncMode::Never)
            .background(false)
            .retention(RetentionPolicy::new(TierDurations::forever()).unwrap()),
    )
    .unwrap();
    let mut app = db.appender();
    for s in 0..3 {
        let l = Labels::from_pairs([("__name__", "seed"), ("s", &s.to_string())]).unwrap();
        for t in 0..20 {
            app.append_labels(&l, t * 1000, (t * s) as f64 / 4.0).unwrap();
        }
    }
    app.commit().unwrap();
    let wal = std::fs::read_dir(dir.path().join("wal")).unwrap().next().unwrap().unwrap().path();
    let wal = std::fs::read(wal).unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    let seg = std::fs::read_dir(dir.path().join("segments")).unwrap().next().unwrap().unwrap().path();
    let manifest = std::fs::read(dir.path().join("MANIFEST")).unwrap();
    (wal, std::fs::read(seg).unwrap(), manifest)
}

fn sweep(data: &[u8], target: Target) -> usize {
    let mut cases = 0;
    for cut in 0..data.len() {
        target(&data[..cut]);
        cases += 1;
    }
    let mut copy = data.to_vec();
    for bit in 0..data.len() * 8 {
        copy[bit / 8] ^= 1 << (bit % 8);
        target(&copy);
        copy[bit / 8] ^= 1 << (bit % 8);
        cases += 1;
    }
    cases
}

#[test]
fn every_truncation_and_bit_flip_of_real_files_is_survived() {
    let (wal, seg, manifest) = seeds();
    let mut cases = sweep(&wal, fuzzing::wal_frames) + sweep(&manifest, fuzzing::manifest);
    for cut in 0..seg.len() {
        fuzzing::segment_file(&seg[..cut]);
    }
    let mut copy = seg.clone();
    for bit in 0..seg.len() * 8 {
        copy[bit / 8] ^= 1 << (bit % 8);
        fuzzing::segment_file(&copy);
        copy[bit / 8] ^= 1 << (bit % 8);
        cases += 1;
    }
    eprintln!("{cases} truncations and bit flips survived");
    assert!(cases > 10_000, "{cases} cases");
}

/// Writes the seeds into the corpus directories (run with `--ignored` after a format change).
#[test]
#[ignore]
fn regenerate_seed_corpus() {
    let (wal, seg, manifest) = seeds();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut chunk = Vec::new();
    let samples: Vec<strata::Sample> =
        (0..50).map(|i| strata::Sample::new(i * 10_000, (i % 7) as f64 / 10.0)).collect();
    strata::codec::chunk::encode_chunk(&samples, &mut chunk);
    let mut labels = Vec::new();
    Labels::from_pairs([("__name__", "m"), ("host", "h1")]).unwrap().encode(&mut labels);
    let xor: Vec<u8> =
        samples.iter().flat_map(|s| [s.ts.to_le_bytes(), s.value.to_bits().to_le_bytes()].concat()).collect();
    for (name, data) in [
        ("wal_frames", wal),
        ("segment_file", seg),
        ("manifest", manifest),
        ("chunk", chunk),
        ("labels", labels),
        ("xor_chunk", xor),
    ] {
        std::fs::create_dir_all(root.join(name)).unwrap();
        std::fs::write(root.join(name).join("seed"), data).unwrap();
    }
}
