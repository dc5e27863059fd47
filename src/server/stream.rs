//! `GET /stream?match=<selector>`: a live tail as Server-Sent Events. Each sample
//! committed after the response starts, to a series the selector matches, is one event:
//! `data: {"metric":{...},"timestamp":ms,"value":v}`.
//!
//! The subscription is registered before the response headers are sent, so a client
//! that has the headers sees every later commit. A subscriber that falls behind loses
//! samples rather than slowing writers; losses are announced as
//! `event: dropped` with `data: {"dropped": <total so far>}`. A comment line is sent
//! every 15 s to keep proxies from closing an idle stream.
//!
//! At shutdown a stream does not stop at once: it waits until the writes still
//! running have committed (and so published), delivers everything queued, and then
//! ends. If that takes longer than `Limits::shutdown_timeout`, what is still queued
//! is counted in a last `event: dropped` before the stream ends, so nothing that was
//! committed goes missing unannounced.

use std::fmt::Write;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::chunks::{self, Sink};
use super::error::{ApiError, ApiResult};
use super::export::selectors;
use super::routes::Params;
use super::Shared;
use crate::text::jsonl::write_json_labels;
use crate::text::value::write_json_value;
use crate::Subscription;

const KEEPALIVE: Duration = Duration::from_secs(15);
/// How often the bridge thread checks for shutdown and a departed client.
const POLL: Duration = Duration::from_millis(200);

pub(crate) async fn stream(State(st): State<Shared>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref())?;
    let mut sels = selectors(&p)?;
    if sels.len() != 1 {
        return Err(ApiError::bad_request("stream takes exactly one match selector"));
    }
    let matchers = sels.remove(0);
    let permit = st.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{} streams are open, the limit (max_streams)", st.limits.max_streams),
        )
    })?;
    let sub = st.db.subscribe(matchers);
    let (mut sink, body) = chunks::channel();
    // An opening comment makes the response's first chunk go out at once.
    sink.buf.push_str(": subscribed\n\n");
    let state = st.clone();
    tokio::task::spawn_blocking(move || {
        bridge(&state, &sub, sink);
        drop(permit);
    });
    let mut r: Response = Body::new(body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// Moves batches from the subscription to the response until the client leaves or,
/// after shutdown began, until everything committed has been delivered.
fn bridge(st: &Shared, sub: &Subscription, mut sink: Sink) {
    let mut reported_drops = 0;
    let mut last_send = Instant::now();
    let mut stop_by: Option<Instant> = None;
    if !sink.flush() {
        return;
    }
    loop {
        if sink.closed() {
            break;
        }
        if stop_by.is_none() && *st.shutdown.borrow() {
            stop_by = Some(Instant::now() + st.limits.shutdown_timeout);
        }
        let mut done = false;
        if let Some(deadline) = stop_by {
            // Writes running now publish before they finish; once none runs, the queue
            // holds everything committed, and the stream ends when it is empty.
            let idle = st.writers.busy() == 0;
            match sub.try_recv() {
                Ok(batch) => write_batch(&mut sink.buf, batch),
                Err(_) if idle => done = true,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
            if Instant::now() >= deadline {
                // Out of time: announce what is still queued as dropped.
                sub.discard_pending();
                done = true;
            }
        } else {
            match sub.recv_timeout(POLL) {
                Ok(batch) => write_batch(&mut sink.buf, batch),
                Err(crate::SubscriptionError::Empty) => {
                    if last_send.elapsed() >= KEEPALIVE {
                        sink.buf.push_str(": keepalive\n\n");
                    }
                }
                Err(crate::SubscriptionError::Closed) => done = true,
            }
        }
        let dropped = sub.dropped();
        if dropped > reported_drops {
            st.metrics.stream_dropped(dropped - reported_drops);
            reported_drops = dropped;
            let _ = write!(sink.buf, "event: dropped\ndata: {{\"dropped\":{dropped}}}\n\n");
        }
        if !sink.buf.is_empty() {
            if !sink.flush() {
                break;
            }
            last_send = Instant::now();
        }
        if done {
            break;
        }
    }
}

/// One `data:` event per sample.
fn write_batch(buf: &mut String, batch: crate::SampleBatch) {
    for (labels, s) in batch {
        buf.push_str("data: {\"metric\":");
        write_json_labels(buf, &labels);
        let _ = write!(buf, ",\"timestamp\":{},\"value\":", s.ts);
        write_json_value(buf, s.value);
        buf.push_str("}\n\n");
    }
}
