//! `strata retention`: shows the recorded policy and what it would remove (dry run),
//! removes it with --apply, and changes the recorded policy with `set` and `rule`.
//! Dry run and --apply both use the engine's one retention plan.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;
use strata::retention::archive::ArchivedFile;
use strata::retention::{human_duration, DropKind, RetentionSummary, SegmentDrop};
use strata::{Db, RetentionPolicy, RetentionRule, StoredTier, TierDurations};

use super::remote::{encode, Remote, Target};
use super::{fail, human, open_existing, times, CliError, CliResult, DataDir};
use strata::text::selector;

const TIERS: [&str; 3] = ["raw", "5m", "1h"];

/// Show the recorded retention and what it removes; change it with `set` and `rule`.
#[derive(clap::Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    long_about = "Retention is recorded in the data directory (its SETTINGS file) and applies to every \
        process that opens it. Without a subcommand: show the policy, its rules, and exactly what applying \
        it now would remove (a dry run; --apply removes it, which DELETES data). `set` and `rule` change \
        the recorded policy; the change applies at the next maintenance pass of whatever process has the \
        directory open next.",
    after_help = "Examples:\n  strata retention --data ./data\n  strata retention --data ./data --apply\n  \
        strata retention set --data ./data --preset tiered --max-disk 10GiB\n  \
        strata retention rule add debug --metric 'debug_*' --match '{env=\"dev\"}' --raw 1d --data ./data\n  \
        strata retention rule remove debug --data ./data"
)]
pub struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    target: Target,
    /// Remove what the policy says has expired (default: only report it).
    #[arg(long)]
    apply: bool,
    /// Output JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Record new per-tier defaults and/or disk cap (rules are kept).
    Set(SetArgs),
    /// List, add or remove per-metric rules.
    #[command(subcommand)]
    Rule(RuleCmd),
}

#[derive(clap::Args, Debug)]
struct SetArgs {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    target: Target,
    /// Start from a preset: forever, or tiered (raw 7d, 5m 30d, 1h 365d).
    #[arg(long, value_parser = ["forever", "tiered"])]
    preset: Option<String>,
    #[command(flatten)]
    tiers: TierArgs,
    /// Cap on segment, WAL and head bytes, e.g. 10GiB (the oldest data goes first), or `none`.
    #[arg(long, value_name = "SIZE|none")]
    max_disk: Option<String>,
    /// Write raw data as Parquet under DIR (relative paths are relative to the data
    /// directory) before retention removes it, or `none` to stop archiving.
    #[arg(long, value_name = "DIR|none")]
    archive_dir: Option<std::path::PathBuf>,
}

#[derive(clap::Args, Debug, Default)]
struct TierArgs {
    /// Keep raw samples this long, e.g. 7d, or `forever`.
    #[arg(long, value_parser = parse_keep)]
    raw: Option<Duration>,
    /// Keep 5-minute rollups this long, e.g. 30d, or `forever`.
    #[arg(long = "5m", alias = "tier-5m", value_parser = parse_keep)]
    five_min: Option<Duration>,
    /// Keep hourly rollups this long, e.g. 365d, or `forever`.
    #[arg(long = "1h", alias = "tier-1h", value_parser = parse_keep)]
    hour: Option<Duration>,
}

#[derive(clap::Subcommand, Debug)]
enum RuleCmd {
    /// List the rules in precedence order, with the series each governs.
    List {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        json: bool,
    },
    /// Add a rule: series whose metric name matches --metric and every --match get its durations.
    Add {
        /// A unique name for the rule.
        name: String,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        target: Target,
        /// Shell-style glob on the metric name: *, ?, [a-z].
        #[arg(long, default_value = "*")]
        metric: String,
        /// Label matchers, as a selector: '{env="dev",host=~"h.*"}'.
        #[arg(long = "match", value_name = "SELECTOR")]
        matchers: Option<String>,
        /// Among matching rules the highest priority wins (ties: the rule added first).
        #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
        priority: i32,
        /// Durations; a tier not given keeps its data forever.
        #[command(flatten)]
        tiers: TierArgs,
    },
    /// Remove the rule of that name.
    Remove {
        name: String,
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        target: Target,
    },
}

/// A positive duration or `forever`.
fn parse_keep(s: &str) -> Result<Duration, String> {
    if s == "forever" {
        return Ok(TierDurations::FOREVER);
    }
    match times::parse_duration(s)? {
        ms if ms > 0 => Ok(Duration::from_millis(ms as u64)),
        _ => Err("a retention must be positive (or `forever`)".into()),
    }
}

pub fn run(a: Args) -> CliResult {
    match a.cmd {
        None => match Remote::from(&a.target)? {
            Some(r) => show_remote(&r, a.apply, a.json),
            None => show(&a.data, a.apply, a.json),
        },
        Some(Cmd::Set(s)) if nothing_to_set(&s) => {
            fail("nothing to set: give --preset, --raw, --5m, --1h, --max-disk or --archive-dir")
        }
        Some(Cmd::Set(s)) => match Remote::from(&s.target)? {
            Some(r) => set_remote(&r, &s),
            None => set(s),
        },
        Some(Cmd::Rule(RuleCmd::List { data, target, json })) => {
            let summary = match Remote::from(&target)? {
                Some(r) => {
                    let v = r.call("GET", "/admin/retention", None)?;
                    if json {
                        println!("{v}");
                    } else {
                        print!("{}", remote_policy_text(&v));
                    }
                    return Ok(());
                }
                None => {
                    let db = open_existing(&data.data)?;
                    let s = db.retention_summary();
                    db.close()?;
                    s
                }
            };
            if json {
                println!("{}", summary_json(&summary));
            } else {
                print!("{}", summary_text(&summary));
            }
            Ok(())
        }
        Some(Cmd::Rule(RuleCmd::Add { name, data, target, metric, matchers, priority, tiers })) => {
            if tiers.raw.is_none() && tiers.five_min.is_none() && tiers.hour.is_none() {
                return fail("give at least one of --raw, --5m, --1h for the rule");
            }
            let m = match matchers.as_deref() {
                Some(sel) => selector::parse_selector(sel)
                    .map_err(|e| CliError::new(format!("--match: {e}\n{}", e.pointer())))?,
                None => Vec::new(),
            };
            let forever = TierDurations::FOREVER;
            let d = TierDurations::new(
                tiers.raw.unwrap_or(forever),
                tiers.five_min.unwrap_or(forever),
                tiers.hour.unwrap_or(forever),
            );
            let rule = RetentionRule::new(name.clone(), metric, m, priority, d)?;
            if let Some(r) = Remote::from(&target)? {
                let body = json!({"name": rule.name(), "metric": rule.metric_glob(),
                    "matchers": format!("{{{}}}", rule.matchers().iter().map(|m| m.to_string()).collect::<Vec<_>>().join(",")),
                    "priority": rule.priority(), "durations": tiers_json(rule.durations())});
                let v = r.call("POST", "/admin/retention/rules", Some(&body))?;
                println!("added rule {name:?}; recorded policy now:");
                print!("{}", remote_policy_text(&v));
                return Ok(());
            }
            let db = open_existing(&data.data)?;
            db.add_retention_rule(rule)?;
            let summary = db.retention_summary();
            db.close()?;
            println!("added rule {name:?}; recorded policy now:");
            print!("{}", summary_text(&summary));
            Ok(())
        }
        Some(Cmd::Rule(RuleCmd::Remove { name, data, target })) => {
            if let Some(r) = Remote::from(&target)? {
                r.call("DELETE", &format!("/admin/retention/rules/{}", encode(&name)), None)?;
                println!("removed rule {name:?}");
                return Ok(());
            }
            let db = open_existing(&data.data)?;
            let found = db.remove_retention_rule(&name)?;
            db.close()?;
            if !found {
                return fail(format!("no retention rule named {name:?}"));
            }
            println!("removed rule {name:?}");
            Ok(())
        }
    }
}

fn tiers_json(d: &TierDurations) -> serde_json::Value {
    json!({"raw": keep(d.raw), "5m": keep(d.five_min), "1h": keep(d.hour)})
}

/// The server's policy JSON (`GET /admin/retention`) as the local listing shows it.
fn remote_policy_text(v: &serde_json::Value) -> String {
    let mut o = String::new();
    let t = |d: &serde_json::Value| {
        format!(
            "raw {}, 5m {}, 1h {}",
            d["raw"].as_str().unwrap_or("?"),
            d["5m"].as_str().unwrap_or("?"),
            d["1h"].as_str().unwrap_or("?")
        )
    };
    let _ = writeln!(o, "default   {}", t(&v["defaults"]));
    let _ = writeln!(o, "disk cap  {}", v["max_disk_bytes"].as_u64().map_or("none".into(), human::bytes));
    if let Some(d) = v["archive_dir"].as_str() {
        let _ = writeln!(o, "archive   {d} (raw data is written there as Parquet before retention removes it)");
    }
    let rules = v["rules"].as_array().cloned().unwrap_or_default();
    if rules.is_empty() {
        o.push_str("rules     none\n");
    }
    for r in rules {
        let _ = writeln!(
            o,
            "rule      {} priority {}: {}{} {}{}",
            r["name"],
            r["priority"],
            r["metric"].as_str().unwrap_or("*"),
            r["matchers"].as_str().unwrap_or("{}"),
            t(&r["durations"]),
            r["series"].as_u64().map_or(String::new(), |n| format!(" ({n} series)"))
        );
    }
    o
}

fn remote_drops_text(drops: &serde_json::Value, done: bool) -> String {
    let mut o = String::new();
    let list = drops.as_array().cloned().unwrap_or_default();
    for d in &list {
        let _ = writeln!(
            o,
            "{} segment {:x} ({}, {} → {}): {}",
            match (d["action"].as_str(), done) {
                (Some("trimmed"), true) => "trimmed",
                (Some("trimmed"), false) => "would trim",
                (_, true) => "removed",
                (_, false) => "would remove",
            },
            d["segment"].as_u64().unwrap_or(0),
            d["tier"].as_str().unwrap_or("?"),
            d["min_t"].as_str().unwrap_or("?"),
            d["max_t"].as_str().unwrap_or("?"),
            d["reason"].as_str().unwrap_or("")
        );
    }
    if list.is_empty() {
        o.push_str("nothing has expired\n");
    }
    o
}

fn show_remote(r: &Remote, apply: bool, json: bool) -> CliResult {
    let policy = r.call("GET", "/admin/retention", None)?;
    let drops = if apply {
        r.call("POST", "/admin/retention/apply", None)?["removed"].clone()
    } else {
        policy["would_remove"].clone()
    };
    if json {
        println!("{}", json!({"applied": apply, "policy": policy, "removed": drops}));
        return Ok(());
    }
    print!("{}{}", remote_policy_text(&policy), remote_drops_text(&drops, apply));
    if !apply && drops.as_array().is_some_and(|l| !l.is_empty()) {
        println!("(dry run: run with --apply to remove it)");
    }
    Ok(())
}

fn set_remote(r: &Remote, s: &SetArgs) -> CliResult {
    let mut v = r.call("GET", "/admin/retention", None)?;
    let old = remote_policy_text(&v);
    if let Some(p) = &s.preset {
        let d = if p == "tiered" { TierDurations::tiered() } else { TierDurations::forever() };
        v["defaults"] = tiers_json(&d);
    }
    for (k, d) in [("raw", s.tiers.raw), ("5m", s.tiers.five_min), ("1h", s.tiers.hour)] {
        if let Some(d) = d {
            v["defaults"][k] = json!(keep(d));
        }
    }
    match s.max_disk.as_deref() {
        None => {}
        Some("none") => v["max_disk_bytes"] = serde_json::Value::Null,
        Some(b) => {
            v["max_disk_bytes"] = json!(human::parse_bytes(b).map_err(|e| CliError::new(format!("--max-disk: {e}")))?)
        }
    }
    match &s.archive_dir {
        None => {}
        Some(p) if p.as_os_str() == "none" => v["archive_dir"] = serde_json::Value::Null,
        Some(p) => v["archive_dir"] = json!(p.to_string_lossy()),
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("would_remove");
        for rule in o.get_mut("rules").and_then(|r| r.as_array_mut()).into_iter().flatten() {
            if let Some(ro) = rule.as_object_mut() {
                ro.remove("series");
            }
        }
    }
    let new = r.call("PUT", "/admin/retention", Some(&v))?;
    println!("retention was:\n{old}retention now:\n{}", remote_policy_text(&new));
    Ok(())
}

fn nothing_to_set(s: &SetArgs) -> bool {
    s.preset.is_none()
        && s.max_disk.is_none()
        && s.archive_dir.is_none()
        && [s.tiers.raw, s.tiers.five_min, s.tiers.hour].iter().all(Option::is_none)
}

fn set(s: SetArgs) -> CliResult {
    let db = open_existing(&s.data.data)?;
    let old = db.retention_policy();
    let mut d = match s.preset.as_deref() {
        Some("tiered") => TierDurations::tiered(),
        Some(_) => TierDurations::forever(),
        None => *old.default_durations(),
    };
    d.raw = s.tiers.raw.unwrap_or(d.raw);
    d.five_min = s.tiers.five_min.unwrap_or(d.five_min);
    d.hour = s.tiers.hour.unwrap_or(d.hour);
    let cap = match s.max_disk.as_deref() {
        None => old.max_disk_bytes(),
        Some("none") => None,
        Some(v) => Some(human::parse_bytes(v).map_err(|e| CliError::new(format!("--max-disk: {e}")))?),
    };
    let archive = match s.archive_dir {
        None => old.archive_dir().map(|p| p.to_path_buf()),
        Some(p) if p.as_os_str() == "none" => None,
        Some(p) => Some(p),
    };
    let new: RetentionPolicy = old.clone().with_defaults(d)?.with_max_disk_bytes(cap).with_archive_dir(archive)?;
    db.set_retention(new.clone())?;
    let plan = db.retention_plan();
    db.close()?;
    println!("retention was: {old}");
    println!("retention now: {new}");
    print!("{}", drops_text(&plan.drops, false));
    Ok(())
}

fn show(data: &DataDir, apply: bool, json: bool) -> CliResult {
    let db = open_existing(&data.data)?;
    let summary = db.retention_summary();
    let plan = db.retention_plan();
    let (drops, archived, errors) = if apply { apply_now(&db)? } else { (plan.drops.clone(), Vec::new(), Vec::new()) };
    db.close()?;
    if json {
        let cutoffs = json!({"raw": plan.cutoffs[0], "5m": plan.cutoffs[1], "1h": plan.cutoffs[2]});
        let out = json!({"applied": apply, "policy": summary_json(&summary), "cutoffs": cutoffs,
            "removed": drops_json(&drops), "archived": archived_json(&archived), "archive_errors": errors,
            "samples": drops.iter().filter(|d| d.tier == StoredTier::Raw).filter_map(|d| d.items_removed).sum::<u64>(),
            "bytes": drops.iter().filter(|d| d.kind != DropKind::Trimmed).map(|d| d.bytes).sum::<u64>()});
        println!("{out}");
        return Ok(());
    }
    let mut o = summary_text(&summary);
    for (t, c) in TIERS.iter().zip(plan.cutoffs) {
        if let Some(c) = c {
            let _ = writeln!(o, "{t:<4} keeps data from {} (longest of the defaults and rules)", times::format_ts(c));
        }
    }
    o.push_str(&drops_text(&drops, apply));
    o.push_str(&archived_text(&archived, &errors));
    if drops.is_empty() && errors.is_empty() {
        o.push_str("nothing has expired\n");
    } else if !apply {
        o.push_str("(dry run: run with --apply to remove it)\n");
    }
    print!("{o}");
    Ok(())
}

/// Applies retention: what it removed, the archive files it wrote first, and the
/// removals it skipped because their archive failed.
fn apply_now(db: &Db) -> CliResult<(Vec<SegmentDrop>, Vec<ArchivedFile>, Vec<String>)> {
    let r = db.apply_retention().map_err(|e| CliError::new(format!("retention: {e}")))?;
    Ok((r.removed, r.archived, r.archive_errors))
}

/// One line per removal, then a total; empty when there is nothing.
pub(super) fn drops_text(drops: &[SegmentDrop], done: bool) -> String {
    let mut o = String::new();
    for d in drops {
        let what = if d.tier.is_rollup() { "buckets" } else { "samples" };
        let n = match d.items_removed {
            Some(n) => format!("{} of {} {what}", human::count(n), human::count(d.items)),
            None => format!("part of {} {what}", human::count(d.items)),
        };
        let _ = writeln!(
            o,
            "{} segment {:x} ({}, {} → {}): {n}, {}: {}",
            match (d.kind, done) {
                (DropKind::Trimmed, true) => "trimmed",
                (DropKind::Trimmed, false) => "would trim",
                (_, true) => "removed",
                (_, false) => "would remove",
            },
            d.segment,
            d.tier.name(),
            times::format_ts(d.min_t),
            times::format_ts(d.max_t),
            human::bytes(d.bytes),
            d.reason
        );
    }
    if !drops.is_empty() {
        let samples: u64 = drops.iter().filter(|d| d.tier == StoredTier::Raw).filter_map(|d| d.items_removed).sum();
        let buckets: u64 = drops.iter().filter(|d| d.tier.is_rollup()).filter_map(|d| d.items_removed).sum();
        let _ = writeln!(
            o,
            "{} {} segments: {} raw samples, {} rollup buckets{}",
            if done { "retention removed from" } else { "retention would remove from" },
            drops.len(),
            human::count(samples),
            human::count(buckets),
            if drops.iter().any(|d| d.items_removed.is_none()) {
                " (plus the expired part of trimmed segments)"
            } else {
                ""
            }
        );
    }
    o
}

pub(super) fn drops_json(drops: &[SegmentDrop]) -> serde_json::Value {
    drops
        .iter()
        .map(|d| {
            json!({"segment": d.segment, "tier": d.tier.name(),
                "action": d.kind.as_str(), "min_t": d.min_t, "max_t": d.max_t, "items": d.items,
                "items_removed": d.items_removed, "bytes": d.bytes, "reason": d.reason})
        })
        .collect()
}

fn keep(d: Duration) -> String {
    human_duration(d)
}

fn summary_text(s: &RetentionSummary) -> String {
    let mut o = String::new();
    let d = &s.defaults;
    let _ = writeln!(o, "default   raw {}, 5m {}, 1h {}", keep(d.raw), keep(d.five_min), keep(d.hour));
    let _ = writeln!(o, "disk cap  {}", s.max_disk_bytes.map_or("none".into(), human::bytes));
    if let Some(d) = &s.archive_dir {
        let _ = writeln!(o, "archive   {d} (raw data is written there as Parquet before retention removes it)");
    }
    if s.rules.is_empty() {
        o.push_str("rules     none\n");
    }
    for r in &s.rules {
        let _ = writeln!(
            o,
            "rule      {:?} priority {}: {}{{{}}} raw {}, 5m {}, 1h {}{}",
            r.name,
            r.priority,
            r.metric_glob,
            r.matchers.join(","),
            keep(r.durations.raw),
            keep(r.durations.five_min),
            keep(r.durations.hour),
            r.matching_series.map_or(String::new(), |n| format!(" ({n} series)"))
        );
    }
    o
}

fn summary_json(s: &RetentionSummary) -> serde_json::Value {
    let tiers = |d: &TierDurations| json!({"raw": keep(d.raw), "5m": keep(d.five_min), "1h": keep(d.hour)});
    let rules: Vec<serde_json::Value> = s
        .rules
        .iter()
        .map(|r| {
            json!({"name": r.name, "metric": r.metric_glob, "matchers": r.matchers, "priority": r.priority,
                "durations": tiers(&r.durations), "series": r.matching_series})
        })
        .collect();
    json!({"defaults": tiers(&s.defaults), "max_disk_bytes": s.max_disk_bytes, "archive_dir": s.archive_dir,
        "rules": rules})
}

/// One line per archive file written, then each removal skipped because its archive
/// failed; empty when there is neither.
pub(super) fn archived_text(files: &[ArchivedFile], errors: &[String]) -> String {
    let mut o = String::new();
    for f in files {
        let _ =
            writeln!(o, "archived {} rows ({}) to {}", human::count(f.rows), human::bytes(f.bytes), f.path.display());
    }
    if files.len() > 1 {
        let rows: u64 = files.iter().map(|f| f.rows).sum();
        let bytes: u64 = files.iter().map(|f| f.bytes).sum();
        let _ = writeln!(o, "archived {} rows in {} files ({})", human::count(rows), files.len(), human::bytes(bytes));
    }
    for e in errors {
        let _ = writeln!(o, "NOT removed: {e}");
    }
    o
}

pub(super) fn archived_json(files: &[ArchivedFile]) -> serde_json::Value {
    files
        .iter()
        .map(|f| json!({"path": f.path.display().to_string(), "day": f.day, "rows": f.rows, "bytes": f.bytes}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_drops() {
        let d = SegmentDrop {
            segment: 0x1f,
            tier: StoredTier::Raw,
            kind: DropKind::Expired,
            min_t: 0,
            max_t: 1000,
            items: 5000,
            bytes: 4096,
            items_removed: Some(5000),
            reason: "raw data past 7d".into(),
        };
        let t = drops_text(std::slice::from_ref(&d), false);
        assert!(t.contains("would remove segment 1f (raw") && t.contains("raw data past 7d"), "{t}");
        assert!(t.contains("5,000 raw samples"), "{t}");
        assert!(drops_text(std::slice::from_ref(&d), true).starts_with("removed segment 1f"));
        assert_eq!(drops_json(&[d])[0]["items_removed"], 5000);
        assert!(drops_text(&[], true).is_empty());
        assert_eq!(parse_keep("forever"), Ok(TierDurations::FOREVER));
        assert!(parse_keep("0s").is_err());
    }
}
