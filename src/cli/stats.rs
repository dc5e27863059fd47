//! `strata stats`: what a database holds and how well it compresses.

use std::fmt::Write as _;

use serde_json::json;
use strata::Stats;

use super::remote::{Remote, Target};
use super::{human, open_existing, times, CliError, CliResult, DataDir};

/// Bytes a raw sample takes uncompressed: an i64 timestamp and an f64 value.
const RAW_SAMPLE_BYTES: f64 = 16.0;
const TIERS: [&str; 3] = ["raw", "5m", "1h"];

/// Show series, samples, disk use per tier and compression.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Show what a database holds: series, samples, bytes on disk per tier, compression \
        (bytes per sample of the raw tier's segments, and the ratio against 16 B per raw sample), \
        segments, time range, head and WAL size.",
    after_help = "Examples:\n  strata stats --data ./data\n  strata stats --data ./data --json | jq .bytes_per_sample\n  \
        strata stats --url http://127.0.0.1:9464"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    target: Target,
    /// Output JSON.
    #[arg(long)]
    json: bool,
    /// Show one metric instead: its type, unit and help, series, samples and time range.
    #[arg(long, value_name = "NAME")]
    metric: Option<String>,
}

pub fn run(a: Args) -> CliResult {
    if let Some(name) = &a.metric {
        return metric(&a, name);
    }
    let (place, st) = match Remote::from(&a.target)? {
        Some(remote) => {
            let url = a.target.url.clone().unwrap_or_default();
            (url, from_status(&remote.call("GET", "/db/status", None)?)?)
        }
        None => {
            let db = open_existing(&a.data.data)?;
            let st = db.stats()?;
            db.close()?;
            (a.data.data.display().to_string(), st)
        }
    };
    if a.json {
        println!("{}", to_json(&st));
    } else {
        print!("{}", to_text(&place, &st));
    }
    Ok(())
}

/// `--metric NAME`: the fields of `GET /metrics/{name}/info` that describe it, from
/// the server or the local database alike.
fn metric(a: &Args, name: &str) -> CliResult {
    let v = match Remote::from(&a.target)? {
        Some(remote) => {
            let i = remote.call("GET", &format!("/metrics/{}/info", super::remote::encode(name)), None)?;
            json!({
                "metric_name": name, "type": i["type"], "unit": i["unit"], "description": i["description"],
                "series_count": i["series_count"], "sample_count": i["sample_count"],
                "first_timestamp_ms": i["first_timestamp_ms"], "last_timestamp_ms": i["last_timestamp_ms"],
            })
        }
        None => {
            let db = open_existing(&a.data.data)?;
            let (info, meta) = (db.metric_info(name)?, db.metadata(name));
            db.close()?;
            if info.is_none() && meta.is_none() {
                return Err(CliError::new(format!("no metric named {name:?} (no series and no metadata)")));
            }
            let meta = meta.unwrap_or_default();
            json!({
                "metric_name": name, "type": meta.kind.as_str(), "unit": meta.unit, "description": meta.help,
                "series_count": info.as_ref().map_or(0, |i| i.series),
                "sample_count": info.as_ref().map_or(0, |i| i.samples),
                "first_timestamp_ms": info.as_ref().and_then(|i| i.first_ts),
                "last_timestamp_ms": info.as_ref().and_then(|i| i.last_ts),
            })
        }
    };
    if a.json {
        println!("{v}");
        return Ok(());
    }
    let text = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).unwrap_or("-").to_string();
    let count = |k: &str| human::count(v[k].as_u64().unwrap_or(0));
    let mut o = String::new();
    let mut line = |k: &str, val: String| {
        let _ = writeln!(o, "{k:<14} {val}");
    };
    line("metric", name.to_string());
    line("type", text("type"));
    line("unit", text("unit"));
    line("help", text("description"));
    line("series", count("series_count"));
    line("samples", count("sample_count"));
    let range = match (v["first_timestamp_ms"].as_i64(), v["last_timestamp_ms"].as_i64()) {
        (Some(a), Some(b)) => format!("{} → {}", times::format_ts(a), times::format_ts(b)),
        _ => "empty".into(),
    };
    line("time range", range);
    print!("{o}");
    Ok(())
}

/// The server's `GET /db/status` answer as the `Stats` it was made from.
fn from_status(v: &serde_json::Value) -> CliResult<Stats> {
    let n = |path: &[&str]| -> CliResult<u64> {
        let mut x = v;
        for k in path {
            x = &x[*k];
        }
        x.as_u64().ok_or_else(|| CliError::new(format!("GET /db/status: field {} is missing", path.join("."))))
    };
    let tiers = |k: &str| -> CliResult<[u64; 3]> { Ok([n(&[k, "raw"])?, n(&[k, "5m"])?, n(&[k, "1h"])?]) };
    Ok(Stats {
        series: n(&["series"])?,
        head_series: n(&["head", "series"])?,
        head_samples: n(&["head", "samples"])?,
        head_samples_written: n(&["head", "samples_written"])?,
        distinct_samples: n(&["samples"])?,
        head_bytes: n(&["head", "bytes"])?,
        frozen_heads: n(&["head", "frozen_heads"])? as usize,
        segments: n(&["segments"])? as usize,
        segment_samples: tiers("segment_samples")?,
        disk_bytes: tiers("disk_bytes")?,
        wal_bytes: n(&["wal", "disk_bytes"])?,
        oldest: v["oldest_ms"].as_i64(),
        newest: v["newest_ms"].as_i64(),
    })
}

/// Bytes per sample of the raw tier's segments, if any are sealed.
fn bytes_per_sample(st: &Stats) -> Option<f64> {
    (st.segment_samples[0] > 0).then(|| st.disk_bytes[0] as f64 / st.segment_samples[0] as f64)
}

pub fn to_json(st: &Stats) -> serde_json::Value {
    let bps = bytes_per_sample(st);
    let tiers = |v: [u64; 3]| json!({TIERS[0]: v[0], TIERS[1]: v[1], TIERS[2]: v[2]});
    json!({
        "series": st.series,
        "samples": st.samples(),
        "segment_samples": tiers(st.segment_samples),
        "disk_bytes": tiers(st.disk_bytes),
        "disk_bytes_total": st.disk_bytes.iter().sum::<u64>(),
        "bytes_per_sample": bps,
        "compression_ratio": bps.map(|b| RAW_SAMPLE_BYTES / b),
        "segments": st.segments,
        "oldest": st.oldest,
        "newest": st.newest,
        "oldest_rfc3339": st.oldest.map(times::format_ts),
        "newest_rfc3339": st.newest.map(times::format_ts),
        "head_series": st.head_series,
        "head_samples": st.head_samples,
        "head_samples_written": st.head_samples_written,
        "head_bytes": st.head_bytes,
        "frozen_heads": st.frozen_heads,
        "wal_bytes": st.wal_bytes,
    })
}

pub fn to_text(dir: &str, st: &Stats) -> String {
    let mut o = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(o, "{k:<14} {v}");
    };
    line("data", dir.to_string());
    line("series", human::count(st.series));
    line(
        "samples",
        format!(
            "{} ({} stored in raw segments, {} in the head)",
            human::count(st.samples()),
            human::count(st.segment_samples[0]),
            human::count(st.head_samples)
        ),
    );
    let range = match (st.oldest, st.newest) {
        (Some(a), Some(b)) => {
            format!("{} → {} ({})", times::format_ts(a), times::format_ts(b), times::format_duration(b - a))
        }
        _ => "empty".into(),
    };
    line("time range", range);
    line("segments", human::count(st.segments as u64));
    let tiers: Vec<String> = TIERS.iter().zip(st.disk_bytes).map(|(t, b)| format!("{t} {}", human::bytes(b))).collect();
    line("disk by tier", format!("{} (total {})", tiers.join(", "), human::bytes(st.disk_bytes.iter().sum())));
    line(
        "compression",
        match bytes_per_sample(st) {
            Some(b) => {
                format!("{b:.3} bytes/sample in raw segments, {:.1}× smaller than 16 B raw", RAW_SAMPLE_BYTES / b)
            }
            None => "n/a: nothing sealed into segments yet".into(),
        },
    );
    line(
        "head",
        format!(
            "{} samples ({} written) in {} series, {} in memory{}",
            human::count(st.head_samples),
            human::count(st.head_samples_written),
            human::count(st.head_series),
            human::bytes(st.head_bytes),
            if st.frozen_heads > 0 { format!(" ({} frozen awaiting seal)", st.frozen_heads) } else { String::new() }
        ),
    );
    line("WAL", human::bytes(st.wal_bytes));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_compression() {
        let st = Stats {
            series: 1000,
            segment_samples: [8_000_000, 0, 0],
            disk_bytes: [5_600_000, 0, 0],
            head_samples: 640_000,
            distinct_samples: 8_640_000,
            segments: 4,
            oldest: Some(0),
            newest: Some(86_400_000),
            ..Default::default()
        };
        let j = to_json(&st);
        assert_eq!(j["samples"], 8_640_000);
        assert_eq!(j["bytes_per_sample"], 0.7);
        assert!((j["compression_ratio"].as_f64().unwrap() - 16.0 / 0.7).abs() < 1e-9);
        let t = to_text("d", &st);
        assert!(t.contains("0.700 bytes/sample") && t.contains("22.9×") && t.contains("(1d)"), "{t}");
        assert!(to_text("d", &Stats::default()).contains("nothing sealed"));
        assert!(to_json(&Stats::default())["bytes_per_sample"].is_null());
    }
}
