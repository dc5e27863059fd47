//! The `strata` command-line tool: see `docs/CLI.md`, or `strata --help`.

#![deny(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
