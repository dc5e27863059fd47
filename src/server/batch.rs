//! A validated write: every write path (JSON, remote write, line protocol, import)
//! parses the request into a `Batch`, then commits it as one engine batch.
//!
//! Acceptance is per point, as in InfluxDB: a line, item or series that cannot be
//! read, and a sample the engine refuses as input (`Error::is_input_error`: older
//! than retention, invalid labels, the series cap, ...), is recorded in `Refusals`
//! and the rest is stored. Request-wide problems (a size limit, unreadable framing)
//! and storage errors still fail the whole request with nothing stored.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::limits::Limits;
use super::metrics::Protocol;
use super::Shared;
use crate::hash::IdMap;
use crate::{Appender, Db, Error, Labels, MetadataUpdate, SeriesRef};

/// Refused points listed in a response; the rest are only counted.
pub(crate) const MAX_LISTED: usize = 100;

/// One sample waiting for commit.
struct Pending {
    /// Index into `Batch::series`.
    slot: u32,
    /// Where the sample came from (line, item or timeseries number), for refusals.
    pos: u32,
    ts: i64,
    value: f64,
}

/// The points of a request that were not stored, and why.
pub(crate) struct Refusals {
    /// What a position counts: "line", "item" or "timeseries" (None: a single item).
    kind: Option<&'static str>,
    /// Points refused: samples, plus each unreadable line or item as one point
    /// (a refused series counts its samples).
    points: u64,
    /// Refusal records (each listed entry is one).
    entries: u64,
    /// Some refusal was malformed input (400) rather than refused input (422).
    malformed: bool,
    listed: Vec<Value>,
    /// The only refusal's message and status, to answer with when it is the only one.
    first: Option<(StatusCode, String)>,
}

impl Refusals {
    pub fn new(kind: Option<&'static str>) -> Refusals {
        Refusals { kind, points: 0, entries: 0, malformed: false, listed: Vec::new(), first: None }
    }

    pub fn points(&self) -> u64 {
        self.points
    }

    /// Refusal records, listed or not.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The first `MAX_LISTED` refusal records, as they go in the response.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn listed(&self) -> &[Value] {
        &self.listed
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Records a refusal at `pos` of `points` points. `series` and `ts` are built only
    /// for listed entries.
    pub fn add(
        &mut self,
        pos: Option<u64>,
        points: u64,
        status: StatusCode,
        reason: String,
        series: impl FnOnce() -> Option<String>,
        ts: Option<i64>,
    ) {
        self.points += points.max(1);
        self.entries += 1;
        self.malformed |= status == StatusCode::BAD_REQUEST;
        if self.entries == 1 {
            self.first = Some((status, reason.clone()));
        }
        if self.listed.len() >= MAX_LISTED {
            return;
        }
        let mut e = Map::new();
        if let (Some(kind), Some(pos)) = (self.kind, pos) {
            e.insert(kind.into(), pos.into());
        }
        if let Some(s) = series() {
            e.insert("series".into(), s.into());
        }
        if let Some(ts) = ts {
            e.insert("timestamp".into(), ts.into());
        }
        if points > 1 {
            e.insert("points".into(), points.into());
        }
        e.insert("reason".into(), reason.into());
        self.listed.push(Value::Object(e));
    }

    /// Records a refused line, item or series from its parse or validation error.
    pub fn add_error(&mut self, pos: Option<u64>, points: u64, e: ApiError) {
        self.add(pos, points, e.status, e.message, || None, None);
    }

    /// Merges the refusals of a later chunk of the same request.
    pub fn extend(&mut self, other: Refusals) {
        self.points += other.points;
        self.malformed |= other.malformed;
        if self.entries == 0 {
            self.first = other.first;
        }
        self.entries += other.entries;
        let room = MAX_LISTED.saturating_sub(self.listed.len());
        self.listed.extend(other.listed.into_iter().take(room));
    }

    /// The answer to a request that stored `accepted` samples and refused these:
    /// 400 if any refused point was malformed, else 422. A request whose one point
    /// was refused answers with that point's own message.
    pub fn into_error(self, accepted: u64) -> ApiError {
        let status = if self.malformed { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
        let message = match self.first {
            Some((_, m)) if self.entries == 1 && accepted == 0 => m,
            _ => format!("partial write: {} of {} points refused", self.points, self.points + accepted),
        };
        let mut listed = self.listed;
        let not_listed = self.entries - listed.len() as u64;
        // The position of an only refusal, at the top level too (`"line": 3`).
        let only_pos = match (self.kind, listed.first()) {
            (Some(kind), Some(Value::Object(first))) if self.entries == 1 => first.get(kind).cloned(),
            _ => None,
        };
        if let Some(kind) = self.kind {
            // Parse refusals are met before commit ones: list them in input order.
            listed.sort_by_key(|e| e.get(kind).and_then(Value::as_u64));
        }
        let mut e = ApiError::new(status, message)
            .with("accepted", accepted)
            .with("refused", self.points)
            .with("refused_points", Value::Array(listed));
        if not_listed > 0 {
            e = e.with("refused_points_not_listed", not_listed);
        }
        if let (Some(kind), Some(p)) = (self.kind, only_pos) {
            e = e.with(kind, p);
        }
        e
    }
}

/// What a commit stored and refused.
pub(crate) struct Outcome {
    pub stored: usize,
    pub refused: Refusals,
}

impl Outcome {
    /// The stored count, or the partial-write error when anything was refused.
    pub fn into_result(self) -> Result<usize, ApiError> {
        if self.refused.is_empty() {
            Ok(self.stored)
        } else {
            Err(self.refused.into_error(self.stored as u64))
        }
    }
}

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
    samples: Vec<Pending>,
    /// Position given to the samples pushed next.
    pos: u32,
    /// Points refused so far (while parsing, then at commit).
    pub refused: Refusals,
    /// Resolves known series while parsing, then commits. None: every series is `New`.
    app: Option<Appender>,
    max_series: usize,
    max_samples: usize,
    /// Metadata changes, stored with the samples (`Db::update_metadata`).
    metadata: Vec<(String, MetadataUpdate)>,
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
            pos: 0,
            refused: Refusals::new(None),
            app: None,
            max_series: limits.max_series_per_request,
            max_samples: limits.max_samples_per_request,
            metadata: Vec::new(),
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

    /// Names what positions count in refusals ("line", "item", "timeseries").
    pub fn positions(&mut self, kind: &'static str) {
        self.refused.kind = Some(kind);
    }

    /// Sets the position (line, item or timeseries number) of the samples pushed next.
    pub fn at(&mut self, pos: u64) {
        self.pos = u32::try_from(pos).unwrap_or(u32::MAX);
    }

    pub fn push(&mut self, series: u32, ts: i64, value: f64, limits: &Limits) -> Result<(), ApiError> {
        if self.samples.len() >= self.max_samples {
            return Err(limits.too_many_samples());
        }
        self.samples.push(Pending { slot: series, pos: self.pos, ts, value });
        Ok(())
    }

    /// Drops the samples pushed since `len` samples were held (a line refused
    /// halfway). Series added meanwhile stay as slots but are never created:
    /// commit resolves only series that have samples.
    pub fn truncate(&mut self, len: usize) {
        self.samples.truncate(len);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Adds a metadata change for metric `name`, checked now as the engine will check it.
    /// One entry per metric and request at most, later ones merged in; an empty update is ignored.
    pub fn metadata(&mut self, name: &str, update: MetadataUpdate) -> Result<(), ApiError> {
        if update.is_empty() {
            return Ok(());
        }
        crate::metadata::validate(name, &update.apply(None)).map_err(ApiError::from)?;
        match self.metadata.iter_mut().find(|(n, _)| n == name) {
            Some((_, old)) => {
                old.kind = update.kind.or(old.kind);
                old.unit = update.unit.or(old.unit.take());
                old.help = update.help.or(old.help.take());
            }
            None => self.metadata.push((name.to_string(), update)),
        }
        Ok(())
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
    pub fn samples(&self) -> Vec<(u32, i64, f64)> {
        self.samples.iter().map(|p| (p.slot, p.ts, p.value)).collect()
    }

    /// Resolves the series that have samples, appends every sample and commits
    /// once (blocking). A series or sample the engine refuses as input (e.g. the
    /// `max_series` cardinality cap, a sample older than retention) is recorded in
    /// the outcome's refusals and the rest is stored. A storage error stores
    /// nothing; series resolved before it may remain in the index, empty.
    pub fn commit_blocking(mut self, db: &Db) -> crate::Result<Outcome> {
        if !self.metadata.is_empty() {
            db.update_metadata(&self.metadata)?;
        }
        let mut app = self.app.take().unwrap_or_else(|| db.appender());
        let mut used = vec![false; self.series.len()];
        for p in &self.samples {
            used[p.slot as usize] = true;
        }
        let mut refs: Vec<Result<SeriesRef, String>> = Vec::with_capacity(self.series.len());
        for (slot, used) in self.series.iter().zip(used) {
            refs.push(match slot {
                _ if !used => Err(String::new()), // never read: no sample points at it
                Slot::Known(r) => Ok(*r),
                Slot::New(l) => match app.series(l) {
                    Ok(r) => Ok(r),
                    Err(e) if e.is_input_error() => Err(e.to_string()),
                    Err(e) => return Err(e),
                },
            });
        }
        let mut refused = std::mem::replace(&mut self.refused, Refusals::new(None));
        let mut stored = 0;
        for p in &self.samples {
            let (reason, named) = match &refs[p.slot as usize] {
                Err(reason) => (reason.clone(), None),
                Ok(r) => match app.append(*r, p.ts, p.value) {
                    Ok(()) => {
                        stored += 1;
                        continue;
                    }
                    Err(e) if e.is_input_error() => {
                        let named = match &e {
                            Error::OutOfRetention { series, .. } => Some(series.clone()),
                            _ => None,
                        };
                        (e.to_string(), named)
                    }
                    Err(e) => return Err(e),
                },
            };
            let series = || named.or_else(|| self.describe(p.slot));
            refused.add(Some(u64::from(p.pos)), 1, StatusCode::UNPROCESSABLE_ENTITY, reason, series, Some(p.ts));
        }
        app.commit()?;
        Ok(Outcome { stored, refused })
    }

    /// The series of a refused sample as `name{a="b"}` when it is known without an
    /// engine lookup (new series carry their labels; a retention refusal names its own).
    fn describe(&self, slot: u32) -> Option<String> {
        match &self.series[slot as usize] {
            Slot::New(l) => Some(l.to_string()),
            Slot::Known(_) => None,
        }
    }

    /// Commits on the blocking pool and counts the stored samples for `/metrics`.
    pub async fn commit(self, state: &Shared, protocol: Protocol) -> Result<Outcome, ApiError> {
        let db = state.db.clone();
        let out = state.writers.run(move || self.commit_blocking(&db).map_err(ApiError::from)).await?;
        state.metrics.ingested(protocol, out.stored as u64);
        Ok(out)
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
            assert_eq!(resolving.commit_blocking(&db).unwrap().stored, 4);
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
