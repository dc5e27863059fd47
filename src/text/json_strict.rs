//! JSON readers that refuse what `serde_json` would resolve silently: an object
//! with the same key twice (its `Map` keeps the last one), and a label map whose
//! values are not strings.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// Reads any JSON value, refusing an object that repeats a key (at any depth) with
/// an error naming the key.
pub struct Unique;

impl<'de> DeserializeSeed<'de> for Unique {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(Unique)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(de::Error::custom(format_args!("duplicate key {k:?}")));
            }
            let v = map.next_value_seed(Unique)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses one JSON document with `Unique`, allowing only whitespace after it.
pub fn parse_unique(bytes: &[u8]) -> serde_json::Result<Value> {
    let mut d = serde_json::Deserializer::from_slice(bytes);
    let v = Unique.deserialize(&mut d)?;
    d.end()?;
    Ok(v)
}

/// The top-level entries of a JSON object, values left unparsed, each key once.
pub fn object_entries(json: &str) -> serde_json::Result<Vec<(String, &RawValue)>> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Self::Value = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                if out.iter().any(|(n, _)| *n == k) {
                    return Err(de::Error::custom(format_args!("duplicate key {k:?}")));
                }
                out.push((k, map.next_value()?));
            }
            Ok(out)
        }
    }
    let mut d = serde_json::Deserializer::from_str(json);
    let v = d.deserialize_map(Entries)?;
    d.end()?;
    Ok(v)
}

/// `deserialize_with` for a label map: string keys and values, each key once, in
/// document order.
pub fn label_pairs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of label name -> string value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out: Vec<(String, String)> = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                if out.iter().any(|(n, _)| *n == k) {
                    return Err(de::Error::custom(format_args!("duplicate label {k:?}")));
                }
                let v = map.next_value::<Value>()?;
                let Value::String(v) = v else {
                    return Err(de::Error::custom(format_args!("label {k:?}: expected a string, got {v}")));
                };
                out.push((k, v));
            }
            Ok(out)
        }
    }
    d.deserialize_map(Pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_repeated_keys_at_any_depth() {
        let v = parse_unique(br#"{"a":[1,2.5,"x",null,true],"b":{"c":{"d":1}}}"#).unwrap();
        assert_eq!(v, serde_json::json!({"a":[1,2.5,"x",null,true],"b":{"c":{"d":1}}}));
        let e = parse_unique(br#"{"a":1,"b":{"h":"x","h":"y"}}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"h\""), "{e}");
        assert!(parse_unique(br#"{"a":1,"a":1}"#).is_err());
        assert!(parse_unique(br#"{"a":1} {"b":2}"#).is_err());
        assert!(parse_unique(b"{\"a\":1}\n ").is_ok());
    }

    #[test]
    fn label_maps_want_unique_string_values() {
        #[derive(serde::Deserialize, Debug)]
        struct L {
            #[serde(deserialize_with = "label_pairs")]
            m: Vec<(String, String)>,
        }
        let l: L = serde_json::from_str(r#"{"m":{"b":"1","a":"2"}}"#).unwrap();
        assert_eq!(l.m, vec![("b".into(), "1".into()), ("a".into(), "2".into())]);
        let e = serde_json::from_str::<L>(r#"{"m":{"a":"1","a":"2"}}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate label \"a\""), "{e}");
        let e = serde_json::from_str::<L>(r#"{"m":{"port":8080}}"#).unwrap_err();
        assert!(e.to_string().contains("label \"port\": expected a string, got 8080"), "{e}");
    }
}
