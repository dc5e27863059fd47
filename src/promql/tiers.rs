//! `count_over_time`, `sum_over_time`, `avg_over_time`, `min_over_time`,
//! `max_over_time` and `present_over_time` of a selector, answered from the
//! rollup tiers through the engine's window reader (`db::windows`), which
//! reads raw samples wherever a bucket would not give raw evaluation's answer.
//! See docs/PROMQL.md, "Rollup tiers".

use promql_parser::parser::Expr;

use super::eval::{check_unique, dur_ms, to_matchers, Elem, Evaluator, Steps};
use super::metric::Metric;
use super::Result;
use crate::db::windows::{Need, WindowAgg};
use crate::rollup::FIVE_MIN_MS;

/// What function `name` reads of a window's aggregate, if the tiers can answer it.
fn need_of(name: &str) -> Option<Need> {
    let none = Need::default();
    Some(match name {
        "count_over_time" | "present_over_time" => none,
        "sum_over_time" => Need { sum: true, ..none },
        "avg_over_time" => Need { avg: true, ..none },
        "min_over_time" => Need { min: true, ..none },
        "max_over_time" => Need { max: true, ..none },
        _ => return None,
    })
}

fn value_of(name: &str, a: &WindowAgg) -> f64 {
    match name {
        "count_over_time" => a.count as f64,
        "sum_over_time" => a.sum,
        "avg_over_time" => a.avg,
        "min_over_time" => a.min,
        "max_over_time" => a.max,
        _ => 1.0,
    }
}

/// Whether the closed window `[lo, hi]` holds a whole 5-minute bucket.
fn holds_bucket(lo: i64, hi: i64) -> bool {
    let w = i128::from(FIVE_MIN_MS);
    let lo = i128::from(lo);
    let first = lo.div_euclid(w) * w + if lo.rem_euclid(w) == 0 { 0 } else { w };
    first + w - 1 <= i128::from(hi)
}

impl Evaluator<'_> {
    /// `name(x[r])` from the tiers, or `None` to evaluate raw: tiers off, another
    /// function, an argument that is not a plain selector, or no window long
    /// enough to hold a whole 5-minute bucket.
    ///
    /// Against `max_samples` it counts the raw samples read (staleness markers
    /// included) and the rollup buckets read, each bucket as one sample.
    pub(crate) fn tier_call(&mut self, name: &str, args: &[&Expr], ts: &[i64]) -> Result<Option<Steps>> {
        let Some(need) = need_of(name).filter(|_| self.opts.use_tiers) else { return Ok(None) };
        let mut arg = match args {
            [a] => *a,
            _ => return Ok(None),
        };
        while let Expr::Paren(p) = arg {
            arg = &p.expr;
        }
        let Expr::MatrixSelector(ms) = arg else { return Ok(None) };
        let range = dur_ms(&ms.range);
        let reads = self.read_times(ts, &ms.vs.at, &ms.vs.offset)?;
        // Consecutive steps with the same read time (`@`) share one window.
        let mut windows: Vec<(i64, i64)> = Vec::new();
        let mut slot = Vec::with_capacity(reads.len());
        for &t in &reads {
            let w = (t.saturating_sub(range), t.min(crate::MAX_TIMESTAMP));
            if windows.last() != Some(&w) {
                windows.push(w);
            }
            slot.push(windows.len() - 1);
        }
        if !windows.iter().any(|&(lo, hi)| holds_bucket(lo, hi)) {
            return Ok(None);
        }
        let matchers = to_matchers(&ms.vs)?;
        let reader = self.db.window_reader(&windows, need);
        let ids = reader.select(&matchers);
        // Unaligned windows whose ragged edges decode nearly every raw chunk anyway
        // (hourly steps over 10 s data, say): raw evaluation reads less. A few
        // series spread over the selection decide for all.
        let probe: Vec<u64> = ids.iter().step_by((ids.len() / 8).max(1)).take(8).copied().collect();
        let mut raw_cheaper = !probe.is_empty();
        for &id in &probe {
            raw_cheaper &= reader.raw_is_cheaper(id)?;
        }
        if raw_cheaper {
            return Ok(None);
        }
        let n = ts.len();
        // Series are read on all cores (see `scan`); parts come back in label order.
        let parts = self.in_parts(
            &ids,
            || (),
            || (vec![Vec::new(); n], Vec::new()),
            |_, (part, metrics): &mut (Steps, Vec<Metric>), id, budget| {
                let Some(sw) = reader.read(id)? else { return Ok(()) };
                budget.add(sw.loaded)?;
                if sw.aggs.iter().all(|a| a.count == 0) {
                    return Ok(());
                }
                let metric = Metric::from_labels(&sw.labels).without_name();
                for (s, &w) in slot.iter().enumerate() {
                    let a = &sw.aggs[w];
                    if a.count > 0 {
                        part[s].push(Elem { metric: metric.clone(), v: value_of(name, a) });
                    }
                }
                metrics.push(metric);
                Ok(())
            },
        )?;
        let mut out: Steps = vec![Vec::new(); n];
        let mut names = std::collections::HashSet::new();
        let mut unique = true;
        for (part, metrics) in parts {
            for (step, els) in out.iter_mut().zip(part) {
                step.extend(els);
            }
            for m in metrics {
                unique &= names.insert(m);
            }
        }
        if !unique {
            check_unique(&out)?;
        }
        Ok(Some(out))
    }
}
