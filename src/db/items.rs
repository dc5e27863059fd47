//! What a segment of each tier stores, behind one interface, so that sealing,
//! compaction and reads handle raw samples and rollup buckets alike.

use crate::codec::chunk;
use crate::error::{Error, Result};
use crate::labels::Labels;
use crate::merge::Timed;
use crate::rollup::{self, Bucket};
use crate::sample::{ChunkMeta, Sample};
use crate::segment::{Segment, SegmentWriter};

/// Items per segment chunk: large enough that per-chunk metadata stays well
/// under 0.05 byte/sample, small enough that aggregations can skip chunks.
pub(crate) const CHUNK_ITEMS: usize = 1024;

pub(crate) trait Item: Timed {
    fn encode(items: &[Self], out: &mut Vec<u8>) -> Result<ChunkMeta>;
    fn decode(bytes: &[u8], out: &mut Vec<Self>) -> std::result::Result<(), &'static str>;
    /// The item as a raw sample: what the archive stores (`retention/archive.rs`).
    /// `None` for rollup buckets, which are not archived.
    fn as_sample(&self) -> Option<Sample>;
}

impl Item for Sample {
    fn encode(items: &[Self], out: &mut Vec<u8>) -> Result<ChunkMeta> {
        Ok(chunk::encode_chunk(items, out))
    }
    fn decode(bytes: &[u8], out: &mut Vec<Self>) -> std::result::Result<(), &'static str> {
        chunk::decode_chunk(bytes, out).map_err(|e| e.0)
    }
    fn as_sample(&self) -> Option<Sample> {
        Some(*self)
    }
}

impl Timed for Bucket {
    #[inline]
    fn ts(&self) -> i64 {
        self.start
    }
}

impl Item for Bucket {
    fn encode(items: &[Self], out: &mut Vec<u8>) -> Result<ChunkMeta> {
        rollup::codec::encode_buckets(items, out)
    }
    fn decode(bytes: &[u8], out: &mut Vec<Self>) -> std::result::Result<(), &'static str> {
        rollup::codec::decode_buckets(bytes, out).map_err(|e| e.0)
    }
    fn as_sample(&self) -> Option<Sample> {
        None
    }
}

/// Items of series `id` in `seg` with `mint <= ts <= maxt`, in time order.
pub(crate) fn read_items<T: Item>(seg: &Segment, id: u64, mint: i64, maxt: i64, out: &mut Vec<T>) -> Result<()> {
    read_items_with(seg, id, mint, maxt, out, T::decode)
}

/// [`read_items`] with another chunk decoder, e.g. one that decodes only the
/// rollup columns a query reads.
pub(crate) fn read_items_with<T: Timed>(
    seg: &Segment,
    id: u64,
    mint: i64,
    maxt: i64,
    out: &mut Vec<T>,
    decode: impl Fn(&[u8], &mut Vec<T>) -> std::result::Result<(), &'static str>,
) -> Result<()> {
    let Some(entry) = seg.find(id) else { return Ok(()) };
    let path = &seg.info().path;
    seg.for_each_chunk(
        &entry,
        |m| m.min_t <= maxt && m.max_t >= mint,
        |m, bytes| {
            let before = out.len();
            decode(bytes, out).map_err(|e| {
                let at = crate::text::time::show_time(m.min_t);
                Error::corruption(path, 0, format!("chunk of series {id} starting at {at}: {e}"))
            })?;
            if m.min_t < mint || m.max_t > maxt {
                let tail = out.split_off(before);
                out.extend(tail.into_iter().filter(|s| s.ts() >= mint && s.ts() <= maxt));
            }
            Ok(())
        },
    )
}

/// Encodes one series' items (sorted, unique) as chunks and adds them to `w`.
pub(crate) fn write_series<T: Item>(
    w: &mut SegmentWriter,
    id: u64,
    labels: &Labels,
    items: &[T],
    buf: &mut Vec<u8>,
) -> Result<()> {
    buf.clear();
    let mut spans = Vec::with_capacity(items.len() / CHUNK_ITEMS + 1);
    for part in items.chunks(CHUNK_ITEMS) {
        let start = buf.len();
        let meta = T::encode(part, buf)?;
        spans.push((meta, start..buf.len()));
    }
    let chunks: Vec<(ChunkMeta, &[u8])> = spans.iter().map(|(m, r)| (*m, &buf[r.clone()])).collect();
    w.add_series(id, labels, &chunks)
}
