//! The text forms users type and read, shared by the CLI and the server so that
//! both sides accept and print exactly the same things.
//!
//! - [`selector`]: PromQL vector selectors (`cpu{host=~"h.*"}`) and the canonical
//!   notation of a series (`cpu{host="h1"}`), which `Labels`' `Display` uses;
//! - [`duration`]: Prometheus durations (`1h30m`, `5m`, `1y`), parsed and printed;
//! - [`time`]: instants (`now-30m`, RFC 3339, epoch numbers by magnitude), parsed
//!   and printed, and how errors show a time;
//! - [`value`]: sample values (ryu, `NaN`, `+Inf`, `-Inf`), bit for bit;
//! - [`files`]: the export and import formats ([`csv`], [`jsonl`], Prometheus
//!   text, OpenMetrics), one writer and one reader each;
//! - [`json_strict`]: JSON that refuses repeated keys and non-string label values.

// The file formats read JSON with serde_json (and huge numbers through the
// server's JSON helpers), built with the `server` feature, which the binary has.
#[cfg(feature = "server")]
pub mod csv;
pub mod duration;
#[cfg(feature = "server")]
pub mod files;
#[cfg(feature = "server")]
pub mod json_strict;
#[cfg(feature = "server")]
pub mod jsonl;
#[cfg(feature = "parquet")]
pub mod parquet;
#[cfg(feature = "parquet")]
mod parquet_groups;
#[cfg(feature = "parquet")]
mod parquet_strings;
pub mod selector;
pub mod time;
pub mod value;
