//! InfluxDB line protocol, `POST /write` (v1) and `POST /api/v2/write` (v2):
//! `measurement[,tag=v...] field=v[,field=v...] [timestamp]`.
//!
//! - Every numeric or boolean field becomes the series `measurement_field` with the
//!   tags as labels: floats as written, integers (`1i`) and unsigned (`1u`) converted
//!   to f64, booleans as 1/0. String fields are skipped and counted.
//! - Names are made valid Prometheus names: characters outside `[a-zA-Z0-9_]` (and `:`
//!   in metric names) become `_`, and a leading digit gets a `_` prefix.
//! - `precision` is `ns` by default on both paths, as in InfluxDB 1.x/2.x and
//!   VictoriaMetrics; `n`/`ns`, `u`/`us`/`µ`/`µs`, `ms`, `s`, `m`, `h` are accepted.
//!   Timestamps are floored to milliseconds. A missing timestamp is the request's
//!   arrival time, the same for every line.
//! - The whole body is parsed and checked before anything is stored; the first bad
//!   line rejects the request with 400 naming its line number.

use std::borrow::Cow;
use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::batch::Batch;
use super::error::{ApiError, ApiResult};
use super::limits::Limits;
use super::metrics::Protocol;
use super::routes::Params;
use super::time::now_ms;
use super::{body, Shared};
use crate::{Db, METRIC_NAME};

/// Timestamp unit of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precision {
    Ns,
    Us,
    Ms,
    S,
    M,
    H,
}

impl Precision {
    pub fn parse(s: Option<&str>) -> Result<Precision, ApiError> {
        Ok(match s.unwrap_or("ns") {
            "" | "n" | "ns" => Precision::Ns,
            "u" | "us" | "µ" | "µs" => Precision::Us,
            "ms" => Precision::Ms,
            "s" => Precision::S,
            "m" => Precision::M,
            "h" => Precision::H,
            other => {
                return Err(ApiError::bad_request(format!(
                    "precision: unknown unit {:?} (use ns, us, ms, s, m or h)",
                    super::limits::prefix(other)
                )))
            }
        })
    }

    /// A timestamp in this unit as milliseconds (floored), or None on overflow.
    fn to_ms(self, t: i64) -> Option<i64> {
        match self {
            Precision::Ns => Some(t.div_euclid(1_000_000)),
            Precision::Us => Some(t.div_euclid(1_000)),
            Precision::Ms => Some(t),
            Precision::S => t.checked_mul(1_000),
            Precision::M => t.checked_mul(60_000),
            Precision::H => t.checked_mul(3_600_000),
        }
    }
}

pub(crate) async fn write(State(st): State<Shared>, RawQuery(q): RawQuery, headers: HeaderMap, req: Body) -> ApiResult {
    let precision = Precision::parse(Params::parse(q.as_deref())?.get("precision"))?;
    let bytes = body::read(&st.limits, &headers, req, false).await?;
    let now = now_ms();
    let limits = st.limits.clone();
    let db = st.db.clone();
    // Parse and commit in one blocking task: one hop off the runtime per request.
    let (samples, strings) = st
        .writers
        .run(move || {
            let parsed = parse(&bytes, precision, now, &limits, Some(&db))?;
            let n = parsed.batch.commit_blocking(&db)?;
            Ok((n, parsed.string_fields))
        })
        .await?;
    st.metrics.ingested(Protocol::Influx, samples as u64);
    st.metrics.skipped_string_fields(strings);
    let mut r: Response = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(HeaderName::from_static("x-strata-samples"), HeaderValue::from(samples));
    h.insert(HeaderName::from_static("x-strata-skipped-string-fields"), HeaderValue::from(strings));
    Ok(r)
}

/// A parsed body: the samples to store and how many string fields were skipped.
pub(crate) struct Parsed {
    pub batch: Batch,
    pub string_fields: u64,
}

/// What is known about one distinct `measurement,tags` prefix of a body.
/// Names borrow from the body unless unescaping or sanitizing changed them.
struct KeyEntry<'a> {
    measurement: Cow<'a, str>,
    tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    fields: HashMap<&'a str, u32>,
}

/// Buffers reused from line to line of a body.
#[derive(Default)]
struct Scratch<'a> {
    fields: Vec<(&'a str, Option<f64>)>,
    name: String,
}

/// Parses a whole body; the first problem fails it, naming the line (1-based).
/// With `db`, series the engine already holds are resolved as they are met.
pub(crate) fn parse(
    body: &[u8],
    precision: Precision,
    now: i64,
    limits: &Limits,
    db: Option<&Db>,
) -> Result<Parsed, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        line_error(line, ApiError::bad_request("invalid UTF-8"))
    })?;
    // A field takes at least 4 bytes (`f=1,`); devops lines run about 25 bytes a field.
    let mut out = Parsed { batch: Batch::for_db(db, limits, body.len() / 16), string_fields: 0 };
    let mut keys: HashMap<&str, KeyEntry<'_>> = HashMap::new();
    let mut scratch = Scratch::default();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        parse_line(line, precision, now, limits, &mut keys, &mut scratch, &mut out)
            .map_err(|e| line_error(i + 1, e))?;
    }
    Ok(out)
}

fn line_error(line: usize, e: ApiError) -> ApiError {
    e.context(format_args!("line {line}")).with("line", line as u64)
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn parse_line<'a>(
    line: &'a str,
    precision: Precision,
    now: i64,
    limits: &Limits,
    keys: &mut HashMap<&'a str, KeyEntry<'a>>,
    scratch: &mut Scratch<'a>,
    out: &mut Parsed,
) -> Result<(), ApiError> {
    let b = line.as_bytes();
    let key_end = scan_unescaped(b, 0, |c| c == b' ');
    let key = &line[..key_end];
    let mut i = key_end;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    if i >= b.len() {
        return Err(bad("missing fields (want `measurement[,tags] field=value[,...] [timestamp]`)"));
    }
    // Fields: parsed into (raw key, value) first, stored only once the timestamp is known.
    let fields = &mut scratch.fields;
    fields.clear();
    loop {
        let k_end = scan_unescaped(b, i, |c| c == b'=' || c == b' ' || c == b',');
        if b.get(k_end) != Some(&b'=') {
            return Err(bad(format!("field {:?} has no `=value`", &line[i..k_end])));
        }
        let fkey = &line[i..k_end];
        if fkey.is_empty() {
            return Err(bad("empty field name"));
        }
        i = k_end + 1;
        let (value, next) = if b.get(i) == Some(&b'"') {
            (None, skip_string(b, i + 1).ok_or_else(|| bad(format!("unterminated string in field {fkey:?}")))?)
        } else {
            let end = b[i..].iter().position(|&c| c == b',' || c == b' ').map_or(b.len(), |p| i + p);
            (Some(field_value(&line[i..end]).map_err(|m| bad(format!("field {fkey:?}: {m}")))?), end)
        };
        fields.push((fkey, value));
        i = next;
        match b.get(i) {
            Some(b',') => i += 1,
            _ => break,
        }
    }
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    let rest = line[i..].trim_end();
    let ts = if rest.is_empty() {
        now
    } else {
        let t: i64 = rest.parse().map_err(|_| bad(format!("invalid timestamp {:?}", super::limits::prefix(rest))))?;
        precision.to_ms(t).ok_or_else(|| bad(format!("timestamp {t} overflows milliseconds")))?
    };
    let entry = match keys.get_mut(key) {
        Some(e) => e,
        None => {
            let (measurement, tags) = parse_key(key)?;
            keys.entry(key).or_insert(KeyEntry { measurement, tags, fields: HashMap::new() })
        }
    };
    for &(fkey, value) in fields.iter() {
        let Some(v) = value else {
            out.string_fields += 1;
            continue;
        };
        let sid = match entry.fields.get(fkey) {
            Some(&s) => s,
            None => {
                let name = &mut scratch.name;
                metric_name(name, &entry.measurement, &unescape(fkey));
                let pairs = std::iter::once((METRIC_NAME, name.as_str()))
                    .chain(entry.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
                let s = out.batch.series_from(pairs, limits)?;
                entry.fields.insert(fkey, s);
                s
            }
        };
        out.batch.push(sid, ts, v, limits)?;
    }
    Ok(())
}

/// Index of the first byte at or after `from` that `stop` accepts and is not
/// escaped by a backslash (or the length).
fn scan_unescaped(b: &[u8], mut i: usize, stop: impl Fn(u8) -> bool) -> usize {
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            i += 2;
            continue;
        }
        if stop(c) {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// Skips a string field value whose opening quote is before `i`; returns the index after its closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn field_value(s: &str) -> Result<f64, String> {
    let num = |t: &str| !t.is_empty() && t.bytes().next().is_some_and(|c| c.is_ascii_digit() || b"+-.".contains(&c));
    if let Some(int) = s.strip_suffix('i') {
        return int.parse::<i64>().map(|v| v as f64).map_err(|_| format!("invalid integer {s:?}"));
    }
    if let Some(uint) = s.strip_suffix('u') {
        return uint.parse::<u64>().map(|v| v as f64).map_err(|_| format!("invalid unsigned integer {s:?}"));
    }
    match s {
        "t" | "T" | "true" | "True" | "TRUE" => return Ok(1.0),
        "f" | "F" | "false" | "False" | "FALSE" => return Ok(0.0),
        _ => {}
    }
    if num(s) {
        if let Ok(v) = s.parse::<f64>() {
            if v.is_finite() {
                return Ok(v);
            }
        }
    }
    Err(format!("invalid value {:?} (want a float, 1i, 1u, a boolean or a \"string\")", super::limits::prefix(s)))
}

/// Splits `measurement,tag=v,...` into the measurement and sanitized tag labels.
type Key<'a> = (Cow<'a, str>, Vec<(Cow<'a, str>, Cow<'a, str>)>);

fn parse_key(key: &str) -> Result<Key<'_>, ApiError> {
    let b = key.as_bytes();
    let m_end = scan_unescaped(b, 0, |c| c == b',');
    let measurement = unescape(&key[..m_end]);
    if measurement.is_empty() {
        return Err(bad("empty measurement"));
    }
    let mut tags = Vec::new();
    let mut i = m_end;
    while i < b.len() {
        i += 1; // the comma
        let eq = scan_unescaped(b, i, |c| c == b'=' || c == b',');
        if b.get(eq) != Some(&b'=') {
            return Err(bad(format!("tag {:?} has no `=value`", &key[i..eq])));
        }
        let end = scan_unescaped(b, eq + 1, |c| c == b',');
        let name = unescape(&key[i..eq]);
        if name.is_empty() {
            return Err(bad("empty tag key"));
        }
        let name = match name {
            Cow::Borrowed(n) => sanitize(n, false),
            Cow::Owned(n) => Cow::Owned(sanitize(&n, false).into_owned()),
        };
        tags.push((name, unescape(&key[eq + 1..end])));
        i = end;
    }
    Ok((measurement, tags))
}

/// Removes line-protocol escapes: a backslash before space, comma, `=`, `"` or a
/// backslash stands for that character; any other backslash is literal.
fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if matches!(n, ' ' | ',' | '=' | '"' | '\\') {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Writes the sanitized `measurement_field` metric name into `out`.
fn metric_name(out: &mut String, measurement: &str, field: &str) {
    out.clear();
    if measurement.starts_with(|c: char| c.is_ascii_digit()) {
        out.push('_');
    }
    for s in [measurement, "_", field] {
        out.extend(s.chars().map(|c| if name_char(c, true) { c } else { '_' }));
    }
}

fn name_char(c: char, metric: bool) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':')
}

/// Makes a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`) or metric name (also `:`),
/// borrowing `s` when it already is one.
fn sanitize(s: &str, metric: bool) -> Cow<'_, str> {
    let digit_first = s.starts_with(|c: char| c.is_ascii_digit());
    if !digit_first && s.chars().all(|c| name_char(c, metric)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 1);
    if digit_first {
        out.push('_');
    }
    out.extend(s.chars().map(|c| if name_char(c, metric) { c } else { '_' }));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(s: &str) -> Parsed {
        parse(s.as_bytes(), Precision::Ns, 42, &Limits::default(), None).unwrap()
    }

    #[test]
    fn fields_become_series_and_escapes_are_undone() {
        let p = parse_ok(
            "# comment\n\
             cpu,host=a,region=eu\\ west usage_user=1.5,usage_system=2i,ok=true,up=3u,msg=\"hi, \\\"there\\\"\" 1700000000000000000\r\n\
             \n\
             my\\,weird\\ measure,host\\=x=a\\,b value=-0.5\n\
             disk-io,1tag=v reads=7",
        );
        assert_eq!(p.string_fields, 1);
        assert_eq!(p.batch.len(), 6);
        let names: Vec<String> = p.batch.series_labels().map(|l| l.to_string()).collect();
        assert!(names.contains(&"cpu_usage_user{host=\"a\",region=\"eu west\"}".to_string()), "{names:?}");
        assert!(names.contains(&"cpu_ok{host=\"a\",region=\"eu west\"}".to_string()));
        assert!(names.contains(&"my_weird_measure_value{host_x=\"a,b\"}".to_string()), "{names:?}");
        assert!(names.contains(&"disk_io_reads{_1tag=\"v\"}".to_string()), "{names:?}");
        let s = p.batch.samples();
        assert_eq!(s[0].1, 1_700_000_000_000);
        assert_eq!(s[0].2, 1.5);
        assert_eq!(s[1].2, 2.0);
        assert_eq!(s[2].2, 1.0);
        assert_eq!(s[3].2, 3.0);
        assert_eq!(s[4].1, 42, "missing timestamp is now");
    }

    #[test]
    fn precision_converts_and_floors() {
        let l = Limits::default();
        let at = |p, body: &str| parse(body.as_bytes(), p, 0, &l, None).unwrap().batch.samples()[0].1;
        assert_eq!(at(Precision::Ns, "m v=1 -1"), -1);
        assert_eq!(at(Precision::Us, "m v=1 1500"), 1);
        assert_eq!(at(Precision::Ms, "m v=1 1500"), 1500);
        assert_eq!(at(Precision::S, "m v=1 2"), 2000);
        assert_eq!(at(Precision::M, "m v=1 1"), 60_000);
        assert_eq!(at(Precision::H, "m v=1 1"), 3_600_000);
        assert!(parse(b"m v=1 9223372036854775807", Precision::S, 0, &l, None).is_err());
        assert_eq!(Precision::parse(Some("us")).unwrap(), Precision::Us);
        assert!(Precision::parse(Some("weeks")).is_err());
    }

    #[test]
    fn errors_name_the_line_and_store_nothing() {
        let l = Limits::default();
        let cases = [
            ("ok v=1\nbad\n", 2, "missing fields"),
            ("ok v=1\n\nm v=abc", 3, "invalid value"),
            ("m v=1.5i", 1, "invalid integer"),
            ("m v=1i2", 1, "invalid value"),
            ("m v=\"open", 1, "unterminated"),
            ("m v=1 12x", 1, "invalid timestamp"),
            ("m,t v=1", 1, "has no `=value`"),
            (",t=1 v=1", 1, "empty measurement"),
            ("m =1", 1, "empty field name"),
            ("m v", 1, "no `=value`"),
            ("m v=NaN", 1, "invalid value"),
            ("m v=inf", 1, "invalid value"),
            ("m,__name__=x v=1", 1, "duplicate"),
            ("m v=1\nm v=2 1\n\u{0}", 3, "missing fields"),
        ];
        for (body, line, msg) in cases {
            let e =
                parse(body.as_bytes(), Precision::Ns, 0, &l, None).err().unwrap_or_else(|| panic!("{body:?} parsed"));
            assert_eq!(e.extra.get("line").and_then(|v| v.as_u64()), Some(line as u64), "{body:?}: {}", e.message);
            assert!(e.message.starts_with(&format!("line {line}: ")), "{}", e.message);
            assert!(e.message.contains(msg), "{body:?}: {}", e.message);
        }
        let e = parse(b"m v=1\n\xff", Precision::Ns, 0, &l, None).err().unwrap();
        assert!(e.message.contains("line 2: invalid UTF-8"));
    }

    #[test]
    fn limits_apply_while_parsing() {
        let l = Limits { max_samples_per_request: 2, ..Limits::default() };
        let e = parse(b"m a=1,b=2,c=3", Precision::Ns, 0, &l, None).err().unwrap();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let l = Limits { max_label_value_len: 3, ..Limits::default() };
        let e = parse(b"m,t=long v=1", Precision::Ns, 0, &l, None).err().unwrap();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse(&b, Precision::Ns, 0, &Limits::default(), None);
        }

        #[test]
        fn never_panics_on_line_like_text(s in "[a-z, =\"\\\\0-9.eiuTf\n#-]{0,80}") {
            let _ = parse(s.as_bytes(), Precision::S, 0, &Limits::default(), None);
        }
    }

    #[test]
    fn never_panics_on_prefixes() {
        let body = "my\\,m,t\\ 1=a\\=b,u=\"x\" s=\"a\\\"b\",i=-3i,u=4u,b=F 1700000000000000000\n";
        let l = Limits::default();
        for end in 0..=body.len() {
            let _ = parse(&body.as_bytes()[..end], Precision::Ns, 0, &l, None);
        }
        for b in 0u8..=255 {
            let _ = parse(&[b'm', b' ', b'v', b'=', b, b'\\'], Precision::Ns, 0, &l, None);
        }
    }
}
