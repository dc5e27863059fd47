//! The `strata` command-line tool: see `docs/CLI.md`, or `strata --help`.

#![deny(unsafe_code)]

mod cli;

/// A server runs for months: glibc's malloc let its RSS climb with every head
/// sealed (freed chunks fragment the per-thread arenas), jemalloc keeps it flat.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
