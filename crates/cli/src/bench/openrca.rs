//! `evalmint bench openrca`: real RCA-agent runs from the OpenRCA benchmark (Bank and Telecom)
//! through the label pipeline. Each row becomes an investigation (instruction → trigger, the
//! agent's own JSON answer → conclusion, and, unless `--no-inventory`, the system's component
//! inventory as a `list_services` result) and feedback: a thumbs-up where the agent passed,
//! otherwise a correction phrased from the ground truth in one of several ways. Reports how many
//! candidates — and how many admitted ones — match the true component and reason. OpenRCA ships no
//! telemetry, so there is no live snapshot to confirm anything against. Without the inventory,
//! the pipeline knows only the names the trace itself carries, as with a plain OTLP trace.

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
    /// Send no `list_services` result: the pipeline sees only the trigger and the conclusion.
    #[arg(long)]
    no_inventory: bool,
}

#[derive(Debug)]
struct Row {
    system: &'static str,
    instruction: String,
    prediction: String,
    predicted_component: String,
    true_component: String,
    true_reason: String,
    true_time: String,
    passed: bool,
}

/// The rows of one OpenRCA CSV file, and the records that could not be read, each as
/// `"path line N: reason"`.
fn read_rows(path: &Path, system: &'static str) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    read_csv(file, system, &path.display().to_string())
}

fn read_csv(
    input: impl std::io::Read,
    system: &'static str,
    name: &str,
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let mut reader = csv::Reader::from_reader(input);
    let header = reader
        .headers()
        .with_context(|| format!("reading the header of {name}"))?
        .clone();
    let column = |wanted: &str| {
        header
            .iter()
            .position(|h| h == wanted)
            .with_context(|| format!("{name} has no {wanted} column"))
    };
    let (instruction, prediction, groundtruth, score) = (
        column("instruction")?,
        column("prediction")?,
        column("groundtruth")?,
        column("score")?,
    );
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                bad.push(format!("{name} line {line}: {e}"));
                continue;
            }
        };
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
            instruction: record[instruction].to_owned(),
            prediction: record[prediction].to_owned(),
            predicted_component: field(&first, "root cause component"),
            true_component: truth.get("component").copied().unwrap_or("").to_owned(),
            true_reason: truth.get("reason").copied().unwrap_or("").to_owned(),
            true_time: truth.get("datetime").copied().unwrap_or("").to_owned(),
            passed: record[score].parse::<f64>().unwrap_or(0.0) >= 1.0,
        });
    }
    Ok((rows, bad))
}

fn correction(row: &Row, index: usize) -> String {
    let time = row.true_time.get(11..16).unwrap_or("");
    let predicted = if row.predicted_component.is_empty() {
        "that"
    } else {
        &row.predicted_component
    };
    match index % 6 {
        0 => format!("it was {}: {}", row.true_component, row.true_reason),
        1 => format!(
            "{} on {} around {time}",
            row.true_reason, row.true_component
        ),
        2 => format!(
            "not {predicted}, the root cause was {} in {}",
            row.true_reason, row.true_component
        ),
        3 => format!("{} ({})", row.true_component, row.true_reason),
        4 => format!(
            "Not {predicted} — it was {}: {}.",
            row.true_component, row.true_reason
        ),
        _ => format!(
            "It's {}. {}, began {time}.",
            row.true_component, row.true_reason
        ),
    }
}

pub(crate) async fn run(args: OpenRcaArgs) -> anyhow::Result<()> {
    if !args.data.join("agent-Bank.csv").exists() {
        bail!(
            "{} has no OpenRCA data (agent-Bank.csv); pass --data",
            args.data.display()
        );
    }
    let (mut rows, mut bad_rows) = read_rows(&args.data.join("agent-Bank.csv"), "Bank")?;
    let (telecom, telecom_bad) = read_rows(&args.data.join("agent-Telecom.csv"), "Telecom")?;
    rows.extend(telecom);
    bad_rows.extend(telecom_bad);
    for bad in &bad_rows {
        tracing::warn!("skipping an unreadable row: {bad}");
    }

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
            // The agent's answer as it wrote it: OpenRCA's JSON.
            agent.output = Some(row.prediction.clone());
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
            let steps = if args.no_inventory {
                vec![(trace, agent)]
            } else {
                vec![(trace, agent), (trace, tool)]
            };
            store
                .ingest(
                    &tenant,
                    IngestBatch {
                        steps,
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
    let taxonomy = evalmint_pipeline::taxonomy::Taxonomy::default();
    let (mut component_right, mut reason_right, mut both_right) = (0, 0, 0);
    let (mut admitted, mut admitted_right, mut review, mut insufficient) = (0, 0, 0, 0);
    for candidate in &candidates {
        let index = u128::from_be_bytes(*candidate.investigation_id.as_bytes()) as usize - 1;
        let row = &rows[index];
        let truth = candidate.ground_truth.as_ref();
        let component_ok = truth.is_some_and(|t| {
            t.components
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&row.true_component))
        });
        // The true reason read through the same taxonomy; a more specific category agrees.
        let reason_ok = match (
            truth.and_then(|t| t.category.as_ref()),
            taxonomy.category_of(&row.true_reason),
        ) {
            (Some(drafted), Some(true_category)) => taxonomy.agrees(drafted, &true_category),
            _ => false,
        };
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
    let fraction = |n: usize| {
        if candidates.is_empty() {
            0.0
        } else {
            (n as f64 / candidates.len() as f64 * 1000.0).round() / 1000.0
        }
    };
    // With nothing admitted, no admission was wrong.
    let admitted_precision = if admitted == 0 {
        1.0
    } else {
        (admitted_right as f64 / admitted as f64 * 1000.0).round() / 1000.0
    };
    let figures = serde_json::json!({
        "inventory": !args.no_inventory,
        "rows": rows.len(),
        "unreadable_rows": bad_rows.len(),
        "passed_rows": rows.iter().filter(|r| r.passed).count(),
        "candidates": candidates.len(),
        "component_right": fraction(component_right),
        "category_right": fraction(reason_right),
        "component_and_category_right": fraction(both_right),
        "admitted": fraction(admitted),
        "admitted_precision": admitted_precision,
        "review": fraction(review),
        "insufficient": fraction(insufficient),
        "counts": {
            "component_right": component_right,
            "category_right": reason_right,
            "component_and_category_right": both_right,
            "admitted": admitted,
            "admitted_right": admitted_right,
            "review": review,
            "insufficient": insufficient,
        },
    });
    if args.json {
        println!("{figures}");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = figures
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(k, v)| match v.as_object() {
            Some(inner) => inner
                .iter()
                .map(|(k2, v2)| vec![format!("{} ({k})", k2.replace('_', " ")), v2.to_string()])
                .collect(),
            None => vec![vec![k.replace('_', " "), v.to_string()]],
        })
        .collect();
    print!("{}", table::render(&["measure", "value"], &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_wrong_length_are_reported_not_dropped() {
        let text = "instruction,prediction,groundtruth,score\n\
                    \"find it, please\",\"{\"\"1\"\": {\"\"root cause component\"\": \"\"db\"\"}}\",\"component: db\nreason: disk\",1.0\n\
                    too,short\n\
                    \"b\",\"{}\",\"component: app\",0.0\n";
        let (rows, bad) = read_csv(text.as_bytes(), "Bank", "agent-Bank.csv").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].instruction, "find it, please");
        assert_eq!(rows[0].predicted_component, "db");
        assert_eq!(rows[0].true_reason, "disk");
        assert!(rows[0].passed && !rows[1].passed);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with("agent-Bank.csv line 4: "), "{}", bad[0]);
    }

    #[test]
    fn a_file_without_the_needed_columns_is_an_error() {
        let error = read_csv("a,b\n1,2\n".as_bytes(), "Bank", "x.csv").unwrap_err();
        assert_eq!(error.to_string(), "x.csv has no instruction column");
    }
}
