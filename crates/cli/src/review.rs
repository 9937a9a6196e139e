//! `evalmint review`, `evalmint release` and `evalmint calibrate`: clients of the review,
//! release and calibration API. A decision names the label version it was made on, read from the
//! server just before, so a concurrent decision makes it fail (409) instead of overwriting.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::client::ServerArgs;
use crate::table;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReviewCommand {
    /// The review queue: candidates in review, insufficient ones and the audit sample.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// review, insufficient, audit or all.
        #[arg(long, default_value = "all")]
        route: String,
        /// Only candidates with this segment, as facet=value.
        #[arg(long)]
        segment: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One candidate with its label's version history.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
    },
    /// Approve a candidate's ground truth as drafted.
    Approve {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
        #[command(flatten)]
        on: Decided,
    },
    /// Change ground-truth fields or the snapshot; completes an insufficient candidate.
    Edit {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
        #[command(flatten)]
        on: Decided,
        #[arg(long)]
        statement: Option<String>,
        /// Repeat for several components.
        #[arg(long = "component")]
        components: Vec<String>,
        #[arg(long)]
        category: Option<String>,
        /// RFC 3339 time.
        #[arg(long)]
        onset: Option<String>,
        /// Repeat for each link, from the symptom down to the cause.
        #[arg(long = "chain")]
        causal_chain: Vec<String>,
        /// Mark a snapshot query as evidence.
        #[arg(long)]
        evidence: Vec<String>,
        /// Mark a snapshot query as noise.
        #[arg(long)]
        noise: Vec<String>,
        /// Remove a query from the snapshot.
        #[arg(long)]
        remove: Vec<String>,
        /// Add a query, as SOURCE=QUERY.
        #[arg(long)]
        add_query: Vec<String>,
    },
    /// Reject a candidate with a reason.
    Reject {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
        #[command(flatten)]
        on: Decided,
        /// wrong_root_cause, insufficient_evidence, unreliable_feedback, duplicate,
        /// not_an_incident or other.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct Decided {
    /// The label version the decision is made on; read from the server when absent.
    #[arg(long)]
    version: Option<u32>,
    /// Who decides, when the key is shared.
    #[arg(long)]
    reviewer: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ReleaseCommand {
    /// Create a release of the current labels (the same selection gives the same id).
    Create {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long)]
        name: String,
        /// facet=value, repeatable (service, category, agent_version, polarity, origin, ...).
        #[arg(long = "filter")]
        filters: Vec<String>,
    },
    List {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// A release with its coverage and feedback bias.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
    },
    /// Labels added, removed and changed from release A to release B.
    Diff {
        #[command(flatten)]
        server: ServerArgs,
        a: String,
        b: String,
    },
    /// Write release.json and labels.jsonl (one label per line, results inline) into DIR.
    Export {
        #[command(flatten)]
        server: ServerArgs,
        id: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Read an exported directory back into the server.
    Import {
        #[command(flatten)]
        server: ServerArgs,
        dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct CalibrateArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The auto-admit precision to reach.
    #[arg(long, default_value_t = 0.98)]
    target: f64,
    /// Write the proposed thresholds as an evalmint.toml fragment here (never applied for you).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

fn pretty(value: &serde_json::Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

async fn decide(
    server: &ServerArgs,
    id: &str,
    on: &Decided,
    mut body: serde_json::Value,
) -> anyhow::Result<()> {
    let client = server.client()?;
    let version = match on.version {
        Some(v) => v,
        None => {
            let item = client.get(&format!("/api/v1/review/{id}")).await?;
            u32::try_from(item["version"].as_u64().unwrap_or(0))?
        }
    };
    body["version"] = version.into();
    if let Some(reviewer) = &on.reviewer {
        body["reviewer"] = reviewer.clone().into();
    }
    let recorded = client
        .post(
            &format!("/api/v1/review/{id}/decision"),
            "application/json",
            serde_json::to_vec(&body)?,
        )
        .await?;
    print(&format!(
        "{} recorded as version {} of {}\n",
        text(&recorded["decision"]["action"]),
        text(&recorded["version"]),
        text(&recorded["label_id"])
    ))
}

pub(crate) async fn review(command: ReviewCommand) -> anyhow::Result<()> {
    match command {
        ReviewCommand::List {
            server,
            route,
            segment,
            limit,
            json,
        } => {
            let mut query = vec![("route", route), ("limit", limit.to_string())];
            if let Some(segment) = segment {
                query.push(("segment", segment));
            }
            let body = server.client()?.get_with("/api/v1/review", &query).await?;
            if json {
                return print(&pretty(&body)?);
            }
            let rows: Vec<Vec<String>> = body["queue"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    vec![
                        text(&c["id"]),
                        text(&c["route"]) + if c["audit"] == true { "+audit" } else { "" },
                        text(&c["label_version"]),
                        text(&c["ground_truth"]["components"][0]),
                        text(&c["ground_truth"]["category"]),
                    ]
                })
                .collect();
            let mut out =
                table::render(&["id", "route", "version", "component", "category"], &rows);
            out += &format!("{} waiting\n", text(&body["total"]));
            print(&out)
        }
        ReviewCommand::Show { server, id } => {
            let item = server
                .client()?
                .get(&format!("/api/v1/review/{id}"))
                .await?;
            print(&pretty(&item)?)
        }
        ReviewCommand::Approve { server, id, on } => {
            decide(&server, &id, &on, serde_json::json!({"action": "approve"})).await
        }
        ReviewCommand::Edit {
            server,
            id,
            on,
            statement,
            components,
            category,
            onset,
            causal_chain,
            evidence,
            noise,
            remove,
            add_query,
        } => {
            let mut truth = serde_json::Map::new();
            if let Some(s) = statement {
                truth.insert("statement".into(), s.into());
            }
            if !components.is_empty() {
                truth.insert("components".into(), components.into());
            }
            if let Some(c) = category {
                truth.insert("category".into(), c.into());
            }
            if let Some(o) = onset {
                truth.insert("onset".into(), o.into());
            }
            if !causal_chain.is_empty() {
                truth.insert("causal_chain".into(), causal_chain.into());
            }
            let mut snapshot = Vec::new();
            for (op, ids) in [("evidence", evidence), ("noise", noise), ("remove", remove)] {
                for query_id in ids {
                    snapshot.push(serde_json::json!({"op": op, "query_id": query_id}));
                }
            }
            for added in add_query {
                let Some((source, query)) = added.split_once('=') else {
                    bail!("--add-query takes SOURCE=QUERY, got {added:?}");
                };
                snapshot.push(serde_json::json!({"op": "add", "source": source, "query": query}));
            }
            let mut body = serde_json::json!({"action": "edit", "snapshot": snapshot});
            if !truth.is_empty() {
                body["ground_truth"] = truth.into();
            }
            decide(&server, &id, &on, body).await
        }
        ReviewCommand::Reject {
            server,
            id,
            on,
            reason,
            note,
        } => {
            let mut body = serde_json::json!({"action": "reject", "reason": reason});
            if let Some(note) = note {
                body["note"] = note.into();
            }
            decide(&server, &id, &on, body).await
        }
    }
}

pub(crate) async fn release(command: ReleaseCommand) -> anyhow::Result<()> {
    match command {
        ReleaseCommand::Create {
            server,
            name,
            filters,
        } => {
            let body = serde_json::json!({"name": name, "filters": filters});
            let release = server
                .client()?
                .post(
                    "/api/v1/releases",
                    "application/json",
                    serde_json::to_vec(&body)?,
                )
                .await?;
            print(&format!(
                "{} ({} labels)\n",
                text(&release["id"]),
                text(&release["labels"])
            ))
        }
        ReleaseCommand::List { server } => {
            let body = server.client()?.get("/api/v1/releases").await?;
            let rows: Vec<Vec<String>> = body["releases"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    vec![
                        text(&r["id"]),
                        text(&r["name"]),
                        text(&r["labels"]),
                        r["erased"].as_u64().unwrap_or(0).to_string(),
                        text(&r["created_at"]),
                    ]
                })
                .collect();
            print(&table::render(
                &["id", "name", "labels", "erased since", "created"],
                &rows,
            ))
        }
        ReleaseCommand::Show { server, id } => {
            let body = server
                .client()?
                .get(&format!("/api/v1/releases/{id}"))
                .await?;
            print(&pretty(&body)?)
        }
        ReleaseCommand::Diff { server, a, b } => {
            let body = server
                .client()?
                .get(&format!("/api/v1/releases/{a}/diff/{b}"))
                .await?;
            print(&pretty(&body)?)
        }
        ReleaseCommand::Export { server, id, out } => {
            let bytes = server
                .client()?
                .get_bytes(&format!("/api/v1/releases/{id}/export"))
                .await?;
            let split = bytes
                .iter()
                .position(|b| *b == b'\n')
                .context("the export has no manifest line")?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            std::fs::write(out.join("release.json"), &bytes[..=split])?;
            std::fs::write(out.join("labels.jsonl"), &bytes[split + 1..])?;
            print(&format!(
                "wrote {} ({} bytes)\n",
                out.display(),
                bytes.len()
            ))
        }
        ReleaseCommand::Import { server, dir } => {
            let mut body = std::fs::read(dir.join("release.json"))
                .with_context(|| format!("reading {}/release.json", dir.display()))?;
            body.extend(
                std::fs::read(dir.join("labels.jsonl"))
                    .with_context(|| format!("reading {}/labels.jsonl", dir.display()))?,
            );
            let release = server
                .client()?
                .post("/api/v1/releases/import", "application/x-ndjson", body)
                .await?;
            print(&format!(
                "imported {} ({} labels)\n",
                text(&release["id"]),
                text(&release["labels"])
            ))
        }
    }
}

pub(crate) async fn calibrate(args: CalibrateArgs) -> anyhow::Result<()> {
    let body = args
        .server
        .client()?
        .get_with(
            "/api/v1/calibration",
            &[("target", args.target.to_string())],
        )
        .await?;
    let report = &body["calibration"];
    let mut out = format!(
        "{} reviewed decisions; auto-admit precision on the audit sample: {} (Wilson 95% {}-{}, {} audited)\n",
        text(&report["decisions"]),
        text(&report["auto_admit"]["precision"]),
        text(&report["auto_admit"]["wilson_95"]["low"]),
        text(&report["auto_admit"]["wilson_95"]["high"]),
        text(&report["auto_admit"]["audited"]),
    );
    let rows: Vec<Vec<String>> = report["dimensions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            vec![
                text(&d["dimension"]),
                text(&d["threshold"]),
                text(&d["agreement"]),
                text(&d["kappa"]),
            ]
        })
        .collect();
    out += &table::render(&["dimension", "threshold", "agreement", "kappa"], &rows);
    match body["proposed_config"].as_str() {
        Some(config) => {
            out += config;
            if let Some(path) = &args.out {
                std::fs::write(path, config)
                    .with_context(|| format!("writing {}", path.display()))?;
                out += &format!(
                    "written to {}; apply it by copying it into evalmint.toml\n",
                    path.display()
                );
            }
        }
        None => out += "no threshold set reaches the target on the decisions so far\n",
    }
    print(&out)
}
