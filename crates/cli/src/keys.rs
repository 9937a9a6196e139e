//! `evalmint keys create|list|revoke|rotate`: an operator manages keys, of any tenant directly in
//! a data directory no process owns, or of one tenant through a running server's API (`--server`;
//! needed while the server owns the directory, and a revocation takes effect at once).

use std::sync::Arc;

use anyhow::{Context, bail};
use evalmint_model::{Scope, ScopeSet, TenantId, Timestamp};
use evalmint_store::{ApiKey, NewApiKey, SqliteOptions, SqliteStore, Store};
use serde::Deserialize;

use crate::DataArgs;
use crate::client::Client;
use crate::table;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Create an API key and print its secret (shown once).
    Create {
        #[command(flatten)]
        target: KeysTarget,
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
        target: KeysTarget,
    },
    /// Revoke a key: it stops working.
    Revoke {
        #[command(flatten)]
        target: KeysTarget,
        /// The key's id, as `keys list` shows it (key_…).
        id: String,
    },
    /// Replace a key by a new one with the same name and scopes, and revoke the old one; prints
    /// the new secret (shown once).
    Rotate {
        #[command(flatten)]
        target: KeysTarget,
        /// The key's id, as `keys list` shows it (key_…).
        id: String,
    },
}

/// Whose keys, and where they are managed.
#[derive(Debug, clap::Args)]
pub(crate) struct KeysTarget {
    #[command(flatten)]
    data: DataArgs,
    /// The tenant whose keys to manage in the data directory [default: default]. With
    /// --server, the tenant is the one of --api-key.
    #[arg(long)]
    tenant: Option<TenantId>,
    /// Manage the keys through this running server (e.g. http://127.0.0.1:4318) instead of the
    /// data directory; required while a server owns the directory.
    #[arg(long = "server", value_name = "URL")]
    server: Option<String>,
    /// An admin key of the tenant, for --server.
    #[arg(long, env = "EVALMINT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// Where the keys live: the data directory's store, or a server's API (one tenant's keys).
enum Keys {
    Store(Arc<dyn Store>, TenantId),
    Server(Client),
}

impl KeysTarget {
    fn open(self) -> anyhow::Result<Keys> {
        let Some(url) = self.server else {
            let tenant = match self.tenant {
                Some(tenant) => tenant,
                None => TenantId::new("default").expect("a valid tenant name"),
            };
            let store = SqliteStore::open(&self.data.dir, SqliteOptions::default())
                .with_context(|| format!("opening the store in {}", self.data.dir.display()))?;
            return Ok(Keys::Store(Arc::new(store), tenant));
        };
        if self.tenant.is_some() {
            bail!("with --server, keys belong to the tenant of --api-key: leave out --tenant");
        }
        let key = self
            .api_key
            .context("--server needs an admin key: pass --api-key or set EVALMINT_API_KEY")?;
        Ok(Keys::Server(Client::new(&url, key)))
    }
}

/// A key as the API shows it.
#[derive(Deserialize)]
struct KeyJson {
    id: String,
    tenant: String,
    name: String,
    scopes: Vec<Scope>,
    created_at: Timestamp,
    #[serde(default)]
    allowed_origins: Vec<String>,
    secret: Option<String>,
}

impl KeyJson {
    fn parse(json: serde_json::Value) -> anyhow::Result<KeyJson> {
        serde_json::from_value(json).context("the server answered with something not a key")
    }

    fn key(self) -> anyhow::Result<ApiKey> {
        Ok(ApiKey {
            id: self.id,
            tenant: TenantId::new(&self.tenant).map_err(|e| anyhow::anyhow!("{e}"))?,
            name: self.name,
            scopes: self.scopes.into_iter().collect(),
            created_at: self.created_at,
            allowed_origins: self.allowed_origins,
        })
    }

    fn new_key(mut self) -> anyhow::Result<NewApiKey> {
        let secret = self
            .secret
            .take()
            .context("the server answered without the new key's secret")?;
        Ok(NewApiKey {
            secret,
            key: self.key()?,
        })
    }
}

impl Keys {
    async fn create(&self, name: &str, scopes: ScopeSet) -> anyhow::Result<NewApiKey> {
        match self {
            Keys::Store(store, tenant) => Ok(store.create_api_key(tenant, name, scopes).await?),
            Keys::Server(client) => {
                let body = serde_json::json!({ "name": name, "scopes": scopes.iter().collect::<Vec<_>>() });
                let created = client
                    .post(
                        "/api/v1/keys",
                        "application/json",
                        body.to_string().into_bytes(),
                    )
                    .await?;
                KeyJson::parse(created)?.new_key()
            }
        }
    }

    async fn list(&self) -> anyhow::Result<Vec<ApiKey>> {
        match self {
            Keys::Store(store, tenant) => Ok(store.api_keys(tenant).await?),
            Keys::Server(client) => {
                let mut listed = client.get("/api/v1/keys").await?;
                let serde_json::Value::Array(keys) = listed["keys"].take() else {
                    bail!("the server answered with something not a key list");
                };
                keys.into_iter()
                    .map(|key| KeyJson::parse(key)?.key())
                    .collect()
            }
        }
    }

    async fn revoke(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Keys::Store(store, tenant) => {
                if !store.revoke_api_key(tenant, id).await? {
                    bail!("tenant {:?} has no key {id:?}", tenant.as_str());
                }
            }
            Keys::Server(client) => {
                client.delete(&format!("/api/v1/keys/{id}"), &[]).await?;
            }
        }
        Ok(())
    }

    async fn rotate(&self, id: &str) -> anyhow::Result<NewApiKey> {
        match self {
            Keys::Store(store, tenant) => store
                .rotate_api_key(tenant, id)
                .await?
                .with_context(|| format!("tenant {:?} has no key {id:?}", tenant.as_str())),
            Keys::Server(client) => {
                let created = client
                    .post(
                        &format!("/api/v1/keys/{id}/rotate"),
                        "application/json",
                        Vec::new(),
                    )
                    .await?;
                KeyJson::parse(created)?.new_key()
            }
        }
    }
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
            target,
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
            let created = target.open()?.create(name.trim(), scopes).await?;
            show_new_key(&created, "created");
            Ok(())
        }
        KeysCommand::List { target } => {
            let keys = target.open()?.list().await?;
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
        KeysCommand::Revoke { target, id } => {
            let keys = target.open()?;
            keys.revoke(&id).await?;
            eprintln!("revoked key {id}");
            Ok(())
        }
        KeysCommand::Rotate { target, id } => {
            let created = target.open()?.rotate(&id).await?;
            show_new_key(&created, &format!("replaced {id} by"));
            Ok(())
        }
    }
}
