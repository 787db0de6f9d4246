//! Inspection commands: executions, keys, the log, and token creation.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::Client;
use super::output::{execution_text, summaries_text};
use super::{Exit, Output, Target, fail};
use crate::app::{self, tokens};
use crate::attest::keys::SigningKey;
use crate::config::{Config, Overrides};
use crate::domain::actor::{Access, Role, TenantScope};
use crate::domain::execution::{Execution, ExecutionStatus, ExecutionSummary};
use crate::domain::ids::{ExecutionId, TenantId};
use crate::engine::evidence::Evidence;
use crate::store::{ListQuery, Store};
use crate::tlog;

/// `maestro executions …`
#[derive(Debug, Subcommand)]
pub enum ExecutionsCommand {
    /// List executions, newest first.
    List {
        /// Where.
        #[command(flatten)]
        target: Target,
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this manifest name.
        #[arg(long)]
        name: Option<String>,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Cursor from the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one execution.
    Show {
        /// Execution id.
        id: String,
        /// Where.
        #[command(flatten)]
        target: Target,
    },
    /// Save an execution's receipt file (or its Sigstore bundle).
    Receipt {
        /// Execution id.
        id: String,
        /// Where.
        #[command(flatten)]
        target: Target,
        /// `maestro` (receipt file) or `sigstore` (Sigstore bundle v0.3).
        #[arg(long, default_value = "maestro")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `maestro keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show the public keys that verify receipts and checkpoints.
    Show {
        /// Where.
        #[command(flatten)]
        target: Target,
        /// Print only the appliance key's PEM (for `verify-receipt --key`).
        #[arg(long)]
        pem: bool,
    },
}

/// `maestro log …`
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Print the latest signed checkpoint.
    Checkpoint {
        /// Where.
        #[command(flatten)]
        target: Target,
    },
    /// Print a consistency proof between two tree sizes.
    Consistency {
        /// Older size.
        #[arg(long)]
        from: u64,
        /// Newer size (default: current).
        #[arg(long)]
        to: Option<u64>,
        /// Where.
        #[command(flatten)]
        target: Target,
    },
}

/// `maestro token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token: prints it once with the `[[tokens]]` entry (its hash) for the config.
    New {
        /// Token name (shown as the actor in receipts and audit).
        #[arg(long)]
        name: String,
        /// Tenant (omit for an appliance-wide admin token).
        #[arg(long)]
        tenant: Option<String>,
        /// Roles: viewer, operator, auditor, admin (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
}

/// A local data directory, opened.
pub(super) struct Local {
    pub config: Config,
    pub store: Store,
    pub origin: String,
}

/// Opens the data directory of `target` (or the configured one).
/// The configuration of the local data directory (`--data-dir` over the config layers).
pub(super) fn local_config(
    target: &Target,
    config_file: Option<&Path>,
) -> anyhow::Result<crate::config::Config> {
    let overrides = Overrides {
        data_dir: target.data_dir.clone(),
        ..Overrides::default()
    };
    Ok(
        app::resolve_config(config_file, &super::env_map(), &overrides)
            .map_err(|e| fail(Exit::Usage, e.to_string()))?
            .config,
    )
}

/// The tenant of a data directory without configured tenants.
pub(super) const LOCAL_DEFAULT_TENANT: &str = "default";

/// The tenants a local command reads: the one named, or every configured one, or
/// [`LOCAL_DEFAULT_TENANT`] when none is configured.
pub(super) fn local_tenants(target: &Target, config: &crate::config::Config) -> Vec<String> {
    match &target.tenant {
        Some(t) => vec![t.clone()],
        None if config.tenants.is_empty() => vec![LOCAL_DEFAULT_TENANT.into()],
        None => config.tenants.keys().cloned().collect(),
    }
}

/// The one tenant a local command works on: the one named, the only one configured, or
/// [`LOCAL_DEFAULT_TENANT`] when none is.
pub(super) fn local_tenant(
    target: &Target,
    config: &crate::config::Config,
) -> anyhow::Result<crate::domain::ids::TenantId> {
    let tenant = match &target.tenant {
        Some(t) => t.clone(),
        None if config.tenants.len() == 1 => {
            config.tenants.keys().next().cloned().unwrap_or_default()
        }
        // A data directory without configured tenants is worked on as `default`
        // (what a local `maestro run` uses).
        None if config.tenants.is_empty() => LOCAL_DEFAULT_TENANT.into(),
        None => {
            return Err(fail(
                Exit::Usage,
                format!(
                    "name a tenant with --tenant (configured: {})",
                    config
                        .tenants
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    crate::domain::ids::TenantId::new(&tenant).map_err(|e| fail(Exit::Usage, e.to_string()))
}

/// Starts the appliance in-process on the local data directory (exit 8 while a server
/// holds it).
pub(super) async fn start_local(
    config: crate::config::Config,
) -> anyhow::Result<std::sync::Arc<app::App>> {
    Ok(std::sync::Arc::new(app::App::start(config).await.map_err(
        |e| match e {
            app::AppError::Store(s @ crate::store::StoreError::Locked(_)) => {
                fail(Exit::Unavailable, s.to_string())
            }
            other => other.into(),
        },
    )?))
}

pub(super) fn open_local(target: &Target, config_file: Option<&Path>) -> anyhow::Result<Local> {
    let config = local_config(target, config_file)?;
    if !config.data_dir.join(crate::store::DB_FILE).exists() {
        return Err(fail(
            Exit::NotFound,
            format!(
                "no data in {}; start the appliance there, or pass --server",
                config.data_dir.display()
            ),
        ));
    }
    let store = Store::open(&config.data_dir).map_err(|e| match e {
        crate::store::StoreError::Locked(_) => fail(Exit::Unavailable, format!("{e}")),
        other => fail(Exit::Error, other.to_string()),
    })?;
    let origin = store
        .meta("log_origin")?
        .and_then(|v| String::from_utf8(v).ok())
        .unwrap_or_default();
    Ok(Local {
        config,
        store,
        origin,
    })
}

fn local_scope(local: &Local, target: &Target) -> anyhow::Result<TenantScope> {
    Ok(TenantScope::system(
        local_tenant(target, &local.config)?,
        Access::Read,
    ))
}

/// `tenant=` for requests, when `--tenant` was given.
pub(super) fn tenant_query(target: &Target) -> Vec<(&'static str, String)> {
    target
        .tenant
        .iter()
        .map(|t| ("tenant", t.clone()))
        .collect()
}

fn client(target: &Target) -> anyhow::Result<Option<Client>> {
    target
        .server
        .as_deref()
        .map(|s| Client::new(s, target.token.clone()))
        .transpose()
}

/// `maestro executions …`
pub async fn executions(
    cmd: ExecutionsCommand,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    match cmd {
        ExecutionsCommand::List {
            target,
            status,
            name,
            limit,
            cursor,
        } => {
            let (items, next): (Vec<ExecutionSummary>, Option<String>) = match client(&target)? {
                Some(c) => {
                    let mut q = tenant_query(&target);
                    q.push(("limit", limit.to_string()));
                    if let Some(s) = &status {
                        q.push(("status", s.clone()));
                    }
                    if let Some(n) = &name {
                        q.push(("name", n.clone()));
                    }
                    if let Some(c) = &cursor {
                        q.push(("cursor", c.clone()));
                    }
                    let v: Value = c.get("/api/v1/executions", &q).await?;
                    (
                        serde_json::from_value(v["items"].clone())?,
                        v["next_cursor"].as_str().map(str::to_owned),
                    )
                }
                None => {
                    let local = open_local(&target, config_file)?;
                    let scope = local_scope(&local, &target)?;
                    let status = status
                        .as_deref()
                        .map(|s| {
                            ExecutionStatus::parse(s)
                                .ok_or_else(|| fail(Exit::Usage, format!("unknown status {s:?}")))
                        })
                        .transpose()?;
                    let after = cursor
                        .as_deref()
                        .map(|c| ExecutionId::new(c).map_err(|e| fail(Exit::Usage, e.to_string())))
                        .transpose()?;
                    let page = local.store.read()?.list_executions(
                        &scope,
                        &ListQuery {
                            status,
                            name,
                            canary: None,
                            after,
                            limit,
                        },
                    )?;
                    (page.items, page.next_cursor)
                }
            };
            out.print(&json!({"items": items, "next_cursor": next}), || {
                summaries_text(&items, next.as_deref())
            });
            Ok(Exit::Ok)
        }
        ExecutionsCommand::Show { id, target } => {
            let exec: Execution = match client(&target)? {
                Some(c) => {
                    c.get(&format!("/api/v1/executions/{id}"), &tenant_query(&target))
                        .await?
                }
                None => {
                    let local = open_local(&target, config_file)?;
                    let scope = local_scope(&local, &target)?;
                    let parsed = ExecutionId::new(&id)
                        .map_err(|_| fail(Exit::NotFound, format!("execution {id} not found")))?;
                    local
                        .store
                        .read()?
                        .execution(&scope, &parsed)?
                        .ok_or_else(|| {
                            fail(
                                Exit::NotFound,
                                format!("execution {id} not found in tenant {}", scope.tenant()),
                            )
                        })?
                }
            };
            out.print(&exec, || execution_text(&exec));
            Ok(Exit::Ok)
        }
        ExecutionsCommand::Receipt {
            id,
            target,
            format,
            out: file,
        } => {
            if format != "maestro" && format != "sigstore" {
                return Err(fail(
                    Exit::Usage,
                    format!("--format {format:?} is not maestro or sigstore"),
                ));
            }
            let doc: Value = match client(&target)? {
                Some(c) => {
                    let mut q = tenant_query(&target);
                    q.push(("format", format.clone()));
                    c.get(&format!("/api/v1/executions/{id}/receipt"), &q)
                        .await?
                }
                None => {
                    let local = open_local(&target, config_file)?;
                    let scope = local_scope(&local, &target)?;
                    let parsed = ExecutionId::new(&id)
                        .map_err(|_| fail(Exit::NotFound, format!("execution {id} not found")))?;
                    let evidence = Evidence::new(&local.store, &local.origin);
                    let missing = || {
                        fail(
                            Exit::NotFound,
                            format!("no receipt for execution {id} in tenant {}", scope.tenant()),
                        )
                    };
                    if format == "sigstore" {
                        evidence
                            .sigstore_bundle(&scope, &parsed)?
                            .ok_or_else(missing)?
                    } else {
                        serde_json::to_value(
                            evidence
                                .receipt_bundle(&scope, &parsed)?
                                .ok_or_else(missing)?,
                        )?
                    }
                }
            };
            match file {
                Some(path) => {
                    std::fs::write(&path, serde_json::to_vec_pretty(&doc)?).map_err(|e| {
                        fail(Exit::Error, format!("writing {}: {e}", path.display()))
                    })?;
                    out.print(&json!({"saved": path}), || {
                        format!("saved {}", path.display())
                    });
                }
                None => out.json_always(&doc),
            }
            Ok(Exit::Ok)
        }
    }
}

/// `maestro keys …`
pub async fn keys(
    cmd: KeysCommand,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let KeysCommand::Show { target, pem } = cmd;
    let doc: Value = match client(&target)? {
        Some(c) => c.get("/api/v1/keys", &[]).await?,
        None => {
            let overrides = Overrides {
                data_dir: target.data_dir.clone(),
                ..Overrides::default()
            };
            let config = app::resolve_config(config_file, &super::env_map(), &overrides)
                .map_err(|e| fail(Exit::Usage, e.to_string()))?
                .config;
            if !config.key_file().exists() {
                return Err(fail(
                    Exit::NotFound,
                    format!(
                        "no key at {}; start the appliance once, or pass --server",
                        config.key_file().display()
                    ),
                ));
            }
            let key = SigningKey::load(&config.key_file())?;
            let origin = match open_local(&target, config_file) {
                Ok(l) => l.origin,
                Err(_) => config.signing.log_origin.clone().unwrap_or_default(),
            };
            let p = key.public();
            json!({
                "log_origin": origin,
                "keys": [{
                    "keyid": p.keyid(),
                    "algorithm": p.algorithm(),
                    "pem": p.pem(),
                    "signs": "appliance",
                    "note_verifier_key": p.ed25519_raw().map(|raw| tlog::ed25519_verifier_key(&origin, &raw)),
                }],
            })
        }
    };
    if pem {
        let text = doc["keys"][0]["pem"]
            .as_str()
            .ok_or_else(|| fail(Exit::Error, "the answer has no key"))?;
        print!("{text}");
        return Ok(Exit::Ok);
    }
    out.print(&doc, || {
        let mut s = format!("log origin  {}\n", doc["log_origin"].as_str().unwrap_or(""));
        for k in doc["keys"].as_array().into_iter().flatten() {
            s.push_str(&format!(
                "key {}  {}  signs {}\n",
                k["keyid"].as_str().unwrap_or(""),
                k["algorithm"].as_str().unwrap_or(""),
                k["signs"].as_str().unwrap_or("")
            ));
            if let Some(v) = k["note_verifier_key"].as_str() {
                s.push_str(&format!("  note verifier key  {v}\n"));
            }
            s.push_str(k["pem"].as_str().unwrap_or(""));
        }
        s
    });
    Ok(Exit::Ok)
}

/// `maestro log …`
pub async fn log(
    cmd: LogCommand,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    match cmd {
        LogCommand::Checkpoint { target } => {
            let note = match client(&target)? {
                Some(c) => c.get_text("/api/v1/log/checkpoint").await?,
                None => {
                    let local = open_local(&target, config_file)?;
                    Evidence::new(&local.store, &local.origin)
                        .latest_checkpoint()?
                        .ok_or_else(|| fail(Exit::NotFound, "the log is empty"))?
                        .note
                }
            };
            out.print(&json!({"checkpoint": note}), || note.clone());
            Ok(Exit::Ok)
        }
        LogCommand::Consistency { from, to, target } => {
            let proof: Value = match client(&target)? {
                Some(c) => {
                    let mut q = vec![("from", from.to_string())];
                    if let Some(t) = to {
                        q.push(("to", t.to_string()));
                    }
                    c.get("/api/v1/log/consistency", &q).await?
                }
                None => {
                    let local = open_local(&target, config_file)?;
                    let to = match to {
                        Some(t) => t,
                        None => local.store.read()?.log_size()?,
                    };
                    serde_json::to_value(
                        Evidence::new(&local.store, &local.origin)
                            .consistency_proof(from, to)
                            .map_err(|e| fail(Exit::Usage, e.to_string()))?,
                    )?
                }
            };
            out.json_always(&proof);
            Ok(Exit::Ok)
        }
    }
}

/// `maestro token new`
pub fn token(cmd: TokenCommand, out: &Output) -> anyhow::Result<Exit> {
    let TokenCommand::New {
        name,
        tenant,
        roles,
    } = cmd;
    let roles = roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                fail(
                    Exit::Usage,
                    format!("unknown role {r:?} (viewer, operator, auditor, admin)"),
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(t) = &tenant {
        TenantId::new(t).map_err(|e| fail(Exit::Usage, e.to_string()))?;
    } else if !roles.contains(&Role::Admin) {
        return Err(fail(
            Exit::Usage,
            "a token without --tenant must have --role admin",
        ));
    }
    let token = tokens::generate();
    let entry = tokens::config_entry(&name, tenant.as_deref(), &roles, &token);
    let toml_entry = tokens::toml_entry(&entry);
    out.print(
        &json!({"token": token, "config": entry, "toml": toml_entry}),
        || format!("token (shown once): {token}\n\nadd to the config file:\n\n{toml_entry}"),
    );
    Ok(Exit::Ok)
}
