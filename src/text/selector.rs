//! PromQL vector selectors, and the canonical notation of a series.
//!
//! Grammar (PromQL's, Prometheus 3):
//!
//! ```text
//! selector := ws [metric] ws ['{' ws [item (ws ',' ws item)* ws [','] ws] '}'] ws
//! metric   := [a-zA-Z_:][a-zA-Z0-9_:]*
//! item     := label ws op ws string | string          (a lone string is the metric name)
//! label    := [a-zA-Z_][a-zA-Z0-9_]* | string          (Prometheus 3's quoted names)
//! op       := '=' | '!=' | '=~' | '!~'
//! ws       := (' ' | '\t' | '\n' | '\r')*
//! ```
//!
//! Strings are double- or single-quoted with Go's escapes (`\a \b \f \n \r \t \v \\`,
//! the opening quote, `\xNN`, octal `\NNN`, `\uNNNN`, `\UNNNNNNNN`; any other escape
//! is an error, and a raw newline ends nothing: it is an error), or in backticks, raw.
//! `\x` and octal escapes give bytes, which must add up to UTF-8. Quoted names must
//! still satisfy the engine's label rules (see `Labels::from_pairs`), so
//! `{"my.metric"}` is refused with that reason. Regexes are fully anchored. As in
//! Prometheus, a metric name before the braces may not be repeated as `__name__`
//! inside them, and a selector needs a matcher that does not match the empty string.
//!
//! The printer writes the canonical form: the metric name bare before the braces
//! when it is one, then `label op "value"` joined by `,`, values double-quoted with
//! `\\`, `\"` and control characters escaped. Whatever it prints parses back to the
//! same matchers (and, for a series, the same labels).

use std::fmt;

use crate::labels::{is_valid_metric_name, validate_name};
use crate::{Labels, MatchOp, Matcher, METRIC_NAME};

/// Why a selector did not parse: what was expected, and where (a 1-based column,
/// counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError {
    pub input: String,
    pub column: usize,
    pub message: String,
}

impl SelectorError {
    /// The input with a caret under the offending character, for terminals.
    pub fn pointer(&self) -> String {
        format!("  {}\n  {}^", self.input, " ".repeat(self.column.saturating_sub(1)))
    }
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid selector at column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for SelectorError {}

/// Parses a selector into the matchers it stands for (`name` becomes `__name__="name"`,
/// listed first). The result selects something: one matcher does not match `""`.
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, SelectorError> {
    let p = Parser { src: input, pos: 0 };
    let raw = p.selector()?;
    let mut out = Vec::with_capacity(raw.len());
    for r in raw {
        let m = match r.op {
            MatchOp::Eq => Ok(Matcher::eq(r.name, r.value)),
            MatchOp::Ne => Ok(Matcher::ne(r.name, r.value)),
            MatchOp::Regex => Matcher::regex(r.name, r.value),
            MatchOp::NotRegex => Matcher::not_regex(r.name, r.value),
        };
        out.push(m.map_err(|e| error(input, r.value_at, e.to_string()))?);
    }
    if out.iter().all(Matcher::matches_empty) {
        return Err(error(
            input,
            0,
            "a selector needs a metric name or a matcher that does not match the empty string, e.g. host=\"h1\"",
        ));
    }
    Ok(out)
}

/// Parses a series written with `label="value"` pairs only (the notation that
/// [`write_series`] and `Labels`' `Display` print, e.g. `cpu{host="a"}`).
pub fn parse_series(input: &str) -> Result<Labels, SelectorError> {
    let p = Parser { src: input, pos: 0 };
    let raw = p.selector()?;
    if let Some(r) = raw.iter().find(|r| r.op != MatchOp::Eq) {
        let op = op_str(r.op);
        return Err(error(
            input,
            r.at,
            format!("a series has label=\"value\" pairs only, found {op} after {:?}", r.name),
        ));
    }
    Labels::from_pairs(raw.into_iter().map(|r| (r.name, r.value))).map_err(|e| error(input, 0, e.to_string()))
}

/// Writes labels canonically: `cpu{host="a",dc="b"}`, `cpu`, or `{job="x"}`.
pub fn write_series(out: &mut impl fmt::Write, labels: &Labels) -> fmt::Result {
    let name = labels.metric_name();
    out.write_str(name.unwrap_or(""))?;
    let rest = labels.iter().filter(|(k, _)| *k != METRIC_NAME);
    if name.is_some() && labels.len() == 1 {
        return Ok(());
    }
    out.write_char('{')?;
    for (i, (k, v)) in rest.enumerate() {
        if i > 0 {
            out.write_char(',')?;
        }
        write_name(out, k)?;
        out.write_char('=')?;
        write_quoted(out, v)?;
    }
    out.write_char('}')
}

/// Writes matchers canonically, as [`parse_selector`] reads them.
pub fn write_selector(out: &mut impl fmt::Write, ms: &[Matcher]) -> fmt::Result {
    // Bare only when it is the one `__name__` matcher: the parser refuses a name
    // before the braces together with another `__name__` inside them.
    let names = ms.iter().filter(|m| m.name == METRIC_NAME).count();
    let bare = ms
        .iter()
        .position(|m| m.name == METRIC_NAME && m.op == MatchOp::Eq && is_valid_metric_name(&m.value))
        .filter(|_| names == 1);
    if let Some(i) = bare {
        out.write_str(&ms[i].value)?;
        if ms.len() == 1 {
            return Ok(());
        }
    }
    out.write_char('{')?;
    let rest = ms.iter().enumerate().filter(|(i, _)| Some(*i) != bare).map(|(_, m)| m);
    for (i, m) in rest.enumerate() {
        if i > 0 {
            out.write_char(',')?;
        }
        write_matcher(out, m)?;
    }
    out.write_char('}')
}

/// [`write_selector`] into a new string.
pub fn selector_string(ms: &[Matcher]) -> String {
    let mut s = String::new();
    let _ = write_selector(&mut s, ms);
    s
}

/// Writes one matcher: `label op "value"`.
pub fn write_matcher(out: &mut impl fmt::Write, m: &Matcher) -> fmt::Result {
    write_name(out, &m.name)?;
    out.write_str(op_str(m.op))?;
    write_quoted(out, &m.value)
}

/// A label name, quoted (Prometheus 3 style) only if it is not a plain identifier,
/// which the engine's rules refuse anyway; so it prints and reads back unchanged.
fn write_name(out: &mut impl fmt::Write, name: &str) -> fmt::Result {
    if validate_name(name).is_ok() {
        out.write_str(name)
    } else {
        write_quoted(out, name)
    }
}

/// Writes `s` double-quoted, escaping `\`, `"` and control characters as Go does.
pub fn write_quoted(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '"' => out.write_str("\\\"")?,
            '\x07' => out.write_str("\\a")?,
            '\x08' => out.write_str("\\b")?,
            '\x0c' => out.write_str("\\f")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\x0b' => out.write_str("\\v")?,
            c if (c as u32) < 0x20 || c == '\x7f' => write!(out, "\\x{:02x}", c as u32)?,
            c if c.is_control() => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

fn op_str(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Eq => "=",
        MatchOp::Ne => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    }
}

fn error(input: &str, pos: usize, message: impl Into<String>) -> SelectorError {
    let column = input.get(..pos).map_or(pos, |p| p.chars().count()) + 1;
    SelectorError { input: input.to_string(), column, message: message.into() }
}

/// One matcher before its regex is compiled; `at` and `value_at` are byte offsets.
struct Raw {
    name: String,
    op: MatchOp,
    value: String,
    at: usize,
    value_at: usize,
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, pos: usize, message: impl Into<String>) -> SelectorError {
        error(self.src, pos, message)
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos..).and_then(|r| r.chars().next())
    }

    /// PromQL's whitespace: space, tab, newline, carriage return.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.src.get(self.pos..).is_some_and(|r| r.starts_with(s)) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// An identifier starting here; `metric` allows `:`. Consumes only ASCII.
    fn ident(&mut self, metric: bool) -> Option<String> {
        let rest = self.src.get(self.pos..)?;
        let first = |c: char| c.is_ascii_alphabetic() || c == '_' || (metric && c == ':');
        if !rest.chars().next().is_some_and(first) {
            return None;
        }
        let len = rest.find(|c: char| !(first(c) || c.is_ascii_digit())).unwrap_or(rest.len());
        self.pos += len;
        rest.get(..len).map(str::to_string)
    }

    fn op(&mut self) -> Option<MatchOp> {
        // Two-character operators first: `=~` must not read as `=` then `~`.
        [("=~", MatchOp::Regex), ("!~", MatchOp::NotRegex), ("!=", MatchOp::Ne), ("=", MatchOp::Eq)]
            .into_iter()
            .find(|(s, _)| self.eat(s))
            .map(|(_, op)| op)
    }

    fn selector(mut self) -> Result<Vec<Raw>, SelectorError> {
        let mut out = Vec::new();
        self.ws();
        if self.pos == self.src.len() {
            return Err(self.err(0, "empty selector; expected a metric name or '{', e.g. cpu{host=\"h1\"}"));
        }
        let at = self.pos;
        let named = match self.ident(true) {
            Some(name) => {
                out.push(Raw { name: METRIC_NAME.into(), op: MatchOp::Eq, value: name, at, value_at: at });
                true
            }
            None => false,
        };
        self.ws();
        let braces = self.eat("{");
        if braces {
            self.braces(&mut out, named)?;
            self.ws();
        } else if !named {
            return Err(self.err(self.pos, "expected a metric name or '{'"));
        }
        if self.pos < self.src.len() {
            let what = if braces { "unexpected text after '}'" } else { "expected '{' or the end of the selector" };
            return Err(self.err(self.pos, what));
        }
        Ok(out)
    }

    /// The items after `{`, through the closing `}`.
    fn braces(&mut self, out: &mut Vec<Raw>, named: bool) -> Result<(), SelectorError> {
        loop {
            self.ws();
            if self.eat("}") {
                return Ok(());
            }
            let at = self.pos;
            let (name, quoted) = if matches!(self.peek(), Some('"' | '\'' | '`')) {
                (self.string()?, true)
            } else if let Some(name) = self.ident(false) {
                (name, false)
            } else {
                return Err(match self.peek() {
                    None => self.err(at, "missing '}'"),
                    Some(c) => self.err(at, format!("expected a label name, a quoted name or '}}', found {c:?}")),
                });
            };
            self.ws();
            let item = match self.op() {
                Some(op) => {
                    if quoted {
                        validate_name(&name).map_err(|e| self.err(at, e.to_string()))?;
                    }
                    self.ws();
                    let value_at = self.pos;
                    if !matches!(self.peek(), Some('"' | '\'' | '`')) {
                        return Err(self.err(value_at, "expected a quoted value, e.g. \"h1\""));
                    }
                    let value = self.string()?;
                    Raw { name, op, value, at, value_at }
                }
                // A lone quoted string is the metric name (Prometheus 3).
                None if quoted => {
                    if !is_valid_metric_name(&name) {
                        return Err(self.err(
                            at,
                            format!("metric name {name:?} is not allowed: it must match [a-zA-Z_:][a-zA-Z0-9_:]*"),
                        ));
                    }
                    Raw { name: METRIC_NAME.into(), op: MatchOp::Eq, value: name, at, value_at: at }
                }
                None => return Err(self.err(self.pos, format!("expected =, !=, =~ or !~ after label {name:?}"))),
            };
            if named && item.name == METRIC_NAME {
                return Err(self.err(at, "the metric name is given twice (before the braces and inside them)"));
            }
            out.push(item);
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("}") {
                return Ok(());
            }
            return Err(match self.peek() {
                None => self.err(self.pos, "missing '}'"),
                Some(c) => self.err(self.pos, format!("expected ',' or '}}', found {c:?}")),
            });
        }
    }

    /// A quoted string at `self.pos` (the caller saw the quote).
    fn string(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let quote = self.peek().unwrap_or('"');
        self.pos += 1;
        let unterminated = |p: &Self| p.err(start, format!("unterminated string (missing closing {quote})"));
        if quote == '`' {
            let rest = self.src.get(self.pos..).unwrap_or("");
            let end = rest.find('`').ok_or_else(|| unterminated(self))?;
            self.pos += end + 1;
            return Ok(rest[..end].to_string());
        }
        // Bytes, not chars: `\xNN` and octal escapes give single bytes, as in Go.
        let mut bytes = Vec::new();
        loop {
            let Some(c) = self.peek() else { return Err(unterminated(self)) };
            match c {
                '\n' => return Err(unterminated(self)),
                '\\' => self.escape(quote, &mut bytes)?,
                c if c == quote => {
                    self.pos += 1;
                    break;
                }
                c => {
                    bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    self.pos += c.len_utf8();
                }
            }
        }
        String::from_utf8(bytes).map_err(|_| self.err(start, "the string's \\x or octal escapes do not form UTF-8"))
    }

    /// One escape sequence; `self.pos` is at the backslash.
    fn escape(&mut self, quote: char, out: &mut Vec<u8>) -> Result<(), SelectorError> {
        let at = self.pos;
        self.pos += 1;
        let Some(c) = self.peek() else { return Err(self.err(at, "escape sequence not terminated")) };
        self.pos += c.len_utf8();
        let simple = match c {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            c if c == quote => Some(c as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        let (digits, base, first) = match c {
            '0'..='7' => (2, 8, c.to_digit(8)),
            'x' => (2, 16, Some(0)),
            'u' => (4, 16, Some(0)),
            'U' => (8, 16, Some(0)),
            _ => {
                let hint = if c == '"' || c == '\'' { " (only the opening quote is escaped)" } else { "" };
                return Err(self.err(at, format!("unknown escape sequence \\{c}{hint}")));
            }
        };
        let mut value = first.unwrap_or(0);
        for _ in 0..digits {
            let Some(d) = self.peek() else { return Err(self.err(at, "escape sequence not terminated")) };
            let Some(v) = d.to_digit(base) else {
                return Err(self.err(self.pos, format!("illegal character {d:?} in escape sequence")));
            };
            value = value * base + v;
            self.pos += 1;
        }
        match c {
            'u' | 'U' => {
                let ch = char::from_u32(value)
                    .ok_or_else(|| self.err(at, "escape sequence is an invalid Unicode code point"))?;
                out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
            }
            _ => {
                let b = u8::try_from(value).map_err(|_| self.err(at, "octal escape above \\377"))?;
                out.push(b);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
