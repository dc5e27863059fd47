//! Request limits (RELIABILITY item 9): every one is checked before the work or
//! the allocation it bounds, and answered with a 4xx naming the limit.

use std::time::Duration;

use super::error::ApiError;
use crate::Labels;

/// Caps on what one request may make the server read, allocate or store.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most bytes of a request body as sent (compressed or not), checked against
    /// `Content-Length` before reading and enforced while reading. Default: 16 MiB.
    pub max_body_bytes: usize,
    /// Most bytes a gzip or snappy body may decompress to; snappy's declared length is
    /// checked before allocating, gzip output is cut off at the cap. Default: 64 MiB.
    pub max_decompressed_bytes: usize,
    /// Most labels one series may carry, `__name__` included. Default: 64.
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes. Default: 256.
    pub max_label_name_len: usize,
    /// Longest label value (metric names included), in bytes. Default: 4096.
    pub max_label_value_len: usize,
    /// Most distinct series one write request may touch. Default: 50,000.
    pub max_series_per_request: usize,
    /// Most samples one write request may carry. Default: 1,000,000, which keeps a
    /// request within one WAL frame, so it is atomic across a crash too.
    pub max_samples_per_request: usize,
    /// The range × series budget of buffered reads (`/query/raw`, remote read): most
    /// samples one request may read. Streamed `/export` is not capped. Default: 1,000,000.
    pub max_query_samples: usize,
    /// Most series one buffered read may return. Default: 50,000.
    pub max_query_series: usize,
    /// Time a client has to send a request's headers (hyper's timer-driven timeout). Default: 10 s.
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's body. Default: 60 s.
    pub body_read_timeout: Duration,
    /// Most open connections; further ones are closed at once. Default: 1024.
    pub max_connections: usize,
    /// Most concurrent `/stream` subscribers; further ones get 429. Default: 64.
    pub max_streams: usize,
    /// How long shutdown waits for in-flight requests before giving up. Default: 30 s.
    pub shutdown_timeout: Duration,
    /// Most samples one PromQL query (`/api/v1/query`, `query_range`) may load,
    /// Prometheus's `--query.max-samples`. Default: 50,000,000.
    pub query_max_samples: usize,
    /// Longest a PromQL query may wait for a slot, and then longest it may run;
    /// a request's `timeout` parameter may only shorten it. Default: 2 min.
    pub query_timeout: Duration,
    /// Most PromQL queries evaluated at once; further ones wait for a slot, up to
    /// their timeout. Default: 20.
    pub query_max_concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_labels_per_series: 64,
            max_label_name_len: 256,
            max_label_value_len: 4096,
            max_series_per_request: 50_000,
            max_samples_per_request: 1_000_000,
            max_query_samples: 1_000_000,
            max_query_series: 50_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_streams: 64,
            shutdown_timeout: Duration::from_secs(30),
            query_max_samples: 50_000_000,
            query_timeout: Duration::from_secs(120),
            query_max_concurrency: 20,
        }
    }
}

impl Limits {
    /// Builds a series' labels from client input, checking this server's caps
    /// first, then the engine's rules (names, duplicates, at least one label).
    pub(crate) fn labels<I, K, V>(&self, pairs: I) -> Result<Labels, ApiError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String> + AsRef<str>,
        V: Into<String> + AsRef<str>,
    {
        let mut v = Vec::new();
        for (k, val) in pairs {
            self.check_label(k.as_ref(), val.as_ref())?;
            v.push((k, val));
            if v.len() > self.max_labels_per_series {
                return Err(self.too_many_labels());
            }
        }
        Labels::from_pairs(v).map_err(ApiError::from)
    }

    pub(crate) fn check_label(&self, name: &str, value: &str) -> Result<(), ApiError> {
        if name.len() > self.max_label_name_len {
            return Err(ApiError::unprocessable(format!(
                "label name {:?}... is {} bytes, the limit is {} (max_label_name_len)",
                prefix(name),
                name.len(),
                self.max_label_name_len
            )));
        }
        if value.len() > self.max_label_value_len {
            return Err(ApiError::unprocessable(format!(
                "value of label {:?} is {} bytes, the limit is {} (max_label_value_len)",
                prefix(name),
                value.len(),
                self.max_label_value_len
            )));
        }
        Ok(())
    }

    pub(crate) fn too_many_labels(&self) -> ApiError {
        ApiError::unprocessable(format!(
            "series has more than {} labels (max_labels_per_series)",
            self.max_labels_per_series
        ))
    }

    pub(crate) fn too_many_samples(&self) -> ApiError {
        ApiError::too_large(format!(
            "request carries more than {} samples (max_samples_per_request); split it",
            self.max_samples_per_request
        ))
    }

    /// The answer when a buffered read would exceed `max_query_samples` or `max_query_series`.
    pub(crate) fn over_budget(&self) -> ApiError {
        ApiError::unprocessable(format!(
            "query reads more than {} samples or {} series (max_query_samples, max_query_series); \
             narrow the time range or the selector, or stream it with /export",
            self.max_query_samples, self.max_query_series
        ))
    }

    pub(crate) fn too_many_series(&self) -> ApiError {
        ApiError::too_large(format!(
            "request touches more than {} series (max_series_per_request); split it",
            self.max_series_per_request
        ))
    }
}

/// At most 64 bytes of a string, cut on a char boundary, for error messages.
pub(crate) fn prefix(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_labels_before_the_engine() {
        let l = Limits { max_labels_per_series: 2, max_label_name_len: 8, max_label_value_len: 3, ..Limits::default() };
        assert!(l.labels([("__name__", "cpu"), ("a", "1")]).is_ok());
        assert_eq!(l.labels([("__name__", "cpu"), ("a", "1"), ("b", "2")]).unwrap_err().status.as_u16(), 422);
        assert!(l.labels([("abcdefghi", "1")]).unwrap_err().message.contains("max_label_name_len"));
        assert!(l.labels([("a", "1234")]).unwrap_err().message.contains("max_label_value_len"));
        assert!(l.labels([("1a", "x")]).unwrap_err().message.contains("invalid label"));
        assert_eq!(prefix(&"é".repeat(40)).len(), 64);
    }
}
