//! Aggregation operators with `by`/`without`, as Prometheus 2.42 computes them:
//! groups in order of first appearance, the metric name dropped (kept only when
//! `by` lists it), `avg` as a running mean and `stddev`/`stdvar` by Welford's method.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::eval::{Elem, Evaluator, Val};
use super::functions::quantile;
use super::metric::Metric;
use super::{PromqlError, Result};
use crate::labels::METRIC_NAME;

#[derive(Clone, Copy)]
struct Group {
    value: f64,
    mean: f64,
    count: f64,
}

impl Evaluator<'_> {
    pub fn aggregate(&mut self, a: &AggregateExpr, ts: &[i64]) -> Result<Val> {
        let op = a.op.to_string();
        if !matches!(
            op.as_str(),
            "sum"
                | "avg"
                | "min"
                | "max"
                | "count"
                | "stddev"
                | "stdvar"
                | "group"
                | "topk"
                | "bottomk"
                | "quantile"
                | "count_values"
        ) {
            return Err(PromqlError::unsupported(&format!("aggregation {op}")));
        }
        let param_scalar = match (&a.param, op.as_str()) {
            (Some(p), "topk" | "bottomk" | "quantile") => Some(self.eval_scalar(p, ts, &op)?),
            _ => None,
        };
        let param_label = match (&a.param, op.as_str()) {
            (Some(p), "count_values") => {
                let l = self.eval_string(p, ts, &op)?;
                if !is_label_name(&l) {
                    return Err(PromqlError::execution(format!("invalid label name {l:?}")));
                }
                Some(l)
            }
            _ => None,
        };
        let input = self.eval_vector(&a.expr, ts, &op)?;
        let grouping = |m: &Metric| -> Metric {
            match &a.modifier {
                None => Metric::default(),
                Some(LabelModifier::Include(l)) => m.filter(|n| l.labels.iter().any(|x| x == n)),
                Some(LabelModifier::Exclude(l)) => m.filter(|n| n != METRIC_NAME && !l.labels.iter().any(|x| x == n)),
            }
        };
        let mut out = Vec::with_capacity(input.len());
        for (s, step) in input.into_iter().enumerate() {
            self.check_deadline()?;
            let p = param_scalar.as_ref().map(|v| v[s]);
            out.push(match op.as_str() {
                "topk" | "bottomk" => top_k(step, p.unwrap_or(f64::NAN), op == "topk", &grouping)?,
                "quantile" => by_group_values(step, &grouping, |vals| quantile(p.unwrap_or(f64::NAN), vals)),
                "count_values" => count_values(step, param_label.as_deref().unwrap_or(""), &grouping),
                _ => simple(&op, step, &grouping),
            });
        }
        Ok(Val::Vector(out))
    }
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_') && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Groups in order of first appearance: the group labels, then the members' indices.
fn groups(step: &[Elem], grouping: &dyn Fn(&Metric) -> Metric) -> Vec<(Metric, Vec<usize>)> {
    let mut index: HashMap<Metric, usize> = HashMap::new();
    let mut out: Vec<(Metric, Vec<usize>)> = Vec::new();
    for (i, el) in step.iter().enumerate() {
        let g = grouping(&el.metric);
        match index.get(&g) {
            Some(&k) => out[k].1.push(i),
            None => {
                index.insert(g.clone(), out.len());
                out.push((g, vec![i]));
            }
        }
    }
    out
}

fn simple(op: &str, step: Vec<Elem>, grouping: &dyn Fn(&Metric) -> Metric) -> Vec<Elem> {
    let mut out = Vec::new();
    for (metric, members) in groups(&step, grouping) {
        let first = step[members[0]].v;
        let mut g = Group { value: first, mean: first, count: 1.0 };
        match op {
            "count" | "group" => g.value = 1.0,
            "stddev" | "stdvar" => g.value = 0.0,
            _ => {}
        }
        for &i in &members[1..] {
            let v = step[i].v;
            g.count += 1.0;
            match op {
                "sum" => g.value += v,
                "avg" => {
                    // A running mean cannot leave an infinity it has reached, except by NaN.
                    if g.mean.is_infinite() {
                        if v.is_infinite() && (g.mean > 0.0) == (v > 0.0) {
                            continue;
                        }
                        if !v.is_infinite() && !v.is_nan() {
                            continue;
                        }
                    }
                    g.mean += v / g.count - g.mean / g.count;
                }
                "min" if g.value > v || g.value.is_nan() => g.value = v,
                "max" if g.value < v || g.value.is_nan() => g.value = v,
                "count" => g.value += 1.0,
                "stddev" | "stdvar" => {
                    let delta = v - g.mean;
                    g.mean += delta / g.count;
                    g.value += delta * (v - g.mean);
                }
                _ => {}
            }
        }
        let v = match op {
            "avg" => g.mean,
            "stddev" => (g.value / g.count).sqrt(),
            "stdvar" => g.value / g.count,
            _ => g.value,
        };
        out.push(Elem { metric, v });
    }
    out
}

fn by_group_values(step: Vec<Elem>, grouping: &dyn Fn(&Metric) -> Metric, f: impl Fn(&mut [f64]) -> f64) -> Vec<Elem> {
    groups(&step, grouping)
        .into_iter()
        .map(|(metric, members)| {
            let mut vals: Vec<f64> = members.iter().map(|&i| step[i].v).collect();
            Elem { metric, v: f(&mut vals) }
        })
        .collect()
}

fn count_values(step: Vec<Elem>, label: &str, grouping: &dyn Fn(&Metric) -> Metric) -> Vec<Elem> {
    let mut index: HashMap<Metric, usize> = HashMap::new();
    let mut out: Vec<Elem> = Vec::new();
    for el in &step {
        let metric = grouping(&el.metric).with(label, &format_go_float(el.v));
        match index.get(&metric) {
            Some(&k) => out[k].v += 1.0,
            None => {
                index.insert(metric.clone(), out.len());
                out.push(Elem { metric, v: 1.0 });
            }
        }
    }
    out
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest digits that round-trip, no exponent.
pub(crate) fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    // Rust's `Display` for f64 prints the shortest round-trip digits without an exponent.
    format!("{v}")
}

/// `topk`/`bottomk`: the `k` largest (smallest) per group, the original labels
/// kept, each group's elements in rank order (NaN last). Which of equal values
/// are kept follows Prometheus exactly: its bounded heap (Go's `container/heap`)
/// is replayed over the group's members in input order.
fn top_k(step: Vec<Elem>, k: f64, top: bool, grouping: &dyn Fn(&Metric) -> Metric) -> Result<Vec<Elem>> {
    // Go refuses what does not fit an int64 (2^63 and beyond).
    if k.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&k) {
        return Err(PromqlError::execution(format!("Scalar value {} overflows int64", format_go_float(k))));
    }
    let k = k as i64;
    if k < 1 {
        return Ok(Vec::new());
    }
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (_, members) in groups(&step, grouping) {
        let mut heap = GoHeap { v: Vec::new(), values: &step, top };
        for &i in &members {
            if heap.v.len() < k {
                heap.push(i);
            } else {
                let (root, v) = (step[heap.v[0]].v, step[i].v);
                let better = if top { root < v } else { root > v };
                if better || (root.is_nan() && !v.is_nan()) {
                    heap.v[0] = i;
                    heap.fix_root();
                }
            }
        }
        let mut kept = heap.v;
        kept.sort_by(|&a, &b| {
            let (x, y) = (step[a].v, step[b].v);
            match (x.is_nan(), y.is_nan()) {
                (false, false) if top => y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal),
                (false, false) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                (a, b) => a.cmp(&b),
            }
        });
        out.extend(kept.into_iter().map(|i| step[i].clone()));
    }
    Ok(out)
}

/// Go's `container/heap` over indices into `values`, with Prometheus's order:
/// NaN first, then ascending for `topk` (the root is the one to evict), descending for `bottomk`.
struct GoHeap<'a> {
    v: Vec<usize>,
    values: &'a [Elem],
    top: bool,
}

impl GoHeap<'_> {
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.values[self.v[i]].v, self.values[self.v[j]].v);
        a.is_nan() || if self.top { a < b } else { a > b }
    }

    fn push(&mut self, x: usize) {
        self.v.push(x);
        self.up(self.v.len() - 1);
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.v.swap(i, j);
            j = i;
        }
    }

    /// `heap.Fix(h, 0)`: sift the root down, or up when it did not move (a no-op at the root).
    fn fix_root(&mut self) {
        let n = self.v.len();
        let mut i = 0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && self.less(j1 + 1, j1) {
                j = j1 + 1;
            }
            if !self.less(j, i) {
                break;
            }
            self.v.swap(i, j);
            i = j;
        }
    }
}
