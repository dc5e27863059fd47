//! Metric metadata for the target: type, help and unit per metric family, sent as
//! Prometheus's remote-write queue sends them, in `WriteRequest`s of their own.
//!
//! Metadata is state, not a stream: the whole selected map is sent when the
//! forwarder starts, again within a second of any change, and again every
//! `metadata_interval` so that a target that lost it (or started empty) gets it
//! back. Nothing about it is persisted; a restart simply sends it again. 429, 5xx
//! and no answer are retried with backoff; any other refusal is counted, logged
//! and tried again at the next interval.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::send::{agent, compress, post, Backoff, Verdict};
use super::wire::encode_metadata;
use super::Shared;
use crate::db::Inner;
use crate::labels::Matcher;
use crate::metadata::MetricMetadata;
use crate::METRIC_NAME;

/// Families per request, as Prometheus's default `max_samples_per_send` for metadata.
const PER_REQUEST: usize = 500;
const POLL: Duration = Duration::from_millis(200);

pub(super) struct MetaSender {
    pub shared: Arc<Shared>,
    pub inner: Arc<Inner>,
    pub seed: u64,
}

/// Whether the family `name` is selected: the selector's matchers on the metric
/// name apply to it; matchers on other labels do not (metadata belongs to a
/// metric, not to a series).
pub(super) fn selects(selector: &[Matcher], name: &str) -> bool {
    selector.iter().filter(|m| m.name == METRIC_NAME).all(|m| m.matches(name))
}

impl MetaSender {
    pub fn run(self) {
        let shared = &self.shared;
        let every = shared.config.metadata_interval;
        let agent = agent(shared);
        let mut backoff = Backoff::new(shared.config.min_backoff, shared.config.max_backoff, self.seed);
        let (mut body, mut compressed, mut encoder) = (Vec::new(), Vec::new(), snap::raw::Encoder::new());
        // the metadata generation last sent, when, and when to retry a failed send
        let mut sent: Option<u64> = None;
        let mut last = Instant::now();
        let mut retry_at: Option<Instant> = None;
        while !shared.stop.load(Ordering::Acquire) {
            let generation = self.inner.metadata.read().changes;
            let due = match retry_at {
                Some(t) => Instant::now() >= t,
                None => sent != Some(generation) || last.elapsed() >= every,
            };
            if due {
                let list = self.selected();
                match self.send(&list, &agent, &mut encoder, &mut body, &mut compressed) {
                    None => {
                        sent = Some(generation);
                        last = Instant::now();
                        retry_at = None;
                        backoff.reset();
                    }
                    Some(hint) => {
                        shared.retries.fetch_add(1, Ordering::Relaxed);
                        retry_at = Some(Instant::now() + backoff.next(hint));
                    }
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// The selected families, sorted by name.
    fn selected(&self) -> Vec<(String, MetricMetadata)> {
        let sel = &self.shared.config.selector;
        let m = self.inner.metadata.read();
        m.map.iter().filter(|(n, _)| selects(sel, n)).map(|(n, v)| (n.clone(), v.clone())).collect()
    }

    /// Sends `list` in requests of `PER_REQUEST`; `Some(hint)` when a request is to
    /// be retried (the whole list is sent again then).
    fn send(
        &self,
        list: &[(String, MetricMetadata)],
        agent: &ureq::Agent,
        encoder: &mut snap::raw::Encoder,
        body: &mut Vec<u8>,
        compressed: &mut Vec<u8>,
    ) -> Option<Option<Duration>> {
        let shared = &self.shared;
        for part in list.chunks(PER_REQUEST) {
            encode_metadata(part, body);
            let n = match compress(encoder, body, compressed) {
                Ok(n) => n,
                Err(e) => {
                    log::error!("forward to {}: compressing metadata: {e}", shared.target);
                    shared.metadata_failed.fetch_add(part.len() as u64, Ordering::Relaxed);
                    continue;
                }
            };
            let (v, why) = post(shared, agent, compressed.get(..n).unwrap_or_default());
            match v {
                Verdict::Sent => {
                    shared.metadata_sent.fetch_add(part.len() as u64, Ordering::Relaxed);
                }
                Verdict::Refused => {
                    log::warn!(
                        "forward to {}: the target refused the metadata of {} metrics ({why}); sent again in {:?}",
                        shared.target,
                        part.len(),
                        shared.config.metadata_interval
                    );
                    shared.metadata_failed.fetch_add(part.len() as u64, Ordering::Relaxed);
                }
                Verdict::Retry(hint) => {
                    log::debug!("forward to {}: metadata: {why}; retrying", shared.target);
                    return Some(hint);
                }
            }
        }
        None
    }
}
