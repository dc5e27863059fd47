//! The engine options the integration tests share.

use strata::{Options, RetentionPolicy, SyncMode, TierDurations};

/// Nothing ever expires: fixtures use fixed, old timestamps.
pub fn keep_all() -> Options {
    Options::default().retention(RetentionPolicy::new(TierDurations::forever()).unwrap())
}

/// A deterministic engine: no background threads (tests seal and compact when
/// they choose), nothing ever expires, and the WAL synced as `sync` says.
pub fn foreground(sync: SyncMode) -> Options {
    keep_all().sync(sync).background(false)
}
