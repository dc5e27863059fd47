//! OpenTelemetry metrics in: `POST /api/v1/otlp/v1/metrics` (Prometheus' path) and
//! `POST /opentelemetry/v1/metrics` (VictoriaMetrics'), OTLP/HTTP with a protobuf or
//! JSON body (gzip or zstd), translated as Prometheus' OTLP receiver translates:
//! - gauges as gauges; monotonic cumulative sums as counters named `…_total`;
//!   non-monotonic sums as gauges; delta sums stored as sent, one sample per
//!   reporting interval holding that interval's change (typed gauge);
//! - histograms (cumulative) as `…_bucket{le}` with cumulative counts, `…_sum`,
//!   `…_count`; summaries as `…{quantile}`, `…_sum`, `…_count`;
//! - names and units as `names.rs` says; `service.namespace`/`service.name` give
//!   `job`, `service.instance.id` gives `instance`, and the other resource
//!   attributes go to `target_info` (value 1) beside them;
//! - unit, description and type stored as metric metadata;
//! - a point flagged "no recorded value" is a staleness marker.
//!
//! Delta histograms and exponential histograms are refused, named (Strata has no
//! native histograms). Refused points are answered as OTLP's partial success: 200
//! with `rejected_data_points` and the reasons, so clients do not retry them.

mod json;
mod names;
pub(crate) mod proto;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;

use self::names::{label_name, metric_name, unit_words, Shape};
use self::proto::*;
use super::batch::Batch;
use super::error::{ApiError, ApiResult};
use super::limits::Limits;
use super::metrics::Protocol;
use super::{body, Shared};
use crate::{Db, MetadataUpdate, MetricKind, METRIC_NAME};

/// The bits of Prometheus' staleness marker.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

pub(crate) async fn write(State(st): State<Shared>, headers: HeaderMap, req: Body) -> ApiResult {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let (limits, db) = (st.limits.clone(), st.db.clone());
    let out = st
        .writers
        .run(move || {
            let request = decode(&bytes, json)?;
            to_batch(&request, &limits, Some(&db))?.commit_blocking(&db).map_err(ApiError::from)
        })
        .await?;
    st.metrics.ingested(Protocol::Otlp, out.stored as u64);
    let partial = (!out.refused.is_empty()).then(|| {
        let rejected = out.refused.points() as i64;
        let e = out.refused.into_error(out.stored as u64);
        let mut message = e.message.clone();
        if let Some(list) = e.extra.get("refused_points").and_then(|v| v.as_array()) {
            for r in list.iter().filter_map(|r| r.get("reason").and_then(|r| r.as_str())) {
                message.push_str("; ");
                message.push_str(r);
            }
        }
        log::warn!("OTLP write: {message}");
        ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: message }
    });
    Ok(respond(json, partial))
}

fn decode(bytes: &[u8], json: bool) -> Result<ExportMetricsServiceRequest, ApiError> {
    if json {
        json::parse(bytes).map_err(ApiError::bad_request)
    } else {
        ExportMetricsServiceRequest::decode(bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid OTLP ExportMetricsServiceRequest protobuf: {e}")))
    }
}

/// `ExportMetricsServiceResponse` in the request's encoding.
fn respond(json: bool, partial: Option<ExportMetricsPartialSuccess>) -> Response {
    let (body, content_type) = if json {
        let v = match &partial {
            None => serde_json::json!({}),
            Some(p) => serde_json::json!({"partialSuccess": {
                "rejectedDataPoints": p.rejected_data_points.to_string(), "errorMessage": p.error_message}}),
        };
        (v.to_string().into_bytes(), "application/json")
    } else {
        (ExportMetricsServiceResponse { partial_success: partial }.encode_to_vec(), "application/x-protobuf")
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The text of an attribute value, as Prometheus writes it into a label.
fn any_text(v: &AnyValue) -> String {
    match &v.value {
        None => String::new(),
        Some(Any::String(s)) => s.clone(),
        Some(Any::Bool(b)) => b.to_string(),
        Some(Any::Int(i)) => i.to_string(),
        Some(Any::Double(d)) => d.to_string(),
        Some(Any::Bytes(b)) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(Any::Array(_) | Any::KvList(_)) => any_json(v).to_string(),
    }
}

fn any_json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.value {
        Some(Any::Array(a)) => J::Array(a.values.iter().map(any_json).collect()),
        Some(Any::KvList(kv)) => {
            J::Object(kv.values.iter().map(|e| (e.key.clone(), e.value.as_ref().map_or(J::Null, any_json))).collect())
        }
        Some(Any::Int(i)) => J::from(*i),
        Some(Any::Bool(b)) => J::from(*b),
        Some(Any::Double(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        _ => J::String(any_text(v)),
    }
}

/// Attributes as label pairs: names sanitised, and values whose names collide once
/// sanitised joined with `;` in key order (as Prometheus does).
fn attribute_labels(attrs: &[KeyValue], skip: &[&str]) -> Vec<(String, String)> {
    let mut sorted: Vec<&KeyValue> = attrs.iter().filter(|a| !skip.contains(&a.key.as_str())).collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out: Vec<(String, String)> = Vec::new();
    for a in sorted {
        let Some(name) = label_name(&a.key) else { continue };
        let value = a.value.as_ref().map(any_text).unwrap_or_default();
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(';');
                v.push_str(&value);
            }
            None => out.push((name, value)),
        }
    }
    out
}

fn text_attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).map(any_text).filter(|s| !s.is_empty())
}

/// A resource's `job` and `instance`, and its other attributes for `target_info`.
struct Target {
    job: Option<String>,
    instance: Option<String>,
    info: Vec<(String, String)>,
}

impl Target {
    fn of(attrs: &[KeyValue]) -> Target {
        let name = text_attr(attrs, "service.name");
        let job = match (text_attr(attrs, "service.namespace"), name) {
            (Some(ns), Some(n)) => Some(format!("{ns}/{n}")),
            (_, n) => n,
        };
        let skip = ["service.name", "service.namespace", "service.instance.id"];
        Target { job, instance: text_attr(attrs, "service.instance.id"), info: attribute_labels(attrs, &skip) }
    }
}

/// Adds one sample of `name` with the point's attributes, the target's labels and
/// `extra` (such as `le`); the later of two equal names wins, in that order.
struct Points<'a> {
    batch: &'a mut Batch,
    limits: &'a Limits,
    target: &'a Target,
    latest: Option<i64>,
}

impl Points<'_> {
    fn add(
        &mut self,
        name: &str,
        attrs: &[(String, String)],
        extra: Option<(&str, &str)>,
        ts: i64,
        v: f64,
    ) -> Result<(), ApiError> {
        let mut pairs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut put = |k, v| {
            pairs.retain(|(n, _)| *n != k);
            pairs.push((k, v));
        };
        if let Some(job) = self.target.job.as_deref() {
            put("job", job);
        }
        if let Some(instance) = self.target.instance.as_deref() {
            put("instance", instance);
        }
        if let Some((k, v)) = extra {
            put(k, v);
        }
        put(METRIC_NAME, name);
        let sid = self.batch.series_from(pairs.iter().copied(), self.limits)?;
        self.batch.push(sid, ts, v, self.limits)?;
        self.latest = Some(self.latest.map_or(ts, |l| l.max(ts)));
        Ok(())
    }
}

/// The point's time in ms; a point without one is refused.
fn time_ms(ns: u64) -> Result<i64, ApiError> {
    if ns == 0 {
        return Err(ApiError::bad_request("data point without time_unix_nano"));
    }
    Ok((ns / 1_000_000) as i64)
}

fn value_or_stale(flags: u32, v: f64) -> f64 {
    if flags & NO_RECORDED_VALUE != 0 {
        f64::from_bits(STALE_NAN)
    } else {
        v
    }
}

/// Prometheus' text of a bucket bound or quantile (`0.005`, `10`, `+Inf`).
fn bound_text(b: f64) -> String {
    match b {
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        b => b.to_string(),
    }
}

pub(crate) fn to_batch(req: &ExportMetricsServiceRequest, limits: &Limits, db: Option<&Db>) -> Result<Batch, ApiError> {
    let mut batch = Batch::for_db(db, limits, 0);
    batch.positions("metric");
    let mut k = 0u64;
    for rm in &req.resource_metrics {
        let attrs = rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let target = Target::of(attrs);
        let mut p = Points { batch: &mut batch, limits, target: &target, latest: None };
        for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
            p.batch.at(k);
            if let Err(e) = metric(&mut p, m) {
                let e = e.context(format_args!("metric {:?}", m.name));
                if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                    return Err(e);
                }
                p.batch.refused.add_error(Some(k), 1, e);
            }
            k += 1;
        }
        let latest = p.latest;
        if let (Some(ts), false) = (latest, target.info.is_empty()) {
            let mut p = Points { batch: &mut batch, limits, target: &target, latest: None };
            p.add("target_info", &target.info, None, ts, 1.0)?;
        }
    }
    Ok(batch)
}

/// Adds one metric's points; a point that cannot be stored fails the metric from
/// that point on (earlier points stay added).
fn metric(p: &mut Points<'_>, m: &Metric) -> Result<(), ApiError> {
    let unit = unit_words(&m.unit).join("_");
    let meta = |kind: MetricKind| MetadataUpdate {
        kind: Some(kind),
        unit: (!unit.is_empty()).then(|| unit.clone()),
        help: (!m.description.is_empty()).then(|| m.description.clone()),
    };
    // A point with no recorded value needs none: it becomes a staleness marker.
    let number = |dp: &NumberDataPoint| -> Result<f64, ApiError> {
        match dp.value {
            _ if dp.flags & NO_RECORDED_VALUE != 0 => Ok(f64::from_bits(STALE_NAN)),
            Some(NumberValue::AsDouble(d)) => Ok(d),
            Some(NumberValue::AsInt(i)) => Ok(i as f64),
            None => Err(ApiError::bad_request("data point without a value")),
        }
    };
    match &m.data {
        None => Err(ApiError::bad_request("metric without data")),
        Some(Data::Gauge(g)) => {
            let name = metric_name(&m.name, &m.unit, Shape::Gauge);
            p.batch.metadata(&name, meta(MetricKind::Gauge))?;
            for (i, dp) in g.data_points.iter().enumerate() {
                let v = number(dp).map_err(|e| e.context(format_args!("data_points[{i}]")))?;
                p.add(&name, &attribute_labels(&dp.attributes, &[]), None, time_ms(dp.time_unix_nano)?, v)?;
            }
            Ok(())
        }
        Some(Data::Sum(s)) => {
            let counter = s.is_monotonic && s.aggregation_temporality != DELTA;
            let (shape, kind) =
                if counter { (Shape::Counter, MetricKind::Counter) } else { (Shape::Gauge, MetricKind::Gauge) };
            let name = metric_name(&m.name, &m.unit, shape);
            p.batch.metadata(&name, meta(kind))?;
            for (i, dp) in s.data_points.iter().enumerate() {
                let v = number(dp).map_err(|e| e.context(format_args!("data_points[{i}]")))?;
                p.add(&name, &attribute_labels(&dp.attributes, &[]), None, time_ms(dp.time_unix_nano)?, v)?;
            }
            Ok(())
        }
        Some(Data::Histogram(h)) => {
            if h.aggregation_temporality == DELTA {
                return Err(ApiError::unprocessable(
                    "delta histograms are not stored: export histograms with cumulative temporality",
                ));
            }
            let name = metric_name(&m.name, &m.unit, Shape::Family);
            p.batch.metadata(&name, meta(MetricKind::Histogram))?;
            for (i, dp) in h.data_points.iter().enumerate() {
                let ts = time_ms(dp.time_unix_nano)?;
                let labels = attribute_labels(&dp.attributes, &[]);
                let v = |x: f64| value_or_stale(dp.flags, x);
                if !dp.bucket_counts.is_empty() && dp.bucket_counts.len() != dp.explicit_bounds.len() + 1 {
                    return Err(ApiError::bad_request(format!(
                        "data_points[{i}]: {} bucket counts for {} bounds (want one more count than bounds)",
                        dp.bucket_counts.len(),
                        dp.explicit_bounds.len()
                    )));
                }
                let mut cumulative = 0u64;
                for (j, &c) in dp.bucket_counts.iter().enumerate().take(dp.explicit_bounds.len()) {
                    cumulative = cumulative.saturating_add(c);
                    let le = bound_text(dp.explicit_bounds[j]);
                    p.add(&format!("{name}_bucket"), &labels, Some(("le", le.as_str())), ts, v(cumulative as f64))?;
                }
                p.add(&format!("{name}_bucket"), &labels, Some(("le", "+Inf")), ts, v(dp.count as f64))?;
                if let Some(sum) = dp.sum {
                    p.add(&format!("{name}_sum"), &labels, None, ts, v(sum))?;
                }
                p.add(&format!("{name}_count"), &labels, None, ts, v(dp.count as f64))?;
            }
            Ok(())
        }
        Some(Data::ExponentialHistogram(_)) => Err(ApiError::unprocessable(
            "exponential histograms are not stored (Strata has no native histograms): \
             export explicit-bucket histograms",
        )),
        Some(Data::Summary(s)) => {
            let name = metric_name(&m.name, &m.unit, Shape::Family);
            p.batch.metadata(&name, meta(MetricKind::Summary))?;
            for dp in &s.data_points {
                let ts = time_ms(dp.time_unix_nano)?;
                let labels = attribute_labels(&dp.attributes, &[]);
                let v = |x: f64| value_or_stale(dp.flags, x);
                for q in &dp.quantile_values {
                    p.add(&name, &labels, Some(("quantile", bound_text(q.quantile).as_str())), ts, v(q.value))?;
                }
                p.add(&format!("{name}_sum"), &labels, None, ts, v(dp.sum))?;
                p.add(&format!("{name}_count"), &labels, None, ts, v(dp.count as f64))?;
            }
            Ok(())
        }
    }
}
