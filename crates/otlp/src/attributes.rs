//! Reading OTLP attribute lists: lookup by key, with fallbacks, as text.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

/// Attribute values by key. A sorted list: for the dozen or two keys a span or resource carries
/// it is cheaper to build and to search than a hash map, and it iterates in key order. A key
/// given twice keeps its last value.
#[derive(Debug, Default)]
pub(crate) struct Index<'a>(Vec<(&'a str, &'a Value)>);

impl<'a> Index<'a> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.0
            .binary_search_by(|(k, _)| (*k).cmp(key))
            .ok()
            .map(|i| self.0[i].1)
    }

    fn keys(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.0.iter().map(|(k, _)| *k)
    }
}

pub(crate) fn index(list: &[KeyValue]) -> Index<'_> {
    let mut entries: Vec<(&str, &Value)> = list
        .iter()
        .filter_map(|kv| Some((kv.key.as_str(), kv.value.as_ref()?.value.as_ref()?)))
        .collect();
    // A stable sort keeps repeated keys in arrival order; the later value replaces the earlier.
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            *earlier = *later;
        }
        same
    });
    Index(entries)
}

/// The attributes of one span (and its resource), looked up by key.
pub(crate) struct Attributes<'a> {
    span: Index<'a>,
    resource: &'a Index<'a>,
}

impl<'a> Attributes<'a> {
    pub(crate) fn new(list: &'a [KeyValue], resource: &'a Index<'a>) -> Self {
        Attributes {
            span: index(list),
            resource,
        }
    }

    /// The first of `keys` present on the span, as non-empty text.
    pub(crate) fn text(&self, keys: &[&str]) -> Option<String> {
        keys.iter()
            .filter_map(|k| self.span.get(k))
            .filter_map(to_text)
            .find(|s| !s.is_empty())
    }

    /// The first of `keys` present on the span as a non-empty string value, borrowed: for
    /// attributes that are only compared or parsed, so no copy is made.
    pub(crate) fn str(&self, keys: &[&str]) -> Option<&'a str> {
        keys.iter()
            .filter_map(|k| match self.span.get(k) {
                Some(Value::StringValue(s)) => Some(s.as_str()),
                _ => None,
            })
            .find(|s| !s.is_empty())
    }

    pub(crate) fn resource_text(&self, key: &str) -> Option<String> {
        self.resource
            .get(key)
            .and_then(to_text)
            .filter(|s| !s.is_empty())
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.span.get(key)? {
            Value::BoolValue(b) => Some(*b),
            Value::StringValue(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn number(&self, key: &str) -> Option<f64> {
        match self.span.get(key)? {
            Value::IntValue(i) => Some(*i as f64),
            Value::DoubleValue(d) => Some(*d),
            Value::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn string_list(&self, key: &str) -> Option<Vec<String>> {
        match self.span.get(key)? {
            Value::ArrayValue(array) => Some(
                array
                    .values
                    .iter()
                    .filter_map(|v| v.value.as_ref().and_then(to_text))
                    .collect(),
            ),
            Value::StringValue(s) => Some(
                serde_json::from_str::<Vec<String>>(s)
                    .unwrap_or_else(|_| s.split(',').map(|p| p.trim().to_owned()).collect()),
            ),
            _ => None,
        }
    }

    /// Keys with a given prefix, for attribute families such as `annotation.<name>.*`.
    pub(crate) fn keys_with_prefix<'s>(
        &'s self,
        prefix: &'s str,
    ) -> impl Iterator<Item = &'a str> + 's {
        self.span.keys().filter(move |k| k.starts_with(prefix))
    }
}

/// Any attribute value as text: strings as they are, everything else as JSON.
pub(crate) fn to_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        Value::BytesValue(b) => hex::encode(b),
        Value::ArrayValue(_) | Value::KvlistValue(_) => to_json(value).to_string(),
        Value::StringValueStrindex(_) => return None,
    })
}

fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    let any = |v: &AnyValue| v.value.as_ref().map_or(J::Null, to_json);
    match value {
        Value::StringValue(s) => J::String(s.clone()),
        Value::BoolValue(b) => J::Bool(*b),
        Value::IntValue(i) => J::from(*i),
        Value::DoubleValue(d) => J::from(*d),
        Value::BytesValue(b) => J::String(hex::encode(b)),
        Value::ArrayValue(a) => J::Array(a.values.iter().map(any).collect()),
        Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(J::Null, any)))
                .collect(),
        ),
        Value::StringValueStrindex(_) => J::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(value.to_owned())),
            }),
            ..KeyValue::default()
        }
    }

    #[test]
    fn every_key_is_found_and_a_repeated_key_keeps_its_last_value() {
        let list = [
            kv("service.name", "cart"),
            kv("gen_ai.tool.name", "first"),
            kv("a", "1"),
            kv("gen_ai.tool.name", "second"),
            kv("z", "26"),
        ];
        let index = index(&list);
        let text = |key: &str| index.get(key).and_then(to_text);
        assert_eq!(text("gen_ai.tool.name").as_deref(), Some("second"));
        assert_eq!(text("service.name").as_deref(), Some("cart"));
        assert_eq!(text("a").as_deref(), Some("1"));
        assert_eq!(text("z").as_deref(), Some("26"));
        assert_eq!(text("missing"), None);
        assert_eq!(
            index.keys().collect::<Vec<_>>(),
            ["a", "gen_ai.tool.name", "service.name", "z"]
        );
    }
}
