//! `strata compact`: merges small and overlapping segments (through `ops::compact`).

use std::fmt::Write as _;

use serde_json::json;

use super::ops::{self, CompactReport, CompactRequest};
use super::{human, open_existing, times, CliResult, DataDir};

/// Seal the head, downsample, merge segments and apply retention now.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Seal the head into a segment, downsample into the 5m and 1h tiers, merge small and \
        overlapping segments, and apply the database's recorded retention (which DELETES data past it), \
        as the background maintenance does. Reports everything it merged and everything it removed. \
        With --dry-run, only show the plan.",
    after_help = "Examples:\n  strata compact --data ./data --dry-run\n  strata compact --data ./data --json"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Show the plan without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Output JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult {
    let db = open_existing(&a.data.data)?;
    let report = ops::compact(&db, &CompactRequest { dry_run: a.dry_run })?;
    db.close()?;
    if a.json {
        println!("{}", to_json(&report, a.dry_run));
    } else {
        print!("{}", to_text(&report, a.dry_run));
    }
    Ok(())
}

fn to_json(r: &CompactReport, dry_run: bool) -> serde_json::Value {
    let merges: Vec<serde_json::Value> = r
        .merges
        .iter()
        .map(|m| {
            json!({"inputs": m.inputs, "output": m.output, "level": m.level, "min_t": m.min_t, "max_t": m.max_t,
                "samples": m.samples, "bytes_in": m.bytes_in, "bytes_out": m.bytes_out})
        })
        .collect();
    json!({"dry_run": dry_run, "sealed_samples": r.sealed_samples, "rollups_written": r.rollups_written,
        "merges": merges, "removed": super::retention::drops_json(&r.removed),
        "archived": super::retention::archived_json(&r.archived), "archive_errors": r.archive_errors,
        "segments_before": r.segments_before, "segments_after": r.segments_after,
        "bytes_before": r.bytes_before, "bytes_after": r.bytes_after, "seconds": r.seconds})
}

fn to_text(r: &CompactReport, dry_run: bool) -> String {
    let mut o = String::new();
    if r.sealed_samples > 0 {
        let _ = writeln!(o, "sealed the head: {} samples", human::count(r.sealed_samples));
    }
    if r.rollups_written > 0 {
        let _ = writeln!(o, "downsampled: {} rollup segments written", r.rollups_written);
    }
    let verb = if dry_run { "would merge" } else { "merged" };
    for m in &r.merges {
        let ids: Vec<String> = m.inputs.iter().map(|i| format!("{i:x}")).collect();
        let _ = writeln!(
            o,
            "{verb} segments [{}] into level {} ({} → {}): {} samples, {} → {}",
            ids.join(", "),
            m.level,
            times::format_ts(m.min_t),
            times::format_ts(m.max_t),
            human::count(m.samples),
            human::bytes(m.bytes_in),
            if dry_run { "?".to_string() } else { human::bytes(m.bytes_out) }
        );
    }
    o.push_str(&super::retention::drops_text(&r.removed, !dry_run));
    o.push_str(&super::retention::archived_text(&r.archived, &r.archive_errors));
    if r.merges.is_empty() && r.removed.is_empty() && r.sealed_samples == 0 && r.rollups_written == 0 {
        o.push_str("nothing to compact, nothing removed\n");
        return o;
    }
    let _ = writeln!(
        o,
        "segments {} → {}, disk {} → {}{}",
        r.segments_before,
        if dry_run { "?".to_string() } else { r.segments_after.to_string() },
        human::bytes(r.bytes_before),
        if dry_run { "?".to_string() } else { human::bytes(r.bytes_after) },
        if dry_run { " (dry run: nothing written)".to_string() } else { format!(" in {:.2} s", r.seconds) }
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ops::Merge;

    #[test]
    fn formats_reports() {
        let r = CompactReport {
            merges: vec![Merge {
                inputs: vec![1, 2, 10],
                output: Some(11),
                level: 1,
                min_t: 0,
                max_t: 7_200_000,
                samples: 1_440_000,
                bytes_in: 3 << 20,
                bytes_out: 2 << 20,
            }],
            segments_before: 3,
            segments_after: 1,
            bytes_before: 3 << 20,
            bytes_after: 2 << 20,
            seconds: 0.5,
            ..Default::default()
        };
        let t = to_text(&r, false);
        assert!(t.contains("merged segments [1, 2, a] into level 1") && t.contains("3.0 MiB → 2.0 MiB"), "{t}");
        assert!(t.contains("segments 3 → 1"), "{t}");
        assert!(to_text(&r, true).contains("would merge") && to_text(&r, true).contains("dry run"));
        assert_eq!(to_json(&r, false)["merges"][0]["output"], 11);
        assert_eq!(to_text(&CompactReport::default(), false), "nothing to compact, nothing removed\n");
    }
}
