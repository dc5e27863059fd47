//! `strata retention`: shows, and with --apply drops, data past retention
//! (through `ops::retention`).

use std::fmt::Write as _;

use serde_json::json;

use super::ops::{self, RetentionReport, RetentionRequest};
use super::{human, open_existing, times, CliError, CliResult, DataDir};

const TIERS: [&str; 3] = ["raw", "5m", "1h"];

/// Show (or with --apply, drop) data older than retention allows.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Evaluate retention: per tier (defaults raw 7d, 5m 30d, 1h 365d, or as given here) and \
        an optional cap on disk bytes that drops the oldest data first. Without --apply, only report \
        what would be dropped.",
    after_help = "Examples:\n  strata retention --data ./data\n  strata retention --data ./data --raw 3d --max-disk 10GiB --apply"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Keep raw samples this long, e.g. 7d.
    #[arg(long, value_parser = times::parse_duration)]
    raw: Option<i64>,
    /// Keep 5-minute rollups this long, e.g. 30d.
    #[arg(long = "tier-5m", value_parser = times::parse_duration)]
    tier_5m: Option<i64>,
    /// Keep hourly rollups this long, e.g. 365d.
    #[arg(long = "tier-1h", value_parser = times::parse_duration)]
    tier_1h: Option<i64>,
    /// Cap on total disk bytes, e.g. 10GiB; the oldest data goes first.
    #[arg(long, value_parser = human::parse_bytes)]
    max_disk: Option<u64>,
    /// Drop the expired data (default: only report it).
    #[arg(long)]
    apply: bool,
    /// Output JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult {
    for (flag, v) in [("--raw", a.raw), ("--tier-5m", a.tier_5m), ("--tier-1h", a.tier_1h)] {
        if v.is_some_and(|d| d <= 0) {
            return Err(CliError::new(format!("{flag} must be a positive duration")));
        }
    }
    let req = RetentionRequest {
        raw_ms: a.raw,
        tier_5m_ms: a.tier_5m,
        tier_1h_ms: a.tier_1h,
        max_disk_bytes: a.max_disk,
        apply: a.apply,
    };
    let db = open_existing(&a.data.data)?;
    let report = ops::retention(&db, &req)?;
    db.close()?;
    if a.json {
        println!("{}", to_json(&report));
    } else {
        print!("{}", to_text(&report));
    }
    Ok(())
}

fn to_json(r: &RetentionReport) -> serde_json::Value {
    let expired: Vec<serde_json::Value> = r
        .expired
        .iter()
        .map(|e| {
            json!({"segment": e.segment, "tier": TIERS.get(usize::from(e.tier)).copied().unwrap_or("?"),
                "min_t": e.min_t, "max_t": e.max_t, "samples": e.samples, "bytes": e.bytes, "reason": e.reason})
        })
        .collect();
    json!({"applied": r.applied, "expired": expired,
        "samples": r.expired.iter().map(|e| e.samples).sum::<u64>(),
        "bytes": r.expired.iter().map(|e| e.bytes).sum::<u64>(),
        "cutoffs": {"raw": r.cutoffs[0], "5m": r.cutoffs[1], "1h": r.cutoffs[2]}})
}

fn to_text(r: &RetentionReport) -> String {
    let mut o = String::new();
    for (t, c) in TIERS.iter().zip(r.cutoffs) {
        if let Some(c) = c {
            let _ = writeln!(o, "{t:<4} keeps data from {}", times::format_ts(c));
        }
    }
    if r.expired.is_empty() {
        o.push_str("nothing has expired\n");
        return o;
    }
    for e in &r.expired {
        let _ = writeln!(
            o,
            "{} segment {:x} ({}, {} → {}): {} samples, {} — {}",
            if r.applied { "dropped" } else { "would drop" },
            e.segment,
            TIERS.get(usize::from(e.tier)).copied().unwrap_or("?"),
            times::format_ts(e.min_t),
            times::format_ts(e.max_t),
            human::count(e.samples),
            human::bytes(e.bytes),
            e.reason
        );
    }
    let samples: u64 = r.expired.iter().map(|e| e.samples).sum();
    let bytes: u64 = r.expired.iter().map(|e| e.bytes).sum();
    let _ = writeln!(
        o,
        "{}: {} samples, {}{}",
        if r.applied { "dropped" } else { "would drop" },
        human::count(samples),
        human::bytes(bytes),
        if r.applied { "" } else { " (run with --apply to drop)" }
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ops::Expired;

    #[test]
    fn formats_reports() {
        let r = RetentionReport {
            expired: vec![Expired {
                segment: 0x1f,
                tier: 0,
                min_t: 0,
                max_t: 1000,
                samples: 5000,
                bytes: 4096,
                reason: "raw older than 7d".into(),
            }],
            cutoffs: [Some(86_400_000), None, None],
            applied: false,
        };
        let t = to_text(&r);
        assert!(t.contains("would drop segment 1f (raw") && t.contains("raw older than 7d"), "{t}");
        assert!(t.contains("run with --apply") && t.contains("raw  keeps data from 1970-01-02"), "{t}");
        assert_eq!(to_json(&r)["bytes"], 4096);
        assert!(to_text(&RetentionReport::default()).contains("nothing has expired"));
    }
}
