//! Strata: an embedded, append-only time-series engine.
//!
//! Writes go through a crc-checked write-ahead log into an in-memory head,
//! which is sealed into immutable, memory-mapped, compressed segments.
//! See `docs/ARCHITECTURE.md` for the walk through the modules.

// The only `unsafe` is the segment mmap (src/segment/mmap.rs), allowed there alone.
#![deny(unsafe_code)]

pub mod check;
pub mod codec;
pub mod compact;
mod db;
mod error;
#[doc(hidden)]
pub mod failpoint;
mod fsutil;
#[doc(hidden)]
pub mod fuzz_model;
#[doc(hidden)]
pub mod fuzzing;
mod hash;
mod head;
mod index;
mod labels;
pub mod loadgen;
pub mod manifest;
mod merge;
mod options;
pub mod query;
pub mod retention;
pub mod rollup;
mod sample;
pub mod segment;
#[cfg(feature = "server")]
pub mod server;
pub mod text;
pub mod wal;

pub use db::{
    Appender, BackupReport, CompactionReport, Db, DeleteReport, MetricInfo, MetricList, Querier, RecoveryReport,
    RemovalStats, SampleBatch, SeriesRef, SeriesSet, Stats, Subscription, WalStats, MAX_TIMESTAMP, MIN_TIMESTAMP,
};
pub use error::{Error, Result};
pub use labels::{Labels, MatchOp, Matcher, METRIC_NAME};
pub use options::{Options, SyncMode};
pub use query::{Agg, Query, QueryResult, ResultSeries, Tier};
pub use retention::{RetentionPolicy, RetentionRule, TierDurations};
pub use sample::{ChunkMeta, Sample};
