//! Series selectors in Prometheus notation: `name{a="x",b=~"re",c!="y",d!~"z"}`.
//!
//! Grammar: an optional metric name, then an optional `{...}` of comma-separated
//! matchers `label op string` (op is `=`, `!=`, `=~` or `!~`; a trailing comma is
//! allowed). Strings are in double or single quotes with `\\`, `\"`, `\'`, `\n`,
//! `\t`, `\r` escapes (any other backslash is kept, so `"a\.b"` is the regex `a\.b`),
//! or in backticks, raw. Regexes are fully anchored, as in Prometheus.

use std::fmt;

use strata::{Labels, MatchOp, Matcher, METRIC_NAME};

/// Why a selector did not parse: what was expected, and where (byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    pub input: String,
    pub pos: usize,
    pub msg: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Show the selector with a caret under the offending character.
        let col = self.input.get(..self.pos).map_or(self.pos, |p| p.chars().count());
        write!(f, "invalid selector: {} at column {}\n  {}\n  {}^", self.msg, col + 1, self.input, " ".repeat(col))
    }
}

/// Parses a selector into matchers. The result selects something: at least one
/// matcher does not match the empty value (a bare `{a=""}` would match nothing useful).
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, SelectorError> {
    let mut p = Parser { input, pos: 0 };
    let matchers = p.selector()?;
    if matchers.iter().all(|m| m.matches_empty()) {
        return Err(p.err(0, "a selector needs a metric name or a matcher that does not match the empty string"));
    }
    Ok(matchers)
}

/// Parses a series written as a selector of `=` matchers only (the notation
/// `strata export` writes in CSV), e.g. `cpu{host="a"}`, into its labels.
pub fn parse_series(input: &str) -> Result<Labels, String> {
    let mut p = Parser { input, pos: 0 };
    let matchers = p.selector().map_err(|e| e.to_string())?;
    if let Some(m) = matchers.iter().find(|m| m.op != MatchOp::Eq) {
        return Err(format!("series {input:?} has a matcher {m}, only label=\"value\" pairs are allowed"));
    }
    Labels::from_pairs(matchers.into_iter().map(|m| (m.name, m.value))).map_err(|e| format!("series {input:?}: {e}"))
}

/// Writes labels in the notation [`parse_series`] reads: `name{a="x",b="y"}`,
/// escaping `\`, `"` and newlines in values.
pub fn write_series(out: &mut String, labels: &Labels) {
    out.push_str(labels.metric_name().unwrap_or(""));
    out.push('{');
    let mut first = true;
    for (k, v) in labels.iter().filter(|(k, _)| *k != METRIC_NAME) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, v);
        out.push('"');
    }
    out.push('}');
}

/// Escapes a label value for a double-quoted string.
pub fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> SelectorError {
        SelectorError { input: self.input.to_string(), pos, msg: msg.into() }
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += self.peek().map_or(0, char::len_utf8);
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.input[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// An identifier; `colon` allows `:` (metric names).
    fn ident(&mut self, colon: bool) -> Option<&str> {
        let start = self.pos;
        let rest = &self.input[start..];
        let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
        if !rest.chars().next().is_some_and(ok_first) {
            return None;
        }
        let len = rest.find(|c: char| !(ok_first(c) || c.is_ascii_digit())).unwrap_or(rest.len());
        self.pos += len;
        Some(&self.input[start..start + len])
    }

    fn selector(&mut self) -> Result<Vec<Matcher>, SelectorError> {
        let mut out = Vec::new();
        self.skip_ws();
        if self.input.trim().is_empty() {
            return Err(self.err(0, "empty selector; expected e.g. cpu_usage{host=\"h1\"}"));
        }
        let has_name = match self.ident(true) {
            Some(name) => {
                out.push(Matcher::eq(METRIC_NAME, name));
                true
            }
            None => false,
        };
        self.skip_ws();
        if self.eat("{") {
            self.matchers(&mut out, has_name)?;
        }
        self.skip_ws();
        if self.pos < self.input.len() {
            let what =
                if out.is_empty() { "expected a metric name or '{'" } else { "unexpected text after the selector" };
            return Err(self.err(self.pos, what));
        }
        Ok(out)
    }

    /// Matchers after `{`, through the closing `}`.
    fn matchers(&mut self, out: &mut Vec<Matcher>, has_name: bool) -> Result<(), SelectorError> {
        loop {
            self.skip_ws();
            if self.eat("}") {
                return Ok(());
            }
            let at = self.pos;
            let Some(name) = self.ident(false).map(str::to_string) else {
                let msg = match self.peek() {
                    None => "missing '}'".to_string(),
                    Some(c) => format!("expected a label name or '}}', found {c:?}"),
                };
                return Err(self.err(at, msg));
            };
            self.skip_ws();
            let op_at = self.pos;
            let op = if self.eat("=~") {
                MatchOp::Regex
            } else if self.eat("!~") {
                MatchOp::NotRegex
            } else if self.eat("!=") {
                MatchOp::Ne
            } else if self.eat("=") {
                MatchOp::Eq
            } else {
                return Err(self.err(op_at, format!("expected =, !=, =~ or !~ after label {name:?}")));
            };
            self.skip_ws();
            let value_at = self.pos;
            let value = self.string()?;
            let m = match op {
                MatchOp::Eq => Ok(Matcher::eq(name, value)),
                MatchOp::Ne => Ok(Matcher::ne(name, value)),
                MatchOp::Regex => Matcher::regex(name, value),
                MatchOp::NotRegex => Matcher::not_regex(name, value),
            }
            .map_err(|e| self.err(value_at, e.to_string()))?;
            if has_name && m.name == METRIC_NAME {
                return Err(self.err(at, "the metric name is given twice (before the braces and as __name__)"));
            }
            out.push(m);
            self.skip_ws();
            if self.eat(",") {
                continue;
            }
            self.skip_ws();
            if self.eat("}") {
                return Ok(());
            }
            let msg = match self.peek() {
                None => "missing '}'".to_string(),
                Some(c) => format!("expected ',' or '}}', found {c:?}"),
            };
            return Err(self.err(self.pos, msg));
        }
    }

    /// A quoted string: "..." or '...' with escapes, or `...` raw.
    fn string(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let Some(quote) = self.peek().filter(|c| matches!(c, '"' | '\'' | '`')) else {
            return Err(self.err(start, "expected a quoted value, e.g. \"h1\""));
        };
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.input[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.pos += i + 1;
                return Ok(out);
            }
            if c == '\\' && quote != '`' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, e @ ('\\' | '"' | '\''))) => out.push(e),
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err(self.err(start, format!("unterminated string (missing closing {quote})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(ms: &[Matcher]) -> Vec<String> {
        ms.iter().map(|m| m.to_string()).collect()
    }

    #[test]
    fn parses_every_operator() {
        let m = parse_selector(r#"cpu_usage{a="x", b=~"re.*",c!="y",d!~'z|w',}"#).unwrap();
        assert_eq!(show(&m), [r#"__name__="cpu_usage""#, r#"a="x""#, r#"b=~"re.*""#, r#"c!="y""#, r#"d!~"z|w""#]);
        let m = parse_selector(r#"{__name__=~"cpu_.*"}"#).unwrap();
        assert_eq!(show(&m), [r#"__name__=~"cpu_.*""#]);
        let m = parse_selector("  up  ").unwrap();
        assert_eq!(show(&m), [r#"__name__="up""#]);
        let m = parse_selector(r#"ns:rate5m { host =~ "h1|h2" }"#).unwrap();
        assert_eq!(m[0].value, "ns:rate5m");
        assert!(m[1].matches("h2") && !m[1].matches("h12"), "regexes are anchored");
    }

    #[test]
    fn unescapes_strings() {
        let m = parse_selector(r#"m{a="q\"x\\y\nz", b=`raw\n`, c=~"a\.b"}"#).unwrap();
        assert_eq!(m[1].value, "q\"x\\y\nz");
        assert_eq!(m[2].value, r"raw\n");
        assert_eq!(m[3].value, r"a\.b");
        assert!(m[3].matches("a.b") && !m[3].matches("axb"));
    }

    #[test]
    fn reports_what_and_where() {
        let cases = [
            ("", 0, "empty selector"),
            ("cpu{host=\"a\"", 12, "missing '}'"),
            ("cpu{host}", 8, "expected =, !=, =~ or !~"),
            ("cpu{host=a}", 9, "expected a quoted value"),
            ("cpu{host=\"a}", 9, "unterminated string"),
            ("cpu{host=\"a\" region=\"b\"}", 13, "expected ',' or '}'"),
            ("cpu{1a=\"x\"}", 4, "expected a label name"),
            ("cpu{a=~\"(\"}", 7, "invalid matcher regex"),
            ("cpu extra", 4, "unexpected text"),
            ("{a=\"\"}", 0, "does not match the empty string"),
            ("cpu{__name__=\"x\"}", 4, "given twice"),
            ("9cpu", 0, "expected a metric name"),
        ];
        for (input, pos, msg) in cases {
            let e = parse_selector(input).unwrap_err();
            assert_eq!(e.pos, pos, "{input}: {e}");
            assert!(e.msg.contains(msg), "{input}: {e}");
        }
        let shown = parse_selector("cpu{host}").unwrap_err().to_string();
        assert!(shown.ends_with("cpu{host}\n          ^"), "{shown}");
    }

    #[test]
    fn series_round_trip() {
        let l = Labels::from_pairs([("__name__", "cpu"), ("host", "a\"b\\c\nd"), ("z", "{,}")]).unwrap();
        let mut s = String::new();
        write_series(&mut s, &l);
        assert_eq!(s, r#"cpu{host="a\"b\\c\nd",z="{,}"}"#);
        assert_eq!(parse_series(&s).unwrap(), l);
        let no_name = Labels::from_pairs([("job", "x")]).unwrap();
        let mut s = String::new();
        write_series(&mut s, &no_name);
        assert_eq!(parse_series(&s).unwrap(), no_name);
        assert!(parse_series(r#"cpu{a=~"x"}"#).unwrap_err().contains("only label=\"value\""));
    }
}
