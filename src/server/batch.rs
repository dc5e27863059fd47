//! A validated write: every write path (JSON, remote write, line protocol, import)
//! first parses and checks the whole request into a `Batch`, then commits it as one
//! engine batch, so a request is stored whole or not at all.

use std::collections::HashMap;

use super::error::ApiError;
use super::limits::Limits;
use super::metrics::Protocol;
use super::Shared;
use crate::hash::IdMap;
use crate::{Appender, Db, Labels, SeriesRef};

/// One distinct series of a request.
enum Slot {
    /// Already in the engine: found by its borrowed labels, nothing allocated.
    Known(SeriesRef),
    /// New to the engine (or the batch has no engine to ask): created at commit.
    New(Labels),
}

pub(crate) struct Batch {
    series: Vec<Slot>,
    known: IdMap<u32>,
    new: HashMap<Labels, u32>,
    /// (index into `series`, ts, value)
    samples: Vec<(u32, i64, f64)>,
    /// Resolves known series while parsing, then commits. None: every series is `New`.
    app: Option<Appender>,
    max_series: usize,
    max_samples: usize,
}

impl Batch {
    /// A batch that resolves nothing until commit (tests, fuzzing, import).
    pub fn new(limits: &Limits) -> Batch {
        Batch::with_capacity(limits, 0)
    }

    /// A batch with room for about `samples` samples (capped by the limit).
    pub fn with_capacity(limits: &Limits, samples: usize) -> Batch {
        Batch {
            series: Vec::new(),
            known: IdMap::default(),
            new: HashMap::new(),
            samples: Vec::with_capacity(samples.min(limits.max_samples_per_request)),
            app: None,
            max_series: limits.max_series_per_request,
            max_samples: limits.max_samples_per_request,
        }
    }

    /// A batch that looks series up in `db` as they are added, so a series the
    /// engine already holds costs one hash probe and no allocation.
    pub fn for_db(db: Option<&Db>, limits: &Limits, samples: usize) -> Batch {
        Batch { app: db.map(Db::appender), ..Batch::with_capacity(limits, samples) }
    }

    /// The index of a series given as built `Labels` (import), adding it if new;
    /// the engine resolves it at commit.
    pub fn series(&mut self, labels: Labels, limits: &Limits) -> Result<u32, ApiError> {
        if let Some(&i) = self.new.get(&labels) {
            return Ok(i);
        }
        let i = self.next_slot(limits)?;
        self.new.insert(labels.clone(), i);
        self.series.push(Slot::New(labels));
        Ok(i)
    }

    /// The index of the series named by raw client `pairs`, checked against the
    /// limits and the engine's label rules exactly as `Limits::labels` checks them.
    /// A series the engine knows is resolved without building its `Labels`.
    pub fn series_from<'p>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'p str, &'p str)>,
        limits: &Limits,
    ) -> Result<u32, ApiError> {
        // `Labels` order: empty values dropped (they mean "no label"), sorted by
        // name. Up to INLINE pairs live on the stack: a known series allocates nothing.
        const INLINE: usize = 32;
        let mut inline: [(&str, &str); INLINE] = [("", ""); INLINE];
        let mut spill: Vec<(&str, &str)> = Vec::new();
        let (mut count, mut kept) = (0, 0);
        for (k, val) in pairs {
            limits.check_label(k, val)?;
            count += 1;
            if count > limits.max_labels_per_series {
                return Err(limits.too_many_labels());
            }
            if val.is_empty() {
                continue;
            }
            if kept < INLINE {
                inline[kept] = (k, val);
            } else {
                if spill.is_empty() {
                    spill.extend_from_slice(&inline);
                }
                spill.push((k, val));
            }
            kept += 1;
        }
        let sorted = if kept <= INLINE { &mut inline[..kept] } else { &mut spill[..] };
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        // Pairs that are not valid labels (a repeated or bad name) match nothing
        // and fall through to `from_pairs`, which names the problem.
        if let Some(r) = self.app.as_ref().and_then(|app| app.find(sorted)) {
            return self.known(r, limits);
        }
        let labels = Labels::from_pairs(sorted.iter().copied()).map_err(ApiError::from)?;
        self.series(labels, limits)
    }

    fn known(&mut self, r: SeriesRef, limits: &Limits) -> Result<u32, ApiError> {
        if let Some(&i) = self.known.get(&r.id()) {
            return Ok(i);
        }
        let i = self.next_slot(limits)?;
        self.known.insert(r.id(), i);
        self.series.push(Slot::Known(r));
        Ok(i)
    }

    fn next_slot(&self, limits: &Limits) -> Result<u32, ApiError> {
        if self.series.len() >= self.max_series {
            return Err(limits.too_many_series());
        }
        u32::try_from(self.series.len()).map_err(|_| limits.too_many_series())
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

    /// Labels of the series new to the engine (all of them in a batch without one).
    #[cfg(test)]
    pub fn series_labels(&self) -> impl Iterator<Item = &Labels> {
        self.series.iter().filter_map(|s| match s {
            Slot::New(l) => Some(l),
            Slot::Known(_) => None,
        })
    }

    #[cfg(test)]
    pub fn samples(&self) -> &[(u32, i64, f64)] {
        &self.samples
    }

    /// Resolves every series, appends every sample and commits once (blocking).
    /// A failure (e.g. the `max_series` cardinality cap) stores no sample; series
    /// resolved before it may remain in the index, empty.
    pub fn commit_blocking(self, db: &Db) -> crate::Result<usize> {
        let mut app = self.app.unwrap_or_else(|| db.appender());
        let mut refs = Vec::with_capacity(self.series.len());
        for slot in &self.series {
            refs.push(match slot {
                Slot::Known(r) => *r,
                Slot::New(l) => app.series(l)?,
            });
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
        let n = state.writers.run(move || self.commit_blocking(&db).map_err(ApiError::from)).await?;
        state.metrics.ingested(protocol, n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Matcher, Options};

    fn outcome(b: &mut Batch, pairs: &[(&str, &str)], limits: &Limits) -> Result<u32, String> {
        b.series_from(pairs.iter().copied(), limits).map_err(|e| format!("{} {}", e.status, e.message))
    }

    /// Resolving against the engine changes the cost of a series, never the answer:
    /// the same inputs give the same errors and the same stored series as a batch
    /// that builds every `Labels`.
    #[test]
    fn resolving_batches_answer_like_plain_ones() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default().background(false)).unwrap();
        let limits = Limits { max_labels_per_series: 4, max_label_value_len: 8, ..Limits::default() };
        let inputs: Vec<Vec<(&str, &str)>> = vec![
            vec![("__name__", "cpu"), ("host", "a")],
            vec![("host", "a"), ("__name__", "cpu")],
            vec![("host", "a"), ("__name__", "cpu"), ("empty", "")],
            vec![("__name__", "cpu"), ("host", "b"), ("zone", "z1")],
            vec![("__name__", "cpu"), ("host", "a"), ("host", "a")],
            vec![("__name__", "cpu"), ("bad-name", "x")],
            vec![("__name__", "bad name")],
            vec![("__name__", "cpu"), ("host", "much too long")],
            vec![("a", "1"), ("b", "1"), ("c", "1"), ("d", "1"), ("e", "1")],
            vec![("empty", "")],
        ];
        let t0 = crate::server::time::now_ms();
        // Twice: first every series is new, then the valid ones are known.
        for round in 0..2 {
            let mut plain = Batch::new(&limits);
            let mut resolving = Batch::for_db(Some(&db), &limits, 0);
            for (i, pairs) in inputs.iter().enumerate() {
                let (p, r) = (outcome(&mut plain, pairs, &limits), outcome(&mut resolving, pairs, &limits));
                assert_eq!(p, r, "round {round}, input {i}: {pairs:?}");
                if let Ok(s) = r {
                    resolving.push(s, t0 + i as i64, i as f64, &limits).unwrap();
                }
            }
            assert_eq!(plain.series_count(), 2);
            assert_eq!(resolving.series_count(), 2);
            // Round two builds no labels: both series are found in the engine.
            assert_eq!(resolving.series_labels().count(), if round == 0 { 2 } else { 0 });
            assert_eq!(resolving.commit_blocking(&db).unwrap(), 4);
        }
        let q = db.querier(t0..t0 + 100);
        let got: Vec<(String, Vec<i64>)> = q
            .select(&[Matcher::eq("__name__", "cpu")])
            .unwrap()
            .map(|r| r.map(|(l, s)| (l.to_string(), s.map(|s| s.ts).collect())).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                ("cpu{host=\"a\"}".to_string(), vec![t0, t0 + 1, t0 + 2]),
                ("cpu{host=\"b\",zone=\"z1\"}".to_string(), vec![t0 + 3]),
            ]
        );
    }

    #[test]
    fn counts_known_series_against_the_request_cap() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default().background(false)).unwrap();
        let limits = Limits { max_series_per_request: 2, ..Limits::default() };
        let mut b = Batch::for_db(Some(&db), &limits, 0);
        for h in ["a", "b"] {
            let i = b.series_from([("__name__", "m"), ("h", h)], &limits).unwrap();
            b.push(i, crate::server::time::now_ms(), 1.0, &limits).unwrap();
        }
        b.commit_blocking(&db).unwrap();
        let mut b = Batch::for_db(Some(&db), &limits, 0);
        assert_eq!(b.series_from([("h", "a"), ("__name__", "m")], &limits).unwrap(), 0);
        assert_eq!(b.series_from([("__name__", "m"), ("h", "a")], &limits).unwrap(), 0);
        assert_eq!(b.series_from([("__name__", "m"), ("h", "b")], &limits).unwrap(), 1);
        assert_eq!(b.series_from([("__name__", "m"), ("h", "c")], &limits).unwrap_err().status.as_u16(), 413);
    }

    #[test]
    fn resolves_series_with_more_labels_than_fit_inline() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Options::default().background(false)).unwrap();
        let limits = Limits::default();
        let names: Vec<String> = (0..40).map(|i| format!("l{i:02}")).collect();
        let mut pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        pairs.push(("__name__", "wide"));
        let mut b = Batch::for_db(Some(&db), &limits, 0);
        let i = b.series_from(pairs.iter().copied(), &limits).unwrap();
        b.push(i, crate::server::time::now_ms(), 1.0, &limits).unwrap();
        b.commit_blocking(&db).unwrap();
        pairs.reverse();
        pairs.push(("empty", ""));
        let mut b = Batch::for_db(Some(&db), &limits, 0);
        assert_eq!(b.series_from(pairs.iter().copied(), &limits).unwrap(), 0);
        assert_eq!(b.series_labels().count(), 0, "found in the engine, not built");
        pairs.push(("l00", "again"));
        let e = b.series_from(pairs.iter().copied(), &limits).unwrap_err();
        assert!(e.message.contains("l00"), "{}", e.message);
    }
}
