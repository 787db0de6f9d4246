//! `maestro policy …` (evaluate, test and explain Rego policies offline, or explain a recorded
//! decision on a server) and `maestro audit …` (read and verify the hash-linked audit log).

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::client::Client;
use super::inspect::{open_local, tenant_query};
use super::{Exit, Output, Target, fail};
use crate::app;
use crate::config::Overrides;
use crate::domain::actor::Access;
use crate::domain::actor::TenantScope;
use crate::domain::audit::{AuditEvent, verify_chain};
use crate::domain::ids::TenantId;
use crate::policy::{Limits, Policies, PolicyBundle, testing};

/// Where the policies come from.
#[derive(Debug, Clone, clap::Args)]
pub struct Source {
    /// A directory of `.rego` files (and `data.json`); default: the configured bundle
    /// (`policy.dir`), else the policies built into this binary.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// A JSON file merged over the bundle's data document (like `policy.data`).
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// `maestro policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate a query (e.g. `data.mc.isolation.allow`, or a package `mc.isolation`) for an
    /// input; prints the value (`null` when undefined).
    Eval {
        /// The query or package.
        query: String,
        /// The input document (JSON file, `-` for standard input).
        #[arg(long)]
        input: PathBuf,
        /// Policies.
        #[command(flatten)]
        source: Source,
    },
    /// Run the `test_*` rules of every `*_test.rego` file in a directory, like `opa test`.
    Test {
        /// The directory (default: policy/rego).
        #[arg(default_value = "policy/rego")]
        dir: PathBuf,
    },
    /// Explain a package's decision for an input (which rules fired and why), or replay a
    /// recorded decision on a server (`--decision ID --server …`).
    Explain {
        /// The package (e.g. `mc.admission`), with `--input`.
        package: Option<String>,
        /// The input document (JSON file, `-` for standard input).
        #[arg(long)]
        input: Option<PathBuf>,
        /// A recorded decision id (dc_…) to replay on the server.
        #[arg(long)]
        decision: Option<String>,
        /// Policies (with `--input`).
        #[command(flatten)]
        source: Source,
        /// Where (with `--decision`).
        #[command(flatten)]
        target: Target,
    },
}

/// `maestro audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, oldest first.
    List {
        /// Where.
        #[command(flatten)]
        target: Target,
        /// Only events after this sequence number.
        #[arg(long)]
        after: Option<u64>,
        /// Page size.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Verify the hash chain of the whole audit log (local data directory, or a server with
    /// an appliance-wide admin token).
    Verify {
        /// Where.
        #[command(flatten)]
        target: Target,
    },
    /// Run the residency auditor now and list the open violations; exits 4 while any is
    /// open (server: an appliance-wide auditor or admin token; or a stopped data directory).
    Residency {
        /// Check every receipt, not only those since the last audit.
        #[arg(long)]
        full: bool,
        /// Where.
        #[command(flatten)]
        target: Target,
    },
    /// List residency violations.
    Violations {
        /// `open`, `resolved` or `all`.
        #[arg(long, default_value = "open")]
        status: String,
        /// Where.
        #[command(flatten)]
        target: Target,
    },
    /// Resolve a residency violation by hand once the data is where it belongs (audited).
    Resolve {
        /// Violation id.
        id: String,
        /// What was done.
        #[arg(long)]
        reason: String,
        /// Where.
        #[command(flatten)]
        target: Target,
    },
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read(path)
            .map_err(|e| fail(Exit::Usage, format!("reading {}: {e}", path.display())))?
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| fail(Exit::Usage, format!("{}: not JSON: {e}", path.display())))
}

fn load(source: &Source, config_file: Option<&Path>) -> anyhow::Result<Policies> {
    let configured = app::resolve_config(config_file, &super::env_map(), &Overrides::default())
        .ok()
        .map(|r| r.config);
    let dir = source
        .dir
        .clone()
        .or_else(|| configured.as_ref().and_then(|c| c.policy.dir.clone()));
    let mut bundle = match &dir {
        Some(d) => PolicyBundle::from_dir(d).map_err(|e| fail(Exit::Usage, e.to_string()))?,
        None => PolicyBundle::embedded(),
    };
    if let Some(c) = &configured
        && source.dir.is_none()
    {
        bundle = bundle.with_data(&serde_json::to_value(&c.policy.data)?);
    }
    if let Some(path) = &source.data {
        bundle = bundle.with_data(&read_json(path)?);
    }
    Policies::load(bundle, Limits::default()).map_err(|e| fail(Exit::Usage, e.to_string()))
}

/// `maestro policy …`
pub async fn policy(
    cmd: PolicyCommand,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    match cmd {
        PolicyCommand::Eval {
            query,
            input,
            source,
        } => {
            let policies = load(&source, config_file)?;
            let input = read_json(&input)?;
            let query = if query.starts_with("data.") {
                query
            } else {
                format!("data.{query}")
            };
            let value = policies
                .query(&query, &input)
                .map_err(|e| fail(Exit::Error, e.to_string()))?;
            out.json_always(&value);
            Ok(Exit::Ok)
        }
        PolicyCommand::Test { dir } => {
            let report = testing::run(&dir).map_err(|e| fail(Exit::Usage, e.to_string()))?;
            out.print(&report, || {
                let mut s = String::new();
                for t in &report.tests {
                    let outcome = serde_json::to_value(&t.outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_uppercase))
                        .unwrap_or_default();
                    s.push_str(&format!("{}: {outcome}", t.name));
                    if let Some(d) = &t.detail {
                        s.push_str(&format!(" ({d})"));
                    }
                    s.push('\n');
                }
                s.push_str(&format!(
                    "{} passed, {} failed, {} skipped\n",
                    report.passed, report.failed, report.skipped
                ));
                s
            });
            Ok(if report.failed == 0 {
                Exit::Ok
            } else {
                Exit::Failed
            })
        }
        PolicyCommand::Explain {
            package,
            input,
            decision,
            source,
            target,
        } => match (package, input, decision) {
            (Some(package), Some(input), None) => {
                let policies = load(&source, config_file)?;
                let e = policies
                    .explain(&package, &read_json(&input)?)
                    .map_err(|e| fail(Exit::Error, e.to_string()))?;
                out.print(&e, || {
                    explanation_text(&serde_json::to_value(&e).unwrap_or_default())
                });
                Ok(Exit::Ok)
            }
            (None, None, Some(id)) => {
                let server = target
                    .server
                    .as_deref()
                    .ok_or_else(|| fail(Exit::Usage, "--decision needs --server (and --token)"))?;
                let c = Client::new(server, target.token.clone())?;
                let v: Value = c
                    .get(
                        &format!("/api/v1/decisions/{id}/explain"),
                        &tenant_query(&target),
                    )
                    .await?;
                out.print(&v, || {
                    format!(
                        "decision {id}: replay {} the recorded outcome\n{}",
                        if v["matches_recorded"] == json!(true) {
                            "matches"
                        } else {
                            "DOES NOT match"
                        },
                        explanation_text(&v["explanation"])
                    )
                });
                Ok(Exit::Ok)
            }
            _ => Err(fail(
                Exit::Usage,
                "give PACKAGE --input FILE, or --decision ID --server URL",
            )),
        },
    }
}

fn explanation_text(e: &Value) -> String {
    let mut s = format!(
        "{} (bundle {}): {}\n",
        e["package"].as_str().unwrap_or(""),
        e["policy_digest"].as_str().unwrap_or(""),
        if e["allow"] == json!(true) {
            "allow"
        } else {
            "deny"
        }
    );
    for r in e["reasons"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  reason {}: {}\n",
            r["code"].as_str().unwrap_or(""),
            r["message"].as_str().unwrap_or("")
        ));
    }
    for r in e["rules"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  {:<10} {} ({}:{})\n",
            r["outcome"].as_str().unwrap_or(""),
            r["rule"].as_str().unwrap_or(""),
            r["file"].as_str().unwrap_or(""),
            r["line"]
        ));
    }
    s
}

fn audit_text(items: &[AuditEvent]) -> String {
    let mut s = String::new();
    for e in items {
        s.push_str(&format!(
            "{:>6} {} {:<20} {:<10} {}{}\n",
            e.seq,
            e.at,
            serde_json::to_value(e.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            e.tenant.as_ref().map_or("-", |t| t.as_str()),
            e.actor,
            e.route
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        ));
    }
    s
}

/// Every audit event visible to `target` (all pages).
async fn all_events(
    target: &Target,
    config_file: Option<&Path>,
) -> anyhow::Result<Vec<AuditEvent>> {
    match target.server.as_deref() {
        Some(server) => {
            let c = Client::new(server, target.token.clone())?;
            let mut events: Vec<AuditEvent> = Vec::new();
            let mut after: Option<u64> = None;
            loop {
                let mut q = tenant_query(target);
                q.push(("limit", "1000".into()));
                if let Some(a) = after {
                    q.push(("after", a.to_string()));
                }
                let page: Value = c.get("/api/v1/audit", &q).await?;
                let items: Vec<AuditEvent> = serde_json::from_value(page["items"].clone())?;
                events.extend(items);
                match page["next_after"].as_u64() {
                    Some(a) => after = Some(a),
                    None => return Ok(events),
                }
            }
        }
        None => local_events(target, config_file, None, usize::MAX),
    }
}

/// Audit events of the local data directory after `after`, at most `limit`.
fn local_events(
    target: &Target,
    config_file: Option<&Path>,
    after: Option<u64>,
    limit: usize,
) -> anyhow::Result<Vec<AuditEvent>> {
    let local = open_local(target, config_file)?;
    let r = local.store.read()?;
    Ok(match &target.tenant {
        None => r.audit_all(after, limit)?,
        Some(t) => {
            let id = TenantId::new(t).map_err(|e| fail(Exit::Usage, e.to_string()))?;
            r.audit_of(&TenantScope::system(id, Access::Read), after, limit)?
        }
    })
}

/// `maestro audit …`
pub async fn audit(
    cmd: AuditCommand,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    match cmd {
        AuditCommand::Residency { full, target } => {
            super::residency::run(&target, full, config_file, out).await
        }
        AuditCommand::Violations { status, target } => {
            super::residency::list(&target, &status, config_file, out).await
        }
        AuditCommand::Resolve { id, reason, target } => {
            super::residency::resolve(&target, &id, &reason, out).await
        }
        AuditCommand::List {
            target,
            after,
            limit,
        } => {
            let items: Vec<AuditEvent> = match target.server.as_deref() {
                Some(server) => {
                    let c = Client::new(server, target.token.clone())?;
                    let mut q = tenant_query(&target);
                    q.push(("limit", limit.to_string()));
                    if let Some(a) = after {
                        q.push(("after", a.to_string()));
                    }
                    let page: Value = c.get("/api/v1/audit", &q).await?;
                    serde_json::from_value(page["items"].clone())?
                }
                None => local_events(&target, config_file, after, limit)?,
            };
            out.print(&json!({ "items": items }), || audit_text(&items));
            Ok(Exit::Ok)
        }
        AuditCommand::Verify { target } => {
            if target.tenant.is_some() {
                return Err(fail(
                    Exit::Usage,
                    "the chain links every tenant's events: verify it without --tenant",
                ));
            }
            let events = all_events(&target, config_file).await?;
            match verify_chain(&events) {
                Ok(()) => {
                    let head = events.last().map(|e| e.hash.to_string());
                    out.print(
                        &json!({"verified": true, "events": events.len(), "head": head}),
                        || {
                            format!(
                                "audit log verified: {} events, head {}",
                                events.len(),
                                head.as_deref().unwrap_or("(empty)")
                            )
                        },
                    );
                    Ok(Exit::Ok)
                }
                Err(e) => {
                    out.print(&json!({"verified": false, "error": e}), || {
                        format!("audit log NOT verified: {e}")
                    });
                    Ok(Exit::Unverified)
                }
            }
        }
    }
}
