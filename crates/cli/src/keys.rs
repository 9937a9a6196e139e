//! `evalmint keys create|list|revoke|rotate`: an operator manages any tenant's keys directly in
//! the data directory. A running server stops accepting a key revoked here within 30 s (its
//! key cache); revoking through the API takes effect at once.

use std::sync::Arc;

use anyhow::{Context, bail};
use evalmint_model::{Scope, ScopeSet, TenantId};
use evalmint_store::{NewApiKey, SqliteOptions, SqliteStore, Store};

use crate::DataArgs;
use crate::table;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Create an API key and print its secret (shown once).
    Create {
        #[command(flatten)]
        data: DataArgs,
        /// The tenant the key belongs to; every read and write with it stays in this tenant.
        #[arg(long, default_value = "default")]
        tenant: TenantId,
        /// Permission to grant; repeat for several: ingest, feedback (safe in a browser),
        /// review, metrics, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
        /// A note on what the key is for.
        #[arg(long, default_value = "created with evalmint keys create")]
        name: String,
    },
    /// List a tenant's keys (never their secrets).
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "default")]
        tenant: TenantId,
    },
    /// Revoke a key: it stops working.
    Revoke {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "default")]
        tenant: TenantId,
        /// The key's id, as `keys list` shows it (key_…).
        id: String,
    },
    /// Replace a key by a new one with the same name and scopes, and revoke the old one; prints
    /// the new secret (shown once).
    Rotate {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value = "default")]
        tenant: TenantId,
        /// The key's id, as `keys list` shows it (key_…).
        id: String,
    },
}

fn open(data: &DataArgs) -> anyhow::Result<Arc<dyn Store>> {
    let store = SqliteStore::open(&data.dir, SqliteOptions::default())
        .with_context(|| format!("opening the store in {}", data.dir.display()))?;
    Ok(Arc::new(store))
}

/// Prints the secret on stdout (for scripts) and what it is on stderr.
fn show_new_key(created: &NewApiKey, verb: &str) {
    println!("{}", created.secret);
    eprintln!(
        "{verb} key {} ({:?}) for tenant {:?} with scopes {}",
        created.key.id,
        created.key.name,
        created.key.tenant.as_str(),
        created.key.scopes.to_list()
    );
}

pub(crate) async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            data,
            tenant,
            scopes,
            name,
        } => {
            if name.trim() == evalmint_server::OPERATOR_KEY_NAME {
                bail!(
                    "the name {:?} is reserved for the key passed with --admin-key",
                    evalmint_server::OPERATOR_KEY_NAME
                );
            }
            let scopes: ScopeSet = scopes.into_iter().collect();
            let created = open(&data)?
                .create_api_key(&tenant, name.trim(), scopes)
                .await?;
            show_new_key(&created, "created");
            Ok(())
        }
        KeysCommand::List { data, tenant } => {
            let keys = open(&data)?.api_keys(&tenant).await?;
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.id.clone(),
                        k.name.clone(),
                        k.scopes.to_list(),
                        k.created_at.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(&["id", "name", "scopes", "created"], &rows)
            );
            Ok(())
        }
        KeysCommand::Revoke { data, tenant, id } => {
            if !open(&data)?.revoke_api_key(&tenant, &id).await? {
                bail!("tenant {:?} has no key {id:?}", tenant.as_str());
            }
            eprintln!("revoked key {id} of tenant {:?}", tenant.as_str());
            Ok(())
        }
        KeysCommand::Rotate { data, tenant, id } => {
            let created = open(&data)?
                .rotate_api_key(&tenant, &id)
                .await?
                .with_context(|| format!("tenant {:?} has no key {id:?}", tenant.as_str()))?;
            show_new_key(&created, &format!("replaced {id} by"));
            Ok(())
        }
    }
}
