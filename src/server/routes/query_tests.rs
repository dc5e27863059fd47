//! `POST /query`'s answer written by hand, against the `serde_json::Value` tree it
//! was built as before: the same bytes on a varied set of answers.

use serde_json::{json, Map, Value};

use super::*;
use crate::server::time::format_rfc3339;
use crate::{Labels, ResultSeries, Sample};

/// The answer as it was built before: a `Value` tree, serialized by serde_json.
fn reference(r: &AggRequest, res: &QueryResult, total: Option<Option<f64>>) -> String {
    let num = |v: f64| {
        if v.is_finite() {
            Value::from(v)
        } else {
            let mut s = String::new();
            write_json_value(&mut s, v);
            serde_json::from_str(&s).unwrap()
        }
    };
    let labels_json = |l: &Labels| -> Value {
        Value::Object(l.iter().filter(|(k, _)| *k != METRIC_NAME).map(|(k, v)| (k.to_string(), json!(v))).collect())
    };
    let time_fields = |m: &mut Map<String, Value>, key: &str, ts: i64| {
        m.insert(key.to_string(), Value::String(format_rfc3339(ts)));
        m.insert(format!("{key}_ms"), Value::from(ts));
    };
    let single = r.single_value();
    let series: Vec<Value> =
        res.series
            .iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("metric_name".into(), s.labels.metric_name().map_or(Value::Null, |n| json!(n)));
                m.insert("labels".into(), labels_json(&s.labels));
                if single {
                    m.insert("value".into(), s.points.first().map_or(Value::Null, |p| num(p.value)));
                } else {
                    let points = s.points.iter().map(
                        |p| json!({"timestamp": format_rfc3339(p.ts), "timestamp_ms": p.ts, "value": num(p.value)}),
                    );
                    m.insert("points".into(), points.collect());
                }
                Value::Object(m)
            })
            .collect();
    let mut out = Map::new();
    out.insert("metric_name".into(), json!(r.metric_name));
    if let Some(sel) = &r.selector {
        out.insert("selector".into(), json!(sel));
    }
    out.insert("labels".into(), r.labels.clone());
    out.insert("function".into(), json!(r.agg.name()));
    if let Agg::Quantile(qv) = r.agg {
        out.insert("quantile".into(), json!(qv));
    }
    time_fields(&mut out, "start_time", r.start);
    time_fields(&mut out, "end_time", r.end);
    out.insert("step".into(), r.step.map_or(Value::Null, |s| json!(format_duration(s))));
    out.insert("step_ms".into(), json!(r.step));
    if let Some(g) = &r.group_by {
        out.insert("group_by".into(), json!(g));
    }
    if let Some(k) = r.top_k {
        out.insert(if r.bottom { "bottom_k" } else { "top_k" }.into(), json!(k));
        out.insert("rank_by".into(), json!(r.rank_by.name()));
    }
    out.insert("requested_tier".into(), json!(tier_name(r.tier)));
    out.insert("tier".into(), json!(tier_name(res.tier)));
    out.insert("source".into(), json!(source_name(res.tier)));
    if let Some(v) = total {
        out.insert("value".into(), v.map_or(Value::Null, num));
    }
    out.insert("series_count".into(), json!(series.len()));
    out.insert("series".into(), Value::Array(series));
    serde_json::to_string(&Value::Object(out)).unwrap()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Ordinary values, specials, and arbitrary bit patterns (every NaN payload too).
    fn value(&mut self) -> f64 {
        let special = [
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0002),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            1e21,
            1e-7,
            123456789012345680.0,
        ];
        match self.next() % 4 {
            0 => special[(self.next() % special.len() as u64) as usize],
            1 => (self.next() % 10_000) as f64 / 10.0,
            2 => (self.next() % 2_000_001) as f64 - 1_000_000.0,
            _ => f64::from_bits(self.next()),
        }
    }

    fn ts(&mut self) -> i64 {
        match self.next() % 8 {
            0 => self.next() as i64,
            1 => -((self.next() % 100_000_000_000_000) as i64),
            2 => 1_700_000_000_000 + (self.next() % 1000) as i64 * 10_000,
            _ => 1_700_000_000_000 + (self.next() % 1_000_000_000) as i64,
        }
    }
}

fn request(body: Value) -> AggRequest {
    let Value::Object(o) = body else { panic!("not an object") };
    AggRequest::parse(&o).unwrap_or_else(|e| panic!("{}", e.message))
}

fn result(rng: &mut Rng, series: usize, points: usize, tier: Tier) -> QueryResult {
    let names = ["host", "dc", "é\"q\\", "ctl\u{1}\u{8}\n", "zone"];
    let series = (0..series)
        .map(|i| {
            let mut pairs: Vec<(String, String)> = Vec::new();
            if i % 3 != 2 {
                pairs.push((METRIC_NAME.into(), format!("cpu_{}", i % 2)));
            }
            for (j, n) in names.iter().enumerate().filter(|(j, _)| (i + j) % 2 == 0) {
                let n = n.chars().filter(|c| c.is_ascii_alphabetic()).collect::<String>();
                pairs.push((format!("{n}{j}"), format!("{}{i}\u{2028}\t\"", names[(i + j) % names.len()])));
            }
            if pairs.is_empty() {
                pairs.push(("host".into(), "solo".into()));
            }
            let labels = Labels::from_pairs(pairs).unwrap();
            let n = (rng.next() % (points as u64 + 1)) as usize;
            let points = (0..n).map(|_| Sample::new(rng.ts(), rng.value())).collect();
            ResultSeries { labels, points }
        })
        .collect();
    QueryResult { tier, series }
}

#[test]
fn full_answers_keep_their_bytes() {
    let bodies = [
        json!({"metric_name": "cpu", "start_time": 1_700_000_000_000i64, "end_time": 1_700_086_399_999i64,
               "function": "raw"}),
        json!({"metric_name": "cpu", "labels": {"host": "a", "dc": "x\u{1}\"y"}, "start_time": "2023-11-14T22:13:20Z",
               "end_time": "2023-11-15T22:13:20.5Z", "function": "avg"}),
        json!({"selector": "cpu{host=~\"a|b\"}", "start_time": -5_000_000_000_000i64, "end_time": 0,
               "function": "p99", "step": "5m", "tier": "raw"}),
        json!({"metric_name": "cpu", "start_time": 1_700_000_000_000i64, "end_time": 1_700_000_000_000i64,
               "function": "quantile", "quantile": 0.1, "group_by": ["dc", "host"], "top_k": 3, "tier": "1h"}),
        json!({"metric_name": "cpu", "start_time": 1_700_000_000_000i64, "end_time": 1_800_000_000_000i64,
               "function": "max", "step": 3_600_000, "group_by": [], "tier": "5m"}),
        json!({"metric_name": "cpu", "start_time": 1_700_000_000_000i64, "end_time": 1_800_000_000_000i64,
               "function": "rate", "step": "1h30m", "top_k": 1}),
        json!({"metric_name": "cpu", "start_time": 1_700_000_000_000i64, "end_time": 1_800_000_000_000i64,
               "function": "max", "step": "1h", "bottom_k": 2, "rank_by": "last", "group_by": ["host"]}),
        json!({"metric_name": "cpu", "start_time": 1_700_000_000_000i64, "end_time": 1_800_000_000_000i64,
               "function": "count", "group_by": ["host"]}),
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut compared = 0;
    for body in &bodies {
        let r = request(body.clone());
        for (series, points) in [(0, 0), (1, 0), (1, 1), (3, 5), (7, 40), (2, 2_000)] {
            for tier in [Tier::Raw, Tier::FiveMin, Tier::Hour] {
                let res = result(&mut rng, series, points, tier);
                for total in [None, Some(None), Some(Some(rng.value()))] {
                    let ours = encode_answer(&r, &res, total, PointFormat::Full);
                    let theirs = reference(&r, &res, total);
                    // serde_json's float writer and ryu may spell a number differently
                    // (never its value): compare numbers as parsed, everything else as bytes.
                    assert_eq!(normalize(&ours), normalize(&theirs), "{body}");
                    let (a, b): (Value, Value) =
                        (serde_json::from_str(&ours).unwrap(), serde_json::from_str(&theirs).unwrap());
                    assert_eq!(a, b, "{body}");
                    compared += usize::from(ours == theirs);
                }
            }
        }
    }
    // Most answers are the same bytes without normalizing.
    assert!(compared > bodies.len() * 18 * 3 / 2, "{compared}");
}

/// Number tokens replaced by their bits, so that only spelling differences vanish.
fn normalize(json: &str) -> String {
    let b = json.as_bytes();
    let (mut out, mut i) = (String::new(), 0);
    while i < b.len() {
        match b[i] {
            b'"' => {
                let s = i;
                i += 1;
                while b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str(&json[s..i]);
            }
            b'-' | b'0'..=b'9' => {
                let s = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                let t = &json[s..i];
                match t.parse::<i64>() {
                    Ok(n) if !t.contains(['.', 'e', 'E']) => out.push_str(&format!("i{n}")),
                    _ => out.push_str(&format!("f{:x}", t.parse::<f64>().unwrap().to_bits())),
                }
            }
            c => {
                out.push(c as char);
                i += 1;
            }
        }
    }
    out
}

#[test]
fn compact_points_hold_what_full_points_hold() {
    let r = request(json!({"metric_name": "cpu", "start_time": 0, "end_time": 1, "function": "raw"}));
    let mut rng = Rng(7);
    let res = result(&mut rng, 5, 300, Tier::Raw);
    let full: Value = serde_json::from_str(&encode_answer(&r, &res, None, PointFormat::Full)).unwrap();
    let compact: Value = serde_json::from_str(&encode_answer(&r, &res, None, PointFormat::Compact)).unwrap();
    assert_eq!(compact["format"], "compact");
    assert!(full.get("format").is_none());
    let (fs, cs) = (full["series"].as_array().unwrap(), compact["series"].as_array().unwrap());
    assert_eq!(fs.len(), cs.len());
    let mut points = 0;
    for (f, c) in fs.iter().zip(cs) {
        assert_eq!(f["labels"], c["labels"]);
        let (fp, cp) = (f["points"].as_array().unwrap(), c["points"].as_array().unwrap());
        assert_eq!(fp.len(), cp.len());
        for (f, c) in fp.iter().zip(cp) {
            assert_eq!(c.as_array().unwrap().len(), 2);
            assert_eq!(f["timestamp_ms"], c[0]);
            let v = |x: &Value| crate::server::values::from_json(x).unwrap().to_bits();
            assert_eq!(v(&f["value"]), v(&c[1]));
            points += 1;
        }
    }
    assert!(points > 100);
}

#[test]
fn format_is_read_from_the_body_or_the_query_string() {
    let s = |v: &str| Value::String(v.into());
    assert_eq!(request_format(None, None).unwrap(), PointFormat::Full);
    assert_eq!(request_format(Some(&s("compact")), None).unwrap(), PointFormat::Compact);
    assert_eq!(request_format(None, Some("format=compact")).unwrap(), PointFormat::Compact);
    assert_eq!(request_format(Some(&s("full")), Some("format=full")).unwrap(), PointFormat::Full);
    assert!(request_format(Some(&s("compact")), Some("format=full")).unwrap_err().message.contains("disagree"));
    assert!(request_format(Some(&s("csv")), None).unwrap_err().message.contains("unknown format \"csv\""));
    assert!(request_format(Some(&json!(1)), None).unwrap_err().message.starts_with("format:"));
}
