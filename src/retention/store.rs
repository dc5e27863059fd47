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
pub(crate) const VERSION: u16 = 1;
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
    frame(MAGIC, VERSION, &payload)
}

/// Three tier durations as stored (ms, `u64::MAX` for forever), validated.
fn durations(c: &mut Cursor<'_>, what: &str) -> DecodeResult<TierDurations> {
    let at = c.at;
    let d = TierDurations::new(duration(c.u64(what)?), duration(c.u64(what)?), duration(c.u64(what)?));
    d.validate().map_err(|e| (at, format!("{what}: {e}")))?;
    Ok(d)
}

pub(crate) fn decode(b: &[u8]) -> DecodeResult<RetentionPolicy> {
    let (mut c, _reserved) = unframe(b, MAGIC, VERSION, "SETTINGS")?;
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
    if !c.at_end() {
        return Err((c.at, format!("{} bytes after the last rule", b.len() - 4 - c.at)));
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

    #[test]
    fn round_trips() {
        for p in [RetentionPolicy::forever(), RetentionPolicy::tiered(), sample_policy()] {
            assert_eq!(decode(&encode(&p)).unwrap(), p);
        }
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_refused() {
        let b = encode(&sample_policy());
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
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
