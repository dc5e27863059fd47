//! Retention policy types: per-tier durations, rules and the policy that picks, for
//! each series, the rule that governs it (highest priority, ties to the rule added
//! first). A sample at `ts` is retained while `ts >= now - duration` (see
//! [`oldest_retained`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::glob::Glob;
use crate::error::{Error, Result};
use crate::labels::{Labels, Matcher};
use crate::tier::StoredTier;

const DAY: u64 = 24 * 3600;

/// How long data is kept in each tier. "Forever" is [`TierDurations::FOREVER`]
/// (`Duration::MAX`); any duration of `i64::MAX` ms or more behaves the same. Plain
/// durations rather than `Option`s keep comparisons (the longest of several) trivial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierDurations {
    pub raw: Duration,
    pub five_min: Duration,
    pub hour: Duration,
}

impl Default for TierDurations {
    /// Forever in every tier: an embedded store deletes nothing it was not told to.
    fn default() -> Self {
        TierDurations::forever()
    }
}

impl TierDurations {
    pub const FOREVER: Duration = Duration::MAX;

    pub const fn new(raw: Duration, five_min: Duration, hour: Duration) -> Self {
        TierDurations { raw, five_min, hour }
    }

    /// The same duration in every tier.
    pub const fn uniform(d: Duration) -> Self {
        TierDurations::new(d, d, d)
    }

    pub const fn forever() -> Self {
        TierDurations::uniform(Self::FOREVER)
    }

    /// The `tiered` preset: raw 7 days, 5-minute rollups 30 days, hourly rollups 365 days.
    pub const fn tiered() -> Self {
        TierDurations::new(Duration::from_secs(7 * DAY), Duration::from_secs(30 * DAY), Duration::from_secs(365 * DAY))
    }

    /// Whether every tier keeps its data forever.
    pub fn is_forever(&self) -> bool {
        [self.raw, self.five_min, self.hour].iter().all(|d| d.as_millis() >= i64::MAX as u128)
    }

    /// The duration of `tier`.
    pub fn get(&self, tier: StoredTier) -> Duration {
        match tier {
            StoredTier::Raw => self.raw,
            StoredTier::FiveMin => self.five_min,
            StoredTier::Hour => self.hour,
        }
    }

    /// Every duration must be positive: a zero would expire data as it is written.
    pub fn validate(&self) -> Result<()> {
        for (tier, d) in [("raw", self.raw), ("5m", self.five_min), ("1h", self.hour)] {
            if d.is_zero() {
                return Err(Error::InvalidArgument(format!("{tier} retention must be positive")));
            }
        }
        Ok(())
    }

    fn max(self, o: TierDurations) -> TierDurations {
        TierDurations::new(self.raw.max(o.raw), self.five_min.max(o.five_min), self.hour.max(o.hour))
    }
}

impl fmt::Display for TierDurations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raw {}, 5m {}, 1h {}", Human(self.raw), Human(self.five_min), Human(self.hour))
    }
}

/// A duration in the largest unit that divides it: `7d`, `36h`, `90s`, or `forever`.
pub fn human_duration(d: Duration) -> String {
    Human(d).to_string()
}

struct Human(Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms >= i64::MAX as u128 {
            return f.write_str("forever");
        }
        for (unit, name) in [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s")] {
            if ms > 0 && ms.is_multiple_of(unit) {
                return write!(f, "{}{name}", ms / unit);
            }
        }
        write!(f, "{ms}ms")
    }
}

/// The oldest timestamp still retained at `now_ms` when data is kept for `keep`
/// (saturating: `i64::MIN` for forever).
pub fn oldest_retained(now_ms: i64, keep: Duration) -> i64 {
    match i64::try_from(keep.as_millis()) {
        Ok(ms) if ms < i64::MAX => now_ms.saturating_sub(ms),
        _ => i64::MIN,
    }
}

/// Gives the series it selects their own per-tier retention.
#[derive(Debug, Clone)]
pub struct RetentionRule {
    name: String,
    metric_glob: String,
    glob: Glob,
    matchers: Vec<Matcher>,
    priority: i32,
    durations: TierDurations,
}

impl RetentionRule {
    /// A rule selecting series whose metric name matches `metric_glob` (shell-style: `*`,
    /// `?`, `[abc]`, `[a-z]`, `[!a]`) and every matcher. A series without a metric name is
    /// matched as if its name were empty. Fails with `Error::InvalidArgument` naming the
    /// problem for an empty name, a bad glob or a zero duration.
    pub fn new(
        name: impl Into<String>,
        metric_glob: impl Into<String>,
        matchers: Vec<Matcher>,
        priority: i32,
        durations: TierDurations,
    ) -> Result<RetentionRule> {
        let (name, metric_glob) = (name.into(), metric_glob.into());
        let bad = |m: String| Error::InvalidArgument(format!("retention rule {name:?}: {m}"));
        if name.is_empty() {
            return Err(Error::InvalidArgument("retention rule name must not be empty".into()));
        }
        let glob = Glob::parse(&metric_glob).map_err(|e| bad(format!("bad metric glob {metric_glob:?}: {e}")))?;
        durations.validate().map_err(|e| bad(e.to_string()))?;
        Ok(RetentionRule { name, metric_glob, glob, matchers, priority, durations })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn metric_glob(&self) -> &str {
        &self.metric_glob
    }
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }
    pub fn priority(&self) -> i32 {
        self.priority
    }
    pub fn durations(&self) -> &TierDurations {
        &self.durations
    }

    /// Same name, glob, matchers, priority and durations.
    fn same_as(&self, o: &RetentionRule) -> bool {
        self.name == o.name
            && self.metric_glob == o.metric_glob
            && self.priority == o.priority
            && self.durations == o.durations
            && self.matchers.len() == o.matchers.len()
            && self
                .matchers
                .iter()
                .zip(&o.matchers)
                .all(|(a, b)| a.name == b.name && a.op == b.op && a.value == b.value)
    }

    /// Whether the rule selects the series.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.glob.matches(labels.metric_name().unwrap_or("").as_bytes())
            && self.matchers.iter().all(|m| m.matches_labels(labels))
    }
}

/// Per-tier defaults, rules (in the order added) and an optional cap on disk bytes.
/// `Default` keeps everything forever, with no rules and no cap.
#[derive(Debug, Clone, Default)]
pub struct RetentionPolicy {
    default: TierDurations,
    rules: Vec<RetentionRule>,
    max_disk_bytes: Option<u64>,
    /// Where raw data goes as Parquet before retention removes it; relative to the
    /// data directory unless absolute. `None`: removed data is not kept anywhere.
    archive_dir: Option<PathBuf>,
}

impl RetentionPolicy {
    /// A policy with these defaults, no rules and no disk cap.
    pub fn new(default: TierDurations) -> Result<RetentionPolicy> {
        default.validate().map_err(|e| Error::InvalidArgument(format!("default retention: {e}")))?;
        Ok(RetentionPolicy { default, rules: Vec::new(), max_disk_bytes: None, archive_dir: None })
    }

    /// Keep everything forever: no rules, no disk cap.
    pub fn forever() -> RetentionPolicy {
        RetentionPolicy::default()
    }

    /// The `tiered` preset ([`TierDurations::tiered`]), no rules, no disk cap.
    pub fn tiered() -> RetentionPolicy {
        RetentionPolicy { default: TierDurations::tiered(), rules: Vec::new(), max_disk_bytes: None, archive_dir: None }
    }

    /// Replaces the per-tier defaults, keeping the rules and the disk cap.
    pub fn with_defaults(mut self, default: TierDurations) -> Result<RetentionPolicy> {
        default.validate().map_err(|e| Error::InvalidArgument(format!("default retention: {e}")))?;
        self.default = default;
        Ok(self)
    }

    /// Adds a rule after the existing ones (it loses priority ties to them). Rule names
    /// are unique.
    pub fn add_rule(&mut self, rule: RetentionRule) -> Result<()> {
        if self.rules.iter().any(|r| r.name == rule.name) {
            return Err(Error::InvalidArgument(format!("retention rule {:?} already exists", rule.name)));
        }
        self.rules.push(rule);
        Ok(())
    }

    pub fn with_rule(mut self, rule: RetentionRule) -> Result<RetentionPolicy> {
        self.add_rule(rule)?;
        Ok(self)
    }

    /// Removes the rule named `name`; false when there is none.
    pub fn remove_rule(&mut self, name: &str) -> bool {
        let before = self.rules.len();
        self.rules.retain(|r| r.name != name);
        self.rules.len() != before
    }

    /// Caps the bytes of segments, WAL and head together; `None` for no cap.
    pub fn with_max_disk_bytes(mut self, cap: Option<u64>) -> RetentionPolicy {
        self.max_disk_bytes = cap;
        self
    }

    /// Archives raw data as Parquet in `dir` before retention removes it
    /// (docs/format/parquet-export.md, "Archive"); a relative `dir` is resolved against
    /// the data directory. `None` stops archiving. Fails for an empty path, and in a
    /// build without the `parquet` feature, which cannot write the archive.
    pub fn with_archive_dir(self, dir: Option<PathBuf>) -> Result<RetentionPolicy> {
        if let Some(d) = &dir {
            if d.as_os_str().is_empty() {
                return Err(Error::InvalidArgument("archive_dir must not be empty".into()));
            }
            if !cfg!(feature = "parquet") {
                return Err(Error::InvalidArgument(format!(
                    "archive_dir {}: this build has no Parquet support (the `parquet` feature), \
                     so it cannot archive",
                    d.display()
                )));
            }
        }
        Ok(self.with_archive_dir_unchecked(dir))
    }

    /// As recorded: a build without Parquet still reads the setting (and then keeps
    /// data that would need archiving instead of removing it).
    pub(crate) fn with_archive_dir_unchecked(mut self, dir: Option<PathBuf>) -> RetentionPolicy {
        self.archive_dir = dir;
        self
    }

    /// The archive directory as recorded (possibly relative to the data directory).
    pub fn archive_dir(&self) -> Option<&Path> {
        self.archive_dir.as_deref()
    }

    /// The archive directory resolved against the data directory `data_dir`.
    pub fn archive_dir_in(&self, data_dir: &Path) -> Option<PathBuf> {
        self.archive_dir.as_ref().map(|d| if d.is_absolute() { d.clone() } else { data_dir.join(d) })
    }

    pub fn default_durations(&self) -> &TierDurations {
        &self.default
    }
    pub fn rules(&self) -> &[RetentionRule] {
        &self.rules
    }
    pub fn max_disk_bytes(&self) -> Option<u64> {
        self.max_disk_bytes
    }

    /// The durations that apply to a series, and the name of the rule that set them
    /// (`None` for the defaults). Highest priority wins; ties go to the rule added first.
    pub fn effective(&self, labels: &Labels) -> (&TierDurations, Option<&str>) {
        let mut best: Option<&RetentionRule> = None;
        for r in &self.rules {
            // Skip the matching work for rules that could not win anyway.
            if best.is_none_or(|b| r.priority > b.priority) && r.matches(labels) {
                best = Some(r);
            }
        }
        match best {
            Some(r) => (&r.durations, Some(r.name.as_str())),
            None => (&self.default, None),
        }
    }

    /// The oldest timestamp of the series still retained in `tier` at `now_ms`.
    pub fn min_ts(&self, labels: &Labels, tier: StoredTier, now_ms: i64) -> i64 {
        oldest_retained(now_ms, self.effective(labels).0.get(tier))
    }

    /// The longest retention of `tier` over the defaults and every rule: nothing in the tier
    /// older than this is retained for any series (a cheap pre-check on the write path).
    pub fn longest(&self, tier: StoredTier) -> Duration {
        self.rules.iter().map(|r| r.durations.get(tier)).fold(self.default.get(tier), Duration::max)
    }

    /// [`longest`](Self::longest) for every tier at once, for the segment helpers.
    pub fn longest_all(&self) -> TierDurations {
        self.rules.iter().fold(self.default, |acc, r| acc.max(r.durations))
    }

    /// Rules in precedence order (priority, then order added), defaults and the disk cap.
    /// `matching_series` is left for the engine to fill.
    pub fn summary(&self) -> RetentionSummary {
        let mut rules: Vec<&RetentionRule> = self.rules.iter().collect();
        rules.sort_by_key(|r| std::cmp::Reverse(r.priority)); // stable: ties keep their order
        RetentionSummary {
            defaults: self.default,
            rules: rules
                .into_iter()
                .map(|r| RuleSummary {
                    name: r.name.clone(),
                    metric_glob: r.metric_glob.clone(),
                    matchers: r.matchers.iter().map(|m| m.to_string()).collect(),
                    priority: r.priority,
                    durations: r.durations,
                    matching_series: None,
                })
                .collect(),
            max_disk_bytes: self.max_disk_bytes,
            archive_dir: self.archive_dir.as_ref().map(|d| d.display().to_string()),
        }
    }
}

impl PartialEq for RetentionPolicy {
    fn eq(&self, o: &RetentionPolicy) -> bool {
        self.default == o.default
            && self.max_disk_bytes == o.max_disk_bytes
            && self.archive_dir == o.archive_dir
            && self.rules.len() == o.rules.len()
            && self.rules.iter().zip(&o.rules).all(|(a, b)| a.same_as(b))
    }
}

impl fmt::Display for RetentionPolicy {
    /// One line: defaults, disk cap, then each rule as `name: glob{matchers} priority p (durations)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.default)?;
        match self.max_disk_bytes {
            Some(cap) => write!(f, ", disk cap {cap} bytes")?,
            None => write!(f, ", no disk cap")?,
        }
        if let Some(d) = &self.archive_dir {
            write!(f, ", archive to {}", d.display())?;
        }
        for r in &self.rules {
            let m: Vec<String> = r.matchers.iter().map(|m| m.to_string()).collect();
            write!(
                f,
                "; rule {:?}: {}{{{}}} priority {} ({})",
                r.name,
                r.metric_glob,
                m.join(","),
                r.priority,
                r.durations
            )?;
        }
        Ok(())
    }
}

/// A description of a policy for `db.retention_summary()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSummary {
    pub defaults: TierDurations,
    /// In precedence order: the first matching rule in this list applies.
    pub rules: Vec<RuleSummary>,
    pub max_disk_bytes: Option<u64>,
    /// The archive directory as recorded (relative to the data directory unless absolute).
    pub archive_dir: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSummary {
    pub name: String,
    pub metric_glob: String,
    /// Each matcher in Prometheus notation, e.g. `host="h1"`.
    pub matchers: Vec<String>,
    pub priority: i32,
    pub durations: TierDurations,
    /// How many series the rule governs (it matches them and no higher rule does); filled
    /// by the engine, which knows the series.
    pub matching_series: Option<u64>,
}

impl fmt::Display for RetentionSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "default: {}", self.defaults)?;
        match self.max_disk_bytes {
            Some(cap) => writeln!(f, "disk cap: {cap} bytes")?,
            None => writeln!(f, "disk cap: none")?,
        }
        if let Some(d) = &self.archive_dir {
            writeln!(f, "archive: {d} (raw data is written there as Parquet before it is removed)")?;
        }
        for r in &self.rules {
            write!(
                f,
                "rule {:?} (priority {}): {}{{{}}}: {}",
                r.name,
                r.priority,
                r.metric_glob,
                r.matchers.join(","),
                r.durations
            )?;
            if let Some(n) = r.matching_series {
                write!(f, "; {n} series")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::{MAX_GLOB_LEN, TIER_1H, TIER_5M, TIER_RAW};

    const D: i64 = 86_400_000;

    fn days(n: u64) -> Duration {
        Duration::from_secs(n * DAY)
    }

    fn cpu(host: &str) -> Labels {
        Labels::metric("container_cpu_usage_percent", [("host", host)]).unwrap()
    }

    #[test]
    fn defaults_and_forever() {
        assert!(TierDurations::default().is_forever(), "an embedded store keeps everything by default");
        assert!(RetentionPolicy::default().default_durations().is_forever());
        let d = TierDurations::tiered();
        assert_eq!((d.raw, d.five_min, d.hour), (days(7), days(30), days(365)));
        assert_eq!(d.to_string(), "raw 7d, 5m 30d, 1h 365d");
        assert_eq!(TierDurations::forever().to_string(), "raw forever, 5m forever, 1h forever");
        let odd = TierDurations::new(Duration::from_secs(36 * 3600), Duration::from_secs(90), Duration::from_millis(5));
        assert_eq!(odd.to_string(), "raw 36h, 5m 90s, 1h 5ms");
        assert!(TierDurations::new(days(1), Duration::ZERO, days(1))
            .validate()
            .unwrap_err()
            .to_string()
            .contains("5m"));
        assert!(RetentionPolicy::new(TierDurations::uniform(Duration::ZERO)).is_err());
    }

    #[test]
    fn oldest_retained_saturates() {
        assert_eq!(oldest_retained(10 * D, days(7)), 3 * D);
        assert_eq!(oldest_retained(10 * D, TierDurations::FOREVER), i64::MIN);
        assert_eq!(oldest_retained(i64::MIN + 5, days(1)), i64::MIN);
        assert_eq!(oldest_retained(0, Duration::from_millis(i64::MAX as u64 - 1)), i64::MIN + 2);
        assert_eq!(oldest_retained(i64::MAX, Duration::from_millis(1)), i64::MAX - 1);
    }

    #[test]
    fn bad_globs_are_named() {
        let cases = [
            ("", "empty glob"),
            ("cpu[ab", "unclosed '[' at byte 3"),
            ("cpu[", "unclosed '['"),
            ("cpu[!]", "unclosed '['"),
            ("x[z-a]", "reversed range 'z-a' at byte 2"),
            ("cpu]", "unmatched ']' at byte 3"),
            ("cpu usage", "' ' at byte 3 can never occur in a metric name"),
            ("cpu-*", "'-' at byte 3"),
            ("cpué", "'é' at byte 3"),
            ("cpu\\", "trailing '\\'"),
            ("cpu\\-", "'-' at byte 4"),
        ];
        for (p, want) in cases {
            let e = RetentionRule::new("r", p, vec![], 0, TierDurations::tiered()).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, Error::InvalidArgument(_)), "{p:?}: {e:?}");
            assert!(msg.contains("retention rule \"r\"") && msg.contains(want), "{p:?}: {msg}");
        }
        assert!(Glob::parse(&"a".repeat(MAX_GLOB_LEN + 1)).unwrap_err().contains("longer"));
        assert!(RetentionRule::new("", "x", vec![], 0, TierDurations::tiered()).is_err());
        let zero = TierDurations::uniform(Duration::ZERO);
        assert!(RetentionRule::new("r", "x", vec![], 0, zero).unwrap_err().to_string().contains("positive"));
    }

    fn seed_rule() -> RetentionRule {
        // add_retention_rule(metric_pattern="container_cpu_*", retention_days=7,
        //                    labels={"host": "host_1"}, priority=10)
        RetentionRule::new(
            "cpu-host1",
            "container_cpu_*",
            vec![Matcher::eq("host", "host_1")],
            10,
            TierDurations::uniform(days(7)),
        )
        .unwrap()
    }

    #[test]
    fn effective_picks_the_highest_priority_then_the_first_added() {
        let mut p = RetentionPolicy::tiered();
        assert_eq!(p.effective(&cpu("host_1")), (&TierDurations::tiered(), None));
        p.add_rule(seed_rule()).unwrap();
        assert_eq!(p.effective(&cpu("host_1")).1, Some("cpu-host1"));
        assert_eq!(p.effective(&cpu("host_2")).1, None);
        let long = TierDurations::uniform(days(90));
        p.add_rule(RetentionRule::new("all-cpu", "container_cpu_*", vec![], 10, long).unwrap()).unwrap();
        assert_eq!(p.effective(&cpu("host_1")).1, Some("cpu-host1"), "tie goes to the rule added first");
        assert_eq!(p.effective(&cpu("host_2")), (&long, Some("all-cpu")));
        p.add_rule(RetentionRule::new("urgent", "*", vec![], 11, TierDurations::uniform(days(1))).unwrap()).unwrap();
        assert_eq!(p.effective(&cpu("host_1")).1, Some("urgent"));
        assert!(p.add_rule(seed_rule()).unwrap_err().to_string().contains("already exists"));
        assert!(p.remove_rule("urgent") && !p.remove_rule("urgent"));
        assert_eq!(p.effective(&cpu("host_1")).1, Some("cpu-host1"));
        // A series without a metric name is matched by name "".
        let nameless = Labels::from_pairs([("host", "host_1")]).unwrap();
        assert_eq!(p.effective(&nameless).1, None);
        p.add_rule(RetentionRule::new("any", "*", vec![], -5, long).unwrap()).unwrap();
        assert_eq!(p.effective(&nameless).1, Some("any"));
    }

    #[test]
    fn min_ts_and_longest() {
        let mut p = RetentionPolicy::new(TierDurations::tiered()).unwrap();
        p.add_rule(seed_rule()).unwrap();
        let forever = TierDurations::new(days(1), days(2), TierDurations::FOREVER);
        p.add_rule(RetentionRule::new("keep", "node_*", vec![], 0, forever).unwrap()).unwrap();
        let now = 400 * D;
        assert_eq!(p.min_ts(&cpu("host_1"), TIER_5M, now), now - 7 * D);
        assert_eq!(p.min_ts(&cpu("host_2"), TIER_5M, now), now - 30 * D);
        let node = Labels::metric("node_load1", [("host", "a")]).unwrap();
        assert_eq!(p.min_ts(&node, TIER_1H, now), i64::MIN);
        assert_eq!(p.min_ts(&node, TIER_RAW, i64::MIN + 1), i64::MIN);
        assert_eq!(p.longest(TIER_RAW), days(7));
        assert_eq!(p.longest(TIER_5M), days(30));
        assert_eq!(p.longest(TIER_1H), TierDurations::FOREVER);
        assert_eq!(p.longest_all(), TierDurations::new(days(7), days(30), TierDurations::FOREVER));
    }

    #[test]
    fn summary_lists_rules_in_precedence_order() {
        let p = RetentionPolicy::tiered()
            .with_rule(RetentionRule::new("low", "a*", vec![], 1, TierDurations::tiered()).unwrap())
            .unwrap()
            .with_rule(seed_rule())
            .unwrap()
            .with_max_disk_bytes(Some(1 << 30));
        let mut s = p.summary();
        assert_eq!(s.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["cpu-host1", "low"]);
        assert_eq!(s.rules[0].matchers, vec!["host=\"host_1\"".to_string()]);
        s.rules[0].matching_series = Some(12);
        let text = s.to_string();
        assert!(text.contains("default: raw 7d, 5m 30d, 1h 365d"), "{text}");
        assert!(text.contains("disk cap: 1073741824 bytes"), "{text}");
        assert!(
            text.contains(
                "rule \"cpu-host1\" (priority 10): container_cpu_*{host=\"host_1\"}: raw 7d, 5m 7d, 1h 7d; 12 series"
            ),
            "{text}"
        );
    }
}
