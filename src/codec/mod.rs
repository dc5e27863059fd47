//! Byte-level encodings shared by the log, the head and the segments.

// Decoders read untrusted bytes: no panicking index or unwrap outside tests.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

pub(crate) mod bytes;
pub mod chunk;
pub(crate) mod framed;
pub mod varint;
pub mod xor;
