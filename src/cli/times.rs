//! Time arguments, read and printed by the library's one module (`strata::text::time`:
//! `now`, `-1h`, `now-30m`, RFC 3339, a date, epoch numbers by magnitude) and
//! durations (`strata::text::duration`: `500ms`, `10s`, `5m`, `1h30m`, `7d`, `2w`, `1y`),
//! all in milliseconds.

pub use strata::text::duration::{format_duration, parse_duration};
pub use strata::text::time::{format_rfc3339 as format_ts, now_ms, parse_time, show_time};

/// `--start` and `--end` as an inclusive range, each unbounded when absent and both
/// relative to one `now`; an error names both when the start is after the end.
pub fn inclusive_range(start: Option<&str>, end: Option<&str>) -> Result<(i64, i64), String> {
    let now = now_ms();
    let parse =
        |flag: &str, s: Option<&str>| s.map(|s| parse_time(s, now)).transpose().map_err(|e| format!("{flag}: {e}"));
    let start = parse("--start", start)?.unwrap_or(i64::MIN);
    let end = parse("--end", end)?.unwrap_or(i64::MAX);
    if start > end {
        return Err(format!("--start {} is after --end {}", show_time(start), show_time(end)));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_flag_and_show_both_times() {
        assert_eq!(inclusive_range(None, None), Ok((i64::MIN, i64::MAX)));
        assert_eq!(
            inclusive_range(Some("1796178100"), Some("1796178100.5")),
            Ok((1_796_178_100_000, 1_796_178_100_500))
        );
        let e = inclusive_range(Some("2025-12-03T12:00:00Z"), Some("1764763199999")).unwrap_err();
        assert_eq!(
            e,
            "--start 1764763200000 (2025-12-03T12:00:00Z) is after --end 1764763199999 (2025-12-03T11:59:59.999Z)"
        );
        assert!(inclusive_range(None, Some("soon")).unwrap_err().starts_with("--end: invalid time \"soon\""));
    }
}
