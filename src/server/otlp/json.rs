//! OTLP/JSON (the protobuf JSON mapping with lowerCamelCase names, 64-bit integers
//! as strings or numbers, enums as numbers) read into the same messages as the
//! protobuf encoding. Unknown fields are ignored, as the OTLP specification asks;
//! a field of the wrong type is an error naming its path.

use serde_json::Value;

use super::proto::*;

type R<T> = Result<T, String>;

pub fn parse(bytes: &[u8]) -> R<ExportMetricsServiceRequest> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid OTLP/JSON: {e}"))?;
    let resource_metrics = list(&v, "resourceMetrics", "", |rm, p| {
        Ok(ResourceMetrics {
            resource: match field(rm, "resource") {
                Some(r) => Some(Resource { attributes: attributes(r, &format!("{p}.resource"))? }),
                None => None,
            },
            scope_metrics: list(rm, "scopeMetrics", p, |sm, p| {
                Ok(ScopeMetrics { metrics: list(sm, "metrics", p, metric)? })
            })?,
        })
    })?;
    Ok(ExportMetricsServiceRequest { resource_metrics })
}

/// `v[camel]`, or its snake_case spelling, unless null.
fn field<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    let snake: String = camel
        .chars()
        .flat_map(|c| if c.is_ascii_uppercase() { vec!['_', c.to_ascii_lowercase()] } else { vec![c] })
        .collect();
    v.get(camel).or_else(|| v.get(&snake)).filter(|x| !x.is_null())
}

fn list<T>(v: &Value, key: &str, path: &str, f: impl Fn(&Value, &str) -> R<T>) -> R<Vec<T>> {
    match field(v, key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, x)| f(x, &format!("{path}.{key}[{i}]"))).collect()
        }
        Some(_) => Err(format!("{path}.{key}: expected an array")),
    }
}

fn string(v: &Value, key: &str, path: &str) -> R<String> {
    match field(v, key) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("{path}.{key}: expected a string")),
    }
}

/// A 64-bit integer: a decimal string or a JSON number.
fn int(v: &Value, key: &str, path: &str) -> R<Option<i128>> {
    match field(v, key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            s.parse::<i128>().map(Some).map_err(|_| format!("{path}.{key}: invalid integer {s:?}"))
        }
        Some(Value::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .map(Some)
            .ok_or_else(|| format!("{path}.{key}: expected an integer, got {n}")),
        Some(_) => Err(format!("{path}.{key}: expected an integer")),
    }
}

fn uint(v: &Value, key: &str, path: &str) -> R<u64> {
    match int(v, key, path)? {
        None => Ok(0),
        Some(n) => u64::try_from(n).map_err(|_| format!("{path}.{key}: {n} is out of range")),
    }
}

/// A double: a number, or the strings "NaN", "Infinity", "-Infinity" of the JSON mapping.
fn double(v: &Value, path: &str) -> R<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| format!("{path}: invalid number")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other.parse().map_err(|_| format!("{path}: expected a number, got {other:?}")),
        },
        _ => Err(format!("{path}: expected a number")),
    }
}

/// An enum: its number, or its name (`AGGREGATION_TEMPORALITY_CUMULATIVE`).
fn temporality(v: &Value, path: &str) -> R<i32> {
    match field(v, "aggregationTemporality") {
        None => Ok(0),
        Some(Value::String(s)) if s.ends_with("_DELTA") => Ok(DELTA),
        Some(Value::String(s)) if s.ends_with("_CUMULATIVE") => Ok(CUMULATIVE),
        Some(Value::String(s)) if s.ends_with("_UNSPECIFIED") => Ok(0),
        Some(_) => int(v, "aggregationTemporality", path)?
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| format!("{path}.aggregationTemporality: invalid value")),
    }
}

fn attributes(v: &Value, path: &str) -> R<Vec<KeyValue>> {
    list(v, "attributes", path, key_value)
}

fn key_value(v: &Value, path: &str) -> R<KeyValue> {
    Ok(KeyValue {
        key: string(v, "key", path)?,
        value: match field(v, "value") {
            None => None,
            Some(x) => Some(any_value(x, &format!("{path}.value"))?),
        },
    })
}

fn any_value(v: &Value, path: &str) -> R<AnyValue> {
    let value = if let Some(s) = field(v, "stringValue") {
        Some(Any::String(s.as_str().ok_or_else(|| format!("{path}.stringValue: expected a string"))?.to_string()))
    } else if let Some(b) = field(v, "boolValue") {
        Some(Any::Bool(b.as_bool().ok_or_else(|| format!("{path}.boolValue: expected a boolean"))?))
    } else if field(v, "intValue").is_some() {
        let n = int(v, "intValue", path)?.unwrap_or(0);
        Some(Any::Int(i64::try_from(n).map_err(|_| format!("{path}.intValue: {n} is out of range"))?))
    } else if let Some(d) = field(v, "doubleValue") {
        Some(Any::Double(double(d, &format!("{path}.doubleValue"))?))
    } else if let Some(a) = field(v, "arrayValue") {
        Some(Any::Array(ArrayValue { values: list(a, "values", path, any_value)? }))
    } else if let Some(kv) = field(v, "kvlistValue") {
        Some(Any::KvList(KeyValueList { values: list(kv, "values", path, key_value)? }))
    } else if let Some(b) = field(v, "bytesValue") {
        use base64::Engine as _;
        let s = b.as_str().ok_or_else(|| format!("{path}.bytesValue: expected base64"))?;
        let bytes =
            base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("{path}.bytesValue: {e}"))?;
        Some(Any::Bytes(bytes))
    } else {
        None
    };
    Ok(AnyValue { value })
}

fn metric(v: &Value, path: &str) -> R<Metric> {
    let data = if let Some(g) = field(v, "gauge") {
        Some(Data::Gauge(Gauge { data_points: list(g, "dataPoints", &format!("{path}.gauge"), number_point)? }))
    } else if let Some(s) = field(v, "sum") {
        let p = format!("{path}.sum");
        Some(Data::Sum(Sum {
            data_points: list(s, "dataPoints", &p, number_point)?,
            aggregation_temporality: temporality(s, &p)?,
            is_monotonic: field(s, "isMonotonic").and_then(Value::as_bool).unwrap_or(false),
        }))
    } else if let Some(h) = field(v, "histogram") {
        let p = format!("{path}.histogram");
        Some(Data::Histogram(Histogram {
            data_points: list(h, "dataPoints", &p, histogram_point)?,
            aggregation_temporality: temporality(h, &p)?,
        }))
    } else if let Some(h) = field(v, "exponentialHistogram") {
        Some(Data::ExponentialHistogram(ExponentialHistogram {
            aggregation_temporality: temporality(h, &format!("{path}.exponentialHistogram"))?,
        }))
    } else if let Some(s) = field(v, "summary") {
        Some(Data::Summary(Summary { data_points: list(s, "dataPoints", &format!("{path}.summary"), summary_point)? }))
    } else {
        None
    };
    Ok(Metric {
        name: string(v, "name", path)?,
        description: string(v, "description", path)?,
        unit: string(v, "unit", path)?,
        data,
    })
}

fn number_point(v: &Value, path: &str) -> R<NumberDataPoint> {
    let value = if let Some(d) = field(v, "asDouble") {
        Some(NumberValue::AsDouble(double(d, &format!("{path}.asDouble"))?))
    } else if field(v, "asInt").is_some() {
        let n = int(v, "asInt", path)?.unwrap_or(0);
        Some(NumberValue::AsInt(i64::try_from(n).map_err(|_| format!("{path}.asInt: {n} is out of range"))?))
    } else {
        None
    };
    Ok(NumberDataPoint {
        attributes: attributes(v, path)?,
        time_unix_nano: uint(v, "timeUnixNano", path)?,
        value,
        flags: uint(v, "flags", path)? as u32,
    })
}

fn histogram_point(v: &Value, path: &str) -> R<HistogramDataPoint> {
    let counts = list(v, "bucketCounts", path, |c, p| match c {
        Value::String(s) => s.parse::<u64>().map_err(|_| format!("{p}: invalid count {s:?}")),
        Value::Number(n) => n.as_u64().ok_or_else(|| format!("{p}: invalid count {n}")),
        _ => Err(format!("{p}: expected a count")),
    })?;
    Ok(HistogramDataPoint {
        attributes: attributes(v, path)?,
        time_unix_nano: uint(v, "timeUnixNano", path)?,
        count: uint(v, "count", path)?,
        sum: field(v, "sum").map(|s| double(s, &format!("{path}.sum"))).transpose()?,
        bucket_counts: counts,
        explicit_bounds: list(v, "explicitBounds", path, double)?,
        flags: uint(v, "flags", path)? as u32,
    })
}

fn summary_point(v: &Value, path: &str) -> R<SummaryDataPoint> {
    Ok(SummaryDataPoint {
        attributes: attributes(v, path)?,
        time_unix_nano: uint(v, "timeUnixNano", path)?,
        count: uint(v, "count", path)?,
        sum: field(v, "sum").map(|s| double(s, &format!("{path}.sum"))).transpose()?.unwrap_or(0.0),
        quantile_values: list(v, "quantileValues", path, |q, p| {
            Ok(ValueAtQuantile {
                quantile: field(q, "quantile").map(|x| double(x, &format!("{p}.quantile"))).transpose()?.unwrap_or(0.0),
                value: field(q, "value").map(|x| double(x, &format!("{p}.value"))).transpose()?.unwrap_or(0.0),
            })
        })?,
        flags: uint(v, "flags", path)? as u32,
    })
}
