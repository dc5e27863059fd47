//! The engine's integration tests, one binary (each former `tests/NAME.rs` is the
//! module `NAME`, so `cargo test --test engine NAME::` runs one file's tests).
//! Tests that re-run themselves in a child pass the module path to `--exact`.

#[path = "../support/mod.rs"]
mod support;

mod cardinality_churn;
mod corruption_sweep;
mod crash_during_compaction;
mod crash_kill;
mod delete_series;
mod disk_full;
mod distinct_counts;
mod format_golden;
mod format_golden_rollup_v2;
mod format_golden_segment_v2;
mod format_golden_segment_v3;
mod format_golden_v2;
mod forward;
mod fuzz_corpus;
mod in_memory;
mod index_checkpoint;
mod maintenance_reports;
mod metadata;
mod model_btreemap;
mod promql_parallel;
mod promql_tiers;
mod query_cache;
mod recovery_torn_wal_tail;
mod retention_archive;
mod retention_rules;
mod retention_settings;
mod roundtrip;
mod tiers_match_raw;
mod timestamp_range;
mod wal_reopen;
mod write_stall;
