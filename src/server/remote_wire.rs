//! The remote-write protobuf, read without copying. `prescan` counts series,
//! labels and samples against the limits before anything is built; `WriteView`
//! then decodes the request with every label borrowed from the buffer, into three
//! flat vectors (one allocation each per request, none per series). It accepts
//! what prost accepts for `prompb::WriteRequest`, with the same result (the
//! `remote_write` fuzz target compares the two), except groups (wire types 3 and
//! 4, deprecated since proto2 and never sent by Prometheus): prost skips them in
//! unknown fields, this reader refuses the request.

use super::error::ApiError;
use super::limits::Limits;

/// One `MetricMetadata`: (type, metric_family_name, help, unit).
pub(crate) type MetadataView<'a> = (i32, &'a str, &'a str, &'a str);

/// One timeseries: its label pairs and its (timestamp ms, value) samples.
pub(crate) type SeriesView<'v, 'a> = (&'v [(&'a str, &'a str)], &'v [(i64, f64)]);

/// A decoded `WriteRequest`. Timeseries `i` has `labels[series[i-1].0..series[i].0]`
/// and `samples[series[i-1].1..series[i].1]`, in wire order.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct WriteView<'a> {
    labels: Vec<(&'a str, &'a str)>,
    samples: Vec<(i64, f64)>,
    series: Vec<(usize, usize)>,
    /// `WriteRequest.metadata` (field 3), in wire order.
    pub metadata: Vec<MetadataView<'a>>,
}

impl<'a> WriteView<'a> {
    /// Decodes a (decompressed, prescanned) request. `hint` is prescan's (series, samples).
    pub fn parse(buf: &'a [u8], hint: (usize, usize)) -> Result<WriteView<'a>, ApiError> {
        let mut v = WriteView {
            labels: Vec::with_capacity(hint.0 * 8),
            samples: Vec::with_capacity(hint.1),
            series: Vec::with_capacity(hint.0),
            metadata: Vec::new(),
        };
        let mut top = Wire { buf, pos: 0 };
        while !top.done() {
            match top.key()? {
                (1, wt) => {
                    expect(wt, 2)?;
                    v.timeseries(top.bytes()?)?;
                }
                (3, wt) => {
                    expect(wt, 2)?;
                    v.metadata.push(metric_metadata(top.bytes()?)?);
                }
                (_, wt) => top.skip(wt)?,
            }
        }
        Ok(v)
    }

    fn timeseries(&mut self, buf: &'a [u8]) -> Result<(), ApiError> {
        let mut ts = Wire { buf, pos: 0 };
        while !ts.done() {
            match ts.key()? {
                (1, wt) => {
                    expect(wt, 2)?;
                    self.labels.push(label(ts.bytes()?)?);
                }
                (2, wt) => {
                    expect(wt, 2)?;
                    self.samples.push(sample(ts.bytes()?)?);
                }
                (_, wt) => ts.skip(wt)?,
            }
        }
        self.series.push((self.labels.len(), self.samples.len()));
        Ok(())
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Each timeseries' labels and (timestamp ms, value) samples.
    pub fn iter(&self) -> impl Iterator<Item = SeriesView<'_, 'a>> {
        let mut from = (0, 0);
        self.series.iter().map(move |&(l, s)| {
            let out = (&self.labels[from.0..l], &self.samples[from.1..s]);
            from = (l, s);
            out
        })
    }
}

/// `Label { name = 1; value = 2 }`; a repeated field keeps its last value, as in proto3.
fn label(buf: &[u8]) -> Result<(&str, &str), ApiError> {
    let (mut name, mut value) = ("", "");
    let mut w = Wire { buf, pos: 0 };
    while !w.done() {
        match w.key()? {
            (1, wt) => {
                expect(wt, 2)?;
                name = w.str()?;
            }
            (2, wt) => {
                expect(wt, 2)?;
                value = w.str()?;
            }
            (_, wt) => w.skip(wt)?,
        }
    }
    Ok((name, value))
}

/// `MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4;
/// string unit = 5 }`; absent fields are 0 or empty.
fn metric_metadata(buf: &[u8]) -> Result<MetadataView<'_>, ApiError> {
    let (mut kind, mut name, mut help, mut unit) = (0i32, "", "", "");
    let mut w = Wire { buf, pos: 0 };
    while !w.done() {
        match w.key()? {
            (1, wt) => {
                expect(wt, 0)?;
                kind = w.varint()? as i32; // proto3 enums are int32 on the wire
            }
            (2, wt) => {
                expect(wt, 2)?;
                name = w.str()?;
            }
            (4, wt) => {
                expect(wt, 2)?;
                help = w.str()?;
            }
            (5, wt) => {
                expect(wt, 2)?;
                unit = w.str()?;
            }
            (_, wt) => w.skip(wt)?,
        }
    }
    Ok((kind, name, help, unit))
}

/// `Sample { double value = 1; int64 timestamp = 2 }`; absent fields are 0.
fn sample(buf: &[u8]) -> Result<(i64, f64), ApiError> {
    let (mut ts, mut value) = (0i64, 0.0f64);
    let mut w = Wire { buf, pos: 0 };
    while !w.done() {
        match w.key()? {
            (1, wt) => {
                expect(wt, 1)?;
                value = f64::from_le_bytes(w.fixed64()?);
            }
            (2, wt) => {
                expect(wt, 0)?;
                ts = w.varint()? as i64;
            }
            (_, wt) => w.skip(wt)?,
        }
    }
    Ok((ts, value))
}

/// Counts what decoding would allocate and refuses it past the limits.
pub(crate) fn prescan(buf: &[u8], limits: &Limits) -> Result<(usize, usize), ApiError> {
    let (mut series, mut samples) = (0usize, 0usize);
    let mut top = Wire { buf, pos: 0 };
    while !top.done() {
        let (field, wt) = top.key()?;
        if field != 1 || wt != 2 {
            top.skip(wt)?;
            continue;
        }
        series += 1;
        if series > limits.max_series_per_request {
            return Err(limits.too_many_series());
        }
        let mut ts = Wire { buf: top.bytes()?, pos: 0 };
        let mut labels = 0usize;
        while !ts.done() {
            let (f, w) = ts.key()?;
            ts.skip(w)?;
            if f == 1 && w == 2 {
                labels += 1;
                if labels > limits.max_labels_per_series {
                    return Err(ApiError::unprocessable(format!(
                        "timeseries[{}] has more than {} labels (max_labels_per_series)",
                        series - 1,
                        limits.max_labels_per_series
                    )));
                }
            } else if f == 2 && w == 2 {
                samples += 1;
                if samples > limits.max_samples_per_request {
                    return Err(limits.too_many_samples());
                }
            }
        }
    }
    Ok((series, samples))
}

/// A bounds-checked protobuf wire reader (just enough to walk fields).
struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// As strict as prost: at most 10 bytes, and the 10th may only carry bit 63.
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| malformed("truncated varint"))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(malformed("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(malformed("varint longer than 10 bytes"))
    }

    /// A field key: (field number, wire type). Field 0 and keys past 32 bits are invalid.
    fn key(&mut self) -> Result<(u64, u8), ApiError> {
        let k = self.varint()?;
        if k > u64::from(u32::MAX) || k >> 3 == 0 {
            return Err(malformed("invalid field key"));
        }
        Ok((k >> 3, (k & 7) as u8))
    }

    fn fixed64(&mut self) -> Result<[u8; 8], ApiError> {
        let end =
            self.pos.checked_add(8).filter(|&e| e <= self.buf.len()).ok_or_else(|| malformed("truncated field"))?;
        let b = self.buf[self.pos..end].try_into().expect("8 bytes");
        self.pos = end;
        Ok(b)
    }

    fn str(&mut self) -> Result<&'a str, ApiError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| malformed("a label is not UTF-8"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let len = usize::try_from(self.varint()?).map_err(|_| malformed("length out of range"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| malformed("field runs past the end"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn skip(&mut self, wire_type: u8) -> Result<(), ApiError> {
        let n = match wire_type {
            0 => return self.varint().map(drop),
            1 => 8,
            2 => return self.bytes().map(drop),
            5 => 4,
            3 | 4 => return Err(malformed("groups (wire types 3 and 4) are not supported")),
            _ => return Err(malformed("invalid wire type")),
        };
        self.pos =
            self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| malformed("truncated field"))?;
        Ok(())
    }
}

/// A known field with the wrong wire type.
fn expect(wire_type: u8, want: u8) -> Result<(), ApiError> {
    if wire_type == want {
        Ok(())
    } else {
        Err(malformed("a field has the wrong wire type"))
    }
}

fn malformed(why: &str) -> ApiError {
    ApiError::bad_request(format!("invalid WriteRequest protobuf: {why}"))
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::server::prompb::WriteRequest;

    /// A protobuf key byte for small field numbers.
    fn key(field: u8, wt: u8) -> u8 {
        (field << 3) | wt
    }

    fn len_delim(field: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![key(field, 2), body.len() as u8];
        v.extend_from_slice(body);
        v
    }

    /// Each timeseries as owned labels and (timestamp, value bits).
    type Decoded = Option<Vec<(Vec<(String, String)>, Vec<(i64, u64)>)>>;

    /// The view's answer next to prost's, as comparable values.
    fn both(buf: &[u8]) -> (Decoded, Decoded) {
        let view = WriteView::parse(buf, (0, 0)).ok().map(|v| {
            v.iter()
                .map(|(l, s)| {
                    let l = l.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
                    (l, s.iter().map(|&(t, v)| (t, v.to_bits())).collect())
                })
                .collect()
        });
        let prost = WriteRequest::decode(buf).ok().map(|r| {
            r.timeseries
                .into_iter()
                .map(|t| {
                    let l = t.labels.into_iter().map(|l| (l.name, l.value)).collect();
                    (l, t.samples.iter().map(|s| (s.timestamp, s.value.unwrap_or(0.0).to_bits())).collect())
                })
                .collect()
        });
        (view, prost)
    }

    #[test]
    fn reads_what_prost_reads() {
        let name = len_delim(1, b"__name__");
        let value = len_delim(2, b"up");
        let label = len_delim(1, &[name.clone(), value.clone()].concat());
        let mut sample = vec![key(1, 1)];
        sample.extend_from_slice(&(-0.0f64).to_le_bytes());
        sample.extend_from_slice(&[key(2, 0), 0x96, 0x01]); // 150
        let sample = len_delim(2, &sample);
        let cases: Vec<Vec<u8>> = vec![
            len_delim(1, &[label.clone(), sample.clone()].concat()),
            // Repeated scalar fields keep the last value; unknown fields are skipped.
            len_delim(
                1,
                &len_delim(1, &[name.clone(), len_delim(1, b"x"), value.clone(), vec![key(9, 0), 7]].concat()),
            ),
            [len_delim(1, &[label.clone()].concat()), vec![key(15, 5), 1, 2, 3, 4]].concat(),
            // A sample without a value is 0; a negative timestamp is a 10-byte varint.
            len_delim(1, &len_delim(2, &[key(2, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
            // Both refuse: bit 64 of a varint, field 0, a wrong wire type, bad UTF-8,
            // a truncated body, wire type 7.
            len_delim(1, &len_delim(2, &[key(2, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])),
            len_delim(1, &[0x00, 0x01]),
            len_delim(1, &[key(1, 0), 0x01]),
            len_delim(1, &len_delim(1, &len_delim(2, &[0xff, 0xfe]))),
            label[..label.len() - 1].to_vec(),
            vec![0x0f, 0x00],
            Vec::new(),
        ];
        for (i, buf) in cases.iter().enumerate() {
            let (view, prost) = both(buf);
            assert_eq!(view, prost, "case {i}: {buf:?}");
        }
        assert_eq!(both(&cases[0]).0.unwrap()[0].1, vec![(150, (-0.0f64).to_bits())]);
        assert_eq!(both(&cases[1]).0.unwrap()[0].0, vec![("x".to_string(), "up".to_string())]);
        assert!(both(&cases[4]).0.is_none());
    }

    #[test]
    fn refuses_groups_that_prost_would_skip() {
        let group = len_delim(1, &[key(5, 3), key(6, 0), 1, key(5, 4)]);
        let (view, prost) = both(&group);
        assert!(prost.is_some() && view.is_none());
        let e = WriteView::parse(&group, (0, 0)).unwrap_err();
        assert!(e.message.contains("groups"), "{}", e.message);
    }
}
