//! `strata delete`: removes the samples of matching series in a time range, for good
//! (`Db::delete`), and says exactly what it removed.

use serde_json::json;

use super::remote::{encode, Remote, Target};
use super::{human, open_existing, times, CliError, CliResult, DataDir};
use strata::text::selector;

/// Delete the samples of matching series in a time range.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Delete every sample of the series the selector matches between --start and --end \
        (inclusive; both default to unbounded). The head is sealed first, and every segment holding such \
        data is rewritten without it in one atomic step: the samples do not come back after a crash, a WAL \
        replay or a compaction. Rollup buckets overlapping the range are removed whole, then recomputed \
        from what remains. `{}` selects every series (with --end, this prunes everything before a time).",
    after_help = "Examples:\n  strata delete 'cpu_usage{host=\"h1\"}' --start 2026-11-01 --end 2026-11-02 --data ./data\n  \
        strata delete '{}' --end -30d --data ./data"
)]
pub struct Args {
    /// Series selector, e.g. 'cpu{host="a"}'; '{}' selects every series.
    selector: String,
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    target: Target,
    /// First timestamp deleted (RFC 3339, a date, epoch seconds or ms, now-1h, -1h). Default: the beginning.
    #[arg(long, allow_hyphen_values = true)]
    start: Option<String>,
    /// Last timestamp deleted, inclusive. Default: the end of time.
    #[arg(long, allow_hyphen_values = true)]
    end: Option<String>,
    /// Output JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult {
    let (start, end) = times::inclusive_range(a.start.as_deref(), a.end.as_deref()).map_err(CliError::new)?;
    let matchers = if a.selector.trim() == "{}" {
        Vec::new()
    } else {
        selector::parse_selector(&a.selector).map_err(|e| CliError::new(format!("{e}\n{}", e.pointer())))?
    };
    if let Some(remote) = Remote::from(&a.target)? {
        let secs = |t: i64| encode(&times::format_ts(t));
        let mut path = format!("/api/v1/admin/tsdb/delete_series?match[]={}", encode(&a.selector));
        if start != i64::MIN {
            path.push_str(&format!("&start={}", secs(start)));
        }
        if end != i64::MAX {
            path.push_str(&format!("&end={}", secs(end)));
        }
        let v = remote.call("POST", &path, None)?;
        let d = &v["data"];
        if a.json {
            println!("{d}");
        } else {
            println!(
                "deleted {} samples and {} rollup buckets from {} of {} matching series; {} segments rewritten, {} removed",
                d["samples"], d["buckets"], d["series_affected"], d["series_matched"], d["segments_rewritten"], d["segments_removed"]
            );
        }
        return Ok(());
    }
    let db = open_existing(&a.data.data)?;
    let r = db.delete(&matchers, start..=end)?;
    db.close()?;
    let bound =
        |t: i64, open: &str| if t == i64::MIN || t == i64::MAX { open.to_string() } else { times::format_ts(t) };
    if a.json {
        println!(
            "{}",
            json!({"start": r.start, "end": r.end, "series_matched": r.series_matched,
                "series_affected": r.series_affected, "samples": r.samples, "buckets": r.buckets,
                "segments_rewritten": r.segments_rewritten, "segments_removed": r.segments_removed})
        );
    } else {
        println!(
            "deleted {} samples and {} rollup buckets from {} of {} matching series, {} → {}; {} segments \
             rewritten, {} removed",
            human::count(r.samples),
            human::count(r.buckets),
            r.series_affected,
            r.series_matched,
            bound(r.start, "the beginning"),
            bound(r.end, "the end"),
            r.segments_rewritten,
            r.segments_removed
        );
    }
    Ok(())
}
