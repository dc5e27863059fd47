//! Times in requests, read and printed by the one library module (`text::time`):
//! `now`, `now-30m`, `-5m`, RFC 3339, a date, or an epoch number whose magnitude
//! says its unit (seconds below 10^10, then ms, µs, ns). A request reads `now` once
//! and passes it to every time it parses, so `start=-1h&end=now` spans one hour.

use serde_json::Value;

pub(crate) use crate::text::time::{format_rfc3339, now_ms, show_time};
use crate::text::time::{parse_epoch, parse_time};

/// A time given as text (a query parameter or a JSON string), in ms.
pub(crate) fn parse_timestamp(s: &str, now: i64) -> Result<i64, String> {
    parse_time(s, now).map_err(|e| e.to_string())
}

/// A time in a JSON body: a string in any accepted form, or a number by the epoch
/// rule (`1796178100` and `1796178100.25` are seconds, `1796178100250` ms).
/// `None` for a missing or null field.
pub(crate) fn json_time(v: Option<&Value>, now: i64) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_timestamp(s, now).map(Some),
        // serde_json prints a number as it was read (integers exactly, floats by
        // their shortest round-trip digits), which the epoch parser reads exactly.
        Some(Value::Number(n)) => parse_epoch(&n.to_string()).map(Some).map_err(|e| e.to_string()),
        Some(other) => Err(format!("expected a time (an RFC 3339 string or an epoch number), got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_numbers_follow_the_epoch_rule() {
        let now = 1_764_763_200_000;
        let t = |v: Value| json_time(Some(&v), now);
        assert_eq!(t(json!(1_796_178_100)), Ok(Some(1_796_178_100_000)));
        assert_eq!(t(json!(1_796_178_100.25)), Ok(Some(1_796_178_100_250)));
        assert_eq!(t(json!(1.7961781e9)), Ok(Some(1_796_178_100_000)));
        assert_eq!(t(json!(1_764_763_200_000i64)), Ok(Some(now)));
        assert_eq!(t(json!(-1)), Ok(Some(-1000)));
        assert_eq!(t(json!("2025-12-03T12:00:00Z")), Ok(Some(now)));
        assert_eq!(t(json!("now-1m")), Ok(Some(now - 60_000)));
        assert_eq!(t(json!("1796178100")), Ok(Some(1_796_178_100_000)));
        assert_eq!(json_time(None, now), Ok(None));
        assert_eq!(t(Value::Null), Ok(None));
        assert!(t(json!(1e300)).unwrap_err().contains("out of range"));
        assert!(t(json!(true)).unwrap_err().contains("got true"));
        assert!(t(json!("soon")).unwrap_err().contains("invalid time \"soon\""));
    }
}
