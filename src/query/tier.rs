//! Which tier answers a query.

use super::{needs_raw, Query, Tier};
use crate::error::{Error, Result};

/// Picks the tier that answers `q`.
///
/// `tier_available_from[i]` is the earliest timestamp tier `i` (see
/// [`Tier::index`]) holds, `None` when it is empty or not kept. `now_ms` is the
/// reader's clock: rollups are made from sealed, past data, so a range that
/// starts at or after `now_ms` is answered from raw under `Auto`.
///
/// Explicit tiers: `Raw` always; `FiveMin`/`Hour` unless impossible, which is
/// an `Error::InvalidArgument` saying why (the aggregation needs raw samples,
/// the step is not a multiple of the width, or a range edge is not a multiple
/// of the width). An explicit tier that is empty or only partly covers the
/// range is still honoured.
///
/// `Auto`: raw for aggregations that need raw samples. Otherwise a tier is
/// *usable* when it is not empty, the step (if any) is a multiple of its width
/// and the range holds at least one whole bucket of it: the engine answers the
/// whole buckets from the tier and the ragged edges of an unaligned range from
/// finer tiers and raw samples. The
/// coarsest usable tier that covers the range (`available_from <= start`) wins.
/// If none does, raw wins when it covers the range; failing that, the usable
/// tier or raw reaching furthest back (ties: the coarser), and raw when no
/// tier holds anything. The engine must supply buckets for the whole range
/// from the tier it gets, rolling up (with `rollup::rollup`) any raw data the
/// downsampler has not processed yet.
pub fn choose_tier(q: &Query, now_ms: i64, tier_available_from: [Option<i64>; 3]) -> Result<Tier> {
    q.validate()?;
    match q.requested_tier() {
        Tier::Auto => Ok(auto(q, now_ms, tier_available_from)),
        Tier::Raw => Ok(Tier::Raw),
        t => match impossible(q, t) {
            Some(why) => Err(Error::InvalidArgument(format!("tier {t:?} cannot answer this query: {why}"))),
            None => Ok(t),
        },
    }
}

/// Why bucketed tier `t` cannot answer `q` exactly, if it cannot.
fn impossible(q: &Query, t: Tier) -> Option<String> {
    let w = t.resolution_ms()?;
    let agg = q.aggregation();
    if needs_raw(agg) {
        return Some(format!("Agg::{agg:?} needs raw samples, which rollup buckets do not keep"));
    }
    if let Some(step) = q.step_ms() {
        if step % w != 0 {
            return Some(format!("the step of {step} ms is not a multiple of the tier's {w} ms buckets"));
        }
    }
    let r = q.time_range();
    if r.start.rem_euclid(w) != 0 || r.end.rem_euclid(w) != 0 {
        return Some(format!("the range [{}, {}) does not start and end on multiples of {w} ms", r.start, r.end));
    }
    None
}

/// Whether `Auto` may answer `q` from tier `t` (with raw ragged edges): the step,
/// if any, is a multiple of its width, and the range holds one whole bucket.
fn auto_possible(q: &Query, t: Tier) -> bool {
    let Some(w) = t.resolution_ms() else { return false };
    if q.step_ms().is_some_and(|step| step % w != 0) {
        return false;
    }
    interior(&q.time_range(), w).is_some()
}

/// The whole buckets of width `w` inside `range`: `[first start, last end)`.
pub(crate) fn interior(range: &std::ops::Range<i64>, w: i64) -> Option<std::ops::Range<i64>> {
    let (s, e) = (i128::from(range.start), i128::from(range.end));
    let w = i128::from(w);
    let a = s.div_euclid(w) * w + if s.rem_euclid(w) == 0 { 0 } else { w };
    let b = e.div_euclid(w) * w;
    // Both lie within [start, end] when a < b, so inside i64.
    (a < b).then_some(a as i64..b as i64)
}

fn auto(q: &Query, now_ms: i64, avail: [Option<i64>; 3]) -> Tier {
    let start = q.time_range().start;
    if needs_raw(q.aggregation()) || start >= now_ms {
        return Tier::Raw;
    }
    let from = |t: Tier| t.index().and_then(|i| avail[i]);
    // Coarsest first.
    let usable: Vec<Tier> =
        [Tier::Hour, Tier::FiveMin].into_iter().filter(|&t| from(t).is_some() && auto_possible(q, t)).collect();
    if let Some(&t) = usable.iter().find(|&&t| from(t).is_some_and(|f| f <= start)) {
        return t;
    }
    if from(Tier::Raw).is_some_and(|f| f <= start) {
        return Tier::Raw;
    }
    // Nothing covers the whole range: take the source that reaches furthest back.
    // Strict `<` with the coarsest first: ties go to the coarser tier.
    let mut best: Option<(Tier, i64)> = None;
    for t in usable.into_iter().chain([Tier::Raw]) {
        if let Some(f) = from(t) {
            if best.is_none_or(|(_, b)| f < b) {
                best = Some((t, f));
            }
        }
    }
    best.map_or(Tier::Raw, |(t, _)| t)
}
