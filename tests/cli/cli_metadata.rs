//! Metric metadata through the CLI: `strata import` reads `# HELP`/`# TYPE`/`# UNIT`
//! lines, `strata export` writes them back (locally and from a server), and
//! `strata stats --metric` shows them.
#![cfg(feature = "cli")]

use crate::support::cli_support::{fails, json, ok};

const TEXT: &str = "# HELP job_seconds Job run time.\n# TYPE job_seconds summary\n# UNIT job_seconds seconds\n\
job_seconds_count{job=\"a\"} 3 1000\njob_seconds_sum{job=\"a\"} 4.5 1000\n\
# TYPE temp_celsius gauge\ntemp_celsius 21.5 1000\n";

#[test]
fn import_export_round_trip_and_stats_metric() {
    let dir = tempfile::tempdir().unwrap();
    let (d, input) = (dir.path().join("db"), dir.path().join("in.prom"));
    let d = d.to_str().unwrap();
    std::fs::write(&input, TEXT).unwrap();
    let out = ok(&["import", "--data", d, input.to_str().unwrap()]);
    assert!(out.contains("metadata (HELP/TYPE/UNIT) recorded for 2 metrics"), "{out}");

    let s = json(&ok(&["stats", "--data", d, "--metric", "job_seconds", "--json"]));
    assert_eq!(
        (&s["type"], &s["unit"], &s["description"]),
        (&"summary".into(), &"seconds".into(), &"Job run time.".into())
    );
    // The family has no series of its own name; its series carry the suffixes.
    assert_eq!(s["series_count"], 0);
    let text = ok(&["stats", "--data", d, "--metric", "temp_celsius"]);
    assert!(text.contains("type           gauge") && text.contains("unit           -"), "{text}");
    assert!(text.contains("series         1"), "{text}");
    let err = fails(&["stats", "--data", d, "--metric", "absent"]);
    assert!(err.contains("no metric named \"absent\""), "{err}");

    for format in ["prometheus", "openmetrics"] {
        let exported = ok(&["export", "--data", d, "--format", format]);
        assert!(
            exported.contains("# HELP job_seconds Job run time.\n# TYPE job_seconds summary\n# UNIT job_seconds seconds\njob_seconds_count"),
            "{exported}"
        );
        let file = dir.path().join(format!("out.{format}"));
        std::fs::write(&file, &exported).unwrap();
        let again = dir.path().join(format!("again-{format}"));
        ok(&["import", "--data", again.to_str().unwrap(), file.to_str().unwrap()]);
        let a = json(&ok(&["stats", "--data", again.to_str().unwrap(), "--metric", "job_seconds", "--json"]));
        assert_eq!(a["description"], "Job run time.");
        assert_eq!(a["unit"], "seconds");
    }
}
