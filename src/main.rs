//! The `strata` command-line tool: see `docs/CLI.md`, or `strata --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
