//! Engine options shared by the integration tests.

use strata::{Options, RetentionPolicy, SyncMode, TierDurations};

/// A deterministic engine: no background threads (tests seal and compact when
/// they choose), nothing ever expires, and the WAL synced as `sync` says.
pub fn foreground(sync: SyncMode) -> Options {
    Options::default().sync(sync).background(false).retention(RetentionPolicy::new(TierDurations::forever()).unwrap())
}
