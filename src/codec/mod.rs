//! Byte-level encodings shared by the log, the head and the segments.

pub mod chunk;
pub mod varint;
pub mod xor;
