//! `strata check`: verifies every checksum and format invariant of a data
//! directory, reading files only. The checks live in `strata::check`; this
//! module prints their report as text or JSON.

use std::process::ExitCode;

use serde_json::json;
use strata::check::{check_dir, Report, Severity};

use super::{fail, human, progress_bar, CliResult, DataDir};

/// Verify every checksum and format invariant, read-only.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Verify a data directory without changing it: the MANIFEST, every listed segment \
        (header, footer, directory, series table, every page's checksum, and every chunk decoded and \
        compared with its metadata), series ids across segments and the WAL, and every WAL frame. \
        Each problem is reported with its file and byte offset. Exit code 0: no errors (warnings, such \
        as a torn WAL tail that the next open will cut, are allowed); 1: errors found. It takes no lock, \
        so it can run while a server uses the directory.",
    after_help = "Examples:\n  strata check --data ./data\n  strata check --data ./data --json"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Output JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult<ExitCode> {
    let dir = &a.data.data;
    let mut pb = None;
    let report = check_dir(dir, |done, total, name| {
        let bar = pb.get_or_insert_with(|| progress_bar(Some(total as u64), a.json));
        bar.set_position(done as u64);
        bar.set_message(name.to_string());
    });
    if let Some(bar) = pb {
        bar.finish_and_clear();
    }
    let report = match report {
        Ok(r) => r,
        Err(strata::Error::InvalidArgument(msg)) => return fail(msg),
        Err(e) => return Err(e.into()),
    };
    let (errors, warnings) = (report.errors(), report.warnings());
    if a.json {
        println!("{}", report_json(&report, errors, warnings));
    } else {
        print!("{}", report_text(&report, errors, warnings));
    }
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn report_json(c: &Report, errors: usize, warnings: usize) -> serde_json::Value {
    let problems: Vec<serde_json::Value> = c
        .problems
        .iter()
        .map(|p| {
            json!({"severity": if p.severity == Severity::Error { "error" } else { "warning" },
                "file": p.file.display().to_string(), "offset": p.offset, "message": p.message})
        })
        .collect();
    let k = &c.counts;
    json!({
        "ok": errors == 0, "errors": errors, "warnings": warnings, "problems": problems,
        "checked": {"manifest_generation": k.generation, "segments": k.segments, "series": k.series,
            "chunks": k.chunks, "samples": k.samples, "wal_files": k.wal_files, "wal_records": k.wal_records,
            "wal_samples": k.wal_samples},
    })
}

fn report_text(c: &Report, errors: usize, warnings: usize) -> String {
    let k = &c.counts;
    let mut o = String::new();
    if let Some(m) = &c.manifest {
        o += &format!(
            "MANIFEST      generation {}, {} segment(s), WAL floor {:016x}\n",
            m.generation,
            m.segments.len(),
            m.wal_floor
        );
    }
    o += &format!(
        "segments      {} checked: {} series, {} chunks decoded, {} samples\n",
        k.segments,
        human::count(k.series),
        human::count(k.chunks),
        human::count(k.samples)
    );
    o += &format!(
        "WAL           {} file(s) checked: {} records, {} samples\n",
        k.wal_files,
        human::count(k.wal_records),
        human::count(k.wal_samples)
    );
    for p in &c.problems {
        let tag = if p.severity == Severity::Error { "ERROR  " } else { "warning" };
        let at = p.offset.map_or(String::new(), |o| format!(" at offset {o}"));
        o += &format!("{tag} {}{at}: {}\n", p.file.display(), p.message);
    }
    o += &if errors + warnings == 0 {
        "OK: no problems found\n".to_string()
    } else {
        format!("{errors} error(s), {warnings} warning(s)\n")
    };
    o
}
