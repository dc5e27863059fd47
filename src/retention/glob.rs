//! Shell-style globs on metric names, for retention rules.

use super::MAX_GLOB_LEN;

/// One item of a compiled glob; each matches exactly one byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    Byte(u8),
    Any,
    Class { negated: bool, ranges: Vec<(u8, u8)> },
}

impl Tok {
    pub(super) fn matches(&self, b: u8) -> bool {
        match self {
            Tok::Byte(c) => *c == b,
            Tok::Any => true,
            Tok::Class { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= b && b <= hi) != *negated,
        }
    }
}

/// A compiled shell-style glob: `*` (any run), `?` (one character), `[abc]`, `[a-z]`,
/// `[!a]` or `[^a]` (a class; a `]` right after the opening is literal), and `\x` for a
/// literal `x`. Matching works on bytes; metric names are ASCII.
///
/// Stored as the star-free parts between the stars. Matching anchors the first part at the
/// start and the last at the end, and finds each middle part at its leftmost position after
/// the previous one. Leftmost is always safe (a star can absorb whatever is skipped), so
/// nothing is ever retried: O(text × pattern) at worst, never exponential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Glob {
    /// One more than the number of stars; consecutive stars count as one.
    pub(super) parts: Vec<Vec<Tok>>,
}

impl Glob {
    pub(super) fn parse(pattern: &str) -> std::result::Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty glob".into());
        }
        if pattern.len() > MAX_GLOB_LEN {
            return Err(format!("longer than {MAX_GLOB_LEN} bytes"));
        }
        let b = pattern.as_bytes();
        let mut parts: Vec<Vec<Tok>> = vec![Vec::new()];
        let mut i = 0;
        while i < b.len() {
            let after_star = parts.len() > 1;
            let cur = parts.last_mut().expect("never empty");
            match b[i] {
                b'*' if cur.is_empty() && after_star => {}
                b'*' => parts.push(Vec::new()),
                b'?' => cur.push(Tok::Any),
                b'[' => {
                    let (tok, next) = parse_class(pattern, i)?;
                    cur.push(tok);
                    i = next;
                    continue;
                }
                b']' => return Err(format!("unmatched ']' at byte {i}")),
                b'\\' => match b.get(i + 1) {
                    Some(&c) if is_metric_byte(c) => {
                        cur.push(Tok::Byte(c));
                        i += 1;
                    }
                    Some(_) => return Err(bad_char(pattern, i + 1)),
                    None => return Err("trailing '\\'".into()),
                },
                c if is_metric_byte(c) => cur.push(Tok::Byte(c)),
                _ => return Err(bad_char(pattern, i)),
            }
            i += 1;
        }
        Ok(Glob { parts })
    }

    pub(super) fn matches(&self, text: &[u8]) -> bool {
        let n = self.parts.len();
        if n == 1 {
            return fits(&self.parts[0], text);
        }
        let (first, last) = (&self.parts[0], &self.parts[n - 1]);
        if text.len() < first.len() + last.len() {
            return false;
        }
        let end = text.len() - last.len();
        if !fits(first, &text[..first.len()]) || !fits(last, &text[end..]) {
            return false;
        }
        let mut pos = first.len();
        for part in &self.parts[1..n - 1] {
            match find(part, &text[pos..end]) {
                Some(at) => pos += at + part.len(),
                None => return false,
            }
        }
        true
    }
}

/// Parses the class opening at byte `start`; returns it and the index after its `]`.
fn parse_class(pattern: &str, start: usize) -> std::result::Result<(Tok, usize), String> {
    let b = pattern.as_bytes();
    let mut i = start + 1;
    let negated = matches!(b.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        let Some(&lo) = b.get(i) else { return Err(format!("unclosed '[' at byte {start}")) };
        if lo == b']' && !ranges.is_empty() {
            return Ok((Tok::Class { negated, ranges }, i + 1));
        }
        if !lo.is_ascii() {
            return Err(bad_char(pattern, i));
        }
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(b'-'), Some(&hi)) if hi != b']' => {
                if !hi.is_ascii() {
                    return Err(bad_char(pattern, i + 2));
                }
                if hi < lo {
                    return Err(format!("reversed range '{}-{}' at byte {i}", lo as char, hi as char));
                }
                ranges.push((lo, hi));
                i += 3;
            }
            _ => {
                ranges.push((lo, lo));
                i += 1;
            }
        }
    }
}

fn is_metric_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn bad_char(pattern: &str, i: usize) -> String {
    let c = pattern.get(i..).and_then(|s| s.chars().next()).unwrap_or('\u{fffd}');
    format!("{c:?} at byte {i} can never occur in a metric name")
}

/// Whether the star-free `toks` match exactly `text`.
fn fits(toks: &[Tok], text: &[u8]) -> bool {
    toks.len() == text.len() && toks.iter().zip(text).all(|(t, &b)| t.matches(b))
}

/// Leftmost position in `hay` where the star-free `toks` match.
fn find(toks: &[Tok], hay: &[u8]) -> Option<usize> {
    let n = toks.len();
    (n <= hay.len()).then(|| (0..=hay.len() - n).find(|&at| fits(toks, &hay[at..at + n]))).flatten()
}
