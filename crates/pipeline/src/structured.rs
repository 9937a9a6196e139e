//! Structured answers: agents often end with JSON (`{"1": {"root cause component": …}}`),
//! key–value lines (`Root cause: X`, `**Component:** X`) or markdown sections (`## Reason`).
//! Reading them field by field gives a confirmed conclusion a precise component, reason and onset,
//! and lets a correction's "not that" refer to the agent's own answer.

use evalmint_model::Timestamp;
use serde_json::Value;

/// The fields of a structured answer, as written (values are raw text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Structured {
    pub component: Option<String>,
    pub reason: Option<String>,
    /// The stated time, as written.
    pub time: Option<String>,
}

impl Structured {
    fn is_empty(&self) -> bool {
        self.component.is_none() && self.reason.is_none() && self.time.is_none()
    }

    /// The stated time as an instant, when it is a full date and time (UTC unless it says
    /// otherwise).
    pub fn onset(&self) -> Option<Timestamp> {
        let text = self.time.as_deref()?.trim();
        if let Ok(t) = text.parse::<Timestamp>() {
            return Some(t);
        }
        let civil: jiff::civil::DateTime = text.parse().ok()?;
        jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()
    }
}

/// The words structured keys are made of.
const KEY_WORDS: &[&str] = &[
    "root",
    "cause",
    "causes",
    "component",
    "service",
    "culprit",
    "entity",
    "faulty",
    "affected",
    "reason",
    "mechanism",
    "category",
    "fault",
    "failure",
    "type",
    "datetime",
    "date",
    "time",
    "onset",
    "started",
    "start",
    "occurrence",
    "when",
    "rca",
    "the",
    "of",
    "primary",
    "probable",
    "likely",
    "suspected",
    "final",
    "answer",
];

#[derive(Clone, Copy, PartialEq)]
enum Field {
    Component,
    Reason,
    Time,
}

/// What a key names, by its words: `root cause component`, `Component`, `root_cause_reason`,
/// `Root cause`, `onset`, `root cause occurrence datetime`, …
fn field_of(key: &str) -> Option<Field> {
    let key: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = key.split_whitespace().collect();
    // A key is a label made of these words only, so prose such as "it was node-5: disk full" is
    // not mistaken for one.
    if words.is_empty()
        || !words
            .iter()
            .all(|w| KEY_WORDS.contains(w) || w.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let has = |w: &str| words.contains(&w);
    if has("component") || has("service") || has("culprit") || has("entity") {
        return Some(Field::Component);
    }
    if has("reason")
        || has("mechanism")
        || has("category")
        || has("fault")
        || has("failure")
        || has("type")
    {
        return Some(Field::Reason);
    }
    if has("datetime")
        || has("time")
        || has("onset")
        || has("started")
        || has("start")
        || has("occurrence")
        || has("when")
    {
        return Some(Field::Time);
    }
    // "Root cause: payments-db — pool exhausted" names the component first.
    (words == ["root", "cause"] || words == ["cause"]).then_some(Field::Component)
}

fn set(found: &mut Structured, field: Field, value: &str) {
    let value = value.trim().trim_matches(['*', '`', '"', '\'', '_']).trim();
    if value.is_empty() {
        return;
    }
    let slot = match field {
        Field::Component => &mut found.component,
        Field::Reason => &mut found.reason,
        Field::Time => &mut found.time,
    };
    if slot.is_none() {
        *slot = Some(value.to_owned());
    }
}

/// Reads the structured fields of `text`, if it has any.
pub fn parse(text: &str) -> Option<Structured> {
    if let Some(found) = from_json(text).filter(|s| !s.is_empty()) {
        return Some(found);
    }
    let found = from_lines(text);
    (!found.is_empty()).then_some(found)
}

/// The first JSON object in the text (fenced or not), read field by field; for an object of
/// objects (`{"1": {…}, "2": {…}}`), the first inner object with fields.
fn from_json(text: &str) -> Option<Structured> {
    for (start, _) in text.match_indices('{').take(8) {
        let mut stream = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
        if let Some(Ok(value)) = stream.next() {
            let mut found = Structured::default();
            visit(&value, &mut found, 0);
            if !found.is_empty() {
                return Some(found);
            }
        }
    }
    None
}

fn visit(value: &Value, found: &mut Structured, depth: usize) {
    let Value::Object(map) = value else { return };
    if depth > 4 {
        return;
    }
    for (key, value) in map {
        match (field_of(key), value) {
            (Some(field), Value::String(s)) => set(found, field, s),
            (Some(field), Value::Number(n)) if field == Field::Time => {
                set(found, field, &n.to_string())
            }
            _ => {}
        }
    }
    if found.component.is_none() {
        for value in map.values() {
            visit(value, found, depth + 1);
            if found.component.is_some() {
                break;
            }
        }
    }
}

/// `Key: value` lines (markdown emphasis, bullets and headings allowed) and `## Key` headings
/// followed by their first line of text.
fn from_lines(text: &str) -> Structured {
    let mut found = Structured::default();
    let mut pending: Option<Field> = None;
    for line in text.lines().take(500) {
        let bare = line
            .trim()
            .trim_start_matches(['#', '>', '-', '*', '+', ' '])
            .trim();
        if bare.is_empty() {
            continue;
        }
        if line.trim_start().starts_with('#') {
            pending = field_of(bare.trim_end_matches(':'));
            continue;
        }
        if let Some(field) = pending.take() {
            set(&mut found, field, bare);
            continue;
        }
        let Some((key, value)) = bare.split_once(':') else {
            continue;
        };
        let key = key.trim_matches(['*', '_', '`', ' ']);
        if key.chars().count() > 40 {
            continue;
        }
        if let Some(field) = field_of(key) {
            if value.trim().trim_matches(['*', '_']).trim().is_empty() {
                pending = Some(field);
            } else {
                set(&mut found, field, value.trim_start_matches(['*', '_']));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_answers_are_read_field_by_field() {
        let answer = r#"Final answer:
```json
{
    "1": {
        "root cause occurrence datetime": "2021-03-04 14:20:00",
        "root cause component": "MG02",
        "root cause reason": "high disk I/O read usage"
    }
}
```"#;
        let s = parse(answer).unwrap();
        assert_eq!(s.component.as_deref(), Some("MG02"));
        assert_eq!(s.reason.as_deref(), Some("high disk I/O read usage"));
        assert_eq!(s.onset().unwrap().to_string(), "2021-03-04T14:20:00Z");
    }

    #[test]
    fn key_value_lines_and_sections_are_read() {
        let s = parse("Root cause: payments-db — the pool ran dry").unwrap();
        assert_eq!(
            s.component.as_deref(),
            Some("payments-db — the pool ran dry")
        );
        let s = parse(
            "**Component:** cart-redis\n**Reason:** memory eviction storm\n- Onset: 14:02 UTC",
        )
        .unwrap();
        assert_eq!(s.component.as_deref(), Some("cart-redis"));
        assert_eq!(s.reason.as_deref(), Some("memory eviction storm"));
        assert_eq!(s.time.as_deref(), Some("14:02 UTC"));
        assert_eq!(s.onset(), None);
        let s =
            parse("## Root cause\n\nnode-5 disk full\n\n## Mechanism\ninodes exhausted").unwrap();
        assert_eq!(s.component.as_deref(), Some("node-5 disk full"));
        assert_eq!(s.reason.as_deref(), Some("inodes exhausted"));
        assert_eq!(parse("checkout is failing because of a bad deploy"), None);
        assert_eq!(parse("{not json} at 14:02: nothing"), None);
        assert_eq!(parse("it was node-5: disk full"), None);
    }
}
