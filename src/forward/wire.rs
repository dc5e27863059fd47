//! The remote-write 0.1 body: a `prometheus.WriteRequest` in protobuf, snappy
//! block-compressed. Written by hand: each series' labels are encoded once (when
//! the forwarder first meets the series) and copied into every request after.
//!
//! `WriteRequest { repeated TimeSeries timeseries = 1; }`,
//! `TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }`,
//! `Label { string name = 1; string value = 2; }`,
//! `Sample { double value = 1; int64 timestamp = 2; }`. The value is always
//! written, so -0.0 keeps its sign. Metadata goes in requests of its own:
//! `WriteRequest { repeated MetricMetadata metadata = 3; }`, `MetricMetadata {
//! MetricType type = 1; string metric_family_name = 2; string help = 4; string
//! unit = 5; }`, the type codes being `MetricKind`'s.

use std::sync::Arc;

use crate::codec::varint::put_uvarint;
use crate::hash::IdMap;
use crate::labels::Labels;
use crate::metadata::MetricMetadata;

/// One sample waiting to be sent, with its series' encoded labels.
#[derive(Debug, Clone)]
pub struct Pending {
    pub series: u64,
    pub labels: Arc<[u8]>,
    pub ts: i64,
    pub value: f64,
}

fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_bytes(out: &mut Vec<u8>, tag: u8, b: &[u8]) {
    out.push(tag);
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// The `labels` fields (field 1, repeated) of a `TimeSeries` for `labels`.
pub fn encode_labels(labels: &Labels) -> Arc<[u8]> {
    let mut out = Vec::new();
    let mut one = Vec::new();
    for (k, v) in labels.iter() {
        one.clear();
        put_bytes(&mut one, 0x0a, k.as_bytes());
        put_bytes(&mut one, 0x12, v.as_bytes());
        put_bytes(&mut out, 0x0a, &one);
    }
    out.into()
}

fn sample_len(ts: i64) -> usize {
    1 + 8 + 1 + uvarint_len(ts as u64)
}

/// The uncompressed `WriteRequest` for `batch`: one `TimeSeries` per series, its
/// samples in batch order.
pub fn encode_request(batch: &[Pending], out: &mut Vec<u8>) {
    out.clear();
    // series in order of first appearance, each with its samples' indexes
    let mut order: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut at: IdMap<usize> = IdMap::default();
    for (i, p) in batch.iter().enumerate() {
        let k = *at.entry(p.series).or_insert_with(|| {
            order.push((i, Vec::new()));
            order.len() - 1
        });
        if let Some((_, idx)) = order.get_mut(k) {
            idx.push(i);
        }
    }
    for (first, idx) in &order {
        let Some(head) = batch.get(*first) else { continue };
        let body: usize = head.labels.len()
            + idx.iter().filter_map(|&i| batch.get(i)).map(|p| 1 + 1 + sample_len(p.ts)).sum::<usize>();
        out.push(0x0a);
        put_uvarint(out, body as u64);
        out.extend_from_slice(&head.labels);
        for p in idx.iter().filter_map(|&i| batch.get(i)) {
            out.push(0x12);
            put_uvarint(out, sample_len(p.ts) as u64);
            out.push(0x09);
            out.extend_from_slice(&p.value.to_bits().to_le_bytes());
            out.push(0x10);
            put_uvarint(out, p.ts as u64);
        }
    }
}

/// The uncompressed `WriteRequest` holding only `list`'s metadata.
pub fn encode_metadata(list: &[(String, MetricMetadata)], out: &mut Vec<u8>) {
    out.clear();
    let mut one = Vec::new();
    for (name, m) in list {
        one.clear();
        one.push(0x08);
        put_uvarint(&mut one, u64::from(m.kind.code()));
        put_bytes(&mut one, 0x12, name.as_bytes());
        put_bytes(&mut one, 0x22, m.help.as_bytes());
        put_bytes(&mut one, 0x2a, m.unit.as_bytes());
        put_bytes(out, 0x1a, &one);
    }
}

#[cfg(all(test, feature = "server"))]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use prost::Message;

    /// The same bytes decode with prost's `WriteRequest` as the server defines it.
    #[test]
    fn request_decodes_as_prompb() {
        let a = Labels::metric("up", [("job", "x")]).unwrap();
        let b = Labels::metric("cpu", [("host", "h1"), ("zone", "ü")]).unwrap();
        let (la, lb) = (encode_labels(&a), encode_labels(&b));
        let p = |series: u64, labels: &Arc<[u8]>, ts: i64, value: f64| Pending {
            series,
            labels: labels.clone(),
            ts,
            value,
        };
        let batch = vec![p(1, &la, 10, -0.0), p(2, &lb, -5, f64::NAN), p(1, &la, 20, 1.5), p(2, &lb, i64::MAX, 0.0)];
        let mut out = Vec::new();
        encode_request(&batch, &mut out);
        let req = crate::server::prompb::WriteRequest::decode(out.as_slice()).unwrap();
        assert_eq!(req.timeseries.len(), 2);
        let names: Vec<(String, String)> =
            req.timeseries[1].labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        assert_eq!(names, b.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
        let s0: Vec<(i64, u64)> =
            req.timeseries[0].samples.iter().map(|s| (s.timestamp, s.value.unwrap().to_bits())).collect();
        assert_eq!(s0, vec![(10, (-0.0f64).to_bits()), (20, 1.5f64.to_bits())]);
        let s1: Vec<i64> = req.timeseries[1].samples.iter().map(|s| s.timestamp).collect();
        assert_eq!(s1, vec![-5, i64::MAX]);
        assert!(req.timeseries[1].samples[0].value.unwrap().is_nan());
    }

    #[test]
    fn metadata_decodes_as_prompb() {
        use crate::metadata::MetricKind;
        let list = vec![
            ("http_requests".to_string(), MetricMetadata::new(MetricKind::Counter, "", "Requests served.")),
            ("temp".to_string(), MetricMetadata::new(MetricKind::Unknown, "celsius", "")),
            ("rpc".to_string(), MetricMetadata::new(MetricKind::Summary, "seconds", "ü")),
        ];
        let mut out = Vec::new();
        encode_metadata(&list, &mut out);
        let req = crate::server::prompb::WriteRequest::decode(out.as_slice()).unwrap();
        assert!(req.timeseries.is_empty());
        let got: Vec<(i32, String, String, String)> = req
            .metadata
            .iter()
            .map(|m| (m.r#type, m.metric_family_name.clone(), m.help.clone(), m.unit.clone()))
            .collect();
        let want: Vec<(i32, String, String, String)> =
            list.iter().map(|(n, m)| (i32::from(m.kind.code()), n.clone(), m.help.clone(), m.unit.clone())).collect();
        assert_eq!(got, want);
    }
}
