//! Metric metadata: the type, unit and help text recorded per metric name, and the
//! `METADATA` file that holds them once their WAL records are gone
//! (`docs/format/metadata.md`). The Db side (logging, recovery) is `db/metadata.rs`.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::codec::framed::{frame, put_str, unframe, DecodeResult};
use crate::error::{Error, Result};
use crate::fsutil;
use crate::labels::MAX_LABEL_VALUE_LEN;

pub const METADATA_FILE: &str = "METADATA";
const MAGIC: &[u8; 8] = b"STRATMET";
pub(crate) const VERSION: u16 = 1;
/// magic(8) + version(2) + reserved(2) + payload length(4).
/// Longest unit accepted, in bytes.
pub const MAX_UNIT_LEN: usize = 256;
/// Longest help text accepted, in bytes.
pub const MAX_HELP_LEN: usize = 64 * 1024;

/// What a metric measures, in the OpenMetrics vocabulary. The numeric codes are
/// the ones stored (and Prometheus remote write's `MetricType` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum MetricKind {
    #[default]
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    GaugeHistogram = 4,
    Summary = 5,
    Info = 6,
    StateSet = 7,
}

impl MetricKind {
    pub const ALL: [MetricKind; 8] = [
        MetricKind::Unknown,
        MetricKind::Counter,
        MetricKind::Gauge,
        MetricKind::Histogram,
        MetricKind::GaugeHistogram,
        MetricKind::Summary,
        MetricKind::Info,
        MetricKind::StateSet,
    ];

    /// The lowercase name used by `# TYPE` lines and `/api/v1/metadata`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Unknown => "unknown",
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::GaugeHistogram => "gaugehistogram",
            MetricKind::Summary => "summary",
            MetricKind::Info => "info",
            MetricKind::StateSet => "stateset",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<MetricKind> {
        MetricKind::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricKind {
    type Err = Error;
    /// Case-insensitive; Prometheus text's `untyped` is `unknown`.
    fn from_str(s: &str) -> Result<MetricKind> {
        let lower = s.to_ascii_lowercase();
        if lower == "untyped" {
            return Ok(MetricKind::Unknown);
        }
        MetricKind::ALL.into_iter().find(|k| k.as_str() == lower).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown metric type {s:?}: expected one of counter, gauge, histogram, gaugehistogram, summary, \
                 info, stateset, unknown"
            ))
        })
    }
}

/// The metadata of one metric name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricMetadata {
    pub kind: MetricKind,
    /// For example `seconds` or `bytes`; empty when not given.
    pub unit: String,
    /// One line of description; empty when not given.
    pub help: String,
}

impl MetricMetadata {
    pub fn new(kind: MetricKind, unit: impl Into<String>, help: impl Into<String>) -> MetricMetadata {
        MetricMetadata { kind, unit: unit.into(), help: help.into() }
    }
}

/// A change to some of a metric's metadata fields: the fields that are `Some`
/// replace the stored ones, the others stay as they are (or as the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataUpdate {
    pub kind: Option<MetricKind>,
    pub unit: Option<String>,
    pub help: Option<String>,
}

impl MetadataUpdate {
    pub fn is_empty(&self) -> bool {
        self.kind.is_none() && self.unit.is_none() && self.help.is_none()
    }

    /// The metadata after this change is applied to `old`.
    pub fn apply(&self, old: Option<&MetricMetadata>) -> MetricMetadata {
        let mut m = old.cloned().unwrap_or_default();
        if let Some(k) = self.kind {
            m.kind = k;
        }
        if let Some(u) = &self.unit {
            m.unit.clone_from(u);
        }
        if let Some(h) = &self.help {
            m.help.clone_from(h);
        }
        m
    }
}

impl From<MetricMetadata> for MetadataUpdate {
    fn from(m: MetricMetadata) -> MetadataUpdate {
        MetadataUpdate { kind: Some(m.kind), unit: Some(m.unit), help: Some(m.help) }
    }
}

/// Checks a metric name and its metadata as every input path must.
pub fn validate(name: &str, m: &MetricMetadata) -> Result<()> {
    validate_name(name)?;
    if m.unit.len() > MAX_UNIT_LEN {
        return Err(Error::InvalidArgument(format!(
            "unit of {name:?} is {} bytes, the limit is {MAX_UNIT_LEN}",
            m.unit.len()
        )));
    }
    if let Some(c) = m.unit.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::InvalidArgument(format!("unit {:?} of {name:?} holds the character {c:?}", m.unit)));
    }
    if m.help.len() > MAX_HELP_LEN {
        return Err(Error::InvalidArgument(format!(
            "help of {name:?} is {} bytes, the limit is {MAX_HELP_LEN}",
            m.help.len()
        )));
    }
    Ok(())
}

/// A metric name is a `__name__` value: non-empty, at most 16 KiB.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidArgument("metadata for an empty metric name".into()));
    }
    if name.len() > MAX_LABEL_VALUE_LEN {
        return Err(Error::InvalidArgument(format!(
            "metric name of {} bytes, the limit is {MAX_LABEL_VALUE_LEN}",
            name.len()
        )));
    }
    Ok(())
}

/// Reads the `METADATA` file; an empty map when there is none yet.
pub(crate) fn load(dir: &Path) -> Result<BTreeMap<String, MetricMetadata>> {
    let path = dir.join(METADATA_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    decode(&bytes).map_err(|(offset, why)| Error::corruption(&path, offset as u64, why))
}

/// Replaces the `METADATA` file atomically (tmp, fsync, rename, fsync dir).
pub(crate) fn store(dir: &Path, all: &BTreeMap<String, MetricMetadata>) -> Result<()> {
    fsutil::write_atomic(&dir.join(METADATA_FILE), &encode(all))
}

pub(crate) fn encode(all: &BTreeMap<String, MetricMetadata>) -> Vec<u8> {
    let mut payload = Vec::with_capacity(4 + all.len() * 32);
    payload.extend_from_slice(&(all.len() as u32).to_le_bytes());
    for (name, m) in all {
        put_str(&mut payload, name);
        payload.push(m.kind.code());
        put_str(&mut payload, &m.unit);
        put_str(&mut payload, &m.help);
    }
    frame(MAGIC, VERSION, &payload)
}

pub(crate) fn decode(b: &[u8]) -> DecodeResult<BTreeMap<String, MetricMetadata>> {
    let (mut c, reserved) = unframe(b, MAGIC, VERSION, "METADATA")?;
    if reserved != 0 {
        return Err((10, "reserved bytes are not zero".into()));
    }
    let count = c.u32("entry count")?;
    let mut out = BTreeMap::new();
    let mut last: Option<String> = None;
    for _ in 0..count {
        let at = c.at;
        let name = c.string("metric name")?;
        let code = c.u8("type")?;
        let kind = MetricKind::from_code(code).ok_or_else(|| (c.at - 1, format!("unknown metric type code {code}")))?;
        let m = MetricMetadata { kind, unit: c.string("unit")?, help: c.string("help")? };
        if last.as_ref().is_some_and(|l| *l >= name) {
            return Err((at, format!("metric {name:?} is out of order or repeated")));
        }
        validate(&name, &m).map_err(|e| (at, e.to_string()))?;
        last = Some(name.clone());
        out.insert(name, m);
    }
    if !c.at_end() {
        return Err((c.at, "bytes after the last entry".into()));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<String, MetricMetadata> {
        let mut m = BTreeMap::new();
        m.insert("http_requests_total".into(), MetricMetadata::new(MetricKind::Counter, "", "Requests served."));
        m.insert("node_temp_celsius".into(), MetricMetadata::new(MetricKind::Gauge, "celsius", "Temperatür\nline 2"));
        m.insert("x".into(), MetricMetadata::default());
        m
    }

    #[test]
    fn round_trips_and_detects_every_flip_and_cut() {
        let all = sample();
        let bytes = encode(&all);
        assert_eq!(decode(&bytes).unwrap(), all);
        assert_eq!(decode(&encode(&BTreeMap::new())).unwrap(), BTreeMap::new());
        for i in 0..bytes.len() {
            assert!(decode(&bytes[..i]).is_err(), "cut at {i} accepted");
            for bit in 0..8 {
                let mut d = bytes.clone();
                d[i] ^= 1 << bit;
                assert!(decode(&d).is_err(), "flip at {i}:{bit} accepted");
            }
        }
    }

    #[test]
    fn kinds_parse_and_print() {
        for k in MetricKind::ALL {
            assert_eq!(k.as_str().parse::<MetricKind>().unwrap(), k);
            assert_eq!(MetricKind::from_code(k.code()), Some(k));
        }
        assert_eq!("UNTYPED".parse::<MetricKind>().unwrap(), MetricKind::Unknown);
        assert_eq!("Counter".parse::<MetricKind>().unwrap(), MetricKind::Counter);
        let e = "histo".parse::<MetricKind>().unwrap_err().to_string();
        assert!(e.contains("\"histo\""), "{e}");
        assert_eq!(MetricKind::from_code(8), None);
    }

    #[test]
    fn validation_names_what_is_wrong() {
        assert!(validate("a", &MetricMetadata::new(MetricKind::Gauge, "seconds", "ok")).is_ok());
        let e = validate("a", &MetricMetadata::new(MetricKind::Gauge, "two words", "")).unwrap_err();
        assert!(e.is_input_error() && e.to_string().contains("two words"), "{e}");
        let e = validate("a", &MetricMetadata::new(MetricKind::Gauge, "", "h".repeat(MAX_HELP_LEN + 1))).unwrap_err();
        assert!(e.to_string().contains("help"), "{e}");
        assert!(validate("", &MetricMetadata::default()).is_err());
    }

    #[test]
    fn updates_replace_only_the_fields_given() {
        let old = MetricMetadata::new(MetricKind::Counter, "bytes", "old help");
        let u = MetadataUpdate { unit: Some("seconds".into()), ..Default::default() };
        assert_eq!(u.apply(Some(&old)), MetricMetadata::new(MetricKind::Counter, "seconds", "old help"));
        assert_eq!(u.apply(None), MetricMetadata::new(MetricKind::Unknown, "seconds", ""));
        assert_eq!(MetadataUpdate::from(old.clone()).apply(None), old);
    }
}
