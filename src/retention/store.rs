//! The `SETTINGS` file: the retention policy a data directory records, so that every
//! process that opens it applies the same policy. Replaced atomically like the
//! MANIFEST (tmp, fsync, rename, fsync dir). Layout: docs/format/settings.md.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use super::{RetentionPolicy, RetentionRule, TierDurations};
use crate::codec::framed::{frame, put_str, unframe, Cursor, DecodeResult, HEADER_LEN};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::labels::{MatchOp, Matcher};

pub const SETTINGS_FILE: &str = "SETTINGS";
const MAGIC: &[u8; 8] = b"STRATSET";
/// The newest version written. Version 2 adds the archive directory; a policy without
/// one is still written as version 1, byte for byte what older builds wrote and read.
pub(crate) const VERSION: u16 = 2;
/// A duration field holding this means forever.
const FOREVER: u64 = u64::MAX;
/// Flag bit 0 of the policy flags: a disk cap is set.
const FLAG_DISK_CAP: u32 = 1;

/// Reads the recorded policy; `None` when the directory has no SETTINGS file yet.
pub(crate) fn load_settings(dir: &Path) -> Result<Option<RetentionPolicy>> {
    let path = dir.join(SETTINGS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    decode(&bytes).map(Some).map_err(|(offset, why)| Error::corruption(&path, offset as u64, why))
}

/// Records `policy` durably: when this returns, a crash leaves it or nothing newer.
pub(crate) fn store_settings(dir: &Path, policy: &RetentionPolicy) -> Result<()> {
    fsutil::write_atomic(&dir.join(SETTINGS_FILE), &encode(policy))
}

fn ms(d: Duration) -> u64 {
    let ms = d.as_millis();
    if ms >= i64::MAX as u128 {
        FOREVER
    } else {
        ms as u64
    }
}

fn duration(ms: u64) -> Duration {
    if ms >= i64::MAX as u64 {
        TierDurations::FOREVER
    } else {
        Duration::from_millis(ms)
    }
}

fn put_durations(out: &mut Vec<u8>, d: &TierDurations) {
    for v in [d.raw, d.five_min, d.hour] {
        out.extend_from_slice(&ms(v).to_le_bytes());
    }
}

pub(crate) fn encode(p: &RetentionPolicy) -> Vec<u8> {
    let mut payload = Vec::with_capacity(64);
    put_durations(&mut payload, p.default_durations());
    let flags = if p.max_disk_bytes().is_some() { FLAG_DISK_CAP } else { 0 };
    payload.extend_from_slice(&flags.to_le_bytes());
    payload.extend_from_slice(&p.max_disk_bytes().unwrap_or(0).to_le_bytes());
    payload.extend_from_slice(&(p.rules().len() as u32).to_le_bytes());
    for r in p.rules() {
        put_str(&mut payload, r.name());
        put_str(&mut payload, r.metric_glob());
        payload.extend_from_slice(&r.priority().to_le_bytes());
        put_durations(&mut payload, r.durations());
        payload.extend_from_slice(&(r.matchers().len() as u32).to_le_bytes());
        for m in r.matchers() {
            payload.push(match m.op {
                MatchOp::Eq => 0,
                MatchOp::Ne => 1,
                MatchOp::Regex => 2,
                MatchOp::NotRegex => 3,
            });
            put_str(&mut payload, &m.name);
            put_str(&mut payload, &m.value);
        }
    }
    match p.archive_dir() {
        Some(d) => {
            put_str(&mut payload, &d.to_string_lossy());
            frame(MAGIC, VERSION, &payload)
        }
        None => frame(MAGIC, 1, &payload),
    }
}

/// Three tier durations as stored (ms, `u64::MAX` for forever), validated.
fn durations(c: &mut Cursor<'_>, what: &str) -> DecodeResult<TierDurations> {
    let at = c.at;
    let d = TierDurations::new(duration(c.u64(what)?), duration(c.u64(what)?), duration(c.u64(what)?));
    d.validate().map_err(|e| (at, format!("{what}: {e}")))?;
    Ok(d)
}

pub(crate) fn decode(b: &[u8]) -> DecodeResult<RetentionPolicy> {
    // Versions 1 and 2 are read; anything else is refused naming the newest.
    let version = match crate::codec::bytes::le_u16(b, 8) {
        Some(1) => 1,
        _ => VERSION,
    };
    let (mut c, _reserved) = unframe(b, MAGIC, version, "SETTINGS")?;
    let defaults = durations(&mut c, "default durations")?;
    let flags = c.u32("flags")?;
    let cap = c.u64("disk cap")?;
    let mut policy = RetentionPolicy::new(defaults)
        .map_err(|e| (HEADER_LEN, e.to_string()))?
        .with_max_disk_bytes((flags & FLAG_DISK_CAP != 0).then_some(cap));
    let rules = c.u32("rule count")?;
    for _ in 0..rules {
        let at = c.at;
        let name = c.string("rule name")?;
        let glob = c.string("rule glob")?;
        let priority = c.u32("rule priority")? as i32;
        let tiers = durations(&mut c, "rule durations")?;
        let n = c.u32("matcher count")?;
        let mut matchers = Vec::new();
        for _ in 0..n {
            let at = c.at;
            let op = c.u8("matcher op")?;
            let (mname, value) = (c.string("matcher name")?, c.string("matcher value")?);
            let m = match op {
                0 => Ok(Matcher::eq(mname, value)),
                1 => Ok(Matcher::ne(mname, value)),
                2 => Matcher::regex(mname, value),
                3 => Matcher::not_regex(mname, value),
                other => return Err((at, format!("unknown matcher op {other}"))),
            };
            matchers.push(m.map_err(|e| (at, e.to_string()))?);
        }
        let rule = RetentionRule::new(name, glob, matchers, priority, tiers).map_err(|e| (at, e.to_string()))?;
        policy.add_rule(rule).map_err(|e| (at, e.to_string()))?;
    }
    if version >= 2 {
        let at = c.at;
        let dir = c.string("archive dir")?;
        if dir.is_empty() {
            return Err((at, "empty archive dir".into()));
        }
        policy = policy.with_archive_dir_unchecked(Some(dir.into()));
    }
    if !c.at_end() {
        let after = if version >= 2 { "archive dir" } else { "last rule" };
        return Err((c.at, format!("{} bytes after the {after}", b.len() - 4 - c.at)));
    }
    Ok(policy)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample_policy() -> RetentionPolicy {
        let day = Duration::from_secs(86_400);
        RetentionPolicy::tiered()
            .with_max_disk_bytes(Some(10 << 30))
            .with_rule(
                RetentionRule::new(
                    "debug",
                    "debug_*",
                    vec![Matcher::eq("env", "dev"), Matcher::regex("host", "h[0-9]+").unwrap()],
                    5,
                    TierDurations::new(day, 2 * day, TierDurations::FOREVER),
                )
                .unwrap(),
            )
            .unwrap()
            .with_rule(RetentionRule::new("ünï", "*", vec![], -3, TierDurations::forever()).unwrap())
            .unwrap()
    }

    fn archived_policy() -> RetentionPolicy {
        sample_policy().with_archive_dir_unchecked(Some("archive/ünï".into()))
    }

    #[test]
    fn round_trips() {
        for p in [RetentionPolicy::forever(), RetentionPolicy::tiered(), sample_policy(), archived_policy()] {
            assert_eq!(decode(&encode(&p)).unwrap(), p);
        }
    }

    #[test]
    fn version_1_unless_an_archive_dir_is_set() {
        let v1 = encode(&sample_policy());
        assert_eq!(&v1[8..10], &1u16.to_le_bytes(), "no archive dir: the version 1 layout, unchanged");
        let v2 = encode(&archived_policy());
        assert_eq!(&v2[8..10], &2u16.to_le_bytes());
        assert_eq!(decode(&v2).unwrap().archive_dir(), Some(std::path::Path::new("archive/ünï")));
        // A version 1 file never holds an archive dir: its payload with one appended is refused.
        let mut forged = v2.clone();
        forged[8..10].copy_from_slice(&1u16.to_le_bytes());
        let n = forged.len();
        let crc = crc32fast::hash(&forged[..n - 4]);
        forged[n - 4..].copy_from_slice(&crc.to_le_bytes());
        assert!(decode(&forged).unwrap_err().1.contains("after the last rule"));
        let mut v3 = v2.clone();
        v3[8..10].copy_from_slice(&3u16.to_le_bytes());
        assert!(decode(&v3).unwrap_err().1.contains("version 3"));
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        for b in [encode(&sample_policy()), encode(&archived_policy())] {
            flips_and_cuts_refused(&b);
        }
    }

    fn flips_and_cuts_refused(b: &[u8]) {
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.to_vec();
                c[i] ^= 1 << bit;
                assert!(decode(&c).is_err(), "flip at byte {i} bit {bit} accepted");
            }
        }
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_err(), "cut at {n} accepted");
        }
    }

    #[test]
    fn stored_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_settings(dir.path()).unwrap().is_none());
        store_settings(dir.path(), &sample_policy()).unwrap();
        assert_eq!(load_settings(dir.path()).unwrap(), Some(sample_policy()));
        std::fs::write(dir.path().join(SETTINGS_FILE), b"garbage").unwrap();
        let e = load_settings(dir.path()).unwrap_err().to_string();
        assert!(e.contains("SETTINGS"), "{e}");
    }
}
