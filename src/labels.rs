//! Series identity: a sorted set of label pairs, and the matchers that select them.

use regex::Regex;
use std::fmt;

use crate::codec::varint::{get_uvarint, put_uvarint};
use crate::error::{Error, Result};
use crate::pairs::Pairs;

/// The label that holds the metric name, as in Prometheus.
pub const METRIC_NAME: &str = "__name__";
/// Longest label name accepted, in bytes.
pub const MAX_LABEL_NAME_LEN: usize = 1024;
/// Longest label value accepted, in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 16 * 1024;
/// Most labels one series may carry unless `Options::max_labels` says otherwise.
pub const DEFAULT_MAX_LABELS: usize = 64;

/// A series' labels, sorted by name with no duplicate names and no empty values.
/// An empty value means "no such label" (as in Prometheus), so `from_pairs` drops it.
/// Packed into one shared allocation ([`Pairs`]); cloning shares it. Ordered pair by
/// pair (name, then value) and hashed as a slice of `(&str, &str)` pairs is.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Pairs);

impl Labels {
    /// Builds and validates labels. Names must match `[a-zA-Z_][a-zA-Z0-9_]*`;
    /// the metric name's value may also contain `:`. At least one label must remain.
    pub fn from_pairs<I, K, V>(pairs: I) -> Result<Labels>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> =
            pairs.into_iter().map(|(k, v)| (k.into(), v.into())).filter(|(_, v)| !v.is_empty()).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        for w in v.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(Error::DuplicateLabel { name: w[0].0.clone() });
            }
        }
        if v.is_empty() {
            return Err(Error::InvalidLabel {
                name: String::new(),
                reason: "a series needs at least one non-empty label",
            });
        }
        for (name, value) in &v {
            validate_name(name)?;
            if value.len() > MAX_LABEL_VALUE_LEN {
                return Err(Error::InvalidLabel { name: name.clone(), reason: "value longer than 16 KiB" });
            }
            if name == METRIC_NAME && !is_valid_metric_name(value) {
                return Err(Error::InvalidLabel {
                    name: name.clone(),
                    reason: "metric name must match [a-zA-Z_:][a-zA-Z0-9_:]*",
                });
            }
        }
        Ok(Labels(Pairs::new(v.iter().map(|(k, v)| (k.as_str(), v.as_str())))))
    }

    /// Labels with `__name__` set to `metric` plus `pairs`.
    pub fn metric<I, K, V>(metric: &str, pairs: I) -> Result<Labels>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let it = pairs.into_iter().map(|(k, v)| (k.into(), v.into()));
        Labels::from_pairs(std::iter::once((METRIC_NAME.to_string(), metric.to_string())).chain(it))
    }

    /// The packed text of the pairs: equal texts are equal label sets.
    pub(crate) fn text(&self) -> &str {
        self.0.text()
    }

    /// Appends a byte string that sorts as the label sets do (see `Pairs::sort_key`).
    pub(crate) fn sort_key(&self, out: &mut Vec<u8>) {
        self.0.sort_key(out)
    }

    /// The sorted pairs themselves, for a type with the same invariants to share.
    pub(crate) fn shared_pairs(&self) -> Pairs {
        self.0.clone()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Approximate heap bytes held, for memory accounting.
    pub fn heap_size(&self) -> usize {
        self.0.heap_size()
    }

    /// Appends the binary form: uvarint count, then uvarint-length-prefixed name and value bytes.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        put_uvarint(buf, self.0.len() as u64);
        for (k, v) in self.iter() {
            put_uvarint(buf, k.len() as u64);
            buf.extend_from_slice(k.as_bytes());
            put_uvarint(buf, v.len() as u64);
            buf.extend_from_slice(v.as_bytes());
        }
    }

    /// Decodes the binary form, re-validating everything: the bytes come from disk.
    /// Returns a description of the problem on failure.
    pub fn decode(buf: &[u8], pos: &mut usize) -> std::result::Result<Labels, String> {
        let mut pairs = Vec::new();
        Labels::decode_borrowed(buf, pos, &mut pairs)?;
        Ok(Labels::from_checked(&pairs))
    }

    /// Decodes the binary form into `out` without allocating the strings, checking
    /// everything [`Labels::from_pairs`] checks; names must already be in order, as
    /// `encode` writes them. `out` then holds a valid label set.
    pub(crate) fn decode_borrowed<'a>(
        buf: &'a [u8],
        pos: &mut usize,
        out: &mut Vec<(&'a str, &'a str)>,
    ) -> std::result::Result<(), String> {
        out.clear();
        let n = get_uvarint(buf, pos).ok_or("truncated label count")? as usize;
        if n == 0 || n > 4096 {
            return Err(format!("implausible label count {n}"));
        }
        for _ in 0..n {
            let k = read_str(buf, pos)?;
            let v = read_str(buf, pos)?;
            out.push((k, v));
        }
        check_sorted_pairs(out)
    }

    /// Moves `*pos` past an encoded label set without reading it: bounds only, no
    /// UTF-8 or name checks. For tables whose labels an index checkpoint already holds.
    pub(crate) fn skip_encoded(buf: &[u8], pos: &mut usize) -> std::result::Result<(), String> {
        let n = get_uvarint(buf, pos).ok_or("truncated label count")? as usize;
        if n == 0 || n > 4096 {
            return Err(format!("implausible label count {n}"));
        }
        for _ in 0..2 * n {
            let len = get_uvarint(buf, pos).ok_or("truncated label length")? as usize;
            *pos = pos.checked_add(len).filter(|&e| e <= buf.len()).ok_or("label bytes run past the record")?;
        }
        Ok(())
    }

    /// Labels from the text `pairs::pack` wrote for pairs [`check_sorted_pairs`] accepted.
    pub(crate) fn from_packed(text: &str) -> Labels {
        Labels(Pairs::from_packed(text))
    }

    /// Packs pairs that [`check_sorted_pairs`] accepted.
    pub(crate) fn from_checked(pairs: &[(&str, &str)]) -> Labels {
        Labels(Pairs::new(pairs.iter().copied()))
    }
}

/// Whether `pairs` form a valid label set as they stand: sorted by name with no
/// duplicate, no empty value, valid names and a valid metric name.
pub(crate) fn check_sorted_pairs(pairs: &[(&str, &str)]) -> std::result::Result<(), String> {
    if pairs.is_empty() {
        return Err("a series needs at least one non-empty label".into());
    }
    for w in pairs.windows(2) {
        match w[0].0.cmp(w[1].0) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => return Err(format!("duplicate label name {:?}", w[0].0)),
            std::cmp::Ordering::Greater => return Err(format!("label {:?} is out of order", w[1].0)),
        }
    }
    for &(name, value) in pairs {
        validate_name(name).map_err(|e| e.to_string())?;
        if value.is_empty() {
            return Err("label set has empty values".into());
        }
        if value.len() > MAX_LABEL_VALUE_LEN {
            return Err(format!("label {name}: value longer than 16 KiB"));
        }
        if name == METRIC_NAME && !is_valid_metric_name(value) {
            return Err(format!("label {name}: metric name must match [a-zA-Z_:][a-zA-Z0-9_:]*"));
        }
    }
    Ok(())
}

fn read_str<'a>(buf: &'a [u8], pos: &mut usize) -> std::result::Result<&'a str, String> {
    let len = get_uvarint(buf, pos).ok_or("truncated label length")? as usize;
    let end = pos.checked_add(len).filter(|&e| e <= buf.len()).ok_or("label bytes run past the record")?;
    let s = std::str::from_utf8(&buf[*pos..end]).map_err(|_| "label is not UTF-8")?;
    *pos = end;
    Ok(s)
}

pub(crate) fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| Err(Error::InvalidLabel { name: name.to_string(), reason });
    if name.is_empty() {
        return bad("empty label name");
    }
    if name.len() > MAX_LABEL_NAME_LEN {
        return bad("label name longer than 1024 bytes");
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('0');
    if !(first.is_ascii_alphabetic() || first == '_') || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return bad("label name must match [a-zA-Z_][a-zA-Z0-9_]*");
    }
    Ok(())
}

pub(crate) fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl fmt::Display for Labels {
    /// The canonical selector notation, which `text::selector::parse_series` reads
    /// back: `name{a="1",b="2"}`, or `name` alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::text::selector::write_series(f, self)
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Eq,
    Ne,
    Regex,
    NotRegex,
}

/// Selects series by one label. A series without the label is treated as
/// having the empty value, as in Prometheus: `host=""` selects series with no host.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher { name: name.into(), op: MatchOp::Eq, value: value.into(), re: None }
    }

    pub fn ne(name: impl Into<String>, value: impl Into<String>) -> Matcher {
        Matcher { name: name.into(), op: MatchOp::Ne, value: value.into(), re: None }
    }

    /// A fully anchored regular expression match (`^(?:pattern)$`).
    pub fn regex(name: impl Into<String>, pattern: impl Into<String>) -> Result<Matcher> {
        Self::with_regex(name.into(), pattern.into(), MatchOp::Regex)
    }

    pub fn not_regex(name: impl Into<String>, pattern: impl Into<String>) -> Result<Matcher> {
        Self::with_regex(name.into(), pattern.into(), MatchOp::NotRegex)
    }

    fn with_regex(name: String, pattern: String, op: MatchOp) -> Result<Matcher> {
        let re = Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| Error::InvalidMatcher { pattern: pattern.clone(), reason: e.to_string() })?;
        Ok(Matcher { name, op, value: pattern, re: Some(re) })
    }

    /// Whether a label value (`""` when the label is absent) passes.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Ne => value != self.value,
            MatchOp::Regex => self.re.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::NotRegex => !self.re.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher accepts series that lack the label entirely.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl fmt::Display for Matcher {
    /// `label op "value"`, quoted as selectors are (see `text::selector`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::text::selector::write_matcher(f, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_validates_and_round_trips() {
        let l = Labels::from_pairs([("host", "h1"), ("__name__", "cpu"), ("empty", "")]).unwrap();
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("__name__", "cpu"), ("host", "h1")]);
        assert_eq!(l.to_string(), "cpu{host=\"h1\"}");
        let mut buf = Vec::new();
        l.encode(&mut buf);
        assert_eq!(Labels::decode(&buf, &mut 0).unwrap(), l);
        for cut in 0..buf.len() {
            assert!(Labels::decode(&buf[..cut], &mut 0).is_err());
        }
    }

    #[test]
    fn rejects_bad_labels() {
        assert!(matches!(Labels::from_pairs([("a", "1"), ("a", "2")]), Err(Error::DuplicateLabel { .. })));
        assert!(matches!(Labels::from_pairs([("1a", "x")]), Err(Error::InvalidLabel { .. })));
        assert!(matches!(Labels::from_pairs([("", "x")]), Err(Error::InvalidLabel { .. })));
        assert!(matches!(Labels::from_pairs([("a-b", "x")]), Err(Error::InvalidLabel { .. })));
        assert!(matches!(Labels::from_pairs([("__name__", "bad name")]), Err(Error::InvalidLabel { .. })));
        assert!(Labels::from_pairs(Vec::<(String, String)>::new()).is_err());
    }

    #[test]
    fn matchers_follow_prometheus_semantics() {
        let l = Labels::from_pairs([("__name__", "cpu"), ("host", "h12")]).unwrap();
        assert!(!Matcher::regex("host", "h1").unwrap().matches_labels(&l));
        assert!(Matcher::regex("host", "h1.*").unwrap().matches_labels(&l));
        assert!(Matcher::not_regex("host", "h1").unwrap().matches_labels(&l));
        assert!(Matcher::eq("region", "").matches_labels(&l));
        assert!(Matcher::ne("host", "h1").matches_labels(&l));
        assert!(Matcher::regex("host", "(").is_err());
    }
}
