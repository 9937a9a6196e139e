//! Drop-in endpoints for the feedback clients teams already use (Langfuse, Phoenix, LangSmith).
//! Each submodule reads one SDK's wire format and answers in that SDK's shapes; what a score or
//! annotation says is turned into an ordinary feedback submission here, so validation, storage
//! and the label pipeline are the native path's. The mapping is documented in `docs/compat.md`.

pub(crate) mod langfuse;
pub(crate) mod langsmith;
pub(crate) mod phoenix;

use evalmint_model::{FeedbackOrigin, FeedbackSubmission, ValidFeedback, Verdict};
use evalmint_store::FeedbackReceipt;
use serde_json::{Map, Value};

use super::timed_write;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// What one score, annotation or feedback record says, in evalmint's terms.
#[derive(Debug, Default)]
pub(crate) struct Judgement {
    pub(crate) trace_id: Option<String>,
    pub(crate) span_id: Option<String>,
    pub(crate) verdict: Option<Verdict>,
    pub(crate) rating: Option<i64>,
    pub(crate) correction: Option<String>,
    /// Free text beside the score: the correction when the verdict is not `up` and no
    /// correction was given, kept in metadata otherwise.
    pub(crate) comment: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) metadata: Map<String, Value>,
}

impl Judgement {
    /// Validates like native feedback; field names in messages are the SDK's (`names` maps
    /// evalmint's field names to them).
    pub(crate) fn into_valid(
        mut self,
        origin: FeedbackOrigin,
        names: &[(&str, &str)],
    ) -> Result<ValidFeedback, String> {
        if let Some(comment) = self.comment.take().filter(|c| !c.trim().is_empty()) {
            if self.correction.is_none() && self.verdict != Some(Verdict::Up) {
                self.correction = Some(comment);
            } else {
                self.metadata
                    .insert("comment".to_owned(), Value::String(comment));
            }
        }
        let submission = FeedbackSubmission {
            investigation_id: self.trace_id,
            span_id: self.span_id,
            verdict: self.verdict.map(|v| v.as_str().to_owned()),
            rating: self.rating,
            correction: self.correction,
            tags: Vec::new(),
            user_id: self.user_id,
            idempotency_key: self.idempotency_key,
            metadata: self.metadata,
        };
        submission.validate(origin).map_err(|errors| {
            errors
                .iter()
                .map(|e| {
                    let field = names
                        .iter()
                        .find(|(ours, _)| *ours == e.field)
                        .map_or(e.field, |(_, theirs)| theirs);
                    format!("{field}: {}", e.message)
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// A number as a verdict or a rating. Scores in 0–1 are normalised (≥ 0.8 up, ≤ 0.2 down,
/// between them not quite); an integer 1–5 is a rating when it is above 1 or when the score's
/// name says it is one (`rating`, `stars`).
pub(crate) fn read_number(
    value: f64,
    name: &str,
) -> Result<(Option<Verdict>, Option<i64>), String> {
    if !value.is_finite() {
        return Err("must be a finite number".to_owned());
    }
    let name = name.to_ascii_lowercase();
    let rating_scale = name.contains("rating") || name.contains("star");
    if rating_scale || value > 1.0 {
        if value.fract() == 0.0 && (1.0..=5.0).contains(&value) {
            return Ok((None, Some(value as i64)));
        }
        return Err(format!(
            "{value} is neither a normalised score in 0-1 nor an integer rating 1-5"
        ));
    }
    if value < 0.0 {
        return Err(format!("{value} is below 0"));
    }
    let verdict = if value >= 0.8 {
        Verdict::Up
    } else if value <= 0.2 {
        Verdict::Down
    } else {
        Verdict::NotQuite
    };
    Ok((Some(verdict), None))
}

/// A label as a verdict: the spellings feedback tools use for thumbs and pass/fail.
pub(crate) fn read_label(label: &str) -> Result<Verdict, String> {
    Verdict::parse_loose(label).ok_or_else(|| {
        format!(
            "{label:?} is not a verdict evalmint reads (up/down, thumbs_up/thumbs_down, \
             correct/incorrect, pass/fail, good/bad, partial, …)"
        )
    })
}

/// An id as hex: UUIDs lose their dashes, hex is lowercased. Validation says whether it fits.
pub(crate) fn hex_id(text: &str) -> String {
    let trimmed = text.trim();
    let undashed: String = trimmed.chars().filter(|c| *c != '-').collect();
    if undashed.len() == 32 && undashed.chars().all(|c| c.is_ascii_hexdigit()) {
        undashed.to_ascii_lowercase()
    } else {
        trimmed.to_ascii_lowercase()
    }
}

/// A user id in SDK metadata, under the names clients use for it.
pub(crate) fn user_in(metadata: &Map<String, Value>) -> Option<String> {
    ["user_id", "userId", "user"]
        .iter()
        .find_map(|k| metadata.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
}

/// Whether a store failure should fail the whole request (the client retries it, and its
/// idempotency keys make the retry safe) rather than be reported against one item.
pub(crate) fn is_retryable(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Busy { .. } | ApiError::Unavailable | ApiError::Internal(_)
    )
}

/// Stores each feedback, concurrently so one request's items share group commits; results in
/// the order given.
pub(crate) async fn submit_all(
    state: &AppState,
    caller: &Caller,
    feedback: Vec<ValidFeedback>,
) -> Vec<Result<FeedbackReceipt, ApiError>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, valid) in feedback.into_iter().enumerate() {
        let state = state.clone();
        let tenant = caller.tenant().clone();
        tasks.spawn(async move {
            let origin = valid.origin;
            let outcome = timed_write(
                &state,
                "feedback",
                state.store.submit_feedback(&tenant, valid),
            )
            .await
            .map_err(ApiError::from);
            if let Ok(FeedbackReceipt::Created(_)) = &outcome {
                state.metrics.feedback(origin, 1);
            }
            (index, outcome)
        });
    }
    let mut results: Vec<Option<Result<FeedbackReceipt, ApiError>>> = Vec::new();
    results.resize_with(tasks.len(), || None);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, outcome)) => results[index] = Some(outcome),
            Err(e) => tracing::error!(error = %e, "a feedback write task failed"),
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(ApiError::Internal("feedback write task failed".into()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_normalised_scores_or_ratings() {
        assert_eq!(read_number(1.0, "helpful"), Ok((Some(Verdict::Up), None)));
        assert_eq!(read_number(0.0, "helpful"), Ok((Some(Verdict::Down), None)));
        assert_eq!(
            read_number(0.5, "accuracy"),
            Ok((Some(Verdict::NotQuite), None))
        );
        assert_eq!(read_number(4.0, "quality"), Ok((None, Some(4))));
        assert_eq!(read_number(1.0, "user_rating"), Ok((None, Some(1))));
        assert!(read_number(2.5, "quality").is_err());
        assert!(read_number(7.0, "quality").is_err());
        assert!(read_number(-0.1, "quality").is_err());
        assert!(read_number(f64::NAN, "quality").is_err());
    }

    #[test]
    fn uuid_ids_become_hex_and_others_pass_through() {
        assert_eq!(
            hex_id("5B8EFFF7-9803-8103-D269-B633813FC60C"),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(hex_id(" 051581bf3cb55c13 "), "051581bf3cb55c13");
        assert_eq!(hex_id("not-an-id"), "not-an-id");
    }

    #[test]
    fn a_comment_corrects_a_negative_verdict_and_is_kept_beside_a_positive_one() {
        let names = [("investigation_id", "traceId")];
        let negative = Judgement {
            trace_id: Some("5b8efff798038103d269b633813fc60c".into()),
            verdict: Some(Verdict::Down),
            comment: Some("it was the payments-db pool".into()),
            ..Judgement::default()
        }
        .into_valid(FeedbackOrigin::Langfuse, &names)
        .unwrap();
        assert_eq!(
            negative.correction.as_deref(),
            Some("it was the payments-db pool")
        );
        let positive = Judgement {
            trace_id: Some("5b8efff798038103d269b633813fc60c".into()),
            verdict: Some(Verdict::Up),
            comment: Some("spot on".into()),
            ..Judgement::default()
        }
        .into_valid(FeedbackOrigin::Langfuse, &names)
        .unwrap();
        assert_eq!(positive.correction, None);
        assert_eq!(positive.metadata["comment"], "spot on");
        let bad = Judgement {
            trace_id: Some("xyz".into()),
            verdict: Some(Verdict::Up),
            ..Judgement::default()
        }
        .into_valid(FeedbackOrigin::Langfuse, &names)
        .unwrap_err();
        assert!(bad.starts_with("traceId: not a trace id"), "{bad}");
    }
}
