//! `evalmint bench openrca`: real RCA-agent runs from the OpenRCA benchmark (Bank and Telecom)
//! through the label pipeline. Each row becomes an investigation (instruction → trigger, the
//! agent's prediction → conclusion, the system's component inventory as a `list_services` result)
//! and feedback: a thumbs-up where the agent passed, otherwise a correction phrased from the
//! ground truth in one of several ways. Reports how many candidates — and how many admitted ones —
//! match the true component and reason. OpenRCA ships no telemetry, so there is no live snapshot to
//! confirm anything against.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use evalmint_model::{
    FeedbackOrigin, FeedbackSubmission, Route, SignalSource, SpanId, Step, StepKind, StepStatus,
    TenantId, Timestamp, ToolCall, TraceId, Trigger, TriggerKind,
};
use evalmint_pipeline::config::Config;
use evalmint_pipeline::metrics::PipelineMetrics;
use evalmint_store::{
    CandidateQuery, CaptureOrder, FullStore, IngestBatch, PipelineStore, SqliteOptions,
    SqliteStore, Store, SystemClock,
};
use tokio_util::sync::CancellationToken;

use crate::table;

#[derive(Debug, clap::Args)]
pub(crate) struct OpenRcaArgs {
    /// The folder with agent-Bank.csv and agent-Telecom.csv.
    #[arg(long, default_value = "../shared/data/openrca")]
    data: PathBuf,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

struct Row {
    system: &'static str,
    instruction: String,
    predicted_component: String,
    predicted_reason: String,
    true_component: String,
    true_reason: String,
    true_time: String,
    passed: bool,
}

fn read_rows(path: &Path, system: &'static str) -> anyhow::Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let records = parse_csv(&text);
    let header = records.first().context("empty CSV")?;
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("no {name} column"))
    };
    let (instruction, prediction, groundtruth, score) = (
        column("instruction")?,
        column("prediction")?,
        column("groundtruth")?,
        column("score")?,
    );
    let mut rows = Vec::new();
    for record in records.iter().skip(1).filter(|r| r.len() == header.len()) {
        let truth: std::collections::HashMap<&str, &str> = record[groundtruth]
            .lines()
            .filter_map(|l| l.split_once(": "))
            .collect();
        let predicted: serde_json::Value =
            serde_json::from_str(&record[prediction]).unwrap_or_default();
        let first = predicted.get("1").cloned().unwrap_or_default();
        let field = |v: &serde_json::Value, k: &str| {
            v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned()
        };
        rows.push(Row {
            system,
            instruction: record[instruction].clone(),
            predicted_component: field(&first, "root cause component"),
            predicted_reason: field(&first, "root cause reason"),
            true_component: truth.get("component").copied().unwrap_or("").to_owned(),
            true_reason: truth.get("reason").copied().unwrap_or("").to_owned(),
            true_time: truth.get("datetime").copied().unwrap_or("").to_owned(),
            passed: record[score].parse::<f64>().unwrap_or(0.0) >= 1.0,
        });
    }
    Ok(rows)
}

/// RFC 4180 CSV: quoted fields may hold commas, newlines and doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

fn correction(row: &Row, index: usize) -> String {
    let time = row.true_time.get(11..16).unwrap_or("");
    match index % 4 {
        0 => format!("it was {}: {}", row.true_component, row.true_reason),
        1 => format!(
            "{} on {} around {time}",
            row.true_reason, row.true_component
        ),
        2 => format!(
            "not {}, the root cause was {} in {}",
            if row.predicted_component.is_empty() {
                "that"
            } else {
                &row.predicted_component
            },
            row.true_reason,
            row.true_component
        ),
        _ => format!("{} ({})", row.true_component, row.true_reason),
    }
}

pub(crate) async fn run(args: OpenRcaArgs) -> anyhow::Result<()> {
    if !args.data.join("agent-Bank.csv").exists() {
        bail!(
            "{} has no OpenRCA data (agent-Bank.csv); pass --data",
            args.data.display()
        );
    }
    let mut rows = read_rows(&args.data.join("agent-Bank.csv"), "Bank")?;
    rows.extend(read_rows(&args.data.join("agent-Telecom.csv"), "Telecom")?);

    let data = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(data.path(), SqliteOptions::default())?);
    let tenant = TenantId::default_tenant();
    let started = Timestamp::now();
    for system in ["Bank", "Telecom"] {
        let inventory: BTreeSet<&str> = rows
            .iter()
            .filter(|r| r.system == system)
            .flat_map(|r| [r.true_component.as_str(), r.predicted_component.as_str()])
            .filter(|c| !c.is_empty())
            .collect();
        let services = serde_json::json!({"services": inventory.iter().map(|c| serde_json::json!({"name": c, "kind": "service", "calls": [], "callers": []})).collect::<Vec<_>>()});
        for (index, row) in rows.iter().enumerate().filter(|(_, r)| r.system == system) {
            let trace = TraceId::from_bytes(&(index as u128 + 1).to_be_bytes())?;
            let span =
                |n: u8| SpanId::from_bytes(&[n, (index >> 8) as u8, index as u8, 1, 1, 1, 1, 1]);
            let step = |n: u8, kind: StepKind| -> anyhow::Result<Step> {
                Ok(Step {
                    span_id: span(n)?,
                    parent_span_id: (n > 1).then(|| span(1)).transpose()?,
                    name: format!("{system} step {n}"),
                    kind,
                    started_at: started,
                    ended_at: started,
                    status: StepStatus::Ok,
                    status_message: None,
                    agent: Default::default(),
                    trigger: None,
                    input: None,
                    output: None,
                    tool_call: None,
                })
            };
            let mut agent = step(1, StepKind::Agent)?;
            agent.agent.name = Some(format!("openrca-{system}"));
            agent.trigger = Some(Trigger {
                kind: TriggerKind::Question,
                text: row.instruction.clone(),
                monitor: None,
                fired_at: None,
            });
            agent.output = Some(format!(
                "Root cause: {} — {}",
                row.predicted_component, row.predicted_reason
            ));
            let mut tool = step(2, StepKind::Tool)?;
            tool.tool_call = Some(ToolCall {
                tool_name: "list_services".into(),
                source: SignalSource::Infra,
                query: "list_services".into(),
                arguments: None,
                window: None,
                entities: vec![],
                result: Some(services.to_string()),
                result_truncated: false,
            });
            store
                .ingest(
                    &tenant,
                    IngestBatch {
                        steps: vec![(trace, agent), (trace, tool)],
                        feedback: vec![],
                        entities: vec![],
                    },
                )
                .await?;
            let submission = if row.passed {
                FeedbackSubmission {
                    verdict: Some("up".into()),
                    ..FeedbackSubmission::default()
                }
            } else {
                FeedbackSubmission {
                    verdict: Some("down".into()),
                    correction: Some(correction(row, index)),
                    ..FeedbackSubmission::default()
                }
            };
            let feedback = FeedbackSubmission {
                investigation_id: Some(trace.to_hex()),
                ..submission
            }
            .validate(FeedbackOrigin::Api)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            store.submit_feedback(&tenant, feedback).await?;
        }
    }

    let shutdown = CancellationToken::new();
    let mut tasks = evalmint_pipeline::worker::start(
        store.clone() as Arc<dyn FullStore>,
        Arc::new(Config::default()),
        Arc::new(SystemClock),
        Arc::new(PipelineMetrics::default()),
        CaptureOrder::EarliestDeadline,
        shutdown.clone(),
    );
    for _ in 0..1200 {
        if store.pipeline_stats(&tenant).await?.feedback_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}

    let candidates = store
        .candidates(
            &tenant,
            CandidateQuery {
                routes: vec![],
                audit_only: false,
                limit: 100_000,
            },
        )
        .await?;
    let (mut component_right, mut reason_right, mut both_right) = (0, 0, 0);
    let (mut admitted, mut admitted_right, mut review, mut insufficient) = (0, 0, 0, 0);
    for candidate in &candidates {
        let index = u128::from_be_bytes(*candidate.investigation_id.as_bytes()) as usize - 1;
        let row = &rows[index];
        let truth = candidate.ground_truth.as_ref();
        let component_ok = truth
            .and_then(|t| t.components.first())
            .is_some_and(|c| c.eq_ignore_ascii_case(&row.true_component));
        let reason_ok = truth.and_then(|t| t.category).is_some()
            && truth.and_then(|t| t.category)
                == evalmint_pipeline::lexicon::category_of(&row.true_reason);
        component_right += usize::from(component_ok);
        reason_right += usize::from(reason_ok);
        both_right += usize::from(component_ok && reason_ok);
        match candidate.route {
            Route::Admit => {
                admitted += 1;
                admitted_right += usize::from(component_ok && reason_ok);
            }
            Route::Review => review += 1,
            Route::Insufficient => insufficient += 1,
        }
    }
    let figures = serde_json::json!({
        "rows": rows.len(),
        "passed_rows": rows.iter().filter(|r| r.passed).count(),
        "candidates": candidates.len(),
        "component_right": component_right,
        "reason_right": reason_right,
        "component_and_reason_right": both_right,
        "admitted": admitted,
        "admitted_right": admitted_right,
        "review": review,
        "insufficient": insufficient,
    });
    if args.json {
        println!("{figures}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = figures
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| vec![k.replace('_', " "), v.to_string()])
        .collect();
    print!("{}", table::render(&["measure", "value"], &rows));
    Ok(())
}
