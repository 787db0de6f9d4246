//! `maestro audit residency|violations|resolve`: run the residency auditor, list its
//! violations, resolve one by hand — against a server, or a stopped local data directory.

use std::path::Path;

use serde_json::{Value, json};

use super::client::Client;
use super::inspect::{open_local, tenant_query};
use super::output::Output;
use super::{Exit, Target, fail};
use crate::domain::actor::{Access, TenantScope};
use crate::domain::ids::TenantId;
use crate::domain::residency::Violation;
use crate::engine::residency::{self as auditor, AuditOutcome};

fn violations_text(items: &[Violation]) -> String {
    if items.is_empty() {
        return "no residency violations".into();
    }
    let mut out = String::new();
    for v in items {
        let state = match &v.resolved {
            None => "OPEN".to_owned(),
            Some(r) => format!("resolved by {} ({})", r.by, r.reason),
        };
        out.push_str(&format!(
            "{}  {}  {}/{}  {}  {}\n    {}\n",
            v.id, state, v.tenant, v.execution, v.finding.code, v.finding.region, v.finding.message
        ));
    }
    out.trim_end().to_owned()
}

fn outcome_text(o: &AuditOutcome) -> String {
    let scope = match &o.full_because {
        Some(why) => format!("every receipt ({why})"),
        None => "receipts since the last audit".into(),
    };
    let mut s = format!(
        "residency audit of {scope}: {} receipts checked through log size {}, {} new, {} reopened, {} resolved, {} open, in {:.2} s",
        o.receipts, o.through, o.new, o.reopened, o.resolved, o.open, o.seconds
    );
    if o.unreadable_count > 0 {
        s.push_str(&format!(
            "\n{} receipts could not be read:\n  {}",
            o.unreadable_count,
            o.unreadable.join("\n  ")
        ));
    }
    s
}

fn keep(status: &str) -> anyhow::Result<fn(&Violation) -> bool> {
    Ok(match status {
        "open" => Violation::is_open,
        "resolved" => |v| !v.is_open(),
        "all" => |_| true,
        other => {
            return Err(fail(
                Exit::Usage,
                format!("--status {other:?} is not one of open, resolved, all"),
            ));
        }
    })
}

/// `maestro audit residency [--full]`: exits 4 while violations are open.
pub async fn run(
    target: &Target,
    full: bool,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let (outcome, open): (AuditOutcome, Vec<Violation>) = match target.server.as_deref() {
        Some(server) => {
            let c = Client::new(server, target.token.clone())?;
            let (_, outcome): (u16, AuditOutcome) = c
                .post(
                    "/api/v1/residency/audit",
                    &[("full", full.to_string())],
                    "application/json",
                    Vec::new(),
                )
                .await?;
            let list: Value = c
                .get("/api/v1/residency/violations", &tenant_query(target))
                .await?;
            (outcome, serde_json::from_value(list["items"].clone())?)
        }
        None => {
            let local = open_local(target, config_file)?;
            let rules = local.config.residency_rules();
            let outcome = auditor::audit(&local.store, &rules, full)?;
            let open = local
                .store
                .read()?
                .all_violations()?
                .into_iter()
                .filter(|v| v.is_open())
                .filter(|v| {
                    target
                        .tenant
                        .as_deref()
                        .is_none_or(|t| v.tenant.as_str() == t)
                })
                .collect();
            (outcome, open)
        }
    };
    out.print(&json!({"audit": outcome, "open": open}), || {
        format!("{}\n{}", outcome_text(&outcome), violations_text(&open))
    });
    Ok(if open.is_empty() {
        Exit::Ok
    } else {
        Exit::Unverified
    })
}

/// `maestro audit violations [--status open|resolved|all]`
pub async fn list(
    target: &Target,
    status: &str,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let keep = keep(status)?;
    let items: Vec<Violation> = match target.server.as_deref() {
        Some(server) => {
            let c = Client::new(server, target.token.clone())?;
            let mut q = tenant_query(target);
            q.push(("status", status.to_owned()));
            let list: Value = c.get("/api/v1/residency/violations", &q).await?;
            serde_json::from_value(list["items"].clone())?
        }
        None => {
            let local = open_local(target, config_file)?;
            let r = local.store.read()?;
            match target.tenant.as_deref() {
                Some(t) => {
                    let id = TenantId::new(t).map_err(|e| fail(Exit::Usage, e.to_string()))?;
                    r.violations(&TenantScope::system(id, Access::Read), false)?
                }
                None => r.all_violations()?,
            }
            .into_iter()
            .filter(keep)
            .collect()
        }
    };
    out.print(&json!({ "items": items }), || violations_text(&items));
    Ok(Exit::Ok)
}

/// `maestro audit resolve ID --reason TEXT` (server only: resolving is audited under the
/// caller's identity).
pub async fn resolve(
    target: &Target,
    id: &str,
    reason: &str,
    out: &Output,
) -> anyhow::Result<Exit> {
    let Some(server) = target.server.as_deref() else {
        return Err(fail(
            Exit::Usage,
            "resolving a violation records who did it: use --server with your token",
        ));
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(fail(
            Exit::Usage,
            format!("{id:?} is not a violation id (maestro audit violations lists them)"),
        ));
    }
    let c = Client::new(server, target.token.clone())?;
    let (_, v): (u16, Violation) = c
        .post(
            &format!("/api/v1/residency/violations/{id}/resolve"),
            &tenant_query(target),
            "application/json",
            serde_json::to_vec(&json!({ "reason": reason }))?,
        )
        .await?;
    out.print(&v, || {
        format!("resolved: {}", violations_text(std::slice::from_ref(&v)))
    });
    Ok(Exit::Ok)
}
