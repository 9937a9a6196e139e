//! Feedback is what a user said about an investigation. A submission is validated into a
//! [`ValidFeedback`] once, at the edge; the store only ever sees valid feedback.

use serde::{Deserialize, Serialize};

use crate::Timestamp;
use crate::ids::{FeedbackId, SpanId, TenantId, TraceId};

pub const MAX_CORRECTION_CHARS: usize = 10_000;
pub const MAX_TAGS: usize = 32;
pub const MAX_SHORT_TEXT_CHARS: usize = 256;
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// The user's verdict on the agent's conclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Up,
    NotQuite,
    Down,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::NotQuite => "not_quite",
            Verdict::Down => "down",
        }
    }

    /// Reads the spellings feedback systems use for thumbs and labels.
    pub fn parse_loose(s: &str) -> Option<Self> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "up" | "thumbs_up" | "positive" | "correct" | "good" | "helpful" | "yes" | "pass" => {
                Some(Verdict::Up)
            }
            "not_quite" | "partial" | "partially_correct" | "mixed" | "neutral" => {
                Some(Verdict::NotQuite)
            }
            "down" | "thumbs_down" | "negative" | "incorrect" | "wrong" | "bad" | "unhelpful"
            | "no" | "fail" => Some(Verdict::Down),
            _ => None,
        }
    }
}

/// Where a feedback record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackOrigin {
    Api,
    Widget,
    Langfuse,
    Phoenix,
    Langsmith,
    /// An OTel `gen_ai.evaluation.result` span event.
    OtelEvent,
    /// OpenInference `annotation.*` span attributes.
    OpeninferenceAnnotation,
}

impl FeedbackOrigin {
    pub const ALL: [FeedbackOrigin; 7] = [
        FeedbackOrigin::Api,
        FeedbackOrigin::Widget,
        FeedbackOrigin::Langfuse,
        FeedbackOrigin::Phoenix,
        FeedbackOrigin::Langsmith,
        FeedbackOrigin::OtelEvent,
        FeedbackOrigin::OpeninferenceAnnotation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackOrigin::Api => "api",
            FeedbackOrigin::Widget => "widget",
            FeedbackOrigin::Langfuse => "langfuse",
            FeedbackOrigin::Phoenix => "phoenix",
            FeedbackOrigin::Langsmith => "langsmith",
            FeedbackOrigin::OtelEvent => "otel_event",
            FeedbackOrigin::OpeninferenceAnnotation => "openinference_annotation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        FeedbackOrigin::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A feedback submission as a client sent it, before validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackSubmission {
    #[serde(default)]
    pub investigation_id: Option<String>,
    #[serde(default)]
    pub span_id: Option<String>,
    #[serde(default)]
    pub verdict: Option<String>,
    #[serde(default)]
    pub rating: Option<i64>,
    #[serde(default)]
    pub correction: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// One problem with one field of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Feedback that passed validation and awaits storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidFeedback {
    pub investigation_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub verdict: Option<Verdict>,
    pub rating: Option<u8>,
    pub correction: Option<String>,
    pub tags: Vec<String>,
    pub user_id: Option<String>,
    pub idempotency_key: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub origin: FeedbackOrigin,
}

/// The fields of a submission, as spelled in JSON.
const SUBMISSION_FIELDS: [&str; 9] = [
    "investigation_id",
    "span_id",
    "verdict",
    "rating",
    "correction",
    "tags",
    "user_id",
    "idempotency_key",
    "metadata",
];

/// Replaces `slot` with `value` read as its type.
fn read_into<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    slot: &mut T,
) -> Result<(), serde_json::Error> {
    *slot = serde_json::from_value(value)?;
    Ok(())
}

impl FeedbackSubmission {
    /// Reads and validates a submission from a JSON document, reporting every problem at once:
    /// a document that is not an object, unknown fields, fields of the wrong type and invalid
    /// values (deserializing with serde alone would stop at the first).
    pub fn validate_json(
        document: serde_json::Value,
        origin: FeedbackOrigin,
    ) -> Result<ValidFeedback, Vec<FieldError>> {
        let serde_json::Value::Object(object) = document else {
            return Err(vec![FieldError {
                field: "body",
                message: "must be a JSON object".to_owned(),
            }]);
        };
        let mut submission = FeedbackSubmission::default();
        let mut errors = Vec::new();
        let mut mistyped = Vec::new();
        for (name, value) in object {
            let Some(&field) = SUBMISSION_FIELDS.iter().find(|f| **f == name) else {
                errors.push(FieldError {
                    field: "body",
                    message: format!(
                        "unknown field {name:?}; the fields are {}",
                        SUBMISSION_FIELDS.join(", ")
                    ),
                });
                continue;
            };
            let s = &mut submission;
            let read = match field {
                "investigation_id" => read_into(value, &mut s.investigation_id),
                "span_id" => read_into(value, &mut s.span_id),
                "verdict" => read_into(value, &mut s.verdict),
                "rating" => read_into(value, &mut s.rating),
                "correction" => read_into(value, &mut s.correction),
                "tags" => read_into(value, &mut s.tags),
                "user_id" => read_into(value, &mut s.user_id),
                "idempotency_key" => read_into(value, &mut s.idempotency_key),
                _ => read_into(value, &mut s.metadata),
            };
            if let Err(e) = read {
                errors.push(FieldError {
                    field,
                    message: e.to_string(),
                });
                mistyped.push(field);
            }
        }
        submission.check(origin, errors, &mistyped)
    }

    /// Checks every field and reports every problem at once.
    pub fn validate(self, origin: FeedbackOrigin) -> Result<ValidFeedback, Vec<FieldError>> {
        self.check(origin, Vec::new(), &[])
    }

    /// Validates the fields read; `errors` holds the problems found while reading, and a field
    /// in `mistyped` was present (with a value of the wrong type), so it is not reported missing.
    fn check(
        self,
        origin: FeedbackOrigin,
        mut errors: Vec<FieldError>,
        mistyped: &[&str],
    ) -> Result<ValidFeedback, Vec<FieldError>> {
        let given = |field: &str| mistyped.contains(&field);
        let mut bad =
            |field: &'static str, message: String| errors.push(FieldError { field, message });

        // A present id must be a real one: a blank id would store feedback that names nothing
        // and so could never be joined to a trace or labelled.
        let investigation_id = match self.investigation_id.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                bad("investigation_id", "must not be blank".to_owned());
                None
            }
            Some(s) => match s.to_ascii_lowercase().parse::<TraceId>() {
                Ok(id) => Some(id),
                Err(e) => {
                    bad("investigation_id", format!("not a trace id ({e})"));
                    None
                }
            },
        };
        let span_id = match self.span_id.as_deref().map(str::trim) {
            None => None,
            Some("") => {
                bad("span_id", "must not be blank".to_owned());
                None
            }
            Some(s) => match s.to_ascii_lowercase().parse::<SpanId>() {
                Ok(id) => Some(id),
                Err(e) => {
                    bad("span_id", format!("not a span id ({e})"));
                    None
                }
            },
        };
        if self.investigation_id.is_none()
            && self.span_id.is_none()
            && !given("investigation_id")
            && !given("span_id")
        {
            bad(
                "investigation_id",
                "one of investigation_id (trace id) or span_id is required".to_owned(),
            );
        }

        let verdict = match self.verdict.as_deref() {
            None => None,
            Some(v) => match v {
                "up" => Some(Verdict::Up),
                "not_quite" => Some(Verdict::NotQuite),
                "down" => Some(Verdict::Down),
                other => {
                    bad(
                        "verdict",
                        format!("{other:?} is not one of \"up\", \"not_quite\", \"down\""),
                    );
                    None
                }
            },
        };
        let rating = match self.rating {
            None => None,
            Some(r @ 1..=5) => Some(r as u8),
            Some(r) => {
                bad("rating", format!("{r} is outside 1-5"));
                None
            }
        };
        if self.verdict.is_none() && self.rating.is_none() && !given("verdict") && !given("rating")
        {
            bad(
                "verdict",
                "at least one of verdict or rating is required".to_owned(),
            );
        }

        let correction = self
            .correction
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty());
        if let Some(c) = &correction
            && c.chars().count() > MAX_CORRECTION_CHARS
        {
            bad(
                "correction",
                format!("longer than {MAX_CORRECTION_CHARS} characters"),
            );
        }
        if self.tags.len() > MAX_TAGS {
            bad("tags", format!("more than {MAX_TAGS} tags"));
        }
        if self
            .tags
            .iter()
            .any(|t| t.trim().is_empty() || t.chars().count() > 64)
        {
            bad("tags", "each tag must be 1-64 characters".to_owned());
        }
        for (field, value) in [
            ("user_id", &self.user_id),
            ("idempotency_key", &self.idempotency_key),
        ] {
            if let Some(v) = value
                && (v.is_empty() || v.chars().count() > MAX_SHORT_TEXT_CHARS)
            {
                bad(
                    field,
                    format!("must be 1-{MAX_SHORT_TEXT_CHARS} characters"),
                );
            }
        }
        let metadata_len = serde_json::to_vec(&self.metadata).map_or(usize::MAX, |v| v.len());
        if metadata_len > MAX_METADATA_BYTES {
            bad(
                "metadata",
                format!("larger than {MAX_METADATA_BYTES} bytes as JSON"),
            );
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        let mut tags: Vec<String> = self.tags.iter().map(|t| t.trim().to_owned()).collect();
        tags.sort();
        tags.dedup();
        Ok(ValidFeedback {
            investigation_id,
            span_id,
            verdict,
            rating,
            correction,
            tags,
            user_id: self.user_id,
            idempotency_key: self.idempotency_key,
            metadata: self.metadata,
            origin,
        })
    }
}

/// A stored feedback record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub id: FeedbackId,
    pub tenant: TenantId,
    pub received_at: Timestamp,
    #[serde(flatten)]
    pub body: ValidFeedback,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(json: &str) -> FeedbackSubmission {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_documented_example_is_valid() {
        let valid = submission(
            r#"{"investigation_id": "5B8EFFF798038103D269B633813FC60C", "span_id": null,
                "verdict": "not_quite", "rating": 2,
                "correction": "it was the payments-db connection pool, not checkout",
                "tags": ["wrong-component"], "user_id": "u-17", "idempotency_key": "fb-1",
                "metadata": {}}"#,
        )
        .validate(FeedbackOrigin::Api)
        .unwrap();
        assert_eq!(valid.verdict, Some(Verdict::NotQuite));
        assert_eq!(valid.rating, Some(2));
        assert_eq!(
            valid.investigation_id.unwrap().to_string(),
            "5b8efff798038103d269b633813fc60c"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = submission(r#"{"verdict": "meh", "rating": 9, "tags": [""]}"#)
            .validate(FeedbackOrigin::Api)
            .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["investigation_id", "verdict", "rating", "tags"]);
    }

    #[test]
    fn a_verdict_or_a_rating_is_required() {
        let errors = submission(r#"{"investigation_id": "5b8efff798038103d269b633813fc60c"}"#)
            .validate(FeedbackOrigin::Api)
            .unwrap_err();
        assert_eq!(errors[0].field, "verdict");
        let only_rating = submission(r#"{"span_id": "0102030405060708", "rating": 5}"#)
            .validate(FeedbackOrigin::Api);
        assert!(only_rating.is_ok());
    }

    #[test]
    fn blank_ids_are_refused_naming_the_field() {
        for (json, field) in [
            (
                r#"{"investigation_id": "  ", "verdict": "up"}"#,
                "investigation_id",
            ),
            (
                r#"{"investigation_id": "", "verdict": "up"}"#,
                "investigation_id",
            ),
            (r#"{"span_id": "", "verdict": "up"}"#, "span_id"),
            (r#"{"span_id": "\t", "rating": 3}"#, "span_id"),
        ] {
            let errors = submission(json).validate(FeedbackOrigin::Api).unwrap_err();
            let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
            assert_eq!(fields, [field], "{json}");
            assert_eq!(errors[0].message, "must not be blank");
        }
        // A blank span id next to a good trace id is still an error, not silently dropped.
        let errors = submission(
            r#"{"investigation_id": "5b8efff798038103d269b633813fc60c", "span_id": " ", "verdict": "up"}"#,
        )
        .validate(FeedbackOrigin::Api)
        .unwrap_err();
        assert_eq!(errors[0].field, "span_id");
    }

    #[test]
    fn a_json_document_names_every_mistyped_unknown_and_invalid_field() {
        let errors = FeedbackSubmission::validate_json(
            serde_json::json!({"investigation_id": 7, "rating": "five", "verdikt": "up",
                               "tags": "x", "user_id": ""}),
            FeedbackOrigin::Api,
        )
        .unwrap_err();
        let mut fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        fields.sort();
        assert_eq!(
            fields,
            ["body", "investigation_id", "rating", "tags", "user_id"],
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.field == "body" && e.message.contains("\"verdikt\"")),
            "{errors:?}"
        );
        assert!(
            !errors.iter().any(|e| e.message.contains("required")),
            "a mistyped field is present, not missing: {errors:?}"
        );
        let not_an_object =
            FeedbackSubmission::validate_json(serde_json::json!([1, 2]), FeedbackOrigin::Api)
                .unwrap_err();
        assert_eq!(not_an_object[0].field, "body");
        let valid = FeedbackSubmission::validate_json(
            serde_json::json!({"span_id": "0102030405060708", "rating": 4, "tags": ["a"],
                               "metadata": {"k": 1}, "correction": null}),
            FeedbackOrigin::Api,
        )
        .unwrap();
        assert_eq!((valid.rating, valid.tags.len()), (Some(4), 1));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<FeedbackSubmission>(r#"{"verdikt": "up"}"#).is_err());
    }

    #[test]
    fn loose_verdicts_cover_common_spellings() {
        assert_eq!(Verdict::parse_loose("Thumbs-Up"), Some(Verdict::Up));
        assert_eq!(Verdict::parse_loose("incorrect"), Some(Verdict::Down));
        assert_eq!(
            Verdict::parse_loose("partially correct"),
            Some(Verdict::NotQuite)
        );
        assert_eq!(Verdict::parse_loose("banana"), None);
    }
}
