//! `evalmint labels list|show`: the label set and single candidates, as tables and readable
//! summaries in the terminal (or raw JSON with `--json`).

use std::fmt::Write as _;
use std::io::Write as _;

use crate::client::ServerArgs;
use crate::table;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum LabelsCommand {
    /// List candidate labels: the admitted label set by default.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// admit, review, insufficient or all.
        #[arg(long, default_value = "admit")]
        route: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one candidate label: ground truth, scores with reasons, snapshot.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

/// A table cell: whitespace runs (newlines in a multi-line query, say) become one space, so a
/// row stays one line, and text longer than `max` characters ends in `…`.
fn shorten(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    }
}

pub(crate) async fn run(command: LabelsCommand) -> anyhow::Result<()> {
    let output = match command {
        LabelsCommand::List {
            server,
            route,
            limit,
            json,
        } => {
            let body = server
                .client()?
                .get(&format!("/api/v1/labels?route={route}&limit={limit}"))
                .await?;
            if json {
                pretty(&body)?
            } else {
                render_list(&body)
            }
        }
        LabelsCommand::Show { server, id, json } => {
            let label = server
                .client()?
                .get(&format!("/api/v1/labels/{id}"))
                .await?;
            if json {
                pretty(&label)?
            } else {
                render_show(&label)
            }
        }
    };
    // One write of the whole text, so nothing (a log line on stderr) lands inside it.
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(output.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn pretty(document: &serde_json::Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(document)? + "\n")
}

/// The label list as a table, with the count on a line of its own after the last row.
fn render_list(body: &serde_json::Value) -> String {
    let labels = body["labels"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = labels
        .iter()
        .map(|l| {
            let truth = &l["ground_truth"];
            vec![
                text(&l["id"]),
                text(&l["route"]) + if l["audit"] == true { "+audit" } else { "" },
                text(&truth["components"][0]),
                text(&truth["category"]),
                format!(
                    "{:.2} {:.2} {:.2}",
                    score(l, "specificity"),
                    score(l, "accuracy"),
                    score(l, "thoroughness")
                ),
                shorten(&text(&truth["statement"]), 60),
            ]
        })
        .collect();
    let mut out = table::render(
        &[
            "id",
            "route",
            "component",
            "category",
            "spec acc thor",
            "statement",
        ],
        &rows,
    );
    let _ = writeln!(out, "{} label(s)", rows.len());
    out
}

fn score(label: &serde_json::Value, dimension: &str) -> f64 {
    label["scores"][dimension]["value"].as_f64().unwrap_or(0.0)
}

/// One candidate: ground truth, scores with their reasons, and the snapshot as a table.
fn render_show(label: &serde_json::Value) -> String {
    let truth = &label["ground_truth"];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  (version {}, {})",
        text(&label["id"]),
        text(&label["version"]),
        text(&label["route"])
    );
    let _ = writeln!(out, "investigation  {}", text(&label["investigation_id"]));
    let _ = writeln!(out, "trigger        {}", text(&label["trigger"]["text"]));
    let _ = writeln!(out, "ground truth   {}", text(&truth["statement"]));
    let _ = writeln!(out, "category       {}", text(&truth["category"]));
    let _ = writeln!(out, "onset          {}", text(&truth["onset"]));
    for link in truth["causal_chain"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "  → {}", text(link));
    }
    for dimension in ["specificity", "accuracy", "thoroughness"] {
        let _ = writeln!(out, "{dimension:<14} {:.2}", score(label, dimension));
        for reason in label["scores"][dimension]["reasons"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let _ = writeln!(out, "    {}", text(reason));
        }
    }
    let rows: Vec<Vec<String>> = label["snapshot"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| {
            vec![
                text(&q["id"]),
                text(&q["tool_name"]),
                text(&q["status"]),
                text(&q["origin"]["kind"]),
                shorten(&text(&q["query"]), 60),
            ]
        })
        .collect();
    let _ = writeln!(out, "snapshot");
    out.push_str(&table::render(
        &["query", "tool", "status", "origin", "query text"],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    fn label() -> serde_json::Value {
        serde_json::json!({
            "id": "cand-4bf92f3577b34da6a3ce929d0e0e4736-v1",
            "version": 1,
            "route": "admit",
            "audit": true,
            "investigation_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "trigger": {"text": "checkout p99 latency above 2s"},
            "ground_truth": {
                "statement": "payments-db connection pool exhausted after the 14:02 deploy",
                "components": ["payments-db"],
                "category": "resource_exhaustion",
                "onset": "2026-11-29T14:02:00Z",
                "causal_chain": ["deploy of payments", "payments-db pool exhausted"]
            },
            "scores": {
                "specificity": {"value": 0.9, "reasons": ["names one component"]},
                "accuracy": {"value": 0.8, "reasons": []},
                "thoroughness": {"value": 0.75, "reasons": ["2 of 3 queries captured"]}
            },
            "snapshot": [
                {"id": "q1", "tool_name": "search_logs", "status": "captured",
                 "origin": {"kind": "agent"}, "query": "service=payments-db\nlevel=error"},
                {"id": "q2", "tool_name": "query_metrics", "status": "recorded",
                 "origin": {"kind": "agent"},
                 "query": "rate(http_errors_total{service=\"checkout\"}[5m])"}
            ]
        })
    }

    #[test]
    fn the_list_ends_with_the_count_on_a_line_of_its_own() {
        let out = super::render_list(&serde_json::json!({"labels": [label()]}));
        expect![[r#"
            id                                        route        component    category             spec acc thor   statement
            ────────────────────────────────────────  ───────────  ───────────  ───────────────────  ──────────────  ────────────────────────────────────────────────────────────
            cand-4bf92f3577b34da6a3ce929d0e0e4736-v1  admit+audit  payments-db  resource_exhaustion  0.90 0.80 0.75  payments-db connection pool exhausted after the 14:02 deploy
            1 label(s)
        "#]].assert_eq(&out);
    }

    #[test]
    fn an_empty_list_says_so() {
        let out = super::render_list(&serde_json::json!({"labels": []}));
        expect![[r#"
            id  route  component  category  spec acc thor  statement
            ──  ─────  ─────────  ────────  ─────────────  ─────────
            0 label(s)
        "#]]
        .assert_eq(&out);
    }

    #[test]
    fn a_label_shows_its_truth_scores_and_snapshot_one_row_per_query() {
        let out = super::render_show(&label());
        expect![[r#"
            cand-4bf92f3577b34da6a3ce929d0e0e4736-v1  (version 1, admit)
            investigation  4bf92f3577b34da6a3ce929d0e0e4736
            trigger        checkout p99 latency above 2s
            ground truth   payments-db connection pool exhausted after the 14:02 deploy
            category       resource_exhaustion
            onset          2026-11-29T14:02:00Z
              → deploy of payments
              → payments-db pool exhausted
            specificity    0.90
                names one component
            accuracy       0.80
            thoroughness   0.75
                2 of 3 queries captured
            snapshot
            query  tool           status    origin  query text
            ─────  ─────────────  ────────  ──────  ───────────────────────────────────────────────
            q1     search_logs    captured  agent   service=payments-db level=error
            q2     query_metrics  recorded  agent   rate(http_errors_total{service="checkout"}[5m])
        "#]]
        .assert_eq(&out);
    }
}
