//! Checks on the text of an expression before `promql-parser` sees it, for inputs
//! that would make the parser itself fail badly: nesting deep enough to overflow a
//! thread's stack, and a number used as a duration (`x[1e30]`, `x[Inf]`, `offset
//! NaN`) that it converts with `Duration::from_secs_f64`, which panics when the
//! number is not finite or too large.

/// The deepest expression accepted; the parser and the evaluator recurse once per level.
pub(super) const MAX_NESTING: usize = 500;

/// The largest number of seconds accepted as a duration: about 31,700 years, well
/// inside both `Duration` and i64 milliseconds.
const MAX_DURATION_SECS: f64 = 1e12;

/// Why `expr` must not reach the parser, if it must not.
pub(super) fn refuse(expr: &str) -> Option<String> {
    if nesting_bound(expr) > MAX_NESTING {
        return Some(format!("query is too deeply nested: more than {MAX_NESTING} levels of brackets and operators"));
    }
    bad_duration_number(expr)
        .map(|n| format!("{n:?} is not a valid duration: a number of seconds must be finite and at most 1e12"))
}

/// Skips a quoted string or a comment starting at `i`; the index after it.
fn skip_quoted(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        &q @ (b'"' | b'\'' | b'`') => {
            let mut j = i + 1;
            while j < b.len() && b[j] != q {
                j += if b[j] == b'\\' && q != b'`' { 2 } else { 1 };
            }
            Some(j + 1)
        }
        b'#' => Some(b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p + 1)),
        _ => None,
    }
}

/// An upper bound of the expression tree's depth, from the text alone: the
/// deepest bracket nesting plus every operator character and set-operator word
/// outside quotes (each operator adds at most one level).
fn nesting_bound(expr: &str) -> usize {
    let b = expr.as_bytes();
    let (mut depth, mut max_depth, mut ops, mut i) = (0usize, 0usize, 0usize, 0usize);
    while i < b.len() {
        if let Some(next) = skip_quoted(b, i) {
            i = next;
            continue;
        }
        match b[i] {
            b'(' | b'[' | b'{' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>' => ops += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i + 1 < b.len() && (b[i + 1].is_ascii_alphanumeric() || b[i + 1] == b'_' || b[i + 1] == b':') {
                    i += 1;
                }
                if matches!(&expr[start..=i], "and" | "or" | "unless" | "atan2") {
                    ops += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    max_depth + ops
}

/// The first bare number in a duration position (after `[`, after `:` inside
/// square brackets, or after `offset` and an optional `-`) that is not a finite
/// number of seconds up to [`MAX_DURATION_SECS`].
fn bad_duration_number(expr: &str) -> Option<String> {
    let b = expr.as_bytes();
    let (mut i, mut square) = (0usize, 0usize);
    let mut duration_next = false;
    while i < b.len() {
        if let Some(next) = skip_quoted(b, i) {
            i = next;
            duration_next = false;
            continue;
        }
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if duration_next && c == b'-' {
            i += 1;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
            let start = i;
            while i < b.len() {
                let d = b[i];
                let exponent_sign = (d == b'+' || d == b'-') && matches!(b[i - 1], b'e' | b'E') && i > start;
                if d.is_ascii_alphanumeric() || d == b'_' || d == b'.' || exponent_sign {
                    i += 1;
                } else {
                    break;
                }
            }
            let word = &expr[start..i];
            if duration_next && !duration_ok(word) {
                return Some(word.to_string());
            }
            duration_next = word.eq_ignore_ascii_case("offset");
            continue;
        }
        match c {
            b'[' => square += 1,
            b']' => square = square.saturating_sub(1),
            _ => {}
        }
        duration_next = c == b'[' || (c == b':' && square > 0);
        i += 1;
    }
    None
}

/// False for a bare number (decimal, hex, `Inf`, `NaN`) that is no finite count
/// of seconds in range; true for anything else, which the parser judges.
fn duration_ok(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    let value = if let Some(hex) = lower.strip_prefix("0x") {
        match u64::from_str_radix(hex, 16) {
            Ok(v) => v as f64,
            Err(_) => return hex.bytes().any(|c| !c.is_ascii_hexdigit()) || hex.is_empty(),
        }
    } else {
        match lower.parse::<f64>() {
            Ok(v) => v,
            Err(_) => return true,
        }
    };
    value.is_finite() && value.abs() <= MAX_DURATION_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_numbers_the_parser_cannot_turn_into_durations() {
        for bad in [
            "x[1e30]",
            "x[Inf]",
            "x[nan]",
            "x[133333333333333333333333333333]",
            "sort_es(C__name__ti_(:::::::mp[133333333333333333333333333333]))",
            "x offset -Inf",
            "x offset 1e300",
            "rate(x[5m:1e20])",
            "x[0xffffffffffffffffff]",
        ] {
            assert!(refuse(bad).is_some(), "{bad}");
        }
        for good in ["x[5m]", "x[300]", "x[1.5]", "x offset 5m", "x offset -60", "rate(x[5m:30s])", "x{a=\"[1e30]\"}"] {
            assert!(refuse(good).is_none(), "{good}");
        }
        assert!(refuse(&"(".repeat(600)).unwrap().contains("too deeply nested"));
    }
}
