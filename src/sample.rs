//! The sample type shared by every layer.

/// One point of a series: milliseconds since the Unix epoch and a value.
/// Values are stored bit for bit, NaN payloads and signed zeros included.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub ts: i64,
    pub value: f64,
}

impl Sample {
    pub fn new(ts: i64, value: f64) -> Self {
        Sample { ts, value }
    }
}

/// Bitwise equality, so that NaN equals the same NaN; what round-trip tests want.
impl PartialEq for Sample {
    fn eq(&self, other: &Self) -> bool {
        self.ts == other.ts && self.value.to_bits() == other.value.to_bits()
    }
}
impl Eq for Sample {}

/// Summary of one chunk, kept beside its bytes so that readers can skip or
/// aggregate a chunk without decoding it. `min`/`max` ignore NaN (they are NaN
/// only when every value is NaN); `sum` is the plain sum, so NaN propagates;
/// `last` is the value at `max_t`, so the newest sample needs no decoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkMeta {
    pub min_t: i64,
    pub max_t: i64,
    pub count: u32,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub last: f64,
}

impl ChunkMeta {
    /// Summarises samples sorted by strictly increasing `ts`; `samples` must not be empty.
    pub fn of(samples: &[Sample]) -> ChunkMeta {
        let mut m = ChunkMeta {
            min_t: samples[0].ts,
            max_t: samples[samples.len() - 1].ts,
            count: samples.len() as u32,
            min: f64::NAN,
            max: f64::NAN,
            sum: 0.0,
            last: samples[samples.len() - 1].value,
        };
        for s in samples {
            m.min = m.min.min(s.value);
            m.max = m.max.max(s.value);
            m.sum += s.value;
        }
        m
    }
}
