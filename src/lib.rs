//! Strata: an embedded, append-only time-series engine.
//!
//! Writes go through a crc-checked write-ahead log into an in-memory head,
//! which is sealed into immutable, memory-mapped, compressed segments.
//! See `docs/ARCHITECTURE.md` for the walk through the modules.

pub mod codec;
mod error;
mod fsutil;
mod labels;
mod options;
mod sample;

pub use error::{Error, Result};
pub use labels::{Labels, MatchOp, Matcher, METRIC_NAME};
pub use options::{Options, SyncMode};
pub use sample::{ChunkMeta, Sample};
