//! Shared by the CLI suites (`tests/cli/`): run the built `strata` binary.

#![allow(dead_code)] // each suite uses a different subset

use std::path::Path;
use std::process::{Command, Output};

/// Runs `strata` with `args`; returns its output whatever the exit code. The fixtures
/// use fixed, old timestamps: they rely on a new directory keeping data forever and an
/// existing one keeping the policy it recorded, with no flag.
pub fn strata(args: &[&str]) -> Output {
    super::output(Command::new(env!("CARGO_BIN_EXE_strata")).args(args)).expect("the strata binary runs")
}

/// Options for fixtures written in-process: no retention, like the binary's runs.
pub fn keep_all() -> strata::Options {
    super::options::keep_all()
}

/// Runs `strata` and expects success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = strata(args);
    assert!(out.status.success(), "strata {args:?} failed: {}\n{}", stderr(&out), stdout(&out));
    stdout(&out)
}

/// Runs `strata` and expects failure (exit 1); returns stderr and stdout together.
pub fn fails(args: &[&str]) -> String {
    let out = strata(args);
    assert_eq!(out.status.code(), Some(1), "strata {args:?} should fail: {}\n{}", stderr(&out), stdout(&out));
    format!("{}{}", stderr(&out), stdout(&out))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Loads `hosts` devops hosts over `duration` into `dir`; returns the JSON report.
pub fn load_devops(dir: &Path, hosts: usize, duration: &str) -> serde_json::Value {
    let d = dir.to_str().unwrap();
    let h = hosts.to_string();
    json(&ok(&["load", "--data", d, "--hosts", &h, "--duration", duration, "--json"]))
}

/// Held by the tests that open a `Db` in this process: see `support::serial`.
pub fn serial() -> super::Serial {
    super::serial()
}
