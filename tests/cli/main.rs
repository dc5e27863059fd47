//! The `strata` command's integration tests, one binary (each former `tests/NAME.rs` is
//! the module `NAME`, so `cargo test --test cli NAME::` runs one file's tests).

#[path = "../support/mod.rs"]
mod support;

mod cli_archive;
mod cli_backup;
mod cli_check;
mod cli_dashboard;
mod cli_dashboard_tmux;
mod cli_dashboard_url;
mod cli_export_import;
mod cli_import_partial;
mod cli_keeps_recorded_retention;
mod cli_load;
mod cli_load_realtime;
mod cli_metadata;
mod cli_promql;
mod cli_query;
mod cli_rank;
mod cli_remote;
mod cli_stats;
mod cli_summary;
mod export_openmetrics;
mod export_parquet;
mod file_formats_cross;
mod migrate_to_victoriametrics;
mod parquet_model;
