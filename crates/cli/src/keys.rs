//! `evalmint keys create`: an operator mints keys for any tenant directly in the data directory.

use std::sync::Arc;

use anyhow::Context;
use evalmint_model::{Scope, ScopeSet, TenantId};
use evalmint_store::{SqliteOptions, SqliteStore, Store};

use crate::DataArgs;

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
        /// review, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<Scope>,
        /// A note on what the key is for.
        #[arg(long, default_value = "created with evalmint keys create")]
        name: String,
    },
}

pub(crate) async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            data,
            tenant,
            scopes,
            name,
        } => {
            let store = SqliteStore::open(&data.dir, SqliteOptions::default())
                .with_context(|| format!("opening the store in {}", data.dir.display()))?;
            let store: Arc<dyn Store> = Arc::new(store);
            let scopes: ScopeSet = scopes.into_iter().collect();
            let created = store.create_api_key(&tenant, &name, scopes).await?;
            println!("{}", created.secret);
            eprintln!(
                "created key {} for tenant {:?} with scopes {}",
                created.key.id,
                created.key.tenant.as_str(),
                created.key.scopes.to_list()
            );
            Ok(())
        }
    }
}
