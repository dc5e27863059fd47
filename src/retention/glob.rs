//! Shell-style globs on metric names, for retention rules.
//!
//! Syntax: `*` (any run of bytes, also none), `?` (exactly one byte), `[abc]`, `[a-z]`,
//! `[!a]` or `[^a]` (a class of ASCII bytes: a `]` right after the opening or after the
//! `!`/`^` is literal, as is a `-` first or last, and `\` has no special meaning inside),
//! and `\x` for a literal `x`. Outside a class every other byte must be one that can occur
//! in a metric name (`[A-Za-z0-9_:]`). Matching works on bytes and is whole-name.
//!
//! A glob is checked here, with errors naming the byte offset, and translated into an
//! anchored byte regex (`regex::bytes`, Unicode off), so that each item of the glob stands
//! for exactly one byte of the name and matching is linear in the name's length: the regex
//! crate never backtracks, whatever the pattern.

use std::fmt::Write as _;

use regex::bytes::{Regex, RegexBuilder};

use super::MAX_GLOB_LEN;

/// A compiled glob.
#[derive(Debug, Clone)]
pub(super) struct Glob {
    re: Regex,
}

impl Glob {
    pub(super) fn parse(pattern: &str) -> std::result::Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty glob".into());
        }
        if pattern.len() > MAX_GLOB_LEN {
            return Err(format!("longer than {MAX_GLOB_LEN} bytes"));
        }
        // `s`: `.` matches every byte, `\n` included; `-u`: one `.` is one byte.
        let mut re = String::from(r"(?s-u)\A(?:");
        let b = pattern.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'*' => re.push_str(".*"),
                b'?' => re.push('.'),
                b'[' => {
                    i = push_class(pattern, i, &mut re)?;
                    continue;
                }
                b']' => return Err(format!("unmatched ']' at byte {i}")),
                b'\\' => match b.get(i + 1) {
                    Some(&c) if is_metric_byte(c) => {
                        push_byte(&mut re, c);
                        i += 1;
                    }
                    Some(_) => return Err(bad_char(pattern, i + 1)),
                    None => return Err("trailing '\\'".into()),
                },
                c if is_metric_byte(c) => push_byte(&mut re, c),
                _ => return Err(bad_char(pattern, i)),
            }
            i += 1;
        }
        re.push_str(r")\z");
        // The translation is always valid regex syntax; only the size limit can refuse it.
        let re = RegexBuilder::new(&re).build().map_err(|e| format!("too complex to match: {e}"))?;
        Ok(Glob { re })
    }

    pub(super) fn matches(&self, text: &[u8]) -> bool {
        self.re.is_match(text)
    }
}

/// Translates the class opening at byte `start`; returns the index after its `]`.
fn push_class(pattern: &str, start: usize, re: &mut String) -> std::result::Result<usize, String> {
    let b = pattern.as_bytes();
    let mut i = start + 1;
    let negated = matches!(b.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    re.push_str(if negated { "[^" } else { "[" });
    let mut empty = true;
    loop {
        let Some(&lo) = b.get(i) else { return Err(format!("unclosed '[' at byte {start}")) };
        if lo == b']' && !empty {
            re.push(']');
            return Ok(i + 1);
        }
        if !lo.is_ascii() {
            return Err(bad_char(pattern, i));
        }
        empty = false;
        push_byte(re, lo);
        match (b.get(i + 1), b.get(i + 2)) {
            (Some(b'-'), Some(&hi)) if hi != b']' => {
                if !hi.is_ascii() {
                    return Err(bad_char(pattern, i + 2));
                }
                if hi < lo {
                    return Err(format!("reversed range '{}-{}' at byte {i}", lo as char, hi as char));
                }
                re.push('-');
                push_byte(re, hi);
                i += 3;
            }
            _ => i += 1,
        }
    }
}

/// One byte as a regex escape, which means that byte alone in and out of a class.
fn push_byte(re: &mut String, c: u8) {
    let _ = write!(re, r"\x{c:02X}");
}

fn is_metric_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b':'
}

fn bad_char(pattern: &str, i: usize) -> String {
    let c = pattern.get(i..).and_then(|s| s.chars().next()).unwrap_or('\u{fffd}');
    format!("{c:?} at byte {i} can never occur in a metric name")
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use proptest::prelude::*;

    use super::*;

    fn glob(p: &str) -> Glob {
        Glob::parse(p).unwrap()
    }

    fn m(g: &Glob, s: &str) -> bool {
        g.matches(s.as_bytes())
    }

    #[test]
    fn glob_syntax() {
        let g = glob("container_cpu_*");
        assert!(m(&g, "container_cpu_usage_percent") && m(&g, "container_cpu_") && !m(&g, "container_mem"));
        let g = glob("cpu_?");
        assert!(m(&g, "cpu_1") && !m(&g, "cpu_") && !m(&g, "cpu_12"));
        let g = glob("node_[abc]*");
        assert!(m(&g, "node_a") && m(&g, "node_cpu") && !m(&g, "node_d"));
        let g = glob("x[a-c0-9]");
        assert!(m(&g, "xb") && m(&g, "x7") && !m(&g, "xd"));
        let g = glob("x[!a-c]");
        assert!(!m(&g, "xb") && m(&g, "xd"));
        assert!(m(&glob("x[^a]"), "xb"));
        assert!(m(&glob("x[]a]"), "x]") && m(&glob("x[a-]"), "x-") && m(&glob("x[!]]"), "xa"));
        assert!(m(&glob("a\\_b"), "a_b"));
        for p in ["*", "**", "***"] {
            assert!(m(&glob(p), "") && m(&glob(p), "anything"));
        }
        let g = glob("*a**b*");
        assert!(m(&g, "ab") && m(&g, "xaxbx") && !m(&g, "ba"));
        let g = glob("a*a");
        assert!(m(&g, "aa") && m(&g, "aba") && !m(&g, "a"));
        let g = glob("exact");
        assert!(m(&g, "exact") && !m(&g, "exactly") && !m(&g, "exac"));
    }

    #[test]
    fn bytes_not_characters_and_no_regex_leaks_through() {
        // `?` is one byte; `*` crosses newlines; a class holds ASCII bytes, and `\` and
        // regex metacharacters in it are plain bytes.
        assert!(!m(&glob("?"), "é") && m(&glob("??"), "é") && m(&glob("a*b"), "a\nb"));
        assert!(m(&glob("[!a]"), "\n") && m(&glob("[.]"), ".") && !m(&glob("[.]"), "x"));
        assert!(m(&glob("[\\]"), "\\") && m(&glob("[$^]"), "^") && m(&glob("[ -~]"), " "));
        assert!(m(&glob("[[]"), "[") && !m(&glob("a:b"), "aXb"));
    }

    #[test]
    fn pathological_globs_stay_linear() {
        let text = "a".repeat(100_000);
        let mut with_b = text.clone();
        with_b.push('b');
        let start = Instant::now();
        let p = format!("*{}*b", "a*".repeat(200));
        assert!(!m(&glob(&p), &text) && m(&glob(&p), &with_b));
        let p = format!("*{}b*", "a".repeat(60));
        assert!(!m(&glob(&p), &text) && m(&glob(&p), &with_b));
        let p = format!("*{}*", "?*".repeat(300));
        assert!(m(&glob(&p), &text));
        assert!(!m(&glob(&"a*".repeat(500)), &"a".repeat(499)));
        // Exponential backtracking would take ages; quadratic blow-ups seconds.
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    }

    /// One glob item as the reference matcher sees it: a star, or the set of bytes one
    /// text byte may be (negated or not).
    #[derive(Debug, Clone)]
    enum Item {
        Star,
        One { bytes: &'static [u8], negated: bool },
    }

    /// Spellings and their meaning, written out by hand rather than parsed.
    const ITEMS: &[(&str, Item)] = &[
        ("a", Item::One { bytes: b"a", negated: false }),
        ("b", Item::One { bytes: b"b", negated: false }),
        ("\\a", Item::One { bytes: b"a", negated: false }),
        ("*", Item::Star),
        ("?", Item::One { bytes: b"", negated: true }),
        ("[ab]", Item::One { bytes: b"ab", negated: false }),
        ("[a-c]", Item::One { bytes: b"abc", negated: false }),
        ("[!a]", Item::One { bytes: b"a", negated: true }),
        ("[^b-c]", Item::One { bytes: b"bc", negated: true }),
        ("[]a]", Item::One { bytes: b"]a", negated: false }),
        ("[!]]", Item::One { bytes: b"]", negated: true }),
        ("[a-]", Item::One { bytes: b"a-", negated: false }),
        ("[-b]", Item::One { bytes: b"-b", negated: false }),
    ];

    /// Reference matcher: plain recursion over the items, fine for short inputs.
    fn reference(items: &[Item], text: &[u8]) -> bool {
        match items.split_first() {
            None => text.is_empty(),
            Some((Item::Star, rest)) => (0..=text.len()).any(|k| reference(rest, &text[k..])),
            Some((Item::One { bytes, negated }, rest)) => {
                text.first().is_some_and(|c| bytes.contains(c) != *negated) && reference(rest, &text[1..])
            }
        }
    }

    proptest! {
        #[test]
        fn glob_agrees_with_a_naive_matcher(
            picks in prop::collection::vec(0..ITEMS.len(), 1..8),
            text in "[abc\\]\\-]{0,12}",
        ) {
            let pattern: String = picks.iter().map(|&i| ITEMS[i].0).collect();
            let items: Vec<Item> = picks.iter().map(|&i| ITEMS[i].1.clone()).collect();
            let g = glob(&pattern);
            prop_assert_eq!(g.matches(text.as_bytes()), reference(&items, text.as_bytes()), "{} vs {:?}", pattern, text);
        }
    }
}
