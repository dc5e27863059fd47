//! One shard: a thread with its own HTTP connection that sends its batches in
//! order, retrying each until the target takes it or refuses it for good.
//!
//! - 2xx: sent.
//! - 429, 5xx, or no answer (connection refused, reset, timeout): retried after a
//!   backoff that doubles from `min_backoff` to `max_backoff`, with jitter, or
//!   after `Retry-After` seconds when the target gives them. The same batch is
//!   retried, and the next waits for it, so each series stays in order.
//! - any other status (400, 401, 404, ...): the batch is dropped, its samples
//!   counted as failed and the answer logged. Retrying would fail the same way.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::wire::{encode_request, Pending};
use super::{Shared, WalPosition};

/// A batch for one shard, and where in the WAL its first sample was read.
pub(super) struct Batch {
    pub first: WalPosition,
    pub samples: Vec<Pending>,
}

/// What the target's answer means for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Sent,
    /// Retry, after at least this long if the target said so.
    Retry(Option<Duration>),
    Refused,
}

/// Sorts an HTTP status as Prometheus's remote-write queue does.
pub fn verdict(status: u16, retry_after: Option<&str>) -> Verdict {
    match status {
        200..=299 => Verdict::Sent,
        429 | 500..=599 => Verdict::Retry(retry_after.and_then(parse_retry_after)),
        _ => Verdict::Refused,
    }
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: the backoff applies).
fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Exponential backoff with jitter: attempt `n` (0-based) waits a random time in
/// `[d/2, d]` where `d = min(min * 2^n, max)`.
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff { min, max: max.max(min), attempt: 0, rng: seed | 1 }
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next wait; `hint` (a `Retry-After`) replaces it when longer.
    pub fn next(&mut self, hint: Option<Duration>) -> Duration {
        let d = self.min.saturating_mul(1u32 << self.attempt.min(20)).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64: jitter needs spread, not quality
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = d / 2;
        let jitter = Duration::from_nanos(self.rng % (half.as_nanos() as u64).max(1));
        let wait = half + jitter;
        hint.map_or(wait, |h| h.max(wait))
    }
}

pub(super) struct Shard {
    pub shared: Arc<Shared>,
    pub agent: ureq::Agent,
    pub rx: Receiver<Batch>,
    /// The first positions of this shard's unacknowledged batches, oldest first.
    pub outstanding: Arc<Mutex<VecDeque<WalPosition>>>,
    pub seed: u64,
}

impl Shard {
    pub fn run(self) {
        let mut body = Vec::new();
        let mut compressed = Vec::new();
        let mut encoder = snap::raw::Encoder::new();
        let mut backoff = Backoff::new(self.shared.config.min_backoff, self.shared.config.max_backoff, self.seed);
        for batch in self.rx.iter() {
            encode_request(&batch.samples, &mut body);
            let n = match compress(&mut encoder, &body, &mut compressed) {
                Ok(n) => n,
                Err(e) => {
                    // only a body over snappy's 4 GiB limit fails; batches are far smaller
                    log::error!("forward to {}: compressing a batch: {e}", self.shared.target);
                    self.finish(&batch);
                    continue;
                }
            };
            let n_samples = batch.samples.len() as u64;
            backoff.reset();
            loop {
                let (v, why) = post(&self.shared, &self.agent, &compressed[..n]);
                match v {
                    Verdict::Sent => {
                        self.shared.sent.fetch_add(n_samples, Ordering::Relaxed);
                        self.finish(&batch);
                        break;
                    }
                    Verdict::Refused => {
                        log::warn!(
                            "forward to {}: the target refused {n_samples} samples ({why}); dropped, not retried",
                            self.shared.target
                        );
                        self.shared.failed.fetch_add(n_samples, Ordering::Relaxed);
                        self.finish(&batch);
                        break;
                    }
                    Verdict::Retry(hint) => {
                        if self.shared.abandon() {
                            // stopping: left unacknowledged, sent again after a restart
                            return;
                        }
                        self.shared.retries.fetch_add(1, Ordering::Relaxed);
                        let wait = backoff.next(hint);
                        log::debug!("forward to {}: {why}; retrying in {wait:?}", self.shared.target);
                        self.shared.sleep(wait);
                    }
                }
            }
        }
    }

    /// The batch is done (sent or refused): its samples no longer hold the position back.
    fn finish(&self, batch: &Batch) {
        let mut q = self.outstanding.lock();
        debug_assert_eq!(q.front(), Some(&batch.first));
        q.pop_front();
        self.shared.pending.fetch_sub(batch.samples.len() as u64, Ordering::Relaxed);
    }
}

/// One POST of a snappy-compressed `WriteRequest`; the verdict and, for logs,
/// what the target said.
pub(super) fn post(shared: &Shared, agent: &ureq::Agent, body: &[u8]) -> (Verdict, String) {
    let c = &shared.config;
    let mut r = agent
        .post(&shared.url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("User-Agent", concat!("strata/", env!("CARGO_PKG_VERSION")))
        .header("X-Prometheus-Remote-Write-Version", "0.1.0");
    for (k, v) in &c.headers {
        r = r.header(k.as_str(), v.as_str());
    }
    if let Some(a) = &shared.authorization {
        r = r.header("Authorization", a.as_str());
    }
    match r.send(body) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            let v = verdict(status, retry_after.as_deref());
            let text = if v == Verdict::Sent {
                String::new()
            } else {
                let t = resp.body_mut().read_to_string().unwrap_or_default();
                t.trim().chars().take(300).collect()
            };
            (v, format!("{status} {text}"))
        }
        Err(e) => (Verdict::Retry(None), format!("no answer: {e}")),
    }
}

/// An agent for one connection to the target.
pub(super) fn agent(shared: &Shared) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(shared.config.timeout))
        .max_idle_connections_per_host(1)
        .build()
        .into()
}

/// Snappy block compression of `body` into `out` (resized to fit).
pub(super) fn compress(encoder: &mut snap::raw::Encoder, body: &[u8], out: &mut Vec<u8>) -> Result<usize, snap::Error> {
    out.resize(snap::raw::max_compress_len(body.len()), 0);
    encoder.compress(body, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_sort_as_prometheus_does() {
        assert_eq!(verdict(200, None), Verdict::Sent);
        assert_eq!(verdict(204, None), Verdict::Sent);
        assert_eq!(verdict(429, None), Verdict::Retry(None));
        assert_eq!(verdict(429, Some("3")), Verdict::Retry(Some(Duration::from_secs(3))));
        assert_eq!(verdict(503, Some("Wed, 21 Oct 2015 07:28:00 GMT")), Verdict::Retry(None));
        assert_eq!(verdict(500, None), Verdict::Retry(None));
        for s in [400, 401, 403, 404, 413, 301] {
            assert_eq!(verdict(s, None), Verdict::Refused, "{s}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let (min, max) = (Duration::from_millis(30), Duration::from_secs(5));
        let mut b = Backoff::new(min, max, 42);
        let mut last_cap = Duration::ZERO;
        for n in 0..15u32 {
            let cap = min.saturating_mul(1 << n).min(max);
            let w = b.next(None);
            assert!(w >= cap / 2 && w <= cap, "attempt {n}: {w:?} outside [{:?}, {cap:?}]", cap / 2);
            assert!(cap >= last_cap);
            last_cap = cap;
        }
        assert_eq!(last_cap, max);
        // jitter: two seeds do not wait the same
        let waits = |seed| {
            let mut b = Backoff::new(min, max, seed);
            (0..8).map(|_| b.next(None)).collect::<Vec<_>>()
        };
        assert_ne!(waits(1), waits(2));
        // Retry-After wins when longer; reset starts over
        assert_eq!(b.next(Some(Duration::from_secs(60))), Duration::from_secs(60));
        b.reset();
        assert!(b.next(None) <= min);
    }
}
