//! `evalmint catalog list|import`: the tenant's entity catalog on a server, as a table (or raw
//! JSON with `--json`), and importing a static catalog file into it.

use std::path::PathBuf;

use anyhow::Context;
use evalmint_model::CatalogFormat;

use crate::client::ServerArgs;
use crate::table;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum CatalogCommand {
    /// List the entities evalmint knows for the key's tenant.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Only this kind (service, database, pod, host, …).
        #[arg(long)]
        kind: Option<String>,
        /// Only this provenance: trace, tool_call, prometheus, static_file, reviewer.
        #[arg(long)]
        provenance: Option<String>,
        /// Entities per page; every page is fetched.
        #[arg(long, default_value_t = 500)]
        page: usize,
        #[arg(long)]
        json: bool,
    },
    /// Import a catalog file: evalmint's entity list (YAML, TOML or JSON) or Backstage
    /// `catalog-info.yaml` documents. Needs an admin key.
    Import {
        #[command(flatten)]
        server: ServerArgs,
        file: PathBuf,
        /// yaml, toml or json; by default from the file's extension.
        #[arg(long)]
        format: Option<String>,
    },
}

pub(crate) async fn run(command: CatalogCommand) -> anyhow::Result<()> {
    match command {
        CatalogCommand::List {
            server,
            kind,
            provenance,
            page,
            json,
        } => {
            let client = server.client()?;
            let mut entries = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let mut query = vec![("limit", page.to_string())];
                query.extend(kind.clone().map(|k| ("kind", k)));
                query.extend(provenance.clone().map(|p| ("provenance", p)));
                query.extend(after.take().map(|a| ("after", a)));
                let body = client.get_with("/api/v1/catalog", &query).await?;
                entries.extend(body["entries"].as_array().cloned().unwrap_or_default());
                match body["next"].as_str() {
                    Some(next) => after = Some(next.to_owned()),
                    None => break,
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
                return Ok(());
            }
            let text = |value: &serde_json::Value| match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(items) if !items.is_empty() => items
                    .iter()
                    .filter_map(|i| i.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "-".to_owned(),
            };
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    [
                        "name",
                        "kind",
                        "workload",
                        "provenance",
                        "team",
                        "aliases",
                        "depends_on",
                    ]
                    .iter()
                    .map(|field| text(&e[*field]))
                    .collect()
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &[
                        "name",
                        "kind",
                        "workload",
                        "provenance",
                        "team",
                        "aliases",
                        "depends on"
                    ],
                    &rows
                )
            );
            eprintln!(
                "{} entit{}",
                rows.len(),
                if rows.len() == 1 { "y" } else { "ies" }
            );
            Ok(())
        }
        CatalogCommand::Import {
            server,
            file,
            format,
        } => {
            let format = match format.as_deref() {
                Some(name) => CatalogFormat::from_path(&format!(".{name}"))
                    .with_context(|| format!("format {name:?} is not yaml, toml or json"))?,
                None => CatalogFormat::from_path(&file.to_string_lossy()).with_context(|| {
                    format!(
                        "cannot tell the format of {} from its extension: pass --format yaml|toml|json",
                        file.display()
                    )
                })?,
            };
            let body =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let answer = server
                .client()?
                .post("/api/v1/catalog", format.media_type(), body)
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            println!(
                "imported {} entities from {}",
                answer["imported"],
                file.display()
            );
            Ok(())
        }
    }
}
