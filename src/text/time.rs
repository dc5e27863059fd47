//! Instants in time, in milliseconds since the Unix epoch (UTC): the one parser and
//! the one printer behind the CLI's `--start`/`--end`, every HTTP time parameter and
//! JSON ingest timestamps.
//!
//! [`parse_time`] accepts (surrounding whitespace ignored):
//! - `now`, and times relative to it: `now-30m`, `now+5m`, `-5m` (a
//!   [`duration`](super::duration) before now);
//! - RFC 3339: `2025-12-03T12:00:00Z`, `2025-12-03T13:00:00.250+01:00`, with `T` or a
//!   space between date and time and any number of fraction digits; without an offset
//!   (`2025-12-03 12:00:00`) the time is UTC;
//! - a date, `2025-12-03`: its midnight UTC;
//! - an epoch number, by the rule below.
//!
//! **Epoch numbers.** A number counts seconds, milliseconds, microseconds or
//! nanoseconds since 1970-01-01T00:00:00Z, told apart by the magnitude of its integer
//! part (of the absolute value, so times before 1970 follow the same rule):
//!
//! | integer part        | unit         | example                                   |
//! |---------------------|--------------|-------------------------------------------|
//! | below 10^10         | seconds      | `1796178100`, `1796178100.25`, `-86400`   |
//! | 10^10 to below 10^13| milliseconds | `1796178100250`                           |
//! | 10^13 to below 10^16| microseconds | `1796178100250000`                        |
//! | 10^16 and above     | nanoseconds  | `1796178100250000000`                     |
//!
//! A fraction and an exponent are allowed in every unit (`1796178100.25`,
//! `1.7961781e9`); below a millisecond a time is cut toward the past, as RFC 3339
//! fractions are. 10^10 seconds is the year 2286 and 10^10 milliseconds is
//! 1970-04-26, so every time between those two reads right in either unit. A small
//! integer is seconds: `1000` is 1970-01-01T00:16:40Z; write early millisecond times
//! in RFC 3339 (`1970-01-01T00:00:01.500Z`).
//!
//! [`format_rfc3339`] prints `2025-12-03T12:00:00Z`, with `.mmm` when the
//! milliseconds are not zero; [`show_time`] is how an error shows a time:
//! `1764763200000 (2025-12-03T12:00:00Z)`.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

use super::duration::parse_duration;

/// The forms [`parse_time`] accepts, for error messages.
pub const ACCEPTED: &str = "now, now-30m, now+5m, -5m, RFC 3339 (2025-12-03T12:00:00Z), a date (2025-12-03) \
     or an epoch number (seconds below 10^10, else milliseconds below 10^13, microseconds below 10^16, \
     else nanoseconds)";

/// A time that could not be read: the input, why, and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeError {
    input: String,
    reason: String,
}

impl TimeError {
    fn new(input: &str, reason: impl Into<String>) -> TimeError {
        TimeError { input: input.to_string(), reason: reason.into() }
    }

    /// The text that was refused.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What was wrong with it.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid time {:?}: {}; expected {ACCEPTED}", self.input, self.reason)
    }
}

impl std::error::Error for TimeError {}

/// Milliseconds since the Unix epoch, now (negative if the clock is before 1970).
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Reads a time in any of the module's forms; `now` (ms) anchors relative times.
/// A caller that reads several times for one request passes the same `now` to each.
pub fn parse_time(s: &str, now: i64) -> Result<i64, TimeError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(TimeError::new(s, "it is empty"));
    }
    if t == "now" {
        return Ok(now);
    }
    if let Some(n) = epoch_ms(t) {
        return n.map_err(|why| TimeError::new(s, why));
    }
    let relative = |sign: i64, d: &str| {
        let ms = parse_duration(d).map_err(|e| TimeError::new(s, e))?;
        now.checked_add(sign * ms).ok_or_else(|| TimeError::new(s, "it is out of range"))
    };
    if let Some(d) = t.strip_prefix("now-") {
        return relative(-1, d);
    }
    if let Some(d) = t.strip_prefix("now+") {
        return relative(1, d);
    }
    if let Some(d) = t.strip_prefix('-') {
        return relative(-1, d);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    for form in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, form) {
            return Ok(dt.and_utc().timestamp_millis());
        }
    }
    if let Some(dt) = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)) {
        return Ok(dt.and_utc().timestamp_millis());
    }
    Err(TimeError::new(s, "it is not a time in any accepted form"))
}

/// Reads an epoch number only (no RFC 3339, no relative times), by the module's rule.
pub fn parse_epoch(s: &str) -> Result<i64, TimeError> {
    match epoch_ms(s.trim()) {
        Some(r) => r.map_err(|why| TimeError::new(s, why)),
        None => Err(TimeError::new(s, "it is not a number")),
    }
}

/// `[+-]digits[.digits][(e|E)[+-]digits]` in milliseconds by the magnitude rule;
/// `None` when `t` is not shaped like a number. Exact: the digits are shifted as
/// text, never through a float, so `1796178100.123` is `1796178100123`.
fn epoch_ms(t: &str) -> Option<Result<i64, String>> {
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digit = |b: u8| b.is_ascii_digit();
    if (int.is_empty() && frac.is_empty()) || !int.bytes().all(digit) || !frac.bytes().all(digit) {
        return None;
    }
    // All significant digits, and where the decimal point falls among them.
    let all = format!("{int}{frac}");
    let all = all.trim_start_matches('0');
    let point = i64::try_from(all.len()).ok()? - i64::try_from(frac.len()).ok()? + i64::from(exp);
    if all.is_empty() {
        return Some(Ok(0));
    }
    // `point` is the number of digits of the integer part (none when below 1).
    let to_ms: i64 = match point {
        ..=10 => 3,    // seconds
        11..=13 => 0,  // milliseconds
        14..=16 => -3, // microseconds
        _ => -6,       // nanoseconds
    };
    let ms_point = point + to_ms;
    let out_of_range = || Some(Err(format!("epoch number {t} is out of range")));
    if ms_point > 19 {
        return out_of_range();
    }
    let ms_point = usize::try_from(ms_point.max(0)).ok()?;
    let (whole, rest) = all.split_at(ms_point.min(all.len()));
    let zeros = ms_point - whole.len();
    let mut ms: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    ms *= 10i128.pow(u32::try_from(zeros).ok()?);
    if negative {
        ms = -ms;
        // Floor: a fraction of a millisecond before a negative time moves it back one.
        if rest.bytes().any(|b| b != b'0') {
            ms -= 1;
        }
    }
    match i64::try_from(ms) {
        Ok(ms) => Some(Ok(ms)),
        Err(_) => out_of_range(),
    }
}

/// `2025-12-03T12:00:00Z`, or `2025-12-03T12:00:00.250Z` when the milliseconds are
/// not zero. Beyond the calendar (years past ±262,143) the number with `ms`.
pub fn format_rfc3339(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(dt) if ms.rem_euclid(1000) == 0 => dt.to_rfc3339_opts(SecondsFormat::Secs, true),
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{ms}ms"),
    }
}

/// A time as errors show it: `1764763200000 (2025-12-03T12:00:00Z)`, both the number
/// a program sent and the date a person reads; the bare number beyond the calendar.
pub fn show_time(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(_) => format!("{ms} ({})", format_rfc3339(ms)),
        None => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_764_763_200_000; // 2025-12-03T12:00:00Z

    fn p(s: &str) -> Result<i64, TimeError> {
        parse_time(s, NOW)
    }

    #[test]
    fn now_and_relative_times() {
        assert_eq!(p("now"), Ok(NOW));
        assert_eq!(p(" now "), Ok(NOW));
        assert_eq!(p("now-30m"), Ok(NOW - 1_800_000));
        assert_eq!(p("now+5m"), Ok(NOW + 300_000));
        assert_eq!(p("-5m"), Ok(NOW - 300_000));
        assert_eq!(p("-1h30m"), Ok(NOW - 5_400_000));
        assert_eq!(p("now-0"), Ok(NOW));
        let e = p("now-5x").unwrap_err();
        assert!(e.to_string().contains("unknown unit \"x\""), "{e}");
        assert!(p("now-").is_err());
        assert_eq!(parse_time("now-1d", i64::MIN).unwrap_err().reason(), "it is out of range");
    }

    #[test]
    fn rfc3339_and_dates() {
        assert_eq!(p("2025-12-03T12:00:00Z"), Ok(NOW));
        assert_eq!(p("2025-12-03t12:00:00z"), Ok(NOW));
        assert_eq!(p("2025-12-03 12:00:00Z"), Ok(NOW));
        assert_eq!(p("2025-12-03T13:00:00+01:00"), Ok(NOW));
        assert_eq!(p("2025-12-03T11:30:00-00:30"), Ok(NOW));
        assert_eq!(p("2025-12-03T12:00:00.25Z"), Ok(NOW + 250));
        assert_eq!(p("2025-12-03T12:00:00.123456789Z"), Ok(NOW + 123));
        assert_eq!(p("2025-12-03T12:00:00"), Ok(NOW));
        assert_eq!(p("2025-12-03 12:00:00.5"), Ok(NOW + 500));
        assert_eq!(p("2025-12-03"), Ok(NOW - 12 * 3_600_000));
        assert_eq!(p("1969-12-31T23:59:59.999Z"), Ok(-1));
        // Sub-millisecond fractions are cut toward the past before 1970 as well.
        assert_eq!(p("1969-12-31T23:59:59.9995Z"), Ok(-1));
        assert_eq!(p("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
    }

    #[test]
    fn epoch_numbers_by_magnitude() {
        // Seconds: integer part below 10^10.
        assert_eq!(p("1796178100"), Ok(1_796_178_100_000));
        assert_eq!(p("1796178100.25"), Ok(1_796_178_100_250));
        assert_eq!(p("1796178100.123"), Ok(1_796_178_100_123));
        assert_eq!(p("1796178100.1239"), Ok(1_796_178_100_123));
        assert_eq!(p("1.7961781e9"), Ok(1_796_178_100_000));
        assert_eq!(p("17961781E2"), Ok(1_796_178_100_000));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("-0"), Ok(0));
        assert_eq!(p("1000"), Ok(1_000_000));
        assert_eq!(p(".5"), Ok(500));
        assert_eq!(p("+2"), Ok(2000));
        assert_eq!(p("0001796178100"), Ok(1_796_178_100_000));
        // The boundaries: 10^10 - 1 is seconds, 10^10 milliseconds, and so on.
        assert_eq!(p("9999999999"), Ok(9_999_999_999_000));
        assert_eq!(p("9999999999.999"), Ok(9_999_999_999_999));
        assert_eq!(p("10000000000"), Ok(10_000_000_000));
        assert_eq!(p("1e10"), Ok(10_000_000_000));
        assert_eq!(p("1764763200000"), Ok(NOW));
        assert_eq!(p("9999999999999"), Ok(9_999_999_999_999));
        assert_eq!(p("10000000000000"), Ok(10_000_000_000));
        assert_eq!(p("1764763200000000"), Ok(NOW));
        assert_eq!(p("9999999999999999"), Ok(9_999_999_999_999));
        assert_eq!(p("10000000000000000"), Ok(10_000_000_000));
        assert_eq!(p("1764763200000000000"), Ok(NOW));
        assert_eq!(p("1764763200123456789"), Ok(NOW + 123));
        // Fractions in the larger units are kept down to the millisecond.
        assert_eq!(p("1764763200000.9"), Ok(NOW));
        assert_eq!(p("1764763200123456.7"), Ok(NOW + 123));
    }

    #[test]
    fn negative_epoch_numbers_follow_the_same_rule() {
        assert_eq!(p("-1"), Ok(-1000));
        assert_eq!(p("-86400"), Ok(-86_400_000));
        assert_eq!(p("-1.5"), Ok(-1500));
        // Floor below a millisecond, as for RFC 3339 before 1970.
        assert_eq!(p("-0.0005"), Ok(-1));
        assert_eq!(p("-1.0005"), Ok(-1001));
        assert_eq!(p("-9999999999"), Ok(-9_999_999_999_000));
        assert_eq!(p("-10000000000"), Ok(-10_000_000_000));
        assert_eq!(p("-1764763200000000"), Ok(-NOW));
        assert_eq!(p("-1764763200000000000"), Ok(-NOW));
    }

    #[test]
    fn epoch_numbers_out_of_range_are_refused_by_name() {
        // Nanoseconds up to about 9.2 * 10^24 still fit i64 milliseconds.
        assert_eq!(p("9223372036854775807000000"), Ok(i64::MAX));
        for big in ["9223372036854775808000000", "1e25", "-1e30", "1e400"] {
            let e = p(big).unwrap_err();
            assert!(e.reason().contains("out of range") && e.input() == big, "{big}: {e}");
        }
    }

    #[test]
    fn garbage_is_refused_with_the_input_and_the_forms() {
        for bad in [
            "",
            "   ",
            "yesterday",
            "2025-13-01",
            "2025-02-29T00:00:00Z",
            "2025-12-03T24:00:00Z",
            "2025-12-03T12:00:00+1:00",
            "2025-12-03T12:00:00.Z",
            "2025-12-03T12:00:00Zjunk",
            "é025-12-03T12:00:00Z",
            "-",
            "1.2.3",
            "1e",
            "e5",
            ".",
            "0x10",
            "1_000",
            "NaN",
            "inf",
            "-1x",
            "5m",
        ] {
            let e = p(bad).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{bad:?}: {msg}");
            assert!(msg.contains("RFC 3339") && msg.contains("now-30m") && msg.contains("epoch number"), "{msg}");
        }
    }

    #[test]
    fn epoch_only_parser() {
        assert_eq!(parse_epoch("1796178100"), Ok(1_796_178_100_000));
        assert_eq!(parse_epoch(" 1796178100.5 "), Ok(1_796_178_100_500));
        assert_eq!(parse_epoch("1764763200000"), Ok(NOW));
        assert_eq!(parse_epoch("now").unwrap_err().reason(), "it is not a number");
        assert!(parse_epoch("2025-12-03").is_err());
    }

    #[test]
    fn prints_rfc3339_and_shows_times_in_errors() {
        assert_eq!(format_rfc3339(NOW), "2025-12-03T12:00:00Z");
        assert_eq!(format_rfc3339(NOW + 250), "2025-12-03T12:00:00.250Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(i64::MIN), format!("{}ms", i64::MIN));
        assert_eq!(show_time(NOW), "1764763200000 (2025-12-03T12:00:00Z)");
        assert_eq!(show_time(-1500), "-1500 (1969-12-31T23:59:58.500Z)");
        assert_eq!(show_time(i64::MAX), i64::MAX.to_string());
    }

    #[test]
    fn now_is_the_clock() {
        let system = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let ms = now_ms();
        assert!((i128::from(ms) - system as i128).abs() < 60_000, "{ms} vs {system}");
    }

    proptest! {
        // Every millisecond of the years 0000 to 9999 (RFC 3339's) prints and reads back.
        #[test]
        fn rfc3339_round_trips(ms in -62_167_219_200_000i64..253_402_300_800_000) {
            prop_assert_eq!(parse_time(&format_rfc3339(ms), NOW), Ok(ms));
        }

        // Seconds with up to three fraction digits read back exactly.
        #[test]
        fn epoch_seconds_with_millis_read_exactly(ms in -9_999_999_999_999i64..=9_999_999_999_999) {
            let text = format!("{}{}.{:03}", if ms < 0 { "-" } else { "" }, ms.unsigned_abs() / 1000, ms.unsigned_abs() % 1000);
            prop_assert_eq!(parse_time(&text, NOW), Ok(ms));
        }
    }
}
