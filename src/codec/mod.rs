//! Byte-level encodings shared by the log, the head and the segments.

pub mod varint;
