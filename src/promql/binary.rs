//! Binary operators: arithmetic, comparison (filtering or `bool`), the set
//! operators, and vector matching with `on`/`ignoring` and `group_left`/`group_right`,
//! with Prometheus 2.42's result labels and matching errors.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinModifier, BinaryExpr, Expr, LabelModifier, VectorMatchCardinality};

use super::eval::{check_unique, Elem, Evaluator, Steps, Val};
use super::metric::Metric;
use super::{PromqlError, Result};
use crate::hash::{IdMap, LabelBuildHasher};
use crate::labels::METRIC_NAME;

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// Arithmetic drops the metric name; comparisons keep it (unless `bool`), and so
/// does `atan2` in Prometheus 2.42.
fn drops_name(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "%" | "^")
}

/// `(value, keep)`: a comparison keeps the left value when it holds.
fn elem_op(op: &str, l: f64, r: f64) -> Result<(f64, bool)> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        // Rust's `%` on floats is C's fmod, as Go's math.Mod.
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        _ => return Err(PromqlError::unsupported(&format!("operator {op:?}"))),
    })
}

/// How two vectors' elements are paired.
struct Matching<'m> {
    on: bool,
    labels: Vec<&'m str>,
    card: &'m VectorMatchCardinality,
}

impl Matching<'_> {
    /// Whether label `n` is part of the match-group key.
    fn keeps(&self, n: &str) -> bool {
        if self.on {
            self.labels.contains(&n)
        } else {
            n != METRIC_NAME && !self.labels.contains(&n)
        }
    }

    /// The match-group key of one element.
    fn sig(&self, m: &Metric) -> Metric {
        m.filter(|n| self.keeps(n))
    }

    /// One side's elements by the hash of their match-group key.
    fn index<'e>(&self, elems: &'e [Elem]) -> SigIndex<'e> {
        let hasher = LabelBuildHasher::default();
        let mut first = IdMap::default();
        for (i, e) in elems.iter().enumerate() {
            first.entry(e.metric.hash_filtered(&hasher, |n| self.keeps(n))).or_insert(i);
        }
        SigIndex { hasher, first, elems }
    }

    /// Whether an element of `idx` has the same match-group key as `m`.
    fn matches(&self, idx: &SigIndex, m: &Metric) -> bool {
        let Some(&i) = idx.first.get(&m.hash_filtered(&idx.hasher, |n| self.keeps(n))) else { return false };
        let same = |o: &Elem| o.metric.eq_filtered(m, |n| self.keeps(n));
        // The scan runs only on a hash collision.
        same(&idx.elems[i]) || idx.elems.iter().any(same)
    }
}

/// Match-group keys compared by hash first, so that `and`, `or` and `unless`
/// build no key per element.
struct SigIndex<'e> {
    hasher: LabelBuildHasher,
    first: IdMap<usize>,
    elems: &'e [Elem],
}

impl Evaluator<'_> {
    pub fn binary(&mut self, b: &BinaryExpr, ts: &[i64]) -> Result<Val> {
        let op = b.op.to_string();
        let modifier = b.modifier.as_ref();
        if let Some(m) = modifier {
            if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                return Err(PromqlError::unsupported("the fill modifier"));
            }
        }
        let return_bool = modifier.is_some_and(|m| m.return_bool);
        if op == "or" {
            let mut operands = Vec::new();
            or_chain(b, &mut operands);
            if operands.len() > 2 {
                if let Some(v) = self.or_all(&operands, modifier, ts)? {
                    return Ok(Val::Vector(v));
                }
            }
        }
        let lhs = self.eval(&b.lhs, ts)?;
        let rhs = self.eval(&b.rhs, ts)?;
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let mut out = Vec::with_capacity(l.len());
                for (a, b) in l.into_iter().zip(r) {
                    let (v, keep) = elem_op(&op, a, b)?;
                    out.push(if is_comparison(&op) { f64::from(u8::from(keep)) } else { v });
                }
                Ok(Val::Scalar(out))
            }
            (Val::Vector(v), Val::Scalar(s)) => vector_scalar(&op, v, &s, false, return_bool).map(Val::Vector),
            (Val::Scalar(s), Val::Vector(v)) => vector_scalar(&op, v, &s, true, return_bool).map(Val::Vector),
            (Val::Vector(l), Val::Vector(r)) => {
                let default_card = VectorMatchCardinality::OneToOne;
                let (on, labels) = match modifier.and_then(|m| m.matching.as_ref()) {
                    Some(LabelModifier::Include(l)) => (true, l.labels.iter().map(String::as_str).collect()),
                    Some(LabelModifier::Exclude(l)) => (false, l.labels.iter().map(String::as_str).collect()),
                    None => (false, Vec::new()),
                };
                let card = modifier.map(|m| &m.card).unwrap_or(&default_card);
                let matching = Matching { on, labels, card };
                let mut out = Vec::with_capacity(l.len());
                for (ls, rs) in l.into_iter().zip(r) {
                    self.check_deadline()?;
                    out.push(match op.as_str() {
                        "and" => set_and(ls, rs, &matching, true),
                        "unless" => set_and(ls, rs, &matching, false),
                        "or" => set_or(ls, rs, &matching),
                        _ => vector_vector(&op, ls, rs, &matching, return_bool)?,
                    });
                }
                check_unique(&out)?;
                Ok(Val::Vector(out))
            }
            (l, r) => Err(PromqlError::bad_data(format!(
                "binary expression must contain only scalar and instant vector types, got {} {op} {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }

    /// `a or b or c …` in one pass: each operand's elements are kept unless an
    /// element kept before has the same match-group key, which is what the
    /// left-nested chain of `or`s gives, without indexing the growing left side
    /// again at every `or`. `None` if an operand is not an instant vector (the
    /// two-operand path then reports it).
    fn or_all(&mut self, operands: &[&Expr], modifier: Option<&BinModifier>, ts: &[i64]) -> Result<Option<Steps>> {
        let mut vals = Vec::with_capacity(operands.len());
        for e in operands {
            match self.eval(e, ts)? {
                Val::Vector(v) => vals.push(v),
                _ => return Ok(None),
            }
        }
        let (on, labels) = match modifier.and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(l)) => (true, l.labels.iter().map(String::as_str).collect()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.iter().map(String::as_str).collect()),
            None => (false, Vec::new()),
        };
        let default_card = VectorMatchCardinality::ManyToMany;
        let m = Matching { on, labels, card: modifier.map(|m| &m.card).unwrap_or(&default_card) };
        let mut vals: Vec<std::vec::IntoIter<Vec<Elem>>> = vals.into_iter().map(Vec::into_iter).collect();
        let hasher = LabelBuildHasher::default();
        let mut out = Vec::with_capacity(ts.len());
        for _ in ts {
            self.check_deadline()?;
            let mut kept: Vec<Elem> = Vec::new();
            // Hash of a kept element's key -> the first kept element with it.
            let mut first: IdMap<usize> = IdMap::default();
            for v in &mut vals {
                let step = v.next().unwrap_or_default();
                let before = kept.len();
                for e in step {
                    let h = e.metric.hash_filtered(&hasher, |n| m.keeps(n));
                    let same = |o: &Elem| o.metric.eq_filtered(&e.metric, |n| m.keeps(n));
                    // The scan over earlier operands' elements runs only on a hash collision.
                    let taken = first.get(&h).is_some_and(|&i| same(&kept[i]) || kept[..before].iter().any(same));
                    if !taken {
                        kept.push(e);
                    }
                }
                for (i, e) in kept.iter().enumerate().skip(before) {
                    first.entry(e.metric.hash_filtered(&hasher, |n| m.keeps(n))).or_insert(i);
                }
            }
            out.push(kept);
        }
        check_unique(&out)?;
        Ok(Some(out))
    }
}

/// The operands of `b`, an `or`, and of the `or`s with the same modifier nested
/// on its left (as the parser nests `a or b or c`), left to right.
fn or_chain<'e>(b: &'e BinaryExpr, out: &mut Vec<&'e Expr>) {
    let mut lhs = &*b.lhs;
    while let Expr::Paren(p) = lhs {
        lhs = &p.expr;
    }
    match lhs {
        Expr::Binary(l) if l.op.to_string() == "or" && l.modifier == b.modifier => or_chain(l, out),
        _ => out.push(&b.lhs),
    }
    out.push(&b.rhs);
}

/// `vector op scalar` (or `scalar op vector` when `swap`). A comparison keeps the
/// vector's value, whichever side it is on.
fn vector_scalar(op: &str, v: Steps, s: &[f64], swap: bool, return_bool: bool) -> Result<Steps> {
    let drop = drops_name(op) || return_bool;
    let mut out = Vec::with_capacity(v.len());
    for (step, &sv) in v.into_iter().zip(s) {
        let mut o = Vec::with_capacity(step.len());
        for el in step {
            let (l, r) = if swap { (sv, el.v) } else { (el.v, sv) };
            let (mut value, keep) = elem_op(op, l, r)?;
            if is_comparison(op) && swap {
                value = r;
            }
            if return_bool {
                value = f64::from(u8::from(keep));
            } else if !keep {
                continue;
            }
            let metric = if drop { el.metric.without_name() } else { el.metric };
            o.push(Elem { metric, v: value });
        }
        out.push(o);
    }
    check_unique(&out)?;
    Ok(out)
}

fn set_and(lhs: Vec<Elem>, rhs: Vec<Elem>, m: &Matching, keep_matched: bool) -> Vec<Elem> {
    let right = m.index(&rhs);
    lhs.into_iter().filter(|e| m.matches(&right, &e.metric) == keep_matched).collect()
}

fn set_or(lhs: Vec<Elem>, rhs: Vec<Elem>, m: &Matching) -> Vec<Elem> {
    let left = m.index(&lhs);
    let extra: Vec<Elem> = rhs.into_iter().filter(|e| !m.matches(&left, &e.metric)).collect();
    let mut out = lhs;
    out.extend(extra);
    out
}

/// One step of an arithmetic or comparison operation between two vectors.
fn vector_vector(op: &str, lhs: Vec<Elem>, rhs: Vec<Elem>, m: &Matching, return_bool: bool) -> Result<Vec<Elem>> {
    let one_to_many = matches!(m.card, VectorMatchCardinality::OneToMany(_));
    let one_to_one = matches!(m.card, VectorMatchCardinality::OneToOne);
    let include: Vec<&str> = m.card.labels().map(|l| l.labels.iter().map(String::as_str).collect()).unwrap_or_default();
    // The "one" side goes right.
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut right: HashMap<Metric, &Elem> = HashMap::with_capacity(one.len());
    for rs in &one {
        let sig = m.sig(&rs.metric);
        if let Some(dup) = right.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            return Err(PromqlError::execution(format!(
                "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                rs.metric, dup.metric
            )));
        }
        right.insert(sig, rs);
    }
    let mut matched: HashMap<Metric, HashSet<Metric>> = HashMap::new();
    let mut out = Vec::new();
    for ls in &many {
        let sig = m.sig(&ls.metric);
        let Some(rs) = right.get(&sig) else { continue };
        let (vl, vr) = if one_to_many { (rs.v, ls.v) } else { (ls.v, rs.v) };
        let (mut value, keep) = elem_op(op, vl, vr)?;
        if return_bool {
            value = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&ls.metric, &rs.metric, op, m, one_to_one, &include);
        if return_bool {
            metric = metric.without_name();
        }
        if one_to_one {
            if matched.insert(sig, HashSet::new()).is_some() {
                return Err(PromqlError::execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                ));
            }
        } else if !matched.entry(sig).or_default().insert(metric.clone()) {
            return Err(PromqlError::execution(
                "multiple matches for labels: grouping labels must ensure unique label set",
            ));
        }
        out.push(Elem { metric, v: value });
    }
    Ok(out)
}

/// The labels of a matched pair: the "many" side's, less the name for arithmetic;
/// one-to-one keeps only the `on` labels (or drops the `ignoring` ones); the
/// `group_x(...)` labels come from the "one" side.
fn result_metric(l: &Metric, r: &Metric, op: &str, m: &Matching, one_to_one: bool, include: &[&str]) -> Metric {
    let mut metric = if drops_name(op) { l.without_name() } else { l.clone() };
    if one_to_one {
        metric =
            if m.on { metric.filter(|n| m.labels.contains(&n)) } else { metric.filter(|n| !m.labels.contains(&n)) };
    }
    for name in include {
        metric = metric.with(name, r.get(name).unwrap_or(""));
    }
    metric
}
