//! A validated write: every write path (JSON, remote write, line protocol, import)
//! first parses and checks the whole request into a `Batch`, then commits it as one
//! engine batch, so a request is stored whole or not at all.

use std::collections::HashMap;

use super::error::ApiError;
use super::limits::Limits;
use super::metrics::Protocol;
use super::Shared;
use crate::{Db, Labels};

pub(crate) struct Batch {
    series: Vec<Labels>,
    by_labels: HashMap<Labels, u32>,
    /// (index into `series`, ts, value)
    samples: Vec<(u32, i64, f64)>,
    max_series: usize,
    max_samples: usize,
}

impl Batch {
    pub fn new(limits: &Limits) -> Batch {
        Batch::with_capacity(limits, 0)
    }

    /// A batch with room for about `samples` samples (capped by the limit).
    pub fn with_capacity(limits: &Limits, samples: usize) -> Batch {
        Batch {
            series: Vec::new(),
            by_labels: HashMap::new(),
            samples: Vec::with_capacity(samples.min(limits.max_samples_per_request)),
            max_series: limits.max_series_per_request,
            max_samples: limits.max_samples_per_request,
        }
    }

    /// The index of a series in this batch, adding it if new.
    pub fn series(&mut self, labels: Labels, limits: &Limits) -> Result<u32, ApiError> {
        if let Some(&i) = self.by_labels.get(&labels) {
            return Ok(i);
        }
        if self.series.len() >= self.max_series {
            return Err(limits.too_many_series());
        }
        let i = u32::try_from(self.series.len()).map_err(|_| limits.too_many_series())?;
        self.by_labels.insert(labels.clone(), i);
        self.series.push(labels);
        Ok(i)
    }

    pub fn push(&mut self, series: u32, ts: i64, value: f64, limits: &Limits) -> Result<(), ApiError> {
        if self.samples.len() >= self.max_samples {
            return Err(limits.too_many_samples());
        }
        self.samples.push((series, ts, value));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    #[cfg(test)]
    pub fn series_labels(&self) -> impl Iterator<Item = &Labels> {
        self.series.iter()
    }

    #[cfg(test)]
    pub fn samples(&self) -> &[(u32, i64, f64)] {
        &self.samples
    }

    /// Resolves every series, appends every sample and commits once (blocking).
    /// A failure (e.g. the `max_series` cardinality cap) stores no sample; series
    /// resolved before it may remain in the index, empty.
    pub fn commit_blocking(&self, db: &Db) -> crate::Result<usize> {
        let mut app = db.appender();
        let mut refs = Vec::with_capacity(self.series.len());
        for l in &self.series {
            refs.push(app.series(l)?);
        }
        for &(s, ts, v) in &self.samples {
            app.append(refs[s as usize], ts, v)?;
        }
        app.commit()?;
        Ok(self.samples.len())
    }

    /// Commits on the blocking pool and counts the samples for `/metrics`.
    pub async fn commit(self, state: &Shared, protocol: Protocol) -> Result<usize, ApiError> {
        let db = state.db.clone();
        let n = run_blocking(move || self.commit_blocking(&db).map_err(ApiError::from)).await?;
        state.metrics.ingested(protocol, n as u64);
        Ok(n)
    }
}

/// Runs engine work on the blocking pool; a panic there becomes a 500, never a crash.
pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
}
