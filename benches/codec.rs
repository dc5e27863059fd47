//! Sample codec throughput, in samples per second, and rollup chunk codec
//! throughput (both versions), in buckets per second.
//!
//! The devops series is a 10 s gauge doing a bounded random walk at one
//! decimal, the common shape of infrastructure metrics.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use strata::fuzzing::codec::chunk::{decode_chunk, encode_chunk};
use strata::fuzzing::codec::xor::XorChunk;
use strata::rollup::codec::{decode_buckets, decode_columns, encode_buckets, encode_buckets_v1, COL_MAX};
use strata::rollup::{rollup, FIVE_MIN_MS, HOUR_MS};
use strata::Sample;

/// splitmix64, so the bench needs no rand crate and is reproducible.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// v = clamp(v + U(-2, 2), 0, 100) rounded to one decimal, every 10 s.
fn devops(n: usize, seed: u64) -> Vec<Sample> {
    let mut rng = Rng(seed);
    let mut v = (rng.unit() * 1000.0).round() / 10.0;
    (0..n)
        .map(|i| {
            let s = Sample::new(1_700_000_000_000 + 10_000 * i as i64, v);
            v = ((v + rng.unit() * 4.0 - 2.0).clamp(0.0, 100.0) * 10.0).round() / 10.0;
            s
        })
        .collect()
}

/// Arbitrary-precision floats with jittered timestamps: the DOD + XOR path.
fn noisy(n: usize, seed: u64) -> Vec<Sample> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| Sample::new(1_700_000_000_000 + 15_000 * i as i64 + (rng.unit() * 20.0) as i64, rng.unit()))
        .collect()
}

fn short<M: criterion::measurement::Measurement>(g: &mut BenchmarkGroup<'_, M>) {
    g.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
}

fn chunk(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunk");
    short(&mut g);
    let cases = [("devops", devops(720, 1)), ("devops", devops(8640, 1)), ("noisy", noisy(720, 1))];
    for (name, samples) in &cases {
        let n = samples.len();
        let mut buf = Vec::new();
        encode_chunk(samples, &mut buf);
        println!("{name}/{n}: {} bytes, {:.3} bytes/sample", buf.len(), buf.len() as f64 / n as f64);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new(format!("encode_{name}"), n), samples, |b, s| {
            let mut out = Vec::with_capacity(buf.len() * 2);
            b.iter(|| {
                out.clear();
                black_box(encode_chunk(black_box(s), &mut out));
            })
        });
        g.bench_with_input(BenchmarkId::new(format!("decode_{name}"), n), &buf, |b, buf| {
            let mut out = Vec::with_capacity(n);
            b.iter(|| {
                out.clear();
                decode_chunk(black_box(buf), &mut out).expect("valid chunk");
                black_box(&out);
            })
        });
    }
    g.finish();
}

fn xor(c: &mut Criterion) {
    let mut g = c.benchmark_group("xor");
    short(&mut g);
    let samples = devops(720, 1);
    let n = samples.len();
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("append_devops", n), |b| {
        b.iter(|| {
            let mut chunk = XorChunk::new();
            for s in black_box(&samples) {
                chunk.append(s.ts, s.value);
            }
            black_box(chunk)
        })
    });
    let mut chunk = XorChunk::new();
    for s in &samples {
        chunk.append(s.ts, s.value);
    }
    println!("xor devops/{n}: {} heap bytes", chunk.heap_bytes());
    g.bench_function(BenchmarkId::new("iter_devops", n), |b| {
        b.iter(|| black_box(&chunk).iter().fold(0.0, |acc, s| acc + s.value + s.ts as f64))
    });
    g.finish();
}

/// Rollup chunks of the devops walk as the tiers store them: a day of 5-minute
/// buckets and a week of hourly ones, in version 1 and version 2. Prints each
/// chunk's size after zstd level 3 (as segment pages compress it).
fn rollup_chunk(c: &mut Criterion) {
    let mut g = c.benchmark_group("rollup");
    short(&mut g);
    let week = devops(7 * 8640, 2);
    let cases =
        [("5m_day", rollup(&devops(8640, 1), FIVE_MIN_MS).unwrap()), ("1h_week", rollup(&week, HOUR_MS).unwrap())];
    type Enc = fn(&[strata::rollup::Bucket], &mut Vec<u8>) -> strata::Result<strata::ChunkMeta>;
    let encoders: [(&str, Enc); 2] = [("v1", encode_buckets_v1), ("v2", encode_buckets)];
    for (name, buckets) in &cases {
        let n = buckets.len();
        g.throughput(Throughput::Elements(n as u64));
        for (version, enc) in encoders {
            let mut buf = Vec::new();
            enc(buckets, &mut buf).expect("valid buckets");
            let z = zstd::bulk::compress(&buf, 3).expect("compresses").len();
            println!(
                "rollup {name} {version}: {n} buckets, {} bytes, {z} after zstd ({:.2} bytes/bucket)",
                buf.len(),
                z as f64 / n as f64
            );
            g.bench_with_input(BenchmarkId::new(format!("encode_{name}_{version}"), n), buckets, |b, s| {
                let mut out = Vec::with_capacity(buf.len() * 2);
                b.iter(|| {
                    out.clear();
                    black_box(enc(black_box(s), &mut out).expect("valid buckets"));
                })
            });
            g.bench_with_input(BenchmarkId::new(format!("decode_{name}_{version}"), n), &buf, |b, buf| {
                let mut out = Vec::with_capacity(n);
                b.iter(|| {
                    out.clear();
                    decode_buckets(black_box(buf), &mut out).expect("valid chunk");
                    black_box(&out);
                })
            });
            // What a max query decodes: count and max only.
            g.bench_with_input(BenchmarkId::new(format!("decode_max_{name}_{version}"), n), &buf, |b, buf| {
                let mut out = Vec::with_capacity(n);
                b.iter(|| {
                    out.clear();
                    decode_columns(black_box(buf), &mut out, COL_MAX).expect("valid chunk");
                    black_box(&out);
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, chunk, xor, rollup_chunk);
criterion_main!(benches);
