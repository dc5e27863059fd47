//! Row groups of the Parquet export, encoded on two threads.
//!
//! A row group's five column chunks are encoded into memory buffers (the string
//! columns by [`StringColumns`], time and value by the crate's typed column
//! writers: delta and byte-split encoding and zstd, most of the export's time) and
//! then spliced into the file in order. Up to one row group at a time goes to a
//! helper thread; while it is busy the caller's thread encodes the next one itself,
//! so on two cores the two threads take turns and reading the store overlaps with
//! encoding. The file is the same whichever thread encoded a group.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use parquet::column::writer::{get_column_writer, get_typed_column_writer, ColumnCloseResult};
use parquet::data_type::{DataType, DoubleType, Int64Type};
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;

use crate::text::parquet_strings::{StringColumns, ZSTD_LEVEL};

/// One row group's rows as gathered: string columns as series runs, times, values.
#[derive(Default)]
pub(crate) struct Batch {
    pub strings: StringColumns,
    pub ts: Vec<i64>,
    pub vs: Vec<f64>,
}

/// A row group's column chunks, in schema order, ready to be spliced.
pub(crate) type Encoded = Vec<(Bytes, ColumnCloseResult)>;

struct Encoder {
    /// The five leaf columns, in schema order.
    descrs: Vec<ColumnDescPtr>,
    props: WriterPropertiesPtr,
    zstd: zstd::bulk::Compressor<'static>,
}

impl Encoder {
    fn new(descrs: Vec<ColumnDescPtr>, props: WriterPropertiesPtr) -> Result<Self> {
        let zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(Encoder { descrs, props, zstd })
    }

    /// Encodes the batch and empties it (keeping its buffers for the next one).
    fn encode(&mut self, b: &mut Batch) -> Result<Encoded> {
        let d = &self.descrs;
        let strings = b.strings.chunks([d[0].clone(), d[1].clone(), d[2].clone()], &mut self.zstd)?;
        let mut out: Encoded = strings.into_iter().collect();
        out.push(typed_chunk::<Int64Type>(d[3].clone(), &self.props, &b.ts)?);
        out.push(typed_chunk::<DoubleType>(d[4].clone(), &self.props, &b.vs)?);
        b.ts.clear();
        b.vs.clear();
        Ok(out)
    }
}

/// A required column chunk through the crate's own writer, into a buffer.
fn typed_chunk<T: DataType>(
    descr: ColumnDescPtr,
    props: &WriterPropertiesPtr,
    values: &[T::T],
) -> Result<(Bytes, ColumnCloseResult)> {
    let mut sink = TrackedWrite::new(Vec::new());
    let close = {
        let pages = Box::new(SerializedPageWriter::new(&mut sink));
        let mut w = get_typed_column_writer::<T>(get_column_writer(descr, props.clone(), pages));
        w.write_batch(values, None, None)?;
        w.close()?
    };
    Ok((Bytes::from(sink.into_inner()?), close))
}

struct Worker {
    jobs: Sender<Batch>,
    done: Receiver<Result<(Batch, Encoded)>>,
    _thread: JoinHandle<()>,
}

/// Encodes row groups as they fill and hands them back, in order, to be written.
pub(crate) struct Pipeline {
    local: Encoder,
    worker: Option<Worker>,
    /// Whether the helper thread was started (or failed to start).
    tried: bool,
    /// Row groups not yet written, oldest first: encoded, or `None` for the one at
    /// the helper thread (at most one).
    queue: VecDeque<Option<Encoded>>,
    busy: bool,
    spare: Vec<Batch>,
}

/// Encoded row groups waiting behind the helper thread's before the caller waits.
const MAX_QUEUED: usize = 4;

impl Pipeline {
    pub(crate) fn new(descrs: Vec<ColumnDescPtr>, props: WriterPropertiesPtr) -> Result<Self> {
        let local = Encoder::new(descrs, props)?;
        Ok(Pipeline { local, worker: None, tried: false, queue: VecDeque::new(), busy: false, spare: Vec::new() })
    }

    /// An empty batch to fill, reusing a written one's buffers when there is one.
    pub(crate) fn batch(&mut self) -> Batch {
        self.spare.pop().unwrap_or_default()
    }

    /// Encodes a full batch (here or on the helper thread) and passes every row
    /// group now ready, in order, to `write`.
    pub(crate) fn submit(&mut self, mut batch: Batch, write: &mut dyn FnMut(Encoded) -> Result<()>) -> Result<()> {
        self.collect(false, write)?;
        if !self.tried {
            self.tried = true;
            self.worker = self.spawn();
        }
        match &self.worker {
            Some(w) if !self.busy => {
                w.jobs.send(batch).map_err(|_| stopped())?;
                self.queue.push_back(None);
                self.busy = true;
            }
            _ => {
                let e = self.local.encode(&mut batch)?;
                self.spare.push(batch);
                self.queue.push_back(Some(e));
            }
        }
        let block = self.queue.len() > MAX_QUEUED;
        self.collect(block, write)
    }

    /// Writes every row group still queued, waiting for the helper thread.
    pub(crate) fn finish(&mut self, write: &mut dyn FnMut(Encoded) -> Result<()>) -> Result<()> {
        self.collect(true, write)
    }

    fn collect(&mut self, block: bool, write: &mut dyn FnMut(Encoded) -> Result<()>) -> Result<()> {
        loop {
            match self.queue.front_mut() {
                Some(Some(_)) => {
                    let Some(Some(e)) = self.queue.pop_front() else { unreachable!() };
                    write(e)?;
                }
                Some(slot @ None) => {
                    let done = &self.worker.as_ref().ok_or_else(stopped)?.done;
                    let got = match block {
                        true => done.recv().map_err(|_| stopped())?,
                        false => match done.try_recv() {
                            Ok(r) => r,
                            Err(crossbeam_channel::TryRecvError::Empty) => return Ok(()),
                            Err(_) => return Err(stopped()),
                        },
                    };
                    let (batch, e) = got?;
                    *slot = Some(e);
                    self.spare.push(batch);
                    self.busy = false;
                }
                None => return Ok(()),
            }
        }
    }

    /// The helper thread, or none if it cannot start (then every group is encoded here).
    fn spawn(&self) -> Option<Worker> {
        let mut enc = Encoder::new(self.local.descrs.clone(), self.local.props.clone()).ok()?;
        let (jobs, rx) = crossbeam_channel::bounded::<Batch>(1);
        let (tx, done) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("parquet-encode".into())
            .spawn(move || {
                for mut b in rx {
                    let r = enc.encode(&mut b).map(|e| (b, e));
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            })
            .ok()?;
        Some(Worker { jobs, done, _thread: thread })
    }
}

fn stopped() -> ParquetError {
    ParquetError::General("the Parquet encoding thread stopped".into())
}
