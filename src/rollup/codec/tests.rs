#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use super::*;
use crate::rollup::{rollup, FIVE_MIN_MS};
use crate::sample::Sample;
use proptest::prelude::*;

type Encoder = fn(&[Bucket], &mut Vec<u8>) -> Result<ChunkMeta>;
const ENCODERS: [(&str, Encoder); 2] = [("v2", encode_buckets), ("v1", encode_buckets_v1)];

fn encode_with(enc: Encoder, buckets: &[Bucket]) -> Vec<u8> {
    let mut out = Vec::new();
    enc(buckets, &mut out).unwrap();
    out
}

fn encode(buckets: &[Bucket]) -> Vec<u8> {
    encode_with(encode_buckets, buckets)
}

fn decode(buf: &[u8]) -> std::result::Result<Vec<Bucket>, DecodeError> {
    let mut out = Vec::new();
    decode_buckets(buf, &mut out).map(|()| out)
}

/// A devops-like gauge: a random walk in tenths, one sample every 10 s.
fn walk(n: i64, seed: u64) -> Vec<Sample> {
    let mut x = seed;
    let mut v: i64 = 500;
    (0..n)
        .map(|i| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v = (v + (x >> 33) as i64 % 41 - 20).clamp(0, 1000);
            Sample::new(1_700_000_000_000 + i * 10_000, v as f64 / 10.0)
        })
        .collect()
}

fn fixtures() -> Vec<Vec<Bucket>> {
    let counter: Vec<Sample> =
        (0..500).map(|i| Sample::new(i * 15_000 + 7, ((i * 13) % 170) as f64 + 0.5 * (i % 3) as f64)).collect();
    let mut gappy: Vec<Sample> = (0..80).map(|i| Sample::new(i * i * 40_000 - 3_000_000, (i as f64).sin())).collect();
    gappy[5].value = f64::NAN;
    gappy[9].value = -0.0;
    gappy[10].value = f64::INFINITY;
    let single = vec![Sample::new(i64::MIN, f64::MIN)];
    let top = vec![Sample::new(i64::MAX - 1, 1.0), Sample::new(i64::MAX, 2.0)];
    let mut odd = walk(3000, 3);
    odd[77].value = f64::from_bits(0x7ff8_0000_dead_beef);
    odd[1500].value = -0.0;
    odd.retain(|s| !(1_700_000_600_000..1_700_002_000_000).contains(&s.ts));
    vec![
        rollup(&counter, FIVE_MIN_MS).unwrap(),
        rollup(&gappy, FIVE_MIN_MS).unwrap(),
        rollup(&single, 2).unwrap(),
        rollup(&top, 1000).unwrap(),
        rollup(&walk(8640, 1), FIVE_MIN_MS).unwrap(),
        rollup(&odd, FIVE_MIN_MS).unwrap(),
    ]
}

#[test]
fn round_trips_bitwise_with_meta() {
    for (name, enc) in ENCODERS {
        for buckets in fixtures() {
            let mut buf = vec![0xAA];
            let meta = enc(&buckets, &mut buf).unwrap();
            assert_eq!(buf[0], 0xAA, "appends");
            assert_eq!(buf[1], if name == "v2" { 2 } else { 1 }, "version byte");
            assert_eq!(decode(&buf[1..]).unwrap(), buckets, "{name}");
            assert_eq!((meta.min_t, meta.max_t), (buckets[0].start, buckets[buckets.len() - 1].start));
            assert_eq!(meta.count as usize, buckets.len());
            let min = buckets.iter().map(|b| b.min).fold(f64::NAN, f64::min);
            assert_eq!(meta.min.to_bits(), min.to_bits());
        }
    }
}

#[test]
fn projected_decode_matches_the_full_one_on_its_columns() {
    let empty = Bucket::empty(0);
    for (name, enc) in ENCODERS {
        for fx in fixtures() {
            let buf = encode_with(enc, &fx);
            let full = decode(&buf).unwrap();
            let wants =
                [COL_COUNT, COL_SUM, COL_MIN, COL_MAX, COL_SUM | COL_MAX, COL_FIRST | COL_LAST_TS, COL_INCREASE];
            for want in wants.into_iter().chain((0..COLUMNS).map(|c| 1 << c)) {
                let mut got = Vec::new();
                decode_columns(&buf, &mut got, want).unwrap();
                assert_eq!(got.len(), full.len());
                for (g, f) in got.iter().zip(&full) {
                    // A wanted column as decoded in full, any other as in an empty bucket.
                    let same = |on: u16, a: f64, b: f64| {
                        let b = if on & (want | COL_COUNT) != 0 { b } else { get_f(&empty, on) };
                        a.to_bits() == b.to_bits()
                    };
                    assert_eq!((g.start, g.count), (f.start, f.count));
                    assert!(same(COL_SUM, g.sum, f.sum) && same(COL_MIN, g.min, f.min) && same(COL_MAX, g.max, f.max));
                    assert!(same(COL_FIRST, g.first, f.first) && same(COL_LAST, g.last, f.last));
                    assert!(same(COL_INCREASE, g.increase, f.increase), "{name} want {want:b}");
                    let ts = |on: u16, a: i64, b: i64| a == if on & want != 0 { b } else { g.start };
                    assert!(ts(COL_FIRST_TS, g.first_ts, f.first_ts) && ts(COL_LAST_TS, g.last_ts, f.last_ts));
                }
                // A damaged skipped column is not read; the length prefix still bounds it.
                let mut cut = buf.clone();
                cut.pop();
                assert!(decode_columns(&cut, &mut got, want).is_err());
            }
        }
    }
}

/// Bucket field selected by a one-bit mask, for comparisons with an empty bucket.
fn get_f(b: &Bucket, on: u16) -> f64 {
    match on {
        COL_SUM => b.sum,
        COL_MIN => b.min,
        COL_MAX => b.max,
        COL_FIRST => b.first,
        COL_LAST => b.last,
        _ => b.increase,
    }
}

#[test]
fn version_2_is_smaller_than_version_1() {
    for (i, fx) in fixtures().iter().enumerate() {
        let (v2, v1) = (encode(fx), encode_with(encode_buckets_v1, fx));
        println!("fixture {i}: {} buckets, v1 {} bytes, v2 {} bytes", fx.len(), v1.len(), v2.len());
        assert!(v2.len() <= v1.len() + 16, "fixture {i}");
    }
    // A day of 5-minute buckets of a devops-like walk, compressed as segment
    // pages are: seven statistics and two timestamps in two thirds of version 1's
    // bytes, under 9 bytes a bucket on its own (a page of many chunks does better).
    let day = &fixtures()[4];
    let z = |b: &[u8]| zstd::bulk::compress(b, 3).unwrap().len();
    let (v2, v1) = (z(&encode(day)), z(&encode_with(encode_buckets_v1, day)));
    println!("a day of 5m buckets after zstd: v1 {v1} bytes, v2 {v2} bytes for {} buckets", day.len());
    assert!(v2 * 10 < v1 * 7, "v2 {v2} v1 {v1}");
    assert!(v2 < day.len() * 9, "{v2} bytes for {} buckets", day.len());
}

#[test]
fn encoder_rejects_bad_input() {
    for (_, enc) in ENCODERS {
        let mut out = Vec::new();
        assert!(enc(&[], &mut out).is_err());
        assert!(enc(&[Bucket::empty(0)], &mut out).is_err());
        let b = Bucket::from_samples(0, &[Sample::new(0, 1.0)]);
        assert!(enc(&[b, b], &mut out).is_err());
        let far = Bucket::from_samples(i64::MIN, &[Sample::new(0, 1.0)]);
        assert!(enc(&[far], &mut out).is_err());
        let mut many = Bucket::from_samples(0, &[Sample::new(0, 1.0)]);
        many.count = 1 << 53;
        assert!(enc(&[many], &mut out).is_err());
        assert!(out.is_empty());
    }
}

#[test]
fn truncation_is_an_error() {
    for (name, enc) in ENCODERS {
        for buckets in fixtures().iter().filter(|f| f.len() < 100) {
            let buf = encode_with(enc, buckets);
            for len in 0..buf.len() {
                assert!(decode(&buf[..len]).is_err(), "{name}: prefix of {len} bytes decoded");
            }
            let mut long = buf.clone();
            long.push(0);
            assert!(decode(&long).is_err());
        }
    }
}

#[test]
fn bit_flips_never_panic() {
    for (_, enc) in ENCODERS {
        for buckets in fixtures().iter().filter(|f| f.len() < 100) {
            let buf = encode_with(enc, buckets);
            let mut out = vec![Bucket::empty(1)];
            for bit in 0..buf.len() * 8 {
                let mut bad = buf.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                out.truncate(1);
                if decode_buckets(&bad, &mut out).is_ok() {
                    assert!(check_buckets(&out[1..], None).is_ok());
                    assert!(!out[1..].is_empty() && out.len() <= MAX_BUCKETS + 1);
                    // Whatever decodes can be stored again.
                    let mut again = Vec::new();
                    encode_buckets(&out[1..], &mut again).unwrap();
                } else {
                    assert_eq!(out, vec![Bucket::empty(1)]);
                }
            }
        }
    }
}

#[test]
fn an_unknown_version_is_refused() {
    let mut buf = encode(&fixtures()[0]);
    for v in [0u8, 3, 0xFF] {
        buf[0] = v;
        assert_eq!(decode(&buf), Err(DecodeError("unknown rollup chunk version")));
    }
}

/// Values that stress exactness: decimals at several scales, float sums of
/// decimals, and the edges (NaN payloads, signed zeros, infinities, extremes).
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-100_000i64..100_000, 0u32..4).prop_map(|(m, k)| m as f64 / 10f64.powi(k as i32)),
        prop::collection::vec(0i64..1000, 1..8).prop_map(|ms| ms.iter().fold(0.0, |s, &m| s + m as f64 / 10.0)),
        prop::sample::select(vec![
            f64::NAN,
            f64::from_bits(0x7ff8_0000_0000_0001),
            f64::from_bits(0xfff0_0000_dead_0000),
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -1e300,
            9007199254740993.0,
            0.1 + 0.2,
        ]),
        any::<u64>().prop_map(f64::from_bits),
    ]
}

/// Buckets that satisfy the invariants but come from no rollup: any values,
/// counts up to 2^53 - 1, offsets up to the gap to the next bucket.
fn buckets() -> impl Strategy<Value = Vec<Bucket>> {
    let one = (0u8..6, 1u64..40, any::<u64>(), any::<u64>(), prop::collection::vec(value(), 6));
    (any::<i64>(), 1i64..10_000_000, prop::collection::vec(one, 1..120)).prop_map(|(t0, width, raw)| {
        let mut out: Vec<Bucket> = Vec::new();
        let mut start = t0.clamp(i64::MIN, i64::MAX - 1 - (raw.len() as i64 + 1) * width * 3);
        for (shape, count, off, span, v) in raw {
            let gap = match shape {
                0 => width * 2,
                _ => width,
            };
            if let Some(prev) = out.last() {
                start = prev.start + gap.max(prev.last_ts - prev.start + 1);
            }
            let count = match shape {
                1 => 1,
                2 => (1u64 << 53) - 1,
                _ => count,
            };
            let room = width as u64;
            let first_off = off % room;
            let span = if count == 1 { 0 } else { 1 + span % (room - first_off).max(1) };
            let first_ts = start + first_off as i64;
            let mut b = Bucket::empty(start);
            b.count = count;
            b.first_ts = first_ts;
            b.last_ts = first_ts + span as i64;
            (b.sum, b.min, b.max, b.first, b.last, b.increase) = (v[0], v[1], v[2], v[3], v[4], v[5]);
            out.push(b);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trips_random(
        raw in prop::collection::vec((0i64..50_000, any::<u64>(), 0u8..4), 1..300),
        width in 1i64..100_000,
    ) {
        // Timestamps: a strictly increasing walk; values: decimals, counters or any bits.
        let mut ts = -1_000_000i64;
        let samples: Vec<Sample> = raw.iter().map(|&(gap, bits, kind)| {
            ts += gap + 1;
            let v = match kind {
                0 => (bits % 10_000) as f64 / 100.0,
                1 => (bits % 1000) as f64,
                2 => f64::from_bits(bits),
                _ => -((bits % 77) as f64),
            };
            Sample::new(ts, v)
        }).collect();
        let buckets = rollup(&samples, width).unwrap();
        prop_assert_eq!(&decode(&encode(&buckets)).unwrap(), &buckets);
        prop_assert_eq!(decode(&encode_with(encode_buckets_v1, &buckets)).unwrap(), buckets);
    }

    #[test]
    fn round_trips_any_valid_buckets(buckets in buckets()) {
        prop_assert_eq!(check_buckets(&buckets, None), Ok(()));
        let buf = encode(&buckets);
        prop_assert_eq!(&decode(&buf).unwrap(), &buckets);
        // Projections agree with the full decode on the columns they hold.
        let mut got = Vec::new();
        decode_columns(&buf, &mut got, COL_MAX | COL_SUM).unwrap();
        for (g, b) in got.iter().zip(&buckets) {
            prop_assert_eq!((g.start, g.count, g.max.to_bits(), g.sum.to_bits()), (b.start, b.count, b.max.to_bits(), b.sum.to_bits()));
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut out = Vec::new();
        let _ = decode_buckets(&bytes, &mut out);
        for version in [1u8, 2] {
            let mut framed = vec![version, 1];
            framed.extend_from_slice(&bytes);
            let _ = decode_buckets(&framed, &mut out);
        }
    }
}

/// `v2::mant` rounds as `f64::round` does, without its libm call.
#[test]
fn mantissa_rounding_matches_f64_round() {
    let reference = |v: f64, scale: f64| {
        let r = (v * scale).round();
        if !v.is_finite() || r.abs() >= 9007199254740992.0 {
            0
        } else {
            r as i64
        }
    };
    let mut vals = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        -2.5,
        0.49999999999999994,
        -0.49999999999999994,
        4503599627370495.5,
        -4503599627370495.5,
        9007199254740991.0,
        9007199254740991.5,
        9007199254740992.0,
        -9007199254740993.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        0.1 + 0.2,
    ];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        vals.push(f64::from_bits(x));
        vals.push((x % 2_000_001) as f64 / 100.0 - 10_000.0);
        vals.push((x >> 11) as f64 * if x & 1 == 0 { 1.0 } else { -1e-3 });
    }
    for v in vals {
        for scale in [1.0, 10.0, 1e3, 1e9] {
            assert_eq!(v2::mant(v, scale), reference(v, scale), "{v:e} × {scale}");
        }
    }
}
