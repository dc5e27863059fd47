//! The logger `strata serve` installs for the `log` facade: one line per record on
//! stderr, as text or as JSON (`{"ts", "level", "target", "message"}`, for journald
//! and container log collectors). Engine records (seals, compactions, deletions) go
//! through the same facade, so they reach stderr at the chosen level.

use std::io::Write;
use std::time::SystemTime;

use log::{LevelFilter, Log, Metadata, Record};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Result<LogFormat, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("expected text or json, got {s:?}")),
        }
    }
}

struct StderrLogger {
    format: LogFormat,
}

/// Installs the logger for the whole process. Fails only if one is already installed.
pub fn install(level: LevelFilter, format: LogFormat) -> Result<(), String> {
    static TEXT: StderrLogger = StderrLogger { format: LogFormat::Text };
    static JSON: StderrLogger = StderrLogger { format: LogFormat::Json };
    let logger = match format {
        LogFormat::Text => &TEXT,
        LogFormat::Json => &JSON,
    };
    log::set_logger(logger).map_err(|_| "a logger is already installed".to_string())?;
    log::set_max_level(level);
    Ok(())
}

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let mut line = format_record(self.format, SystemTime::now(), r);
        line.push('\n');
        // One write per line, so lines from different threads never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

fn format_record(format: LogFormat, now: SystemTime, r: &Record) -> String {
    let ts = rfc3339(now);
    match format {
        LogFormat::Text => format!("{ts} {:<5} {}: {}", r.level(), r.target(), r.args()),
        // Written by hand to keep the fields in this order (serde_json's map sorts keys).
        LogFormat::Json => format!(
            "{{\"ts\":\"{ts}\",\"level\":\"{}\",\"target\":{},\"message\":{}}}",
            r.level().as_str().to_ascii_lowercase(),
            json_string(r.target()),
            json_string(&r.args().to_string())
        ),
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// UTC with milliseconds, e.g. `2026-12-02T04:05:06.789Z`.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    match chrono::DateTime::from_timestamp(secs, d.subsec_nanos()) {
        Some(dt) => dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => format!("{}.{:03}", d.as_secs(), d.subsec_millis()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(format: LogFormat, msg: &str) -> String {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_648_306_789);
        format_record(
            format,
            t,
            &Record::builder().level(log::Level::Warn).target("strata::db").args(format_args!("{msg}")).build(),
        )
    }

    #[test]
    fn text_lines() {
        assert_eq!(
            record(LogFormat::Text, "sealed 3 series"),
            "2025-12-02T04:05:06.789Z WARN  strata::db: sealed 3 series"
        );
    }

    #[test]
    fn json_lines_escape_the_message() {
        let line = record(LogFormat::Json, "bad \"line\"\nnext");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ts"], "2025-12-02T04:05:06.789Z");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["target"], "strata::db");
        assert_eq!(v["message"], "bad \"line\"\nnext");
        assert!(!line.contains('\n'));
        assert!(line.starts_with("{\"ts\":\"2025-12-02T04:05:06.789Z\",\"level\""), "{line}");
    }

    #[test]
    fn formats_parse() {
        assert_eq!(LogFormat::parse("JSON"), Ok(LogFormat::Json));
        assert!(LogFormat::parse("xml").unwrap_err().contains("text or json"));
    }
}
