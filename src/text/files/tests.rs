use proptest::prelude::*;

use super::*;
use crate::text::csv::{write_csv_rows, CSV_HEADER};
use crate::text::jsonl::write_json_lines;

const STALE: u64 = 0x7ff0_0000_0000_0002;

fn awkward_labels() -> Labels {
    Labels::from_pairs([("__name__", "m"), ("q", "a\"b,c\\d\ne\u{1}é\r\t'`}"), ("z", "日本 ,\"\"")]).unwrap()
}

fn awkward_samples() -> Vec<Sample> {
    let vals = [1.5, -0.0, 0.1 + 0.2, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, 5e-324, 1e300];
    vals.iter().enumerate().map(|(i, &v)| Sample::new(i as i64 * 1001 - 3, v)).collect()
}

/// Writes `series` in `format` (header and `# EOF` included) as the exporters do.
fn write(format: FileFormat, series: &[(Labels, Vec<Sample>)]) -> String {
    let mut out = String::new();
    if format == FileFormat::Csv {
        out.push_str(CSV_HEADER);
    }
    for (l, s) in series {
        match format {
            FileFormat::Json => write_json_lines(&mut out, l, s),
            FileFormat::Csv => write_csv_rows(&mut out, l, s),
            FileFormat::Prometheus => {
                write_prometheus(&mut out, l, s);
            }
            FileFormat::OpenMetrics => assert!(write_openmetrics(&mut out, l, s)),
        }
    }
    if format == FileFormat::OpenMetrics {
        out.push_str(OPENMETRICS_EOF);
    }
    out
}

/// Reads `text` back as the importers do, one (labels, sample) per sample.
fn read(format: FileFormat, text: &str) -> Result<Vec<(Labels, Sample)>, ReadError> {
    let mut r = FileReader::new(format);
    let mut out = Vec::new();
    for line in text.split('\n') {
        if let Some((l, samples)) = r.read_line(line)? {
            out.extend(samples.into_iter().map(|s| (l.clone(), s)));
        }
    }
    r.finish()?;
    Ok(out)
}

fn flat(series: &[(Labels, Vec<Sample>)]) -> Vec<(Labels, i64, u64)> {
    series.iter().flat_map(|(l, s)| s.iter().map(move |s| (l.clone(), s.ts, s.value.to_bits()))).collect()
}

fn bits(read: Vec<(Labels, Sample)>) -> Vec<(Labels, i64, u64)> {
    read.into_iter().map(|(l, s)| (l, s.ts, s.value.to_bits())).collect()
}

/// The text formats write every NaN as the canonical one.
fn plain_nans(series: &[(Labels, Vec<Sample>)]) -> Vec<(Labels, i64, u64)> {
    let mut v = flat(series);
    for x in &mut v {
        if f64::from_bits(x.2).is_nan() {
            x.2 = f64::NAN.to_bits();
        }
    }
    v
}

#[test]
fn every_format_reads_back_what_it_wrote() {
    let mut samples = awkward_samples();
    samples.push(Sample::new(100_000, f64::from_bits(STALE)));
    let nameless = Labels::from_pairs([("job", "x,y\"")]).unwrap();
    let series = vec![(awkward_labels(), samples.clone()), (nameless.clone(), samples)];
    for f in [FileFormat::Json, FileFormat::Csv] {
        let text = write(f, &series);
        assert_eq!(FileFormat::detect(text.as_bytes()), f, "{text}");
        assert_eq!(bits(read(f, &text).unwrap()), flat(&series), "{f}");
    }
    let text = write(FileFormat::Prometheus, &series);
    assert_eq!(FileFormat::detect(text.as_bytes()), FileFormat::Prometheus);
    assert_eq!(bits(read(FileFormat::Prometheus, &text).unwrap()), plain_nans(&series));
    let named = &series[..1];
    let text = write(FileFormat::OpenMetrics, named);
    assert_eq!(FileFormat::detect(text.as_bytes()), FileFormat::OpenMetrics, "{text}");
    assert_eq!(bits(read(FileFormat::OpenMetrics, &text).unwrap()), plain_nans(named));
    assert!(!write_openmetrics(&mut String::new(), &nameless, &awkward_samples()));
}

#[test]
fn csv_of_earlier_server_versions_imports() {
    let text = "metric,labels,timestamp,value\nup,\"host=\"\"a,b\"\",x=\"\"q\\\"\"\\\\\\n\"\"\",1000,NaN\nup,,2000,2\n";
    let got = read(FileFormat::Csv, text).unwrap();
    let l = Labels::metric("up", [("host", "a,b"), ("x", "q\"\\\n")]).unwrap();
    assert_eq!(got[0].0, l);
    assert!(got[0].1.value.is_nan());
    assert_eq!(got[1], (Labels::metric("up", Vec::<(&str, &str)>::new()).unwrap(), Sample::new(2000, 2.0)));
}

#[test]
fn csv_without_header_rfc3339_and_records_over_lines() {
    // A quoted field may hold a line break; in a series it can only sit between labels.
    let text = "\"up{a=\"\"x\"\"}\",1970-01-01T00:00:02Z,1\n\"up{a=\"\"x\"\",\nb=\"\"y\"\"}\",3000,2\n\"up\",4,5\n";
    let mut r = FileReader::new(FileFormat::Csv);
    let lines: Vec<_> = text.split('\n').map(|l| r.read_line(l).unwrap()).collect();
    assert_eq!(lines[0].as_ref().unwrap().1, vec![Sample::new(2000, 1.0)]);
    assert_eq!(lines[1], None, "the record goes on");
    assert_eq!(lines[2].as_ref().unwrap().0, Labels::metric("up", [("a", "x"), ("b", "y")]).unwrap());
    assert_eq!(lines[3].as_ref().unwrap().1, vec![Sample::new(4, 5.0)]);
    // An error in a record over several lines names its first line.
    let mut r = FileReader::new(FileFormat::Csv);
    assert_eq!(r.read_line("\"up{a=\"\"x"), Ok(None));
    assert_eq!(r.read_line("y\"\"}\",1,1").unwrap_err().line, 1);
    let e = read(FileFormat::Csv, "series,timestamp,value\n\"open,1,2\n").unwrap_err();
    assert_eq!(e.line, 2);
}

#[test]
fn bad_rows_are_named_by_line_and_column() {
    let mut r = FileReader::new(FileFormat::Csv);
    assert_eq!(r.read_line("series,timestamp,value"), Ok(None));
    assert!(r.read_line("\"up\",5,1").unwrap().is_some());
    let e = r.read_line("\"up\",yesterday,1").unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 3: column 2 (timestamp): invalid timestamp \"yesterday\": expected epoch milliseconds or RFC 3339"
    );
    let e = r.read_line("\"up\",5,lots").unwrap_err();
    assert!(e.to_string().starts_with("line 4: column 3 (value):"), "{e}");
    let e = r.read_line("\"up{a=}\",5,1").unwrap_err();
    assert!(e.to_string().starts_with("line 5: column 1 (series): invalid selector at column"), "{e}");
    let e = r.read_line("up,5").unwrap_err();
    assert_eq!(e.to_string(), "line 6: expected 3 fields (series,timestamp,value), found 2");
    // The reader goes on after a bad row.
    assert!(r.read_line("\"up\",6,1").unwrap().is_some());

    let mut r = FileReader::new(FileFormat::Prometheus);
    assert_eq!(r.read_line("# TYPE up gauge"), Ok(None));
    assert!(r.read_line("up 1").unwrap_err().reason.contains("expected a timestamp (epoch milliseconds)"));
    let mut r = FileReader::new(FileFormat::OpenMetrics);
    assert_eq!(
        r.read_line("up 1 1.5").unwrap(),
        Some((Labels::metric("up", Vec::<(&str, &str)>::new()).unwrap(), vec![Sample::new(1500, 1.0)]))
    );
    assert!(r.read_line("up 1 1.0005").unwrap_err().reason.contains("invalid timestamp"));
    assert_eq!(r.read_line("# EOF"), Ok(None));
}

#[test]
fn detects_formats() {
    let d = |s: &str| FileFormat::detect(s.as_bytes());
    assert_eq!(d("{\"metric\":{}}\n"), FileFormat::Json);
    assert_eq!(d(""), FileFormat::Json);
    assert_eq!(d("{host=\"a\"} 1 1000\n"), FileFormat::Prometheus);
    assert_eq!(d("# HELP up\nup 1 5\n"), FileFormat::Prometheus);
    assert_eq!(d("# TYPE up gauge\nup 1 5.000\n# EOF\n"), FileFormat::OpenMetrics);
    assert_eq!(d("series,timestamp,value\n\"up{}\",1,2\n"), FileFormat::Csv);
    assert_eq!(d("metric,labels,timestamp,value\n"), FileFormat::Csv);
    assert_eq!(d("up,1,2\n"), FileFormat::Csv);
    assert_eq!("ndjson".parse::<FileFormat>(), Ok(FileFormat::Json));
    assert!("xml".parse::<FileFormat>().unwrap_err().contains("json, csv, prometheus or openmetrics"));
}

fn arb_labels() -> impl Strategy<Value = Labels> {
    let name = "[a-zA-Z_][a-zA-Z0-9_]{0,6}";
    let value = prop_oneof![
        "[a-z]{1,4}",
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just(','),
                Just('\n'),
                Just('\r'),
                Just('é'),
                Just('}'),
                Just('{'),
                Just(' '),
                Just('\u{0}'),
                Just('\u{2028}')
            ],
            1..8
        )
        .prop_map(|v| v.into_iter().collect::<String>()),
    ];
    let metric = proptest::option::of("[a-zA-Z_:][a-zA-Z0-9_:]{0,8}");
    (metric, proptest::collection::btree_map(name, value, 0..4)).prop_filter_map(
        "a series needs a label",
        |(m, pairs)| {
            let pairs =
                pairs.into_iter().filter(|(k, _)| !k.starts_with("__")).chain(m.map(|m| ("__name__".to_string(), m)));
            Labels::from_pairs(pairs).ok()
        },
    )
}

fn arb_samples() -> impl Strategy<Value = Vec<Sample>> {
    let value = prop_oneof![any::<u64>().prop_map(f64::from_bits), any::<f64>(), Just(f64::NAN), Just(-0.0)];
    proptest::collection::vec((any::<i64>(), value), 1..6)
        .prop_map(|v| v.into_iter().map(|(t, x)| Sample::new(t, x)).collect())
}

proptest! {
    /// Write then read is the identity, bit for bit, in JSON lines and CSV; in
    /// the text formats too, NaN payloads aside.
    #[test]
    fn write_then_read_is_identity(series in proptest::collection::vec((arb_labels(), arb_samples()), 1..4)) {
        for f in [FileFormat::Json, FileFormat::Csv] {
            let text = write(f, &series);
            prop_assert_eq!(bits(read(f, &text).unwrap()), flat(&series));
        }
        let text = write(FileFormat::Prometheus, &series);
        prop_assert_eq!(bits(read(FileFormat::Prometheus, &text).unwrap()), plain_nans(&series));
        let named: Vec<_> = series.iter().filter(|(l, _)| l.metric_name().is_some()).cloned().collect();
        let text = write(FileFormat::OpenMetrics, &named);
        prop_assert_eq!(bits(read(FileFormat::OpenMetrics, &text).unwrap()), plain_nans(&named));
    }
}

#[test]
fn prometheus_text_lines() {
    let mut out = String::new();
    let up = Labels::from_pairs([("__name__", "up")]).unwrap();
    assert_eq!(write_prometheus(&mut out, &up, &[Sample::new(1, f64::from_bits(STALE)), Sample::new(2, -1.0)]), 1);
    assert_eq!(out, "up NaN 1\nup -1.0 2\n");
    out.clear();
    let l = Labels::from_pairs([("__name__", "m"), ("q", "a\"b,c\\d\ne\u{1}é")]).unwrap();
    assert_eq!(write_prometheus(&mut out, &l, &[Sample::new(3, f64::INFINITY)]), 0);
    assert_eq!(out, "m{q=\"a\\\"b,c\\\\d\\ne\u{1}é\"} +Inf 3\n");
    out.clear();
    write_prometheus(&mut out, &Labels::from_pairs([("job", "x")]).unwrap(), &[Sample::new(4, 1.0)]);
    assert_eq!(out, "{job=\"x\"} 1.0 4\n");
    out.clear();
    assert!(write_openmetrics(&mut out, &up, &[Sample::new(-1500, 2.0), Sample::new(7, 1.0)]));
    assert_eq!(out, "up 2.0 -1.500\nup 1.0 0.007\n");
    let p = |s: &str| parse_text_line(s, false);
    assert!(p("up 1").unwrap_err().contains("timestamp"));
    assert!(p("up 1 2 3").is_err());
    assert!(p("up{a=\"b\" 1 2").unwrap_err().contains("unterminated"));
    assert!(p("up x 2").is_err());
    assert!(p("up,1,2").is_err(), "a CSV row is not Prometheus text");
    assert_eq!(p("{__name__=\"up\",a=\"x} 1 2\"} 3 4").unwrap().1, Sample::new(4, 3.0));
}
