//! `evalmint labels list|show`: the label set and single candidates, as tables and readable
//! summaries in the terminal (or raw JSON with `--json`).

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

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

pub(crate) async fn run(command: LabelsCommand) -> anyhow::Result<()> {
    match command {
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
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let labels = body["labels"].as_array().cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = labels
                .iter()
                .map(|l| {
                    let truth = &l["ground_truth"];
                    let scores = &l["scores"];
                    vec![
                        text(&l["id"]),
                        text(&l["route"]) + if l["audit"] == true { "+audit" } else { "" },
                        text(&truth["components"][0]),
                        text(&truth["category"]),
                        format!(
                            "{:.2} {:.2} {:.2}",
                            scores["specificity"]["value"].as_f64().unwrap_or(0.0),
                            scores["accuracy"]["value"].as_f64().unwrap_or(0.0),
                            scores["thoroughness"]["value"].as_f64().unwrap_or(0.0)
                        ),
                        shorten(&text(&truth["statement"]), 60),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &[
                        "id",
                        "route",
                        "component",
                        "category",
                        "spec acc thor",
                        "statement"
                    ],
                    &rows
                )
            );
            eprintln!("{} label(s)", rows.len());
            Ok(())
        }
        LabelsCommand::Show { server, id, json } => {
            let label = server
                .client()?
                .get(&format!("/api/v1/labels/{id}"))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&label)?);
                return Ok(());
            }
            let truth = &label["ground_truth"];
            println!(
                "{}  (version {}, {})",
                text(&label["id"]),
                text(&label["version"]),
                text(&label["route"])
            );
            println!("investigation  {}", text(&label["investigation_id"]));
            println!("trigger        {}", text(&label["trigger"]["text"]));
            println!("ground truth   {}", text(&truth["statement"]));
            println!("category       {}", text(&truth["category"]));
            println!("onset          {}", text(&truth["onset"]));
            for link in truth["causal_chain"].as_array().into_iter().flatten() {
                println!("  → {}", text(link));
            }
            for dimension in ["specificity", "accuracy", "thoroughness"] {
                let score = &label["scores"][dimension];
                println!(
                    "{dimension:<14} {:.2}",
                    score["value"].as_f64().unwrap_or(0.0)
                );
                for reason in score["reasons"].as_array().into_iter().flatten() {
                    println!("    {}", text(reason));
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
            println!("snapshot");
            print!(
                "{}",
                table::render(&["query", "tool", "status", "origin", "query text"], &rows)
            );
            Ok(())
        }
    }
}
