//! Streamed response bodies: a blocking producer (an engine read) sends chunks
//! through a small bounded channel, so at most a few chunks are ever buffered and a
//! slow client slows the producer instead of growing memory. An error chunk aborts
//! the response (the client sees a truncated chunked body, never a silent end).

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http_body::Frame;
use tokio::sync::mpsc;

/// Chunks in flight between producer and connection.
const CHANNEL_CHUNKS: usize = 4;
/// A producer hands over its buffer once it holds this much.
pub(crate) const FLUSH_BYTES: usize = 64 << 10;

pub(crate) struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        self.rx.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data)))
    }
}

/// A body and the sender feeding it.
pub(crate) fn channel() -> (Sink, ChannelBody) {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    (Sink { tx, buf: String::new(), gzip: None }, ChannelBody { rx })
}

/// The producer's end: text goes into `buf`; `flush` compresses it (if gzip) and sends.
pub(crate) struct Sink {
    tx: mpsc::Sender<io::Result<Bytes>>,
    pub buf: String,
    gzip: Option<GzEncoder<Vec<u8>>>,
}

impl Sink {
    pub fn gzip(mut self, on: bool) -> Sink {
        self.gzip = on.then(|| GzEncoder::new(Vec::new(), Compression::fast()));
        self
    }

    /// Whether the client is gone (the producer should stop).
    pub fn closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends when the buffer is past `FLUSH_BYTES`; false once the client is gone.
    pub fn maybe_flush(&mut self) -> bool {
        self.buf.len() < FLUSH_BYTES || self.flush()
    }

    /// Sends what is buffered (blocking while the channel is full); false once the client is gone.
    pub fn flush(&mut self) -> bool {
        let chunk = match &mut self.gzip {
            None => std::mem::take(&mut self.buf).into_bytes(),
            Some(enc) => {
                if let Err(e) = enc.write_all(self.buf.as_bytes()) {
                    return self.fail(e);
                }
                self.buf.clear();
                std::mem::take(enc.get_mut())
            }
        };
        chunk.is_empty() || self.tx.blocking_send(Ok(Bytes::from(chunk))).is_ok()
    }

    /// Sends `bytes` after what `buf` holds, uncompressed (for a binary format that
    /// compresses itself); false once the client is gone.
    pub fn send_bytes(&mut self, bytes: Vec<u8>) -> bool {
        debug_assert!(self.gzip.is_none());
        self.flush() && (bytes.is_empty() || self.tx.blocking_send(Ok(Bytes::from(bytes))).is_ok())
    }

    /// Flushes everything, ending the gzip stream; dropping the sink then ends the body.
    pub fn finish(mut self) {
        if !self.flush() {
            return;
        }
        if let Some(enc) = self.gzip.take() {
            match enc.finish() {
                Ok(tail) if !tail.is_empty() => {
                    let _ = self.tx.blocking_send(Ok(Bytes::from(tail)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.fail(e);
                }
            }
        }
    }

    /// Aborts the response with an error; always returns false (stop producing).
    pub fn fail(&mut self, e: io::Error) -> bool {
        log::warn!("aborting a streamed response: {e}");
        let _ = self.tx.blocking_send(Err(e));
        false
    }
}
