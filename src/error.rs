//! The one public error type. Input errors (the caller can fix the call) are kept
//! apart from storage errors (the disk or the files are at fault).

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::text::time::show_time;

/// Every fallible Strata operation returns this.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    // ---- input errors: the request was wrong, nothing was stored ----
    /// A label name or value that breaks the rules; `reason` says which rule.
    InvalidLabel { name: String, reason: &'static str },
    /// The same label name appears twice in one series.
    DuplicateLabel { name: String },
    /// A series with more labels than `Options::max_labels` allows.
    TooManyLabels { count: usize, max: usize },
    /// A time range whose start is after its end.
    InvalidTimeRange { start: i64, end: i64 },
    /// A regular expression matcher that does not compile.
    InvalidMatcher { pattern: String, reason: String },
    /// A `SeriesRef` that this `Db` never handed out.
    UnknownSeries { series: u64 },
    /// A sample older than its series' retention allows.
    OutOfRetention { series: String, ts: i64, min_ts: i64 },
    /// A sample timestamp outside `[min, max]`, the range every read path can return.
    TimestampOutOfRange { series: String, ts: i64, min: i64, max: i64 },
    /// Creating the series would exceed `Options::max_series`.
    SeriesLimit { max: usize },
    /// An argument outside its documented domain.
    InvalidArgument(String),
    /// `Options::retention` differs from the policy the database recorded (and
    /// `Options::update_retention` was not set). Both are shown in full.
    RetentionMismatch { recorded: String, given: String },

    // ---- storage errors: the files or the disk are at fault ----
    /// A file's bytes contradict its format. `offset` is the byte where the problem starts.
    Corruption { file: PathBuf, offset: u64, reason: String },
    /// An operating system I/O failure, with what Strata was doing.
    Io { context: String, source: io::Error },
    /// A previous fsync or write failed, or Strata panicked; the `Db` refuses writes rather than lie.
    Poisoned { cause: String },
    /// Code inside Strata panicked while `context`; the `Db` refuses writes from then on.
    Panicked { context: String, message: String },
    /// Another process holds the data directory's LOCK.
    Locked { path: PathBuf },
    /// The `Db` has been closed.
    Closed,
    /// Retention could not write the data it was about to remove to the archive
    /// (`RetentionPolicy::with_archive_dir`), so it removed nothing; the data stays
    /// stored and queryable.
    Archive { dir: PathBuf, cause: Box<Error> },
    /// The head stayed over twice its memory budget for `waited` because sealing fell
    /// behind; the commit stored nothing and may be retried (`Options::write_stall_timeout`).
    WriteStalled { waited: std::time::Duration, head_bytes: usize, limit: usize },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// True when the caller's input was at fault and retrying the same call cannot help.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidLabel { .. }
                | Error::DuplicateLabel { .. }
                | Error::TooManyLabels { .. }
                | Error::InvalidTimeRange { .. }
                | Error::InvalidMatcher { .. }
                | Error::UnknownSeries { .. }
                | Error::OutOfRetention { .. }
                | Error::TimestampOutOfRange { .. }
                | Error::SeriesLimit { .. }
                | Error::InvalidArgument(_)
                | Error::RetentionMismatch { .. }
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub(crate) fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption { file: file.into(), offset, reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidLabel { name, reason } => write!(f, "invalid label {name:?}: {reason}"),
            Error::DuplicateLabel { name } => write!(f, "duplicate label name {name:?}"),
            Error::TooManyLabels { count, max } => write!(f, "series has {count} labels, the limit is {max}"),
            Error::InvalidTimeRange { start, end } => {
                write!(f, "invalid time range: start {} is after end {}", show_time(*start), show_time(*end))
            }
            Error::InvalidMatcher { pattern, reason } => write!(f, "invalid matcher regex {pattern:?}: {reason}"),
            Error::UnknownSeries { series } => write!(f, "unknown series ref {series}"),
            Error::OutOfRetention { series, ts, min_ts } => {
                let (ts, min_ts) = (show_time(*ts), show_time(*min_ts));
                write!(f, "sample for {series} at {ts} is older than retention allows (oldest accepted {min_ts})")
            }
            Error::TimestampOutOfRange { series, ts, min, max } => {
                let (ts, min, max) = (show_time(*ts), show_time(*min), show_time(*max));
                write!(f, "sample for {series} at {ts} is outside the accepted timestamp range [{min}, {max}]")
            }
            Error::SeriesLimit { max } => write!(f, "series limit of {max} reached"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::RetentionMismatch { recorded, given } => write!(
                f,
                "the database records retention [{recorded}] but [{given}] was given; \
                 change a database's retention explicitly (Db::set_retention, `strata retention set`, \
                 PUT /admin/retention, or Options::update_retention)"
            ),
            Error::Corruption { file, offset, reason } => {
                write!(f, "corruption in {} at offset {offset}: {reason}", file.display())
            }
            Error::Io { context, source } => write!(f, "I/O error while {context}: {source}"),
            Error::Poisoned { cause } => write!(f, "database is poisoned, writes are refused: {cause}"),
            Error::Panicked { context, message } => write!(f, "panic while {context}: {message}"),
            Error::Locked { path } => write!(f, "data directory is locked by another process: {}", path.display()),
            Error::Closed => write!(f, "database is closed"),
            Error::Archive { dir, cause } => {
                write!(f, "archiving to {} failed, so nothing was removed: {cause}", dir.display())
            }
            Error::WriteStalled { waited, head_bytes, limit } => write!(
                f,
                "write stalled: the head holds {head_bytes} bytes, over its limit of {limit} \
                 (twice the head memory budget), and sealing made no room within {waited:?}; \
                 nothing was stored, retry later"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Archive { cause, .. } => Some(cause.as_ref()),
            _ => None,
        }
    }
}
