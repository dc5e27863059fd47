//! A bucketed answer kept per result group before it is reduced to points: each
//! group's members and its step buckets, members folded. The query cache keeps
//! the part of an answer that can no longer change and a refresh evaluates only
//! the edges around it, then splices; [`finish_parts`] reduces the result.
//!
//! Exact by construction: a step bucket of a group is the fold, in label order,
//! of the step buckets of the members with data in it, and a member's step
//! bucket is the fold of its pieces inside it (`fold_step_buckets`). Neither
//! depends on anything outside that step bucket, so step buckets computed apart
//! and spliced equal those of one evaluation over the whole range, as long as
//! each was computed from the same pieces.

use std::collections::{BTreeMap, HashMap};

use super::eval::{bucket_value, fold_step_buckets, group_key, group_labels, order_and_cut, rate_secs, Data, Grid};
use super::{needs_raw, Query, QueryResult, ResultSeries, Tier};
use crate::error::{Error, Result};
use crate::hash::LabelBuildHasher;
use crate::labels::Labels;
use crate::rollup::Bucket;
use crate::sample::Sample;

/// A group's identity: the grouping labels' values, or a series' own labels when
/// the query does not group.
pub(crate) type GroupKey = Vec<(String, String)>;

/// One result group over a stretch of the range.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct GroupPart {
    /// The members with data in the stretch, in label order, each with the start
    /// of its last step bucket with data (which tells whether it still has data
    /// in a shorter stretch).
    pub members: Vec<(Labels, i64)>,
    /// The group's non-empty step buckets, in time order.
    pub buckets: Vec<Bucket>,
}

/// Every group of an answer over a stretch of its range.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Parts(pub BTreeMap<GroupKey, GroupPart>);

impl Parts {
    /// Bytes held, roughly: what the query cache charges for it.
    pub fn bytes(&self) -> usize {
        self.0
            .iter()
            .map(|(k, p)| {
                k.iter().map(|(a, b)| a.len() + b.len() + 48).sum::<usize>()
                    + 64
                    + p.members.capacity() * std::mem::size_of::<(Labels, i64)>()
                    + p.buckets.capacity() * std::mem::size_of::<Bucket>()
            })
            .sum()
    }

    /// The step buckets from `from` on and the members with data there.
    pub fn from(&self, from: i64) -> Parts {
        let mut out = BTreeMap::new();
        for (k, p) in &self.0 {
            let at = p.buckets.partition_point(|b| b.start < from);
            let members: Vec<_> = p.members.iter().filter(|m| m.1 >= from).cloned().collect();
            if !members.is_empty() {
                out.insert(k.clone(), GroupPart { members, buckets: p.buckets[at..].to_vec() });
            }
        }
        Parts(out)
    }

    /// `self` with `middle` put in: every bucket of `middle` lies after those of
    /// `self` that start before `at` and before the others.
    pub fn splice(mut self, middle: Parts, at: i64) -> Parts {
        for (k, m) in middle.0 {
            let Some(p) = self.0.get_mut(&k) else {
                self.0.insert(k, m);
                continue;
            };
            let cut = p.buckets.partition_point(|b| b.start < at);
            let tail = p.buckets.split_off(cut);
            p.buckets.extend(m.buckets);
            p.buckets.extend(tail);
            let mut members = Vec::with_capacity(p.members.len() + m.members.len());
            let (mut a, mut b) =
                (std::mem::take(&mut p.members).into_iter().peekable(), m.members.into_iter().peekable());
            loop {
                let next = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) if x.0 == y.0 => {
                        let last = x.1.max(y.1);
                        b.next();
                        a.next().map(|(l, _)| (l, last))
                    }
                    (Some(x), Some(y)) if x.0 < y.0 => a.next(),
                    (Some(_), None) => a.next(),
                    _ => b.next(),
                };
                let Some(n) = next else { break };
                members.push(n);
            }
            p.members = members;
        }
        self
    }
}

/// Folds the pieces of each selected series (as `evaluate_pieces` takes them) into
/// its group's step buckets.
pub(crate) fn group_parts(q: &Query, input: Vec<(Labels, Vec<Bucket>)>) -> Result<Parts> {
    Ok(group_parts_keeping(q, input, None)?.0)
}

/// [`group_parts`], and with `keep` (on step bounds) also the part of the answer
/// in `keep`: the groups' step buckets there, each group's members with pieces
/// there and, per member, its last step with data there. Taken from the one fold
/// of the whole range, which equals a fold of only the pieces in `keep`: a step
/// bucket depends on nothing outside it.
pub(crate) fn group_parts_keeping(
    q: &Query,
    mut input: Vec<(Labels, Vec<Bucket>)>,
    keep: Option<std::ops::Range<i64>>,
) -> Result<(Parts, Option<Parts>)> {
    q.validate()?;
    if needs_raw(q.aggregation()) {
        return Err(Error::InvalidArgument(format!(
            "Agg::{:?} needs raw samples; a group's step buckets cannot answer it",
            q.aggregation()
        )));
    }
    let grid = Grid { start: q.time_range().start, step: q.step_ms() };
    input.retain(|(_, b)| !b.is_empty());
    // Label order fixes the member order within a group, as `finish` does.
    input.sort_by(|a, b| a.0.cmp(&b.0));
    // Per group: its key, its members (with their last step), the members with
    // pieces in `keep` (with their last step there), and their pieces.
    struct Group {
        key: GroupKey,
        members: Vec<(Labels, i64)>,
        kept: Vec<(Labels, i64)>,
        data: Vec<Data>,
    }
    let mut groups: Vec<Group> = Vec::new();
    // A series' group found by the bytes of its key (`group_bytes`), so the key
    // itself is built once per group, not once per series.
    let mut slot: HashMap<Vec<u8>, usize, LabelBuildHasher> = HashMap::default();
    let mut bytes = Vec::new();
    for (labels, pieces) in input {
        group_bytes(q.grouping(), &labels, &mut bytes);
        let i = match slot.get(bytes.as_slice()) {
            Some(&i) => i,
            None => {
                let key = match q.grouping() {
                    Some(names) => group_key(names, &labels),
                    None => labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
                };
                groups.push(Group { key, members: Vec::new(), kept: Vec::new(), data: Vec::new() });
                slot.insert(bytes.clone(), groups.len() - 1);
                groups.len() - 1
            }
        };
        let last = pieces.last().map_or(i64::MIN, |b| grid.key(b.start));
        let g = &mut groups[i];
        if let Some(k) = &keep {
            // Its last piece before the kept stretch ends, if that lies in it.
            let last_kept = pieces.iter().rev().find(|b| b.start < k.end).filter(|b| b.start >= k.start);
            if let Some(b) = last_kept {
                g.kept.push((labels.clone(), grid.key(b.start)));
            }
        }
        g.members.push((labels, last));
        g.data.push(Data::Buckets(pieces));
    }
    let mut out = BTreeMap::new();
    let mut kept = keep.as_ref().map(|_| BTreeMap::new());
    for g in groups {
        let mut buckets = Vec::new();
        fold_step_buckets(&g.data, grid, |b| buckets.push(*b));
        if let (Some(k), Some(kept)) = (&keep, kept.as_mut()) {
            if !g.kept.is_empty() {
                let a = buckets.partition_point(|b| b.start < k.start);
                let z = buckets.partition_point(|b| b.start < k.end);
                kept.insert(g.key.clone(), GroupPart { members: g.kept, buckets: buckets[a..z].to_vec() });
            }
        }
        out.insert(g.key, GroupPart { members: g.members, buckets });
    }
    Ok((Parts(out), kept.map(Parts)))
}

/// Bytes equal for two series exactly when their group keys are: per grouping
/// name 0 when the series lacks it, else 1, the value and 0xFF (which UTF-8
/// never holds); without grouping, the packed label text (one-to-one).
fn group_bytes(names: Option<&[String]>, labels: &Labels, out: &mut Vec<u8>) {
    out.clear();
    let Some(names) = names else {
        out.extend_from_slice(labels.text().as_bytes());
        return;
    };
    for n in names {
        match labels.get(n) {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(v.as_bytes());
                out.push(0xFF);
            }
            None => out.push(0),
        }
    }
}

/// The answer `evaluate_pieces` gives, from the groups' step buckets.
pub(crate) fn finish_parts(q: &Query, parts: Parts, tier: Tier) -> Result<QueryResult> {
    let agg = q.aggregation();
    let secs = rate_secs(q);
    let mut out = Vec::with_capacity(parts.0.len());
    for (key, part) in parts.0 {
        let labels = match q.grouping() {
            Some(names) => group_labels(names, key, part.members.iter().map(|m| &m.0))?,
            None => match part.members.into_iter().next() {
                Some((l, _)) => l,
                None => continue,
            },
        };
        let points = part.buckets.iter().map(|b| Sample::new(b.start, bucket_value(agg, b, secs))).collect();
        out.push(ResultSeries { labels, points });
    }
    Ok(order_and_cut(q, out, tier))
}
