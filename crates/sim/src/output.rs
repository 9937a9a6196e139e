//! The only place the simulator writes to standard output: the end-of-command summaries.

use std::io::Write;
use std::path::Path;

use crate::generate::GenerateSummary;
use crate::run::RunSummary;

fn emit(text: &str) {
    // A closed pipe (`| head`) is not an error worth reporting.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub(crate) fn print_run_summary(s: &RunSummary, truth: &Path) {
    let mut out = String::new();
    let row = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<28} {v:>10}\n"));
    out.push_str("sim run summary\n");
    row(&mut out, "incidents", s.incidents.to_string());
    row(&mut out, "traces sent", s.traces_sent.to_string());
    row(&mut out, "export requests", s.export_requests.to_string());
    row(&mut out, "spans", s.spans.to_string());
    row(
        &mut out,
        "wrong-component conclusions",
        s.wrong_component.to_string(),
    );
    row(&mut out, "feedback sent", s.feedback_sent.to_string());
    row(
        &mut out,
        "  of which idempotent replays",
        s.feedback_replayed.to_string(),
    );
    row(
        &mut out,
        "  sent before the trace",
        s.feedback_before_trace.to_string(),
    );
    for (k, v) in &s.feedback_by_verdict {
        row(&mut out, &format!("  verdict {k}"), v.to_string());
    }
    for (k, v) in &s.feedback_by_style {
        row(&mut out, &format!("  style {k}"), v.to_string());
    }
    row(&mut out, "429 retries", s.throttled_retries.to_string());
    row(
        &mut out,
        "5xx answers (retried)",
        s.server_errors.to_string(),
    );
    row(
        &mut out,
        "rejected requests (4xx)",
        s.client_errors.to_string(),
    );
    row(&mut out, "tool errors", s.tool_errors.to_string());
    for sample in &s.error_samples {
        out.push_str(&format!("  error: {sample}\n"));
    }
    out.push_str(&format!("truth written to {}\n", truth.display()));
    emit(&out);
}

pub(crate) fn print_generate_summary(s: &GenerateSummary, out_dir: &Path) {
    let mut out = String::new();
    let row = |out: &mut String, k: &str, v: String| out.push_str(&format!("  {k:<28} {v:>12}\n"));
    out.push_str(&format!("sim generate → {}\n", out_dir.display()));
    row(&mut out, "services", s.services.to_string());
    row(&mut out, "incidents", s.incidents.to_string());
    row(&mut out, "spans", s.spans.to_string());
    row(&mut out, "export requests", s.export_requests.to_string());
    row(
        &mut out,
        "wrong-component conclusions",
        s.wrong_component.to_string(),
    );
    row(&mut out, "feedback", s.feedback.to_string());
    for (k, v) in &s.feedback_by_style {
        row(&mut out, &format!("  style {k}"), v.to_string());
    }
    row(
        &mut out,
        "world generation",
        format!("{:.2?}", s.world_time),
    );
    row(
        &mut out,
        "total generation time",
        format!("{:.2?}", s.total_time),
    );
    emit(&out);
}
