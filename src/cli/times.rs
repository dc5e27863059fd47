//! Time arguments: instants (`now`, `-1h`, `now-30m`, RFC 3339, epoch ms) and
//! durations (`500ms`, `10s`, `5m`, `1h30m`, `7d`, `2w`, `1y`), all in milliseconds.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses a duration such as `90s`, `5m`, `1h30m`, `7d`. A bare `0` is zero.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    if t.is_empty() {
        return Err("empty duration; expected e.g. 10s, 5m, 1h30m, 7d".into());
    }
    let bad = |why: &str| format!("invalid duration {s:?}: {why} (expected e.g. 500ms, 10s, 5m, 1h30m, 7d)");
    let mut total: i64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad("a number must come before each unit"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            "" => return Err(bad("missing unit")),
            u => return Err(bad(&format!("unknown unit {u:?}"))),
        };
        rest = &rest[unit_len..];
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(|| bad("too large"))?;
    }
    Ok(total)
}

/// Parses an instant relative to `now` (ms): `now`, `now-1h`, `-1h`, `now+5m`,
/// RFC 3339 (`2025-12-03T12:00:00Z`), a UTC date (`2025-12-03`), or epoch milliseconds.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let t = s.trim();
    let rel = |sign: i64, d: &str| -> Result<i64, String> {
        let ms = parse_duration(d).map_err(|e| format!("invalid time {s:?}: {e}"))?;
        now.checked_add(sign * ms).ok_or_else(|| format!("time {s:?} is out of range"))
    };
    if t == "now" {
        return Ok(now);
    }
    if let Some(d) = t.strip_prefix("now-") {
        return rel(-1, d);
    }
    if let Some(d) = t.strip_prefix("now+") {
        return rel(1, d);
    }
    if !t.is_empty() && t.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|_| format!("epoch milliseconds {s:?} are out of range"));
    }
    if let Some(d) = t.strip_prefix('-') {
        return rel(-1, d);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(dt) = d.and_hms_opt(0, 0, 0) {
            return Ok(dt.and_utc().timestamp_millis());
        }
    }
    Err(format!(
        "invalid time {s:?}: expected now, -1h, now-30m, RFC 3339 (2025-12-03T12:00:00Z), a date (2025-12-03) \
         or epoch milliseconds"
    ))
}

/// RFC 3339 in UTC with milliseconds, or the raw number if out of chrono's range.
pub fn format_ts(ms: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(ms) {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{ms}ms"),
    }
}

/// A duration in the largest units that keep it exact, e.g. `1h30m`, `10s`, `250ms`.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms.unsigned_abs();
    if ms < 0 {
        out.push('-');
    }
    for (unit, len) in [("d", 86_400_000u64), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if rest >= len {
            out.push_str(&format!("{}{unit}", rest / len));
            rest %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("10s"), Ok(10_000));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("7d"), Ok(604_800_000));
        assert_eq!(parse_duration("2w"), Ok(1_209_600_000));
        assert_eq!(parse_duration("0"), Ok(0));
        for bad in ["", "5", "m", "5x", "1h-", "99999999999999999999s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit \"x\""));
        for ms in [1, 999, 1000, 5_400_000, 86_400_000 + 1, 604_800_000] {
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
        }
    }

    #[test]
    fn instants() {
        let now = 1_764_763_200_000; // 2025-12-03T12:00:00Z
        assert_eq!(parse_time("now", now), Ok(now));
        assert_eq!(parse_time("-1h", now), Ok(now - 3_600_000));
        assert_eq!(parse_time("now-30m", now), Ok(now - 1_800_000));
        assert_eq!(parse_time("now+1s", now), Ok(now + 1000));
        assert_eq!(parse_time("2025-12-03T12:00:00Z", now), Ok(now));
        assert_eq!(parse_time("2025-12-03T13:00:00.5+01:00", now), Ok(now + 500));
        assert_eq!(parse_time("2025-12-03", now), Ok(now - 12 * 3_600_000));
        assert_eq!(parse_time("1700000000000", now), Ok(1_700_000_000_000));
        assert_eq!(parse_time("-5", now), Ok(-5));
        for bad in ["yesterday", "-1x", "2025-13-01", "now-", ""] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
        assert_eq!(format_ts(now), "2025-12-03T12:00:00.000Z");
        assert_eq!(parse_time(&format_ts(now + 7), now), Ok(now + 7));
    }
}

/// `--start` and `--end` as an inclusive range, each unbounded when absent; an error
/// names both when the start is after the end.
pub fn inclusive_range(start: Option<&str>, end: Option<&str>) -> Result<(i64, i64), String> {
    let now = now_ms();
    let start = start.map(|s| parse_time(s, now)).transpose()?.unwrap_or(i64::MIN);
    let end = end.map(|s| parse_time(s, now)).transpose()?.unwrap_or(i64::MAX);
    if start > end {
        return Err(format!("--start ({}) is after --end ({})", format_ts(start), format_ts(end)));
    }
    Ok((start, end))
}
