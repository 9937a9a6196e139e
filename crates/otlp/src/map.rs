//! Mapping OTLP spans onto investigation steps and trace-borne feedback. Each span maps on its
//! own, so spans of one trace may arrive in any order and in any number of requests.

use std::collections::BTreeMap;

use evalmint_model::{
    AgentInfo, FeedbackOrigin, FeedbackSubmission, SpanId, Step, StepKind, StepStatus, Timestamp,
    ToolCall, TraceId, Trigger, TriggerKind, ValidFeedback,
};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use serde_json::Map;

use crate::attributes::{self, Attributes};
use crate::tool_call;

const MAX_REJECTION_MESSAGES: usize = 5;

/// A step of the investigation identified by `trace_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedStep {
    pub trace_id: TraceId,
    pub step: Step,
}

/// Feedback found inside a trace (an evaluation event or annotation attributes).
#[derive(Debug, Clone, PartialEq)]
pub struct MappedFeedback {
    pub trace_id: TraceId,
    pub feedback: ValidFeedback,
}

/// Everything one export request contained, and what was refused.
#[derive(Debug, Default)]
pub struct MappedBatch {
    pub steps: Vec<MappedStep>,
    pub feedback: Vec<MappedFeedback>,
    pub rejected_spans: usize,
    /// Up to a few distinct reasons, for the partial-success message.
    pub rejection_reasons: Vec<String>,
    /// Evaluation events and annotations that carried a verdict or score but were invalid as
    /// feedback (their span was kept).
    pub rejected_feedback: usize,
    pub feedback_rejection_reasons: Vec<String>,
}

impl MappedBatch {
    /// The partial-success message: why spans were rejected, and how many trace-borne feedback
    /// records were rejected and why (the span count stays the spans' own, as OTLP defines it).
    pub fn rejection_message(&self) -> String {
        let mut parts = self.rejection_reasons.clone();
        if self.rejected_feedback > 0 {
            parts.push(format!(
                "{} feedback record(s) rejected: {}",
                self.rejected_feedback,
                self.feedback_rejection_reasons.join("; ")
            ));
        }
        parts.join("; ")
    }

    fn reject(&mut self, reason: String) {
        self.rejected_spans += 1;
        remember(&mut self.rejection_reasons, reason);
    }

    fn reject_feedback(&mut self, reason: String) {
        self.rejected_feedback += 1;
        remember(&mut self.feedback_rejection_reasons, reason);
    }
}

fn remember(reasons: &mut Vec<String>, reason: String) {
    if reasons.len() < MAX_REJECTION_MESSAGES && !reasons.contains(&reason) {
        reasons.push(reason);
    }
}

/// Maps every span of the request; a bad span is counted and skipped, never fatal to the batch.
pub fn map_request(request: &ExportTraceServiceRequest) -> MappedBatch {
    let mut batch = MappedBatch::default();
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| attributes::index(&r.attributes))
            .unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                let attrs = Attributes::new(&span.attributes, &resource);
                match map_span(span, &attrs) {
                    Ok((trace_id, step)) => {
                        let found = evaluation_events(trace_id, step.span_id, &span.events)
                            .chain(annotations(trace_id, step.span_id, &attrs));
                        for feedback in found {
                            match feedback {
                                Ok(feedback) => {
                                    batch.feedback.push(MappedFeedback { trace_id, feedback })
                                }
                                Err(reason) => batch.reject_feedback(reason),
                            }
                        }
                        batch.steps.push(MappedStep { trace_id, step });
                    }
                    Err(reason) => batch.reject(reason),
                }
            }
        }
    }
    batch
}

fn map_span(span: &Span, attrs: &Attributes<'_>) -> Result<(TraceId, Step), String> {
    let trace_id = TraceId::from_bytes(&span.trace_id)
        .map_err(|e| format!("span {:?}: invalid trace_id: {e}", span.name))?;
    let span_id = SpanId::from_bytes(&span.span_id)
        .map_err(|e| format!("span {:?}: invalid span_id: {e}", span.name))?;
    let parent_span_id = SpanId::from_bytes(&span.parent_span_id).ok();
    if span.start_time_unix_nano == 0 {
        return Err(format!(
            "span {:?}: missing start_time_unix_nano",
            span.name
        ));
    }
    let started_at = nanos(span.start_time_unix_nano)
        .ok_or_else(|| format!("span {:?}: start time out of range", span.name))?;
    let ended_at = nanos(span.end_time_unix_nano)
        .filter(|end| *end >= started_at)
        .unwrap_or(started_at);

    let kind = step_kind(attrs);
    let (status, status_message) = match span.status.as_ref() {
        Some(s) if s.code == StatusCode::Error as i32 => (
            StepStatus::Error,
            Some(s.message.clone()).filter(|m| !m.is_empty()),
        ),
        Some(s) if s.code == StatusCode::Ok as i32 => (StepStatus::Ok, None),
        _ => (StepStatus::Unset, None),
    };

    let agent = AgentInfo {
        name: attrs
            .text(&["gen_ai.agent.name", "evalmint.agent.name"])
            .or_else(|| attrs.resource_text("service.name")),
        version: attrs
            .text(&["gen_ai.agent.version", "evalmint.agent.version"])
            .or_else(|| attrs.resource_text("service.version")),
        model: attrs.text(&[
            "gen_ai.request.model",
            "gen_ai.response.model",
            "llm.model_name",
        ]),
        config_hash: attrs.text(&["evalmint.agent.config_hash", "gen_ai.agent.config_hash"]),
    };

    let trigger = attrs.text(&["evalmint.trigger.text"]).map(|text| Trigger {
        kind: attrs
            .text(&["evalmint.trigger.kind"])
            .map_or(TriggerKind::Alert, |k| TriggerKind::parse(&k)),
        text,
        monitor: attrs.text(&["evalmint.trigger.monitor"]),
        fired_at: attrs
            .text(&["evalmint.trigger.fired_at"])
            .and_then(|t| tool_call::parse_time(&serde_json::Value::String(t))),
    });

    // A tool span's input and output are its arguments and result, read by `tool_call_of`.
    let (input, output) = if kind == StepKind::Tool {
        (None, None)
    } else {
        (step_input(attrs), step_output(attrs, kind))
    };

    let tool_call = (kind == StepKind::Tool).then(|| tool_call_of(span, attrs, started_at));

    Ok((
        trace_id,
        Step {
            span_id,
            parent_span_id,
            name: span.name.clone(),
            kind,
            started_at,
            ended_at,
            status,
            status_message,
            agent,
            trigger,
            input,
            output,
            tool_call,
        },
    ))
}

fn step_input(attrs: &Attributes<'_>) -> Option<String> {
    attrs
        .text(&["gen_ai.input.messages"])
        .and_then(|m| message_text(&m, "user"))
        .or_else(|| attrs.text(&["input.value", "gen_ai.prompt", "traceloop.entity.input"]))
}

fn step_output(attrs: &Attributes<'_>, kind: StepKind) -> Option<String> {
    let conclusion = if kind == StepKind::Agent {
        attrs.text(&["evalmint.conclusion"])
    } else {
        None
    };
    conclusion
        .or_else(|| {
            attrs
                .text(&["gen_ai.output.messages"])
                .and_then(|m| message_text(&m, "assistant"))
        })
        .or_else(|| {
            attrs.text(&[
                "output.value",
                "gen_ai.completion",
                "traceloop.entity.output",
            ])
        })
}

fn step_kind(attrs: &Attributes<'_>) -> StepKind {
    if let Some(op) = attrs.str(&["gen_ai.operation.name"]) {
        match op {
            "invoke_agent" | "create_agent" => return StepKind::Agent,
            "execute_tool" => return StepKind::Tool,
            "chat" | "text_completion" | "generate_content" | "embeddings" => {
                return StepKind::Llm;
            }
            _ => {}
        }
    }
    if let Some(kind) = attrs.str(&["openinference.span.kind"]) {
        match kind.to_ascii_uppercase().as_str() {
            "AGENT" => return StepKind::Agent,
            "TOOL" => return StepKind::Tool,
            "LLM" => return StepKind::Llm,
            _ => {}
        }
    }
    if attrs.text(&["gen_ai.tool.name"]).is_some() {
        return StepKind::Tool;
    }
    StepKind::Other
}

fn tool_call_of(span: &Span, attrs: &Attributes<'_>, started_at: Timestamp) -> ToolCall {
    let tool_name = attrs
        .text(&["gen_ai.tool.name", "tool.name"])
        .unwrap_or_else(|| {
            span.name
                .strip_prefix("execute_tool ")
                .unwrap_or(&span.name)
                .to_owned()
        });
    let raw_arguments = attrs.text(&[
        "gen_ai.tool.call.arguments",
        "tool.parameters",
        "input.value",
    ]);
    let parsed: Option<Map<String, serde_json::Value>> = raw_arguments
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok());
    let query = tool_call::query(
        attrs,
        parsed.as_ref(),
        raw_arguments.as_deref().unwrap_or(""),
    );
    ToolCall {
        source: tool_call::source(attrs, &tool_name),
        window: tool_call::window(attrs, parsed.as_ref(), started_at),
        entities: tool_call::entities(attrs, parsed.as_ref(), &query),
        query,
        tool_name,
        arguments: raw_arguments,
        result: attrs.text(&["gen_ai.tool.call.result", "output.value"]),
        result_truncated: attrs
            .bool("evalmint.tool.result_truncated")
            .unwrap_or(false),
    }
}

/// The text of the last message with `role` in a GenAI messages array (current `parts` form or
/// the older `content` form); the last message of any role when none matches.
fn message_text(messages_json: &str, role: &str) -> Option<String> {
    let messages: Vec<serde_json::Value> = serde_json::from_str(messages_json).ok()?;
    let text_of = |m: &serde_json::Value| -> Option<String> {
        if let Some(content) = m.get("content").and_then(|c| c.as_str()) {
            return Some(content.to_owned());
        }
        let parts = m.get("parts")?.as_array()?;
        let texts: Vec<&str> = parts
            .iter()
            .filter(|p| {
                p.get("type")
                    .and_then(|t| t.as_str())
                    .is_none_or(|t| t == "text")
            })
            .filter_map(|p| p.get("content").and_then(|c| c.as_str()))
            .collect();
        (!texts.is_empty()).then(|| texts.join("\n"))
    };
    messages
        .iter()
        .rev()
        .filter(|m| m.get("role").and_then(|r| r.as_str()) == Some(role))
        .find_map(text_of)
        .or_else(|| messages.iter().rev().find_map(text_of))
}

fn nanos(unix_nanos: u64) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(unix_nanos)).ok()
}

/// One verdict/score/explanation triple, from whichever convention carried it.
struct Evaluation {
    label: Option<String>,
    score: Option<f64>,
    explanation: Option<String>,
    user_id: Option<String>,
    origin: FeedbackOrigin,
    key: String,
}

impl Evaluation {
    /// A feedback record when the evaluation carries a verdict or a usable score; `None` when it
    /// carries neither (it is not user feedback); an error naming what is wrong when it does but
    /// is invalid (too long an explanation, too long a key).
    fn into_feedback(
        self,
        trace_id: TraceId,
        span_id: SpanId,
    ) -> Option<Result<ValidFeedback, String>> {
        let verdict = self
            .label
            .as_deref()
            .and_then(evalmint_model::Verdict::parse_loose);
        let rating = self.score.and_then(|s| match s {
            s if (0.0..=1.0).contains(&s) && verdict.is_none() => {
                Some((1.0 + 4.0 * s).round() as i64)
            }
            s if (1.0..=5.0).contains(&s) && s.fract() == 0.0 => Some(s as i64),
            _ => None,
        });
        if verdict.is_none() && rating.is_none() {
            return None;
        }
        let key = self.key.clone();
        let valid = FeedbackSubmission {
            investigation_id: Some(trace_id.to_hex()),
            span_id: Some(span_id.to_hex()),
            verdict: verdict.map(|v| v.as_str().to_owned()),
            rating,
            correction: self.explanation,
            tags: Vec::new(),
            user_id: self.user_id,
            idempotency_key: Some(self.key),
            metadata: Map::new(),
        }
        .validate(self.origin);
        Some(valid.map_err(|errors| {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let mut name: String = key.chars().take(80).collect();
            if name.len() < key.len() {
                name.push('…');
            }
            format!("{name}: {}", errors.join(", "))
        }))
    }
}

fn evaluation_events<'a>(
    trace_id: TraceId,
    span_id: SpanId,
    events: &'a [Event],
) -> impl Iterator<Item = Result<ValidFeedback, String>> + 'a {
    let empty = attributes::Index::default();
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == "gen_ai.evaluation.result")
        .filter_map(move |(index, event)| {
            let attrs = Attributes::new(&event.attributes, &empty);
            let name = attrs
                .text(&["gen_ai.evaluation.name"])
                .unwrap_or_else(|| "evaluation".to_owned());
            Evaluation {
                label: attrs.text(&["gen_ai.evaluation.score.label"]),
                score: attrs.number("gen_ai.evaluation.score.value"),
                explanation: attrs.text(&["gen_ai.evaluation.explanation"]),
                user_id: attrs.text(&["evalmint.feedback.user_id", "user.id"]),
                origin: FeedbackOrigin::OtelEvent,
                key: format!("otel:{trace_id}:{span_id}:{name}:{index}"),
            }
            .into_feedback(trace_id, span_id)
        })
}

fn annotations(
    trace_id: TraceId,
    span_id: SpanId,
    attrs: &Attributes<'_>,
) -> Vec<Result<ValidFeedback, String>> {
    let mut by_name: BTreeMap<&str, Evaluation> = BTreeMap::new();
    for key in attrs.keys_with_prefix("annotation.") {
        let Some((name, field)) = key["annotation.".len()..].rsplit_once('.') else {
            continue;
        };
        let entry = by_name.entry(name).or_insert_with(|| Evaluation {
            label: None,
            score: None,
            explanation: None,
            user_id: attrs.text(&["evalmint.feedback.user_id", "user.id"]),
            origin: FeedbackOrigin::OpeninferenceAnnotation,
            key: format!("openinference:{trace_id}:{span_id}:{name}"),
        });
        match field {
            "label" => entry.label = attrs.text(&[key]),
            "score" => entry.score = attrs.number(key),
            "explanation" => entry.explanation = attrs.text(&[key]),
            _ => {}
        }
    }
    by_name
        .into_values()
        .filter_map(|e| e.into_feedback(trace_id, span_id))
        .collect()
}
