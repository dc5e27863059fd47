//! Retention: how long each series' data is kept in each tier, and freeing the disk
//! of what has expired.
//!
//! - `policy.rs`: per-tier defaults and rules. A rule selects series by a shell-style
//!   glob on the metric name (`glob.rs`) plus label matchers and gives them their own
//!   per-tier durations; among matching rules the highest priority wins, ties going to
//!   the rule added first.
//! - `store.rs`: the `SETTINGS` file that records the policy with the data.
//! - `plan.rs`: which segments have expired or must go to respect a disk cap.
//! - `apply.rs`: carrying a plan out, and counting what was removed.
//! - `archive.rs`: writing raw data as Parquet under `archive_dir` before it is removed.

mod apply;
pub mod archive;
mod glob;
mod plan;
mod policy;
mod store;

pub use apply::RemovalStats;
pub(crate) use apply::{log_drop, RemovalCounters};
pub use plan::{expired_segments, over_disk_cap, partially_expired, DropKind, RetentionPlan, SegmentDrop};
pub use policy::{
    human_duration, oldest_retained, RetentionPolicy, RetentionRule, RetentionSummary, RuleSummary, TierDurations,
};
pub use store::SETTINGS_FILE;
pub(crate) use store::VERSION as SETTINGS_VERSION;
pub(crate) use store::{load_settings, store_settings};

use crate::error::Result;
use crate::tier::StoredTier;

/// The policy a data directory recorded (its `SETTINGS` file), read without opening
/// it; `None` when it has none yet. Fails on a damaged file, naming it.
pub fn read_settings(dir: &std::path::Path) -> Result<Option<RetentionPolicy>> {
    load_settings(dir)
}

/// The tiers, by their older names.
pub const TIER_RAW: StoredTier = StoredTier::Raw;
pub const TIER_5M: StoredTier = StoredTier::FiveMin;
pub const TIER_1H: StoredTier = StoredTier::Hour;

/// A segment straddling the retention boundary is worth rewriting when more than this
/// percentage of its time span has expired.
pub const PARTIAL_EXPIRY_PERCENT: u32 = 10;

/// Longest metric glob accepted, in bytes.
pub const MAX_GLOB_LEN: usize = 1024;
