//! What the Db knows about its metrics: listing, per-metric info, summaries, and
//! the public maintenance and retention entry points.

use std::collections::{BTreeMap, BTreeSet};

use super::Db;
use crate::error::Result;
use crate::labels::{Labels, Matcher, METRIC_NAME};
use crate::query::{Query, QueryResult, Summary};
use crate::retention::{RetentionPolicy, RetentionRule, RetentionSummary};
use crate::CompactionReport;

/// One page of metric names with their series counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricList {
    /// Names matching the search, before paging.
    pub total: usize,
    pub page: usize,
    pub page_size: usize,
    pub metrics: Vec<(String, usize)>,
}

/// What is stored for one metric name.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    pub name: String,
    pub series: usize,
    /// Label names seen on its series (besides `__name__`), each with its distinct values.
    pub labels: BTreeMap<String, BTreeSet<String>>,
    pub first_ts: Option<i64>,
    pub last_ts: Option<i64>,
    /// Raw samples currently visible (retention applied).
    pub samples: u64,
}

impl Db {
    /// Runs a query: selection, tier choice, aggregation, grouping, top-k.
    pub fn query(&self, q: &Query) -> Result<QueryResult> {
        self.inner.query(q)
    }

    /// count/min/max/avg/p50/p95/p99 per matching series over the query's range (raw data).
    pub fn summary(&self, q: &Query) -> Result<Vec<(Labels, Summary)>> {
        self.inner.summaries(q)
    }

    /// Metric names containing `search` (case-insensitive), with series counts, paged
    /// (`page` starts at 1).
    pub fn metrics(&self, search: Option<&str>, page: usize, page_size: usize) -> MetricList {
        let needle = search.map(str::to_lowercase);
        let all: Vec<(String, usize)> = self
            .inner
            .index
            .value_counts(METRIC_NAME)
            .into_iter()
            .filter(|(n, _)| needle.as_deref().is_none_or(|s| n.to_lowercase().contains(s)))
            .collect();
        let (page, page_size) = (page.max(1), page_size.max(1));
        let metrics = all.iter().skip((page - 1).saturating_mul(page_size)).take(page_size).cloned().collect();
        MetricList { total: all.len(), page, page_size, metrics }
    }

    /// Labels, time span and sample count of one metric; None if no series has that name.
    pub fn metric_info(&self, name: &str) -> Result<Option<MetricInfo>> {
        let ids = self.inner.index.select(&[Matcher::eq(METRIC_NAME, name)]);
        if ids.is_empty() {
            return Ok(None);
        }
        let snap = self.inner.snapshot();
        let mut info = MetricInfo {
            name: name.to_string(),
            series: ids.len(),
            labels: BTreeMap::new(),
            first_ts: None,
            last_ts: None,
            samples: 0,
        };
        for id in ids {
            let Some(labels) = self.inner.index.labels(id) else { continue };
            for (k, v) in labels.iter().filter(|(k, _)| *k != METRIC_NAME) {
                info.labels.entry(k.to_string()).or_default().insert(v.to_string());
            }
            let samples = self.inner.visible_raw(&snap, id, &labels)?;
            if let (Some(a), Some(b)) = (samples.first(), samples.last()) {
                info.first_ts = Some(info.first_ts.map_or(a.ts, |f| f.min(a.ts)));
                info.last_ts = Some(info.last_ts.map_or(b.ts, |l| l.max(b.ts)));
            }
            info.samples += samples.len() as u64;
        }
        Ok(Some(info))
    }

    /// Downsamples, merges segments per the compaction planner and applies retention now.
    pub fn compact(&self) -> Result<CompactionReport> {
        self.inner.check_writable()?;
        self.inner.maintain_guarded()
    }

    /// Every live segment's metadata (all tiers), as the compaction planner sees it.
    pub fn segments(&self) -> Vec<crate::compact::SegmentMeta> {
        self.inner.segment_metas()
    }

    /// The merges `compact()` would run now (after downsampling), without running them.
    pub fn compaction_plan(&self) -> Vec<crate::compact::Plan> {
        crate::compact::plan_compactions(&self.inner.segment_metas(), &self.inner.opts.compaction)
    }

    /// The retention policy in force.
    pub fn retention_policy(&self) -> RetentionPolicy {
        self.inner.retention.read().clone()
    }

    /// Rolls sealed raw data into the 5-minute tier and that into the hourly tier now.
    /// Returns how many rollup segments were written.
    pub fn downsample(&self) -> Result<usize> {
        self.inner.check_writable()?;
        self.inner.guarded("downsampling", || self.inner.downsample())
    }

    /// What applying retention now would remove, and why: exactly what
    /// [`apply_retention`](Self::apply_retention) carries out if nothing changes between.
    pub fn retention_plan(&self) -> crate::retention::RetentionPlan {
        self.inner.retention_plan()
    }

    /// The query cache's counters since open and its size now (`Options::query_cache_bytes`).
    pub fn query_cache_stats(&self) -> crate::QueryCacheStats {
        self.inner.query_cache.stats()
    }

    /// What retention and `delete` removed since open.
    pub fn removal_stats(&self) -> crate::RemovalStats {
        self.inner.removals.get()
    }

    /// Applies retention now: drops expired segments, trims straddling ones, enforces
    /// the disk cap. Queries already hide expired data; this frees the disk.
    pub fn apply_retention(&self) -> Result<CompactionReport> {
        self.inner.check_writable()?;
        let _pass = self.inner.maintain_lock.lock();
        let mut r = CompactionReport { bytes_before: self.inner.disk_bytes(), ..Default::default() };
        self.inner.guarded("applying retention", || self.inner.apply_retention_into(&mut r))?;
        r.bytes_after = self.inner.disk_bytes();
        Ok(r)
    }

    /// Adds a retention rule and records it (`SETTINGS`) before it applies. Fails if a
    /// rule of that name exists.
    pub fn add_retention_rule(&self, rule: RetentionRule) -> Result<()> {
        self.change_retention(|p| p.add_rule(rule))
    }

    /// Removes the rule named `name` and records the change; false when there is none.
    pub fn remove_retention_rule(&self, name: &str) -> Result<bool> {
        let mut found = false;
        self.change_retention(|p| {
            found = p.remove_rule(name);
            Ok(())
        })?;
        Ok(found)
    }

    /// Replaces the retention policy and records it (`SETTINGS`) before it applies; it
    /// governs every later open of this directory. Data already past the new policy is
    /// hidden from reads at once and deleted at the next maintenance pass.
    pub fn set_retention(&self, policy: RetentionPolicy) -> Result<()> {
        self.change_retention(|p| {
            *p = policy;
            Ok(())
        })
    }

    /// Applies `change` to a copy of the policy, records the copy, then swaps it in. The
    /// write lock is held throughout, so concurrent changes cannot lose each other.
    fn change_retention(&self, change: impl FnOnce(&mut RetentionPolicy) -> Result<()>) -> Result<()> {
        self.inner.check_writable()?;
        let mut cur = self.inner.retention.write();
        let mut next = cur.clone();
        change(&mut next)?;
        if next == *cur {
            return Ok(());
        }
        if !self.is_in_memory() {
            crate::retention::store_settings(&self.inner.dir, &next)?;
        }
        log::info!("{}: retention changed from [{}] to [{next}]", self.inner.dir.display(), *cur);
        *cur = next;
        Ok(())
    }

    /// The rules and defaults in force, each rule with the number of series it governs.
    pub fn retention_summary(&self) -> RetentionSummary {
        let policy = self.inner.retention.read();
        let mut summary = policy.summary();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for id in self.inner.index.all_ids() {
            if let Some(l) = self.inner.index.labels(id) {
                if let (_, Some(rule)) = policy.effective(&l) {
                    *counts.entry(rule.to_string()).or_default() += 1;
                }
            }
        }
        for r in &mut summary.rules {
            r.matching_series = Some(counts.get(&r.name).copied().unwrap_or(0));
        }
        summary
    }
}
