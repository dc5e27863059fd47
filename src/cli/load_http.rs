//! `strata load --url http://...`: the wire encodings of a batch and the
//! HTTP client that sends them.
//!
//! - `line`: InfluxDB line protocol to `/write?precision=ms`. A metric `cpu_usage_user`
//!   is sent as measurement `cpu`, field `usage_user` (the server joins them with `_`,
//!   as VictoriaMetrics does); samples of one host and time share a line.
//! - `json`: the JSON lines of `strata export` to `/import`.
//! - `ingest`: seed 004's metric objects, `[{"metric_name", "value", "timestamp",
//!   "labels"}, ...]`, to `/metrics/ingest`; timestamps as RFC 3339 with milliseconds,
//!   which no reading by magnitude can mistake.
//! - `remote-write`: Prometheus remote-write 0.1 (protobuf, snappy block format) to
//!   `/api/v1/write`. Each series' labels are encoded once with `prost`; requests
//!   are then written by hand around them.

use std::fmt::Write as _;
use std::time::Duration;

use clap::ValueEnum;
use strata::loadgen::Workload;
use strata::{Labels, Sample, METRIC_NAME};

use super::formats::{write_json_labels, write_json_lines, write_value};
use super::{fail, CliResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// InfluxDB line protocol
    Line,
    /// JSON lines, as `strata export` writes them
    Json,
    /// Prometheus remote-write (protobuf + snappy)
    RemoteWrite,
    /// seed 004's JSON metric objects, to /metrics/ingest
    Ingest,
}

impl Protocol {
    fn default_path(self) -> &'static str {
        match self {
            Protocol::Line => "/write?precision=ms",
            Protocol::Json => "/import",
            Protocol::RemoteWrite => "/api/v1/write",
            Protocol::Ingest => "/metrics/ingest",
        }
    }
}

/// Sends batches of one shard's samples to a server.
pub struct HttpSink {
    agent: ureq::Agent,
    url: String,
    protocol: Protocol,
    token: Option<String>,
    /// Per series of the shard (indexed from `first`): what each encoding needs.
    first: usize,
    line: Vec<(String, String)>,
    json_metric: Vec<String>,
    /// Remote write: each series' `TimeSeries.labels` fields, encoded once.
    rw_labels: Vec<Vec<u8>>,
    labels: Vec<Labels>,
    body: String,
    scratch: Vec<(usize, i64, f64)>,
}

impl HttpSink {
    /// A sink for series `range` of `w`. `base` is `http://host:port`; `path`
    /// overrides the protocol's default endpoint.
    pub fn new(
        base: &str,
        path: Option<&str>,
        protocol: Protocol,
        token: Option<String>,
        w: &Workload,
        range: std::ops::Range<usize>,
    ) -> CliResult<HttpSink> {
        let labels: Vec<Labels> = range.clone().map(|i| w.labels(i)).collect::<strata::Result<_>>()?;
        let (line, json_metric) = match protocol {
            Protocol::Line => (labels.iter().map(line_key).collect(), Vec::new()),
            Protocol::Json => (
                Vec::new(),
                labels
                    .iter()
                    .map(|l| {
                        let mut s = String::new();
                        write_json_labels(&mut s, l);
                        s
                    })
                    .collect(),
            ),
            // The start of each series' object, up to its timestamp.
            Protocol::Ingest => (Vec::new(), labels.iter().map(ingest_prefix).collect()),
            Protocol::RemoteWrite => (Vec::new(), Vec::new()),
        };
        let rw_labels = match protocol {
            Protocol::RemoteWrite => labels.iter().map(encode_labels).collect(),
            _ => Vec::new(),
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        Ok(HttpSink {
            agent: config.into(),
            url: format!("{}{}", base.trim_end_matches('/'), path.unwrap_or(protocol.default_path())),
            protocol,
            token,
            first: range.start,
            line,
            json_metric,
            rw_labels,
            labels,
            body: String::new(),
            scratch: Vec::new(),
        })
    }

    /// Encodes and posts one batch; an error unless the server answers 2xx.
    pub fn send(&mut self, batch: &[(usize, i64, f64)]) -> CliResult {
        let (bytes, content_type, encoding): (Vec<u8>, &str, Option<&str>) = match self.protocol {
            Protocol::Line => {
                self.encode_line(batch);
                (std::mem::take(&mut self.body).into_bytes(), "text/plain; charset=utf-8", None)
            }
            Protocol::Json => {
                self.encode_json(batch);
                (std::mem::take(&mut self.body).into_bytes(), "application/x-ndjson", None)
            }
            Protocol::Ingest => {
                self.encode_ingest(batch);
                (std::mem::take(&mut self.body).into_bytes(), "application/json", None)
            }
            Protocol::RemoteWrite => {
                let raw = self.encode_remote_write(batch);
                let compressed = snap::raw::Encoder::new()
                    .compress_vec(&raw)
                    .map_err(|e| super::CliError::new(format!("snappy compression failed: {e}")))?;
                (compressed, "application/x-protobuf", Some("snappy"))
            }
        };
        let mut req = self.agent.post(&self.url).header("Content-Type", content_type);
        if let Some(enc) = encoding {
            req = req.header("Content-Encoding", enc).header("X-Prometheus-Remote-Write-Version", "0.1.0");
        }
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = match req.send(&bytes[..]) {
            Ok(r) => r,
            Err(e) => return fail(format!("POST {}: {e}", self.url)),
        };
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let text: String = text.chars().take(300).collect();
            return fail(format!("POST {} answered {status}: {}", self.url, text.trim()));
        }
        // Drain the body so the connection can be reused.
        let _ = resp.body_mut().read_to_string();
        // Reuse the allocation of the text body next time.
        if self.protocol != Protocol::RemoteWrite {
            self.body = String::from_utf8(bytes).unwrap_or_default();
        }
        Ok(())
    }

    fn encode_line(&mut self, batch: &[(usize, i64, f64)]) {
        let b = &mut self.body;
        b.clear();
        let mut open: Option<(usize, i64)> = None; // (key index, ts) of the line being written
        for &(i, ts, v) in batch {
            let j = i - self.first;
            let (key, field) = &self.line[j];
            // Samples of the same measurement+tags at the same time share a line.
            let same = open.is_some_and(|(k, t)| t == ts && self.line[k].0 == *key);
            if same {
                b.push(',');
            } else {
                if let Some((_, t)) = open {
                    let _ = writeln!(b, " {t}");
                }
                b.push_str(key);
                b.push(' ');
                open = Some((j, ts));
            }
            b.push_str(field);
            b.push('=');
            write_value(b, v);
        }
        if let Some((_, t)) = open {
            let _ = writeln!(b, " {t}");
        }
    }

    /// Samples of the batch grouped by series (time order within each).
    fn grouped(&mut self, batch: &[(usize, i64, f64)]) -> Vec<(usize, Vec<Sample>)> {
        self.scratch.clear();
        self.scratch.extend_from_slice(batch);
        self.scratch.sort_unstable_by_key(|&(i, ts, _)| (i, ts));
        let mut out: Vec<(usize, Vec<Sample>)> = Vec::new();
        for &(i, ts, v) in &self.scratch {
            match out.last_mut() {
                Some((j, s)) if *j == i => s.push(Sample::new(ts, v)),
                _ => out.push((i, vec![Sample::new(ts, v)])),
            }
        }
        out
    }

    fn encode_json(&mut self, batch: &[(usize, i64, f64)]) {
        let groups = self.grouped(batch);
        self.body.clear();
        for (i, samples) in groups {
            let j = i - self.first;
            // write_json_lines formats labels itself; the cached form is used for the
            // common case of one line per series.
            if samples.len() <= super::formats::JSON_LINE_MAX_SAMPLES {
                self.body.push_str("{\"metric\":");
                self.body.push_str(&self.json_metric[j]);
                self.body.push_str(",\"values\":[");
                for (k, s) in samples.iter().enumerate() {
                    if k > 0 {
                        self.body.push(',');
                    }
                    let q = !s.value.is_finite();
                    if q {
                        self.body.push('"');
                    }
                    write_value(&mut self.body, s.value);
                    if q {
                        self.body.push('"');
                    }
                }
                self.body.push_str("],\"timestamps\":[");
                for (k, s) in samples.iter().enumerate() {
                    let _ = write!(self.body, "{}{}", if k > 0 { "," } else { "" }, s.ts);
                }
                self.body.push_str("]}\n");
            } else {
                write_json_lines(&mut self.body, &self.labels[j], &samples);
            }
        }
    }

    fn encode_ingest(&mut self, batch: &[(usize, i64, f64)]) {
        let b = &mut self.body;
        b.clear();
        b.push('[');
        for (k, &(i, ts, v)) in batch.iter().enumerate() {
            if k > 0 {
                b.push(',');
            }
            b.push_str(&self.json_metric[i - self.first]);
            let t = chrono::DateTime::from_timestamp_millis(ts).unwrap_or_default();
            let _ = write!(b, "\"{}\",\"value\":", t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            let q = !v.is_finite();
            if q {
                b.push('"');
            }
            write_value(b, v);
            if q {
                b.push('"');
            }
            b.push('}');
        }
        b.push(']');
    }

    /// Writes the `WriteRequest` directly: the labels were encoded once per series,
    /// so a request costs no allocation per series. Every sample carries both
    /// fields, which keeps a -0.0 value's sign (proto3 would omit a zero).
    fn encode_remote_write(&mut self, batch: &[(usize, i64, f64)]) -> Vec<u8> {
        use prost::encoding::{encode_varint, encoded_len_varint};
        let sample_len = |ts: i64| 1 + 8 + 1 + encoded_len_varint(ts as u64);
        self.scratch.clear();
        self.scratch.extend_from_slice(batch);
        self.scratch.sort_unstable_by_key(|&(i, ts, _)| (i, ts));
        let mut out = Vec::with_capacity(batch.len() * 24 + self.rw_labels.first().map_or(0, Vec::len) * batch.len());
        let mut k = 0;
        while k < self.scratch.len() {
            let i = self.scratch[k].0;
            let end = k + self.scratch[k..].iter().take_while(|s| s.0 == i).count();
            let labels = &self.rw_labels[i - self.first];
            let samples = &self.scratch[k..end];
            let len = labels.len()
                + samples
                    .iter()
                    .map(|&(_, ts, _)| 1 + encoded_len_varint(sample_len(ts) as u64) + sample_len(ts))
                    .sum::<usize>();
            out.push(0x0a); // WriteRequest.timeseries
            encode_varint(len as u64, &mut out);
            out.extend_from_slice(labels);
            for &(_, ts, v) in samples {
                out.push(0x12); // TimeSeries.samples
                encode_varint(sample_len(ts) as u64, &mut out);
                out.push(0x09); // Sample.value, fixed64
                out.extend_from_slice(&v.to_le_bytes());
                out.push(0x10); // Sample.timestamp, varint
                encode_varint(ts as u64, &mut out);
            }
            k = end;
        }
        out
    }
}

/// A series' labels as `TimeSeries.labels` fields (a TimeSeries with no samples).
fn encode_labels(l: &Labels) -> Vec<u8> {
    use prost::Message;
    let labels = l.iter().map(|(k, v)| Label { name: k.to_string(), value: v.to_string() }).collect();
    TimeSeries { labels, samples: Vec::new() }.encode_to_vec()
}

/// `{"metric_name":…,"labels":{…},"timestamp":` of a series' ingest object.
fn ingest_prefix(l: &Labels) -> String {
    let mut s = String::from("{\"metric_name\":");
    super::formats::write_json_string(&mut s, l.metric_name().unwrap_or(""));
    s.push_str(",\"labels\":{");
    for (k, (name, value)) in l.iter().filter(|(k, _)| *k != METRIC_NAME).enumerate() {
        if k > 0 {
            s.push(',');
        }
        super::formats::write_json_string(&mut s, name);
        s.push(':');
        super::formats::write_json_string(&mut s, value);
    }
    s.push_str("},\"timestamp\":");
    s
}

/// `measurement,tag=v,... ` and the field name for a series, in line protocol.
fn line_key(l: &Labels) -> (String, String) {
    let name = l.metric_name().unwrap_or("metric");
    let (measurement, field) = match name.split_once('_') {
        Some((m, f)) if !m.is_empty() && !f.is_empty() => (m, f),
        _ => (name, "value"),
    };
    let mut key = String::new();
    escape_line(&mut key, measurement, false);
    for (k, v) in l.iter().filter(|(k, _)| *k != METRIC_NAME) {
        key.push(',');
        escape_line(&mut key, k, true);
        key.push('=');
        escape_line(&mut key, v, true);
    }
    let mut f = String::new();
    escape_line(&mut f, field, true);
    (key, f)
}

/// Line protocol escaping: commas and spaces everywhere, `=` in tags and fields.
fn escape_line(out: &mut String, s: &str, eq: bool) {
    for c in s.chars() {
        if c == ',' || c == ' ' || (eq && c == '=') || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `prometheus.WriteRequest` of remote-write 0.1 (requests are written by hand;
/// the tests decode them with this).
#[cfg(test)]
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`: labels sorted by name, samples in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<RwSample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RwSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use strata::loadgen::{Pattern, WorkloadKind};

    use super::*;

    fn sink(p: Protocol, w: &Workload) -> HttpSink {
        HttpSink::new("http://127.0.0.1:1/", None, p, None, w, 0..w.num_series()).unwrap()
    }

    #[test]
    fn remote_write_wire_format() {
        let req = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label { name: "a".into(), value: "b".into() }],
                samples: vec![RwSample { value: 1.0, timestamp: 2 }],
            }],
        };
        let bytes = req.encode_to_vec();
        let want = [
            0x0a, 0x15, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b', 0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
            0x10, 0x02,
        ];
        assert_eq!(bytes, want);
        let w = Workload::new(WorkloadKind::Devops, 20, 10_000, 0, 1, 1);
        let mut s = sink(Protocol::RemoteWrite, &w);
        let batch = [(3, 20, 1.5), (3, 10, 2.5), (12, 10, 0.5)];
        let bytes = s.encode_remote_write(&batch);
        let back = WriteRequest::decode(&bytes[..]).unwrap();
        // Byte for byte what prost writes, when no field is zero.
        assert_eq!(back.encode_to_vec(), bytes);
        assert_eq!(back.timeseries.len(), 2);
        let ts0 = &back.timeseries[0];
        assert_eq!(ts0.samples, vec![RwSample { value: 2.5, timestamp: 10 }, RwSample { value: 1.5, timestamp: 20 }]);
        assert_eq!(ts0.labels[0], Label { name: "__name__".into(), value: "cpu_usage_nice".into() });
    }

    #[test]
    fn line_protocol_shares_lines_per_host_and_time() {
        let w = Workload::new(WorkloadKind::Devops, 20, 10_000, 0, 1, 1);
        let mut s = sink(Protocol::Line, &w);
        s.encode_line(&[(0, 10, 1.5), (1, 10, 2.0), (10, 10, 3.0), (0, 20, 4.0)]);
        let lines: Vec<&str> = s.body.lines().collect();
        assert_eq!(lines.len(), 3, "{}", s.body);
        assert!(lines[0].starts_with("cpu,datacenter=us-east-1a,hostname=host_0,"), "{}", lines[0]);
        assert!(lines[0].ends_with(" usage_user=1.5,usage_system=2.0 10"), "{}", lines[0]);
        assert!(lines[1].contains("hostname=host_1") && lines[1].ends_with(" usage_user=3.0 10"));
        assert!(lines[2].ends_with(" usage_user=4.0 20"));
        let (k, f) = line_key(&Labels::metric("up", [("ab", "c,d=e")]).unwrap());
        assert_eq!((k.as_str(), f.as_str()), ("up,ab=c\\,d\\=e", "value"));
    }

    #[test]
    fn ingest_objects_carry_exact_times_and_values() {
        let w = Workload::new(WorkloadKind::Pattern(Pattern::SineWave), 2, 5_000, 0, 1, 1);
        let mut s = sink(Protocol::Ingest, &w);
        s.encode_ingest(&[(0, 1_764_763_200_005, 75.5), (1, 86_400_000, f64::NAN)]);
        let v: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"metric_name": "cpu_usage", "labels": {"host": "host_0", "pattern": "sine_wave"},
                 "timestamp": "2025-12-03T12:00:00.005Z", "value": 75.5},
                {"metric_name": "cpu_usage", "labels": {"host": "host_1", "pattern": "sine_wave"},
                 "timestamp": "1970-01-02T00:00:00.000Z", "value": "NaN"}
            ])
        );
    }

    #[test]
    fn json_groups_by_series() {
        let w = Workload::new(WorkloadKind::Pattern(Pattern::Noise), 3, 10_000, 0, 1, 1);
        let mut s = sink(Protocol::Json, &w);
        s.encode_json(&[(0, 10, 1.0), (1, 10, f64::NAN), (0, 20, 2.0)]);
        let lines: Vec<(Labels, Vec<Sample>)> =
            s.body.lines().map(|l| super::super::formats::parse_json_line(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, w.labels(0).unwrap());
        assert_eq!(lines[0].1, vec![Sample::new(10, 1.0), Sample::new(20, 2.0)]);
        assert!(lines[1].1[0].value.is_nan());
    }
}
