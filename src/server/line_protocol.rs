//! InfluxDB line protocol, `POST /write` (v1) and `POST /api/v2/write` (v2):
//! `measurement[,tag=v...] field=v[,field=v...] [timestamp]`.
//!
//! - Every numeric or boolean field becomes the series `measurement_field` with the
//!   tags as labels: floats as written, integers (`1i`) and unsigned (`1u`) converted
//!   to f64, booleans as 1/0. String fields are skipped and counted.
//! - Names are kept exactly as sent, never rewritten: distinct inputs never become one
//!   series. A name the engine's label rules refuse (`measurement_field` must match
//!   `[a-zA-Z_:][a-zA-Z0-9_:]*`, tag keys `[a-zA-Z_][a-zA-Z0-9_]*`) refuses its line,
//!   naming it; so does a tag with an empty value (InfluxDB refuses those too).
//! - Field values are numerals rounded to the nearest f64 as IEEE-754 does: past the
//!   largest finite value they are ±Inf, below the smallest subnormal ±0.
//! - `precision` is `ns` by default on both paths, as in InfluxDB 1.x/2.x and
//!   VictoriaMetrics; `n`/`ns`, `u`/`us`/`µ`/`µs`, `ms`, `s`, `m`, `h` are accepted.
//!   Timestamps are floored to milliseconds. A missing timestamp is the request's
//!   arrival time, the same for every line.
//! - Acceptance is per line: a line that cannot be read is refused whole and named
//!   by number, every other line is stored (see `batch::Refusals`). Only a size limit
//!   (413) fails the whole request.

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
use crate::hash::LabelBuildHasher;
use crate::{Db, METRIC_NAME};

/// Keys and field names are hashed once per line and per field: the seeded
/// multiply hasher, not SipHash (3.5 % of a line-protocol server's CPU).
type StrMap<'a, V> = HashMap<&'a str, V, LabelBuildHasher>;

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
    let (out, strings) = st
        .writers
        .run(move || {
            let parsed = parse(&bytes, precision, now, &limits, Some(&db))?;
            Ok((parsed.batch.commit_blocking(&db)?, parsed.string_fields))
        })
        .await?;
    st.metrics.ingested(Protocol::Influx, out.stored as u64);
    st.metrics.skipped_string_fields(strings);
    let samples = out.into_result()?;
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
/// Names borrow from the body unless unescaping changed them.
struct KeyEntry<'a> {
    measurement: Cow<'a, str>,
    tags: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    fields: StrMap<'a, u32>,
}

/// Buffers reused from line to line of a body.
#[derive(Default)]
struct Scratch<'a> {
    fields: Vec<(&'a str, Option<f64>)>,
    name: String,
}

/// Parses a whole body. A line that cannot be read is refused (recorded in
/// `batch.refused`, named by its 1-based number) and the others kept; only a
/// request limit (413) fails the body. With `db`, series the engine already holds
/// are resolved as they are met.
pub(crate) fn parse(
    body: &[u8],
    precision: Precision,
    now: i64,
    limits: &Limits,
    db: Option<&Db>,
) -> Result<Parsed, ApiError> {
    // A field takes at least 4 bytes (`f=1,`); devops lines run about 25 bytes a field.
    let mut out = Parsed { batch: Batch::for_db(db, limits, body.len() / 16), string_fields: 0 };
    out.batch.positions("line");
    let mut keys: StrMap<'_, KeyEntry<'_>> = StrMap::default();
    let mut scratch = Scratch::default();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let line = match std::str::from_utf8(raw) {
            Ok(line) => line,
            Err(_) => {
                out.batch.refused.add_error(Some(n as u64), 1, line_error(n, bad("invalid UTF-8")));
                continue;
            }
        };
        let line = line.strip_suffix('\r').unwrap_or(line).trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.batch.at(n as u64);
        let (held, strings) = (out.batch.len(), out.string_fields);
        if let Err(e) = parse_line(line, precision, now, limits, &mut keys, &mut scratch, &mut out) {
            if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                return Err(line_error(n, e));
            }
            // The whole line is refused: drop what it had added.
            out.batch.truncate(held);
            out.string_fields = strings;
            out.batch.refused.add_error(Some(n as u64), 1, line_error(n, e));
        }
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
    keys: &mut StrMap<'a, KeyEntry<'a>>,
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
            keys.entry(key).or_insert(KeyEntry { measurement, tags, fields: StrMap::default() })
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
                metric_name(name, &entry.measurement, &unescape(fkey))?;
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
    // A numeral (not `inf` or `nan`, which line protocol does not have), rounded to
    // the nearest f64: out of range it is ±Inf or ±0, as IEEE-754 parsing gives.
    if crate::text::value::is_numeral(s) {
        if let Ok(v) = s.parse::<f64>() {
            return Ok(v);
        }
    }
    Err(format!("invalid value {:?} (want a float, 1i, 1u, a boolean or a \"string\")", super::limits::prefix(s)))
}

/// Splits `measurement,tag=v,...` into the measurement and its tags, names as sent.
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
        check_tag_key(&name)?;
        let value = unescape(&key[eq + 1..end]);
        if value.is_empty() {
            // Stored, it would be the series without the tag: refuse rather than merge.
            return Err(bad(format!(
                "tag {:?} has an empty value (leave the tag out instead)",
                super::limits::prefix(&name)
            )));
        }
        tags.push((name, value));
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

/// Writes the metric name `measurement_field` into `out`, exactly as sent: a name
/// the engine would refuse refuses the line rather than being rewritten, since a
/// rewrite could merge distinct inputs (`cpu-load` and `cpu.load`) into one series.
fn metric_name(out: &mut String, measurement: &str, field: &str) -> Result<(), ApiError> {
    out.clear();
    out.push_str(measurement);
    out.push('_');
    out.push_str(field);
    let mut chars = out.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        return Ok(());
    }
    Err(ApiError::unprocessable(format!(
        "measurement {:?} and field {:?} make the metric name {:?}, which is not a valid name \
         ([a-zA-Z_:][a-zA-Z0-9_:]*); names are stored as sent, never rewritten",
        super::limits::prefix(measurement),
        super::limits::prefix(field),
        super::limits::prefix(out),
    )))
}

/// Checks a tag key against the engine's label name rule, naming it when it fails.
fn check_tag_key(key: &str) -> Result<(), ApiError> {
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(());
    }
    Err(ApiError::unprocessable(format!(
        "tag key {:?} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*); names are stored as sent, never rewritten",
        super::limits::prefix(key)
    )))
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
             my:measure,host=a\\,b\\=c\\ d value=-0.5\n\
             _disk,_1tag=v reads=7",
        );
        assert!(p.batch.refused.is_empty());
        assert_eq!(p.string_fields, 1);
        assert_eq!(p.batch.len(), 6);
        let names: Vec<String> = p.batch.series_labels().map(|l| l.to_string()).collect();
        assert!(names.contains(&"cpu_usage_user{host=\"a\",region=\"eu west\"}".to_string()), "{names:?}");
        assert!(names.contains(&"cpu_ok{host=\"a\",region=\"eu west\"}".to_string()));
        assert!(names.contains(&"my:measure_value{host=\"a,b=c d\"}".to_string()), "{names:?}");
        assert!(names.contains(&"_disk_reads{_1tag=\"v\"}".to_string()), "{names:?}");
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
        let p = parse(b"m v=1 9223372036854775807", Precision::S, 0, &l, None).unwrap();
        assert_eq!(p.batch.len(), 0);
        assert!(p.batch.refused.into_error(0).message.contains("overflows milliseconds"));
        assert_eq!(Precision::parse(Some("us")).unwrap(), Precision::Us);
        assert!(Precision::parse(Some("weeks")).is_err());
    }

    /// The one refusal of a body, as the response would give it.
    fn refusal(body: &[u8], limits: &Limits) -> (usize, ApiError) {
        let p = parse(body, Precision::Ns, 0, limits, None).unwrap_or_else(|e| panic!("{body:?}: {}", e.message));
        assert_eq!(p.batch.refused.entries(), 1, "{body:?}");
        (p.batch.len(), p.batch.refused.into_error(0))
    }

    #[test]
    fn a_bad_line_is_refused_by_number_and_the_rest_kept() {
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
            ("m v=+inf", 1, "invalid value"),
            ("m,__name__=x v=1", 1, "duplicate"),
            ("m v=1\nm v=2 1\n\u{0}", 3, "missing fields"),
            ("m,host= v=1", 1, "tag \"host\" has an empty value"),
            ("m a=1,b-c=2\nm d=3", 1, "field \"b-c\" make the metric name \"m_b-c\""),
            ("m,k.a=1 v=1", 1, "tag key \"k.a\" is not a valid label name"),
            ("1m v=1", 1, "metric name \"1m_v\""),
            ("m v=1\n\u{e9}t\u{e9} v=2", 2, "metric name \"\u{e9}t\u{e9}_v\""),
        ];
        for (body, line, msg) in cases {
            let lines = body.lines().filter(|l| !l.is_empty()).count();
            let (kept, e) = refusal(body.as_bytes(), &l);
            assert_eq!(e.extra.get("line").and_then(|v| v.as_u64()), Some(line as u64), "{body:?}: {}", e.message);
            assert!(e.message.starts_with(&format!("line {line}: ")), "{}", e.message);
            assert!(e.message.contains(msg), "{body:?}: {}", e.message);
            // Every other line is kept, and nothing of the refused one.
            assert_eq!(kept, lines - 1, "{body:?}");
        }
        let (kept, e) = refusal(b"m v=1\n\xff", &l);
        assert_eq!((kept, e.message.as_str()), (1, "line 2: invalid UTF-8"));
    }

    #[test]
    fn distinct_names_stay_distinct_or_are_refused() {
        let p = parse_ok("cpu_load v=1\ncpu-load v=2\ncpu.load v=3\nm,k_a=x v=4\nm,k.a=x v=5\nm v=6\nm,t= v=7\n");
        let names: Vec<String> = p.batch.series_labels().map(|l| l.to_string()).collect();
        assert_eq!(names, ["cpu_load_v", "m_v{k_a=\"x\"}", "m_v"]);
        let refused: Vec<u64> = p.batch.refused.listed().iter().map(|e| e["line"].as_u64().unwrap()).collect();
        assert_eq!(refused, [2, 3, 5, 7]);
    }

    #[test]
    fn out_of_range_numerals_round_as_ieee() {
        let p = parse_ok("m a=1e309,b=-1e309,c=1e-400,d=-1e-400,e=4e-324");
        let v: Vec<u64> = p.batch.samples().iter().map(|s| s.2.to_bits()).collect();
        assert_eq!(v, [f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, 5e-324].map(f64::to_bits));
    }

    #[test]
    fn limits_apply_while_parsing() {
        let l = Limits { max_samples_per_request: 2, ..Limits::default() };
        let e = parse(b"m a=1,b=2,c=3", Precision::Ns, 0, &l, None).err().unwrap();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let l = Limits { max_label_value_len: 3, ..Limits::default() };
        let (kept, e) = refusal(b"m,t=long v=1\nm,t=ok v=1", &l);
        assert_eq!((kept, e.status), (1, StatusCode::UNPROCESSABLE_ENTITY));
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
