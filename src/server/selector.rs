//! Series selectors as in PromQL: `name`, `name{label="v",l2=~"re",l3!="x",l4!~"y"}`,
//! `{__name__=~"cpu_.*"}`. A pure function over the text, with errors that name the
//! byte position; it must never panic (it is fuzzed).
//!
//! Strings may be quoted with `"`, `'` or backticks (raw, no escapes). Inside `"` and
//! `'` the escapes are `\\ \" \' \n \r \t \0 \a \b \f \v \xHH \uHHHH \UHHHHHHHH`.
//! As in Prometheus, a selector must hold at least one matcher that does not match
//! the empty string (otherwise it would select every series).

use std::fmt;

use crate::{Matcher, METRIC_NAME};

/// Why a selector did not parse, and where (a byte offset into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    pub pos: usize,
    pub message: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid selector at byte {}: {}", self.pos, self.message)
    }
}

impl std::error::Error for SelectorError {}

/// Parses a selector into the matchers it stands for (`name` becomes `__name__="name"`).
pub fn parse(input: &str) -> Result<Vec<Matcher>, SelectorError> {
    let mut p = Parser { s: input.as_bytes(), src: input, i: 0 };
    let mut out = Vec::new();
    p.ws();
    let mut named = false;
    if p.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':') {
        let name = p.ident(true);
        out.push(Matcher::eq(METRIC_NAME, name));
        named = true;
        p.ws();
    }
    if p.peek() == Some(b'{') {
        p.i += 1;
        p.ws();
        while p.peek() != Some(b'}') {
            let at = p.i;
            if !p.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') {
                return Err(p.err(at, "expected a label name or '}'"));
            }
            let label = p.ident(false).to_string();
            p.ws();
            let op_at = p.i;
            let op = p.op().ok_or_else(|| p.err(op_at, "expected one of =, !=, =~, !~"))?;
            p.ws();
            let value_at = p.i;
            let value = p.string()?;
            if named && label == METRIC_NAME {
                return Err(p.err(at, "metric name is given twice (before the braces and as __name__)"));
            }
            let m = match op {
                "=" => Matcher::eq(label, value),
                "!=" => Matcher::ne(label, value),
                "=~" => Matcher::regex(label, value).map_err(|e| p.err(value_at, &e.to_string()))?,
                _ => Matcher::not_regex(label, value).map_err(|e| p.err(value_at, &e.to_string()))?,
            };
            out.push(m);
            p.ws();
            match p.peek() {
                Some(b',') => {
                    p.i += 1;
                    p.ws();
                }
                Some(b'}') => {}
                _ => return Err(p.err(p.i, "expected ',' or '}' after a matcher")),
            }
        }
        p.i += 1;
        p.ws();
    }
    if p.i < p.s.len() {
        return Err(p.err(p.i, "unexpected text after the selector"));
    }
    if out.is_empty() {
        return Err(p.err(0, "empty selector: give a metric name or {label matchers}"));
    }
    if out.iter().all(Matcher::matches_empty) {
        return Err(p.err(0, "selector must contain at least one matcher that does not match the empty string"));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, pos: usize, message: &str) -> SelectorError {
        SelectorError { pos, message: message.to_string() }
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    /// A label name, or a metric name (which may also hold `:`). The caller has
    /// checked the first byte; everything consumed is ASCII, so slicing is safe.
    fn ident(&mut self, metric: bool) -> &'a str {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || (metric && c == b':')) {
            self.i += 1;
        }
        self.src.get(start..self.i).unwrap_or("")
    }

    fn op(&mut self) -> Option<&'static str> {
        let two = self.s.get(self.i..self.i + 2);
        let op = match (self.peek(), two) {
            (_, Some(b"=~")) => "=~",
            (_, Some(b"!=")) => "!=",
            (_, Some(b"!~")) => "!~",
            (Some(b'='), _) => "=",
            _ => return None,
        };
        self.i += op.len();
        Some(op)
    }

    fn string(&mut self) -> Result<String, SelectorError> {
        let open = self.i;
        let quote = match self.peek() {
            Some(q @ (b'"' | b'\'' | b'`')) => q,
            _ => return Err(self.err(open, "expected a quoted string")),
        };
        self.i += 1;
        let mut out = String::new();
        loop {
            // Copy the run up to the next quote or backslash as one UTF-8 slice.
            let run = self.i;
            while self.peek().is_some_and(|c| c != quote && (c != b'\\' || quote == b'`')) {
                self.i += 1;
            }
            out.push_str(self.src.get(run..self.i).unwrap_or(""));
            match self.peek() {
                None => return Err(self.err(open, "unterminated string")),
                Some(c) if c == quote => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(_) => self.escape(&mut out)?,
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), SelectorError> {
        let at = self.i;
        self.i += 1;
        let Some(c) = self.peek() else { return Err(self.err(at, "unterminated escape")) };
        self.i += 1;
        let simple = match c {
            b'\\' => Some('\\'),
            b'"' => Some('"'),
            b'\'' => Some('\''),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'0' => Some('\0'),
            b'a' => Some('\x07'),
            b'b' => Some('\x08'),
            b'f' => Some('\x0c'),
            b'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            return Ok(());
        }
        let digits = match c {
            b'x' => 2,
            b'u' => 4,
            b'U' => 8,
            _ => return Err(self.err(at, "unknown escape sequence")),
        };
        let hex = self.s.get(self.i..self.i + digits).ok_or_else(|| self.err(at, "truncated escape sequence"))?;
        let code = std::str::from_utf8(hex)
            .ok()
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err(at, "invalid hex digits in escape"))?;
        let ch = char::from_u32(code).ok_or_else(|| self.err(at, "escape is not a Unicode scalar value"))?;
        out.push(ch);
        self.i += digits;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MatchOp;

    fn show(ms: &[Matcher]) -> Vec<String> {
        ms.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(show(&parse("cpu").unwrap()), ["__name__=\"cpu\""]);
        assert_eq!(show(&parse(" ns:cpu_usage:rate5m ").unwrap()), ["__name__=\"ns:cpu_usage:rate5m\""]);
        let ms = parse(r#"cpu{host="a", re=~"h.*",ne!="x" , nre!~'y',}"#).unwrap();
        assert_eq!(
            ms.iter().map(|m| m.op).collect::<Vec<_>>(),
            [MatchOp::Eq, MatchOp::Eq, MatchOp::Regex, MatchOp::Ne, MatchOp::NotRegex]
        );
        assert_eq!(show(&parse("{__name__=~\"cpu_.*\"}").unwrap()), ["__name__=~\"cpu_.*\""]);
        assert_eq!(parse(r#"{a="q\"\\\n\u00e9\x41"}"#).unwrap()[0].value, "q\"\\\né\x41");
        assert_eq!(parse(r"{a=`raw\d+`}").unwrap()[0].value, r"raw\d+");
        assert_eq!(parse("{a=\"é日本\"}").unwrap()[0].value, "é日本");
        assert_eq!(parse("cpu{}").unwrap().len(), 1);
    }

    #[test]
    fn errors_name_the_position() {
        let cases = [
            ("", 0),
            ("{}", 0),
            ("cpu{", 4),
            ("cpu{host}", 8),
            ("cpu{host=a}", 9),
            ("cpu{host=\"a}", 9),
            ("cpu{host=\"a\" x=\"b\"}", 13),
            ("cpu{1a=\"b\"}", 4),
            ("cpu{a=~\"(\"}", 7),
            ("cpu{a=\"\\q\"}", 7),
            ("cpu{a=\"\\u12\"}", 7),
            ("cpu{a=\"\\ud800\"}", 7),
            ("cpu extra", 4),
            ("cpu{__name__=\"x\"}", 4),
            ("{a!=\"x\"}", 0),
            ("{a=~\".*\"}", 0),
            ("-", 0),
            ("cpu{a=\"\\", 7),
        ];
        for (input, pos) in cases {
            let e = parse(input).unwrap_err();
            assert_eq!(e.pos, pos, "{input:?}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn never_panics_on_selector_like_text(s in "[a-z_:{}=~!,\"'`\\\\ uxU0-9é.*|()]{0,40}") {
            if let Ok(ms) = parse(&s) {
                proptest::prop_assert!(ms.iter().any(|m| !m.matches_empty()));
            }
        }
    }

    #[test]
    fn never_panics_on_prefixes_and_bytes() {
        let src = "cpu_total:x{a=\"é\\\"\\u00e9\",b!~'x|y',c=~`z`,}";
        for end in 0..=src.len() {
            if let Some(p) = src.get(..end) {
                let _ = parse(p);
            }
        }
        for b in 0u8..=255 {
            let s = String::from_utf8_lossy(&[b'{', b'a', b'=', b, b'"']).into_owned();
            let _ = parse(&s);
        }
    }
}
