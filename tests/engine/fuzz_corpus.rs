//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`) through the fuzz entry
//! points, and sweeps every truncation and bit flip of fresh seeds, so decoder
//! regressions show under `cargo test` without a fuzzer.

use std::path::Path;

use strata::fuzzing;
use strata::{Db, Labels, Options, RetentionPolicy, SyncMode, TierDurations};

type Target = fn(&[u8]);

fn targets() -> Vec<(&'static str, Target)> {
    #[cfg_attr(not(feature = "server"), allow(unused_mut))]
    let mut t: Vec<(&'static str, Target)> = vec![
        ("wal_frames", fuzzing::wal_frames),
        ("segment_file", fuzzing::segment_file),
        ("manifest", fuzzing::manifest),
        ("chunk", fuzzing::chunk),
        ("labels", fuzzing::labels),
        ("xor_chunk", fuzzing::xor_chunk),
        ("rollup", fuzzing::rollup),
        ("selector", fuzzing::selector),
        ("promql", fuzzing::promql),
    ];
    #[cfg(feature = "server")]
    t.extend([("line_protocol", fuzzing::line_protocol as Target), ("remote_write", fuzzing::remote_write)]);
    t
}

#[test]
fn checked_in_corpus_never_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut files = 0;
    let targets = targets();
    for &(name, target) in &targets {
        let dir = std::fs::read_dir(root.join(name)).unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"));
        for entry in dir {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            target(&data);
            files += 1;
        }
    }
    assert!(files >= targets.len(), "the corpus is missing: {files} files");
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

/// Valid inputs for the rollup and parser targets, each under the name of its
/// corpus file. The first byte of a line protocol or remote write input is the
/// target's flags (see `src/fuzzing.rs`).
fn parser_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use strata::rollup::codec::{encode_buckets, encode_buckets_v1};
    use strata::rollup::{rollup, FIVE_MIN_MS};
    use strata::Sample;
    let mut out = Vec::new();

    let counter: Vec<Sample> = (0..120).map(|i| Sample::new(i * 15_000, ((i * 7) % 50) as f64 + 0.25)).collect();
    let mut gappy: Vec<Sample> = (0..40).map(|i| Sample::new(i * i * 20_000 - 600_000, (i as f64).sin())).collect();
    gappy[3].value = f64::NAN;
    gappy[4].value = f64::from_bits(0x7ff0_0000_0000_0002);
    gappy[5].value = -0.0;
    // A devops-like gauge in tenths with a hole: version 2's predicted columns.
    let mut walk = Vec::new();
    let mut v = 500i64;
    for i in 0..900i64 {
        v = (v + (i * 7919 % 41) - 20).clamp(0, 1000);
        if !(400..500).contains(&i) {
            walk.push(Sample::new(1_700_000_000_000 + i * 10_000, v as f64 / 10.0));
        }
    }
    // "seed" and "gappy" are version 1 chunks (still read), the others version 2.
    for (file, samples) in [("seed", &counter), ("gappy", &gappy)] {
        let mut buf = Vec::new();
        encode_buckets_v1(&rollup(samples, FIVE_MIN_MS).unwrap(), &mut buf).unwrap();
        out.push(("rollup", file, buf));
    }
    for (file, samples) in [("seed_v2", &counter), ("gappy_v2", &gappy), ("walk_v2", &walk)] {
        let mut buf = Vec::new();
        encode_buckets(&rollup(samples, FIVE_MIN_MS).unwrap(), &mut buf).unwrap();
        out.push(("rollup", file, buf));
    }

    // Line protocol in the shape of the devops workload, plus the syntax corners.
    let mut devops = strata::loadgen::Devops::new(2, 10_000, 1_700_000_000_000, 1);
    let mut step = Vec::new();
    devops.next_step(&mut step);
    devops.next_step(&mut step);
    let mut lp = String::from("# devops\n");
    for &(i, ts, v) in step.iter().take(12) {
        let l = devops.labels(i);
        let (measurement, field) = l.metric_name().unwrap().split_once('_').unwrap();
        lp.push_str(measurement);
        for (k, val) in l.iter().filter(|(k, _)| *k != strata::METRIC_NAME) {
            lp.push_str(&format!(",{k}={val}"));
        }
        lp.push_str(&format!(" {field}={v} {}\n", ts * 1_000_000));
    }
    out.push(("line_protocol", "seed", [&[0u8][..], lp.as_bytes()].concat()));
    let corners = "my\\,m,t\\ 1=a\\=b,u=x s=\"a\\\"b\",i=-3i,u=4u,b=F,f=1.5e3 1700000000\r\n\
                   \n  disk-io,1tag=v reads=7\nm v=1 -1\n";
    out.push(("line_protocol", "corners", [&[3u8][..], corners.as_bytes()].concat()));
    out.push(("line_protocol", "tight", [&[0xC2u8][..], b"cpu,host=a,dc=b v=1,w=2i 5\n"].concat()));

    // Remote write: a snappy block as Prometheus sends it, the bare protobuf, and under tight limits.
    #[cfg(feature = "server")]
    {
        use prost::Message;
        use strata::fuzzing::prompb::{Label, Sample as PbSample, TimeSeries, WriteRequest};
        let values = [1.5, f64::NAN, f64::from_bits(0x7ff0_0000_0000_0002), -0.0, f64::INFINITY];
        let timeseries = (0..3)
            .map(|i| TimeSeries {
                labels: devops
                    .labels(i)
                    .iter()
                    .map(|(k, v)| Label { name: k.to_string(), value: v.to_string() })
                    .collect(),
                samples: (0..5)
                    .map(|t| PbSample { value: Some(values[(t + i) % 5]), timestamp: 1_700_000_000_000 + t as i64 })
                    .collect(),
            })
            .collect();
        let pb = WriteRequest { timeseries, ..Default::default() }.encode_to_vec();
        let block = snap::raw::Encoder::new().compress_vec(&pb).unwrap();
        out.push(("remote_write", "seed", [&[0u8][..], &block].concat()));
        out.push(("remote_write", "protobuf", [&[2u8][..], &pb].concat()));
        out.push(("remote_write", "tight", [&[3u8][..], &pb].concat()));
    }

    let selectors = [
        ("seed", r#"cpu_usage_user{hostname=~"host_[12]", region!="eu-west-1",dc!~'a|b',}"#),
        ("name", r#"{__name__=~"cpu_.*"}"#),
        ("escapes", r#"ns:rate5m{a="q\"\\\n\u00e9\x41\U0001F600\101\a", b=`raw\d+`}"#),
        ("quoted", r#"{"cpu", "host"='h\'1', dc!~"a|b",}"#),
        ("series", r#"cpu{host="a\"b\\c\nd\x01\u0085",z="{,}"}"#),
    ];
    for (file, s) in selectors {
        out.push(("selector", file, s.as_bytes().to_vec()));
    }
    out
}

#[test]
fn every_truncation_and_bit_flip_of_parser_inputs_is_survived() {
    let targets = targets();
    let mut cases = 0;
    for (name, _, data) in parser_seeds() {
        let Some(&(_, target)) = targets.iter().find(|(n, _)| *n == name) else { continue };
        target(&data);
        cases += sweep(&data, target);
    }
    eprintln!("{cases} truncations and bit flips of parser inputs survived");
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
    strata::fuzzing::codec::chunk::encode_chunk(&samples, &mut chunk);
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
    for (name, file, data) in parser_seeds() {
        std::fs::create_dir_all(root.join(name)).unwrap();
        std::fs::write(root.join(name).join(file), data).unwrap();
    }
}
