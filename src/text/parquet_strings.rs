//! The Parquet export's three string columns (`metric_name`, `labels.key_value.key`,
//! `labels.key_value.value`), encoded per row group without one value per row.
//!
//! Rows of a series are consecutive and share its strings, so a row group is a list
//! of series runs. Each column chunk is a PLAIN dictionary page (the row group's
//! distinct strings, in first-seen order) and one version 1 data page whose levels
//! and dictionary indices are RLE/bit-packed hybrid streams built per run: constant
//! streams (definition levels, `metric_name` indices) become RLE runs, and the map's
//! repetition levels and key/value indices, which repeat every K values (K labels
//! per series), become a packed block of 8 rows (K groups of 8 values, K * bit width
//! bytes) computed once and copied. Pages are zstd-compressed; the chunk metadata
//! says what the crate's own column writer would (encodings, page encoding counts,
//! sizes, offsets, an offset index, min/max and null count statistics).

use std::collections::HashMap;

use bytes::Bytes;
use parquet::basic::{Compression, Encoding, PageType, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::codec::varint::put_uvarint;

/// The zstd level of every page (the crate's default for the other columns too).
pub(crate) const ZSTD_LEVEL: i32 = 3;

/// A row group's distinct strings of one column, numbered in first-seen order,
/// kept PLAIN-encoded (4-byte little-endian length, then the bytes) as the
/// dictionary page holds them.
#[derive(Default)]
pub(crate) struct Dictionary {
    ids: HashMap<Box<[u8]>, u32>,
    plain: Vec<u8>,
    /// Byte-wise least and greatest string (the chunk statistics).
    min: Option<Box<[u8]>>,
    max: Option<Box<[u8]>>,
}

impl Dictionary {
    pub(crate) fn intern(&mut self, s: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.ids.len() as u32;
        self.plain.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.plain.extend_from_slice(s);
        if self.min.as_deref().is_none_or(|m| s < m) {
            self.min = Some(s.into());
        }
        if self.max.as_deref().is_none_or(|m| s > m) {
            self.max = Some(s.into());
        }
        self.ids.insert(s.into(), id);
        id
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    /// Bits per index: enough for the largest (0 for a dictionary of one entry).
    fn bit_width(&self) -> u8 {
        (usize::BITS - self.len().saturating_sub(1).leading_zeros()) as u8
    }
}

/// An RLE/bit-packed hybrid stream (the Parquet encoding of levels and dictionary
/// indices) of values of `width` bits.
pub(crate) struct Hybrid {
    width: u8,
    out: Vec<u8>,
    /// The open bit-packed run: its groups of 8 values, and how many.
    packed: Vec<u8>,
    groups: usize,
    /// Values not yet making a whole group.
    pending: [u32; 8],
    npending: usize,
    /// With width 0 every value is 0: only their number is kept.
    zeros: usize,
}

impl Hybrid {
    pub(crate) fn new(width: u8) -> Self {
        Hybrid { width, out: Vec::new(), packed: Vec::new(), groups: 0, pending: [0; 8], npending: 0, zeros: 0 }
    }

    fn push(&mut self, v: u32) {
        self.pending[self.npending] = v;
        self.npending += 1;
        if self.npending == 8 {
            pack(&self.pending, self.width, &mut self.packed);
            self.groups += 1;
            self.npending = 0;
        }
    }

    /// `n` copies of `v`.
    pub(crate) fn run(&mut self, v: u32, mut n: usize) {
        if self.width == 0 {
            self.zeros += n;
            return;
        }
        // An RLE run may only follow whole groups: fill the pending one first.
        while self.npending != 0 && n > 0 {
            self.push(v);
            n -= 1;
        }
        if n < 8 {
            (0..n).for_each(|_| self.push(v));
            return;
        }
        self.close_packed();
        put_uvarint(&mut self.out, (n as u64) << 1);
        let bytes = usize::from(self.width).div_ceil(8);
        self.out.extend_from_slice(&v.to_le_bytes()[..bytes]);
    }

    /// `pattern` repeated `reps` times.
    pub(crate) fn repeat(&mut self, pattern: &[u32], reps: usize) {
        let Some(&first) = pattern.first() else { return };
        if pattern.iter().all(|&v| v == first) {
            return self.run(first, pattern.len() * reps);
        }
        let k = pattern.len();
        let mut left = k * reps;
        let mut phase = 0;
        // Up to the next group boundary one value at a time...
        while self.npending != 0 && left > 0 {
            self.push(pattern[phase]);
            phase = (phase + 1) % k;
            left -= 1;
        }
        // ...then 8 periods from `phase` pack to K whole groups: pack them once.
        let copies = left / (8 * k);
        if copies > 0 {
            let start = self.packed.len();
            let block: Vec<u32> = (0..8 * k).map(|i| pattern[(phase + i) % k]).collect();
            block.chunks_exact(8).for_each(|g| pack(g.try_into().expect("8 values"), self.width, &mut self.packed));
            let len = self.packed.len() - start;
            self.packed.reserve(len * (copies - 1));
            for _ in 1..copies {
                self.packed.extend_from_within(start..start + len);
            }
            self.groups += k * copies;
            left -= 8 * k * copies;
        }
        for _ in 0..left {
            self.push(pattern[phase]);
            phase = (phase + 1) % k;
        }
    }

    fn close_packed(&mut self) {
        if self.groups > 0 {
            put_uvarint(&mut self.out, ((self.groups as u64) << 1) | 1);
            self.out.append(&mut self.packed);
            self.groups = 0;
        }
    }

    /// The encoded stream; the last group is padded with zeros, which readers skip
    /// as they know how many values the page holds.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.width == 0 {
            if self.zeros > 0 {
                put_uvarint(&mut self.out, (self.zeros as u64) << 1);
            }
            return self.out;
        }
        if self.npending > 0 {
            self.pending[self.npending..].fill(0);
            pack(&self.pending, self.width, &mut self.packed);
            self.groups += 1;
        }
        self.close_packed();
        self.out
    }
}

/// Packs 8 values of `width` bits, least significant bits first, into `width` bytes.
fn pack(group: &[u32; 8], width: u8, out: &mut Vec<u8>) {
    let (mut acc, mut bits) = (0u64, 0u32);
    for &v in group {
        acc |= u64::from(v) << bits;
        bits += u32::from(width);
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
}

/// The three string columns of one row group, as series runs.
#[derive(Default)]
pub(crate) struct StringColumns {
    names: Dictionary,
    keys: Dictionary,
    values: Dictionary,
    /// Per run: rows, the name's id, and the range of its label ids in `pairs`.
    runs: Vec<(usize, Option<u32>, std::ops::Range<usize>)>,
    /// (key id, value id) of every run's labels, in label order.
    pairs: Vec<(u32, u32)>,
}

impl StringColumns {
    /// Adds `rows` rows of a series; a series continuing the previous run extends it.
    pub(crate) fn add<'a>(
        &mut self,
        same_as_last: bool,
        name: Option<&[u8]>,
        labels: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        rows: usize,
    ) {
        if let (true, Some(last)) = (same_as_last, self.runs.last_mut()) {
            last.0 += rows;
            return;
        }
        let name = name.map(|n| self.names.intern(n));
        let start = self.pairs.len();
        for (k, v) in labels {
            let pair = (self.keys.intern(k), self.values.intern(v));
            self.pairs.push(pair);
        }
        self.runs.push((rows, name, start..self.pairs.len()));
    }

    /// Encodes the row group's three column chunks (see the module comment) and
    /// empties the columns for the next row group.
    pub(crate) fn chunks(
        &mut self,
        descrs: [ColumnDescPtr; 3],
        zstd: &mut zstd::bulk::Compressor<'_>,
    ) -> Result<[(Bytes, ColumnCloseResult); 3]> {
        let rows: usize = self.runs.iter().map(|r| r.0).sum();
        let [dn, dk, dv] = descrs;
        // metric_name: definition level 1 and the name's index, or level 0 (null).
        let (mut def, mut idx) = (Hybrid::new(1), Hybrid::new(self.names.bit_width()));
        let mut nulls = 0;
        for (n, name, _) in &self.runs {
            def.run(u32::from(name.is_some()), *n);
            match name {
                Some(id) => idx.run(*id, *n),
                None => nulls += n,
            }
        }
        let (def, idx) = (def.finish(), idx.finish());
        let name = chunk(
            ChunkParts { descr: dn, dict: &self.names, rep: None, def, indices: idx, num_values: rows, rows, nulls },
            zstd,
        )?;
        // The map: per row K entries (repetition 0 then 1s, definition 1), or one
        // entry with levels 0 for an empty map.
        let (mut rep, mut def) = (Hybrid::new(1), Hybrid::new(1));
        let (mut ki, mut vi) = (Hybrid::new(self.keys.bit_width()), Hybrid::new(self.values.bit_width()));
        let (mut entries, mut empty, mut pattern) = (0, 0, Vec::new());
        for (n, _, range) in &self.runs {
            let pairs = &self.pairs[range.clone()];
            if pairs.is_empty() {
                rep.run(0, *n);
                def.run(0, *n);
                entries += n;
                empty += n;
                continue;
            }
            entries += n * pairs.len();
            pattern.clear();
            pattern.extend((0..pairs.len()).map(|i| u32::from(i > 0)));
            rep.repeat(&pattern, *n);
            def.run(1, n * pairs.len());
            pattern.clear();
            pattern.extend(pairs.iter().map(|p| p.0));
            ki.repeat(&pattern, *n);
            pattern.clear();
            pattern.extend(pairs.iter().map(|p| p.1));
            vi.repeat(&pattern, *n);
        }
        let (rep, def) = (rep.finish(), def.finish());
        let part = |descr, dict, indices| ChunkParts {
            descr,
            dict,
            rep: Some(rep.clone()),
            def: def.clone(),
            indices,
            num_values: entries,
            rows,
            nulls: empty,
        };
        let key = chunk(part(dk, &self.keys, ki.finish()), zstd)?;
        let value = chunk(part(dv, &self.values, vi.finish()), zstd)?;
        (self.names, self.keys, self.values) = Default::default();
        self.runs.clear();
        self.pairs.clear();
        Ok([name, key, value])
    }
}

/// One string column chunk's streams, ready to be paged.
struct ChunkParts<'a> {
    descr: ColumnDescPtr,
    dict: &'a Dictionary,
    /// Repetition levels (the label columns only), definition levels, indices.
    rep: Option<Vec<u8>>,
    def: Vec<u8>,
    indices: Vec<u8>,
    /// Level entries (rows, or label pairs with one entry per empty map).
    num_values: usize,
    rows: usize,
    /// Level entries without a string (a null name, an empty map).
    nulls: usize,
}

/// Writes a column chunk's pages into a buffer, with the result that
/// `SerializedRowGroupWriter::append_column` takes to splice it into the file.
fn chunk(p: ChunkParts<'_>, zstd: &mut zstd::bulk::Compressor<'_>) -> Result<(Bytes, ColumnCloseResult)> {
    let has_dict = p.dict.len() > 0;
    let mut data = Vec::with_capacity(12 + p.def.len() + p.indices.len());
    for levels in p.rep.iter().chain([&p.def]) {
        data.extend_from_slice(&(levels.len() as u32).to_le_bytes());
        data.extend_from_slice(levels);
    }
    // With no string at all (every value null or every map empty) there is no
    // dictionary and the page's PLAIN value section is empty.
    let encoding = if has_dict {
        data.push(p.dict.bit_width());
        data.extend_from_slice(&p.indices);
        Encoding::RLE_DICTIONARY
    } else {
        Encoding::PLAIN
    };
    let mut compress = |b: &[u8]| -> Result<(Bytes, usize)> {
        let z = zstd.compress(b).map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok((Bytes::from(z), b.len()))
    };
    let mut sink = TrackedWrite::new(Vec::new());
    let mut pages = SerializedPageWriter::new(&mut sink);
    let mut stats = Vec::new();
    let mut encodings = vec![Encoding::RLE];
    let (mut compressed, mut uncompressed) = (0i64, 0i64);
    let mut dict_offset = None;
    if has_dict {
        let (buf, size) = compress(&p.dict.plain)?;
        let page =
            Page::DictionaryPage { buf, num_values: p.dict.len() as u32, encoding: Encoding::PLAIN, is_sorted: false };
        let spec = pages.write_page(CompressedPage::new(page, size))?;
        dict_offset = Some(spec.offset as i64);
        compressed += spec.compressed_size as i64;
        uncompressed += spec.uncompressed_size as i64;
        stats.push(PageEncodingStats { page_type: PageType::DICTIONARY_PAGE, encoding: Encoding::PLAIN, count: 1 });
        encodings.push(Encoding::PLAIN);
    }
    let (buf, size) = compress(&data)?;
    let num_values = u32::try_from(p.num_values)
        .map_err(|_| ParquetError::General(format!("{} level entries do not fit a page", p.num_values)))?;
    let page = Page::DataPage {
        buf,
        num_values,
        encoding,
        def_level_encoding: Encoding::RLE,
        rep_level_encoding: Encoding::RLE,
        statistics: None,
    };
    let spec = pages.write_page(CompressedPage::new(page, size))?;
    compressed += spec.compressed_size as i64;
    uncompressed += spec.uncompressed_size as i64;
    stats.push(PageEncodingStats { page_type: PageType::DATA_PAGE, encoding, count: 1 });
    if !encodings.contains(&encoding) {
        encodings.push(encoding);
    }
    let data_offset = spec.offset as i64;
    let location =
        PageLocation { offset: data_offset, compressed_page_size: spec.compressed_size as i32, first_row_index: 0 };
    let meta = ColumnChunkMetaData::builder(p.descr)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_encodings(encodings)
        .set_page_encoding_stats(stats)
        .set_total_compressed_size(compressed)
        .set_total_uncompressed_size(uncompressed)
        .set_num_values(p.num_values as i64)
        .set_data_page_offset(data_offset)
        .set_dictionary_page_offset(dict_offset);
    let b = |s: &Option<Box<[u8]>>| s.as_ref().map(|s| ByteArray::from(s.to_vec()));
    let s = ValueStatistics::new(b(&p.dict.min), b(&p.dict.max), None, Some(p.nulls as u64), false);
    let meta = meta.set_statistics(Statistics::ByteArray(s));
    let result = ColumnCloseResult {
        bytes_written: sink.bytes_written() as u64,
        rows_written: p.rows as u64,
        metadata: meta.build()?,
        bloom_filter: None,
        column_index: None,
        offset_index: Some(OffsetIndexMetaData {
            page_locations: vec![location],
            unencoded_byte_array_data_bytes: None,
        }),
    };
    Ok((Bytes::from(sink.into_inner()?), result))
}

#[cfg(test)]
mod tests {
    use super::Hybrid;
    use proptest::prelude::*;

    /// Decodes an RLE/bit-packed hybrid stream as the format defines it.
    fn decode(mut b: &[u8], width: u8) -> Vec<u32> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let (mut header, mut shift) = (0u64, 0);
            loop {
                let byte = b[0];
                b = &b[1..];
                header |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    break;
                }
            }
            let n = (header >> 1) as usize;
            if header & 1 == 0 {
                let bytes = usize::from(width).div_ceil(8);
                let mut v = [0u8; 4];
                v[..bytes].copy_from_slice(&b[..bytes]);
                b = &b[bytes..];
                out.extend(std::iter::repeat_n(u32::from_le_bytes(v), n));
            } else {
                let len = n * usize::from(width);
                let bit = |i: usize| u32::from(b[i / 8] >> (i % 8) & 1);
                for i in 0..n * 8 {
                    out.push((0..usize::from(width)).map(|j| bit(i * usize::from(width) + j) << j).sum());
                }
                b = &b[len..];
            }
        }
        out
    }

    #[derive(Debug, Clone)]
    enum Op {
        Run(u32, usize),
        Repeat(Vec<u32>, usize),
    }

    proptest! {
        /// Runs and repeated patterns, at any phase of the 8-value groups, decode to
        /// the values written (then only the last group's zero padding).
        #[test]
        fn hybrid_decodes_to_what_was_written(
            width in 0u8..=20,
            ops in prop::collection::vec(prop_oneof![
                (any::<u32>(), 0usize..40).prop_map(|(v, n)| Op::Run(v, n)),
                (prop::collection::vec(any::<u32>(), 0..6), 0usize..40).prop_map(|(p, n)| Op::Repeat(p, n)),
            ], 0..12),
        ) {
            let mask = if width == 0 { 0 } else { u32::MAX >> (32 - u32::from(width)) };
            let mut h = Hybrid::new(width);
            let mut model = Vec::new();
            for op in ops {
                match op {
                    Op::Run(v, n) => {
                        h.run(v & mask, n);
                        model.extend(std::iter::repeat_n(v & mask, n));
                    }
                    Op::Repeat(p, n) => {
                        let p: Vec<u32> = p.iter().map(|v| v & mask).collect();
                        h.repeat(&p, n);
                        (0..n).for_each(|_| model.extend(&p));
                    }
                }
            }
            let got = decode(&h.finish(), width);
            prop_assert!(got.len() >= model.len() && got.len() < model.len() + 8);
            prop_assert_eq!(&got[..model.len()], &model[..]);
            prop_assert!(got[model.len()..].iter().all(|&v| v == 0));
        }
    }
}
