//! The HTTP server's integration tests, one binary (each former `tests/NAME.rs` is the
//! module `NAME`, so `cargo test --test server NAME::` runs one file's tests).
//! `tests/server_abuse.rs` stays a binary of its own: it installs a panic hook and
//! measures the process's memory, which other tests in the process would disturb.

#[path = "../support/mod.rs"]
mod support;

mod forward_e2e;
mod influx_compat;
mod ingest_shapes;
mod otlp_ingest;
mod prom_api;
mod prom_api_bad;
mod prometheus_e2e;
mod promql_vs_prometheus;
mod query_format;
mod query_summary;
mod seed004_readme;
mod server_admin;
mod server_api;
mod server_backup;
mod server_config;
mod server_counts;
mod server_export;
mod server_in_memory;
mod server_ingest;
mod server_lifecycle;
mod server_metadata;
mod server_partial;
mod server_query;
