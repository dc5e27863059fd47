//! Distinct samples: what a query over everything would return, counted without
//! reading everything.
//!
//! A sample written twice (a client retry, a re-import, a late overwrite) is held
//! twice until a merge: in a head's out-of-order buffer beside its in-order chunks,
//! in two heads, or in two raw segments that overlap in time. Counts must still
//! match what queries return, so duplicates are found where they can exist:
//! - within a head, only series with an out-of-order buffer need a look;
//! - between sources (raw segments and heads), only sources whose time ranges
//!   overlap, and within those only series whose own ranges overlap, are read
//!   merged, as a query reads them (last write wins, one sample per timestamp).
//!
//! In the usual case (time-ordered writes, segments merged) no samples are read.

use std::collections::HashMap;

use crate::error::Result;

use super::querier::read_merged;
use super::State;
use crate::head::Head;

/// Distinct samples in the heads, and over the raw segments and the heads together.
pub(crate) struct Distinct {
    pub heads: u64,
    pub all: u64,
}

/// One source's view of one series: time range and distinct samples.
#[derive(Clone, Copy)]
struct Span {
    min: i64,
    max: i64,
    count: u64,
}

/// What one source holds: its time range and distinct samples.
struct Source<'a> {
    min: i64,
    max: i64,
    total: u64,
    /// The head this source is, or None for a raw segment.
    head: Option<&'a Head>,
}

/// Each series of `head` with samples, and its span.
fn head_spans(head: &Head, out: &mut HashMap<u64, Vec<Span>>) {
    head.for_each_distinct(|id, min, max, count| out.entry(id).or_default().push(Span { min, max, count }));
}

pub(crate) fn distinct_samples(st: &State) -> Result<Distinct> {
    let mut sources: Vec<Source> = Vec::new();
    for seg in &st.tiers[0] {
        let info = seg.info();
        if info.samples > 0 {
            sources.push(Source { min: info.min_t, max: info.max_t, total: info.samples, head: None });
        }
    }
    // A first pass over each head only sums; series are listed again only for heads
    // that overlap another source.
    for h in st.frozen.iter().chain(std::iter::once(&st.head)) {
        let (mut total, mut min, mut max) = (0u64, i64::MAX, i64::MIN);
        h.for_each_distinct(|_, lo, hi, count| {
            total += count;
            (min, max) = (min.min(lo), max.max(hi));
        });
        if total > 0 {
            sources.push(Source { min, max, total, head: Some(h) });
        }
    }
    // Components of sources linked by overlapping time ranges.
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| sources[i].min);
    let mut components: Vec<Vec<usize>> = Vec::new();
    let mut reach = i64::MIN;
    for i in order {
        match components.last_mut() {
            Some(c) if sources[i].min <= reach => c.push(i),
            _ => {
                components.push(vec![i]);
                reach = i64::MIN;
            }
        }
        reach = reach.max(sources[i].max);
    }
    // Segment sources come first, in the order of the non-empty raw segments.
    let segs: Vec<_> = st.tiers[0].iter().filter(|s| s.info().samples > 0).collect();

    let mut all = 0u64;
    for c in &components {
        if c.len() == 1 {
            all += sources[c[0]].total;
            continue;
        }
        // Per series, the spans it has in this component's sources.
        let mut spans: HashMap<u64, Vec<Span>> = HashMap::new();
        for &i in c {
            if let Some(h) = sources[i].head {
                head_spans(h, &mut spans);
            } else {
                for e in segs[i].series() {
                    let (Some(first), Some(last)) = (e.chunks.first(), e.chunks.last()) else { continue };
                    let count = e.chunks.iter().map(|c| u64::from(c.meta.count)).sum();
                    spans.entry(e.id).or_default().push(Span { min: first.meta.min_t, max: last.meta.max_t, count });
                }
            }
        }
        for (id, mut v) in spans {
            v.sort_by_key(|s| s.min);
            let mut reach = i64::MIN;
            let disjoint = v.iter().all(|s| {
                let ok = s.min > reach;
                reach = reach.max(s.max);
                ok
            });
            if disjoint {
                all += v.iter().map(|s| s.count).sum::<u64>();
            } else {
                // Sources outside this component are disjoint from it in time, so
                // reading every source over the series' span reads only this component.
                let (lo, hi) = (v[0].min, v.iter().map(|s| s.max).max().unwrap_or(i64::MIN));
                all += read_merged(st, id, lo, hi)?.len() as u64;
            }
        }
    }
    let heads: Vec<&Source> = sources.iter().filter(|s| s.head.is_some()).collect();
    let heads = distinct_in_heads(st, &heads)?;
    Ok(Distinct { heads, all })
}

/// Distinct samples over the heads alone (frozen heads overlap the active one only
/// when late samples arrive after a freeze).
fn distinct_in_heads(st: &State, heads: &[&Source]) -> Result<u64> {
    let total: u64 = heads.iter().map(|s| s.total).sum();
    let overlapping =
        heads.iter().enumerate().any(|(a, x)| heads[a + 1..].iter().any(|y| x.min <= y.max && y.min <= x.max));
    if !overlapping {
        return Ok(total);
    }
    let mut spans: HashMap<u64, Vec<Span>> = HashMap::new();
    for h in heads.iter().filter_map(|s| s.head) {
        head_spans(h, &mut spans);
    }
    let mut n = 0u64;
    let heads_only = State { head: st.head.clone(), frozen: st.frozen.clone(), tiers: Default::default() };
    for (id, v) in spans {
        if v.len() == 1 {
            n += v[0].count;
            continue;
        }
        let (lo, hi) = (v.iter().map(|s| s.min).min().unwrap_or(0), v.iter().map(|s| s.max).max().unwrap_or(0));
        n += read_merged(&heads_only, id, lo, hi)?.len() as u64;
    }
    Ok(n)
}
