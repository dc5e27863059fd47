//! Timestamps in requests: RFC 3339 or integer milliseconds since the epoch.
//! A small hand-written civil-calendar conversion; no time zone database needed.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Parses `1733227200000` (ms) or `2025-12-03T12:00:00Z`, `2025-12-03T12:00:00.250+01:00`,
/// `2025-12-03 12:00:00` (no offset means UTC). Fractions below a millisecond are truncated.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty timestamp".into());
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().map_err(|_| format!("timestamp {s:?} is out of range for milliseconds"));
    }
    parse_rfc3339(s).map_err(|why| format!("invalid timestamp {s:?}: {why} (want RFC 3339 or epoch milliseconds)"))
}

fn parse_rfc3339(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, &'static str> {
        let part = b.get(from..from + len).ok_or("too short")?;
        if !part.iter().all(u8::is_ascii_digit) {
            return Err("expected digits");
        }
        Ok(part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, want: &[u8]| b.get(at).is_some_and(|c| want.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return Err("expected YYYY-MM-DDTHH:MM:SS");
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("no such time of day");
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err("empty fraction of a second");
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&c @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err("no such UTC offset");
            }
            let m = oh * 60 + om;
            if c == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return Err("expected Z or a ±HH:MM offset after the time"),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Ok(secs * 1000 + millis)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) use crate::timefmt::rfc3339 as format_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_seed_examples_and_epoch_ms() {
        assert_eq!(parse_timestamp("2025-12-03T12:00:00Z"), Ok(1_764_763_200_000));
        assert_eq!(parse_timestamp("2025-12-03T13:00:00+01:00"), Ok(1_764_763_200_000));
        assert_eq!(parse_timestamp("2025-12-03 12:00:00.5"), Ok(1_764_763_200_500));
        assert_eq!(parse_timestamp("2025-12-03T12:00:00.123456789Z"), Ok(1_764_763_200_123));
        assert_eq!(parse_timestamp("1764763200000"), Ok(1_764_763_200_000));
        assert_eq!(parse_timestamp("-5"), Ok(-5));
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.999Z"), Ok(-1));
        assert_eq!(parse_timestamp("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    #[test]
    fn rejects_nonsense_without_panicking() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-12-03T24:00:00Z",
            "2025-12-03T12:00:00+1:00",
            "2025-12-03T12:00:00.Z",
            "2025-12-03T12:00:00Zjunk",
            "99999999999999999999",
            "2025-12-03",
            "é025-12-03T12:00:00Z",
            "-",
            "1.5",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(format_rfc3339(1_764_763_200_000), "2025-12-03T12:00:00Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        for ms in [0, 1, -1, 951_782_400_123, 1_764_763_200_999, 253_402_300_799_000] {
            assert_eq!(parse_timestamp(&format_rfc3339(ms)), Ok(ms), "{ms}");
        }
    }
}
