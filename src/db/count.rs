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
use crate::segment::Segment;

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
#[derive(Clone, Copy)]
struct Source<'a> {
    min: i64,
    max: i64,
    total: u64,
    of: Of<'a>,
}

#[derive(Clone, Copy)]
enum Of<'a> {
    Segment(&'a Segment),
    Head(&'a Head),
}

impl Source<'_> {
    /// Each of this source's series with samples, and its span.
    fn spans(&self, out: &mut HashMap<u64, Vec<Span>>) {
        match self.of {
            Of::Head(h) => {
                h.for_each_distinct(|id, min, max, count| out.entry(id).or_default().push(Span { min, max, count }))
            }
            Of::Segment(seg) => {
                for e in seg.series() {
                    let (Some(first), Some(last)) = (e.chunks.first(), e.chunks.last()) else { continue };
                    let count = e.chunks.iter().map(|c| u64::from(c.count)).sum();
                    out.entry(e.id).or_default().push(Span { min: first.min_t, max: last.max_t, count });
                }
            }
        }
    }
}

pub(crate) fn distinct_samples(st: &State) -> Result<Distinct> {
    let mut sources: Vec<Source> = Vec::new();
    for seg in &st.tiers[0] {
        let info = seg.info();
        if info.samples > 0 {
            sources.push(Source { min: info.min_t, max: info.max_t, total: info.samples, of: Of::Segment(seg) });
        }
    }
    // A first pass over each head only sums; its series are listed again only if it
    // overlaps another source.
    for h in st.frozen.iter().chain(std::iter::once(&st.head)) {
        let (mut total, mut min, mut max) = (0u64, i64::MAX, i64::MIN);
        h.for_each_distinct(|_, lo, hi, count| {
            total += count;
            (min, max) = (min.min(lo), max.max(hi));
        });
        if total > 0 {
            sources.push(Source { min, max, total, of: Of::Head(h) });
        }
    }
    let all = distinct_over(st, &sources)?;
    // The heads alone: frozen heads overlap the active one only when late samples
    // arrive after a freeze.
    let heads_only = State { head: st.head.clone(), frozen: st.frozen.clone(), tiers: Default::default() };
    let heads: Vec<Source> = sources.iter().filter(|s| matches!(s.of, Of::Head(_))).copied().collect();
    Ok(Distinct { heads: distinct_over(&heads_only, &heads)?, all })
}

/// Distinct samples over `sources`, all of which `st` holds and reads merged.
fn distinct_over(st: &State, sources: &[Source]) -> Result<u64> {
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
    let mut n = 0u64;
    for c in &components {
        if c.len() == 1 {
            n += sources[c[0]].total;
            continue;
        }
        // Per series, the spans it has in this component's sources.
        let mut spans: HashMap<u64, Vec<Span>> = HashMap::new();
        for &i in c {
            sources[i].spans(&mut spans);
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
                n += v.iter().map(|s| s.count).sum::<u64>();
            } else {
                // Sources outside this component are disjoint from it in time, so
                // reading every source over the series' span reads only this component.
                let (lo, hi) = (v[0].min, v.iter().map(|s| s.max).max().unwrap_or(i64::MIN));
                n += read_merged(st, id, lo, hi)?.len() as u64;
            }
        }
    }
    Ok(n)
}
