//! The label set of a PromQL result. Unlike [`crate::Labels`] it may be empty
//! (`sum(x)` has no labels), so it is its own type. Cloning shares the pairs.

use crate::labels::METRIC_NAME;
use crate::pairs::Pairs;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

/// Label pairs sorted by name, no empty values.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Metric(Pairs);

impl Metric {
    /// Builds a set from pairs in any order; pairs with an empty value are dropped
    /// (an empty value means "no such label"). A later pair of the same name wins.
    pub fn from_pairs<I, K, V>(pairs: I) -> Metric
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut v: Vec<(String, String)> = pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        // Keep the last of equal names: reverse, dedup keeps the first, reverse back.
        v.reverse();
        v.dedup_by(|a, b| a.0 == b.0);
        v.reverse();
        v.retain(|(_, val)| !val.is_empty());
        Metric(Pairs::new(v.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }

    /// Shares `l`'s pairs: `Labels` holds them sorted by name with no empty value too.
    pub(crate) fn from_labels(l: &crate::Labels) -> Metric {
        Metric(l.shared_pairs())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// The same labels without `__name__`.
    pub(crate) fn without_name(&self) -> Metric {
        if self.get(METRIC_NAME).is_none() {
            return self.clone();
        }
        self.filter(|n| n != METRIC_NAME)
    }

    /// Where the shared pairs live: equal for clones of one set while any is alive.
    pub(crate) fn addr(&self) -> usize {
        self.0.addr()
    }

    /// The hash of the pairs whose name `keep` accepts, without building that set.
    pub(crate) fn hash_filtered(&self, bh: &impl BuildHasher, keep: impl Fn(&str) -> bool) -> u64 {
        let mut h = bh.build_hasher();
        for (k, v) in self.0.iter().filter(|(k, _)| keep(k)) {
            k.hash(&mut h);
            v.hash(&mut h);
        }
        h.finish()
    }

    /// Whether the pairs `keep` accepts are the same in both sets.
    pub(crate) fn eq_filtered(&self, other: &Metric, keep: impl Fn(&str) -> bool) -> bool {
        self.0.iter().filter(|(k, _)| keep(k)).eq(other.0.iter().filter(|(k, _)| keep(k)))
    }

    pub(crate) fn filter(&self, keep: impl Fn(&str) -> bool) -> Metric {
        let kept: Vec<(&str, &str)> = self.0.iter().filter(|(n, _)| keep(n)).collect();
        Metric(Pairs::new(kept.into_iter()))
    }

    /// The same labels with `name` set to `value` (removed when `value` is empty).
    pub(crate) fn with(&self, name: &str, value: &str) -> Metric {
        let mut v: Vec<(&str, &str)> = self.0.iter().filter(|(n, _)| *n != name).collect();
        if !value.is_empty() {
            let at = v.partition_point(|(n, _)| *n < name);
            v.insert(at, (name, value));
        }
        Metric(Pairs::new(v.into_iter()))
    }
}

/// `{a="1", b="2"}`, as Prometheus prints label sets in its messages.
impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
