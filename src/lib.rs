//! Strata: an embedded, append-only time-series engine.
//!
//! Writes go through a crc-checked write-ahead log into an in-memory head,
//! which is sealed into immutable, memory-mapped, compressed segments.
//! See `docs/ARCHITECTURE.md` for the walk through the modules.
//!
//! What embedders may rely on is what the crate root exports and the public
//! modules (`check`, `promql`, `query`, `retention`, `rollup`, `text`, and with
//! their features `server` and `loadgen`). The storage internals (`wal`,
//! `segment`, `codec`, `manifest`, `compact`) are private; [`format`] gives their
//! on-disk versions.

// The only `unsafe` is the segment mmap (src/segment/mmap.rs), allowed there alone.
#![deny(unsafe_code)]

// `codec`, `segment` and `wal` have a few helpers only the format tests and the
// fuzzers call (through `fuzzing`); dead code in them is checked in builds with the
// `fuzzing` feature, which `cargo clippy --all-targets` has (see Cargo.toml).

pub mod check;
#[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
pub(crate) mod codec;
pub(crate) mod compact;
mod db;
mod error;
#[doc(hidden)]
pub mod failpoint;
mod format;
#[cfg(feature = "forward")]
pub mod forward;
mod fsutil;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz_model;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod hash;
mod head;
mod index;
mod labels;
#[cfg(feature = "loadgen")]
pub mod loadgen;
pub(crate) mod manifest;
mod merge;
mod metadata;
mod options;
mod pairs;
pub mod promql;
pub mod query;
pub mod retention;
pub mod rollup;
mod sample;
#[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
pub(crate) mod segment;
#[cfg(feature = "server")]
pub mod server;
pub mod text;

mod tier;
#[cfg_attr(not(feature = "fuzzing"), allow(dead_code))]
pub(crate) mod wal;

pub use check::{check_dir, Counts as CheckCounts, Problem as CheckProblem, Report as CheckReport, Severity};
pub use compact::{CompactionConfig, CompactionReport, Plan as CompactionPlan, SegmentMeta};
pub use db::{
    Appender, BackupReport, Db, DeleteReport, MetricInfo, MetricList, Querier, QueryCacheStats, RecoveryReport,
    RemovalStats, SampleBatch, SeriesRef, SeriesSet, Stats, Subscription, SubscriptionError, WalStats, IN_MEMORY_PATH,
    MAX_TIMESTAMP, MIN_TIMESTAMP,
};
pub use error::{Error, Result};
pub use format::{FormatVersions, FORMAT_VERSIONS, MANIFEST_FILE};
pub use labels::{Labels, MatchOp, Matcher, METRIC_NAME};
pub use metadata::{MetadataUpdate, MetricKind, MetricMetadata, METADATA_FILE};
pub use options::{Options, SyncMode};
pub use query::{Agg, Query, QueryResult, RankBy, ResultSeries, Summary, SummaryReport, Tier};
pub use retention::{DropKind, RetentionPlan, RetentionPolicy, RetentionRule, SegmentDrop, TierDurations};
pub use sample::{ChunkMeta, Sample};
pub use tier::{StoredTier, UnknownTier};

// What embedders share across threads, checked at compile time. `Appender` buffers
// one writer's batch behind `&mut self`, so sharing one between threads needs a lock
// anyway; it is `Sync` because it holds no interior mutability of its own.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Db>();
    send_sync::<Querier>();
    send_sync::<Appender>();
    send_sync::<Options>();
    send_sync::<Subscription>();
};
