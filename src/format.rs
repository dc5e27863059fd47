//! The on-disk format versions this build writes, one per file kind. It reads
//! the same versions back, and WAL version 1 too (version 2 only added a record
//! kind); a file of another version is refused with `Error::Corruption`.
//! Byte layouts are in `docs/format/`; `tests/fixtures/format_v1/` pins version 1
//! of everything, `tests/fixtures/format_v2/` the WAL's version 2 and `METADATA`,
//! `tests/fixtures/rollup_v2/` rollup chunk version 2 (version 1 is still read),
//! `tests/fixtures/segment_v2/` and `segment_v3/` segment versions 2 and 3.

/// The name of the file that makes a directory a Strata data directory: the
/// MANIFEST, which lists the live segments (`docs/format/manifest.md`).
pub const MANIFEST_FILE: &str = crate::manifest::FILE_NAME;

/// The format version of each file kind Strata writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FormatVersions {
    /// WAL file header (`docs/format/wal.md`).
    pub wal: u16,
    /// Segment file header, raw and rollup alike (`docs/format/segment.md`).
    pub segment: u16,
    /// The `MANIFEST` file (`docs/format/manifest.md`).
    pub manifest: u16,
    /// The `SETTINGS` file (`docs/format/settings.md`): the newest version, written when
    /// the policy has an archive directory; without one it is written as version 1.
    pub settings: u16,
    /// The `METADATA` file (`docs/format/metadata.md`).
    pub metadata: u16,
    /// The index checkpoint `INDEX` (`docs/format/index.md`).
    pub index: u16,
    /// A raw sample chunk inside a segment.
    pub chunk: u8,
    /// A rollup bucket chunk inside a rollup segment (`docs/format/rollup.md`).
    pub rollup_chunk: u8,
}

/// The versions this build writes and reads.
pub const FORMAT_VERSIONS: FormatVersions = FormatVersions {
    wal: crate::wal::record::VERSION,
    segment: crate::segment::FORMAT_VERSION,
    manifest: crate::manifest::VERSION,
    settings: crate::retention::SETTINGS_VERSION,
    metadata: crate::metadata::VERSION,
    index: crate::index::checkpoint::VERSION,
    chunk: crate::codec::chunk::VERSION,
    rollup_chunk: crate::rollup::codec::VERSION,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Sample;

    #[test]
    fn versions_are_the_ones_written() {
        // As the golden files pin: WAL version 2 added the Metadata record, segment
        // version 2 signed page deltas and version 3 (tests/fixtures/segment_v3/)
        // labels in a frame of their own, rollup chunk version 2 a compact layout
        // (tests/fixtures/rollup_v2/); SETTINGS version 2 (the archive directory) is
        // written only when one is set, version 1 otherwise; the rest is version 1.
        let v = FORMAT_VERSIONS;
        assert_eq!(
            (v.wal, v.segment, v.manifest, v.settings, v.metadata, v.index, v.chunk, v.rollup_chunk),
            (2, 3, 1, 2, 1, 1, 1, 2)
        );
        let mut chunk = Vec::new();
        crate::codec::chunk::encode_chunk(&[Sample { ts: 1, value: 2.0 }], &mut chunk);
        assert_eq!(chunk.first(), Some(&v.chunk), "a chunk starts with its version byte");
        let bucket = crate::rollup::rollup(&[Sample { ts: 1, value: 2.0 }], crate::rollup::FIVE_MIN_MS).unwrap();
        let mut rolled = Vec::new();
        crate::rollup::codec::encode_buckets(&bucket, &mut rolled).unwrap();
        assert_eq!(rolled.first(), Some(&v.rollup_chunk), "a rollup chunk starts with its version byte");
    }
}
