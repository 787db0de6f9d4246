//! Residency routes: the auditor's violations (scoped by the guard), an on-demand audit
//! (appliance-wide auditors and administrators), and resolving a violation by hand.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use crate::app::App;
use crate::domain::actor::Access;
use crate::domain::residency::Violation;
use crate::engine::residency::{AuditOutcome, AuditorState, ResolveError};

/// What the guard calls a violation.
const KIND: &str = "residency_violation";

/// Query of the violation list.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// The tenant, for tokens not bound to one.
    pub tenant: Option<String>,
    /// `open` (default), `resolved` or `all`.
    pub status: Option<String>,
}

/// The violations the caller may see, and the auditor's state.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ViolationList {
    /// Violations, by tenant and id.
    pub items: Vec<Violation>,
    /// Whether open violations block new runs (`features.residency_auditor_enforce`).
    pub enforced: bool,
    /// How far the auditor got.
    pub auditor: AuditorState,
}

/// `GET /api/v1/residency/violations`
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> Result<Json<ViolationList>, ApiError> {
    let keep: fn(&Violation) -> bool = match p.status.as_deref().unwrap_or("open") {
        "open" => Violation::is_open,
        "resolved" => |v| !v.is_open(),
        "all" => |_| true,
        other => {
            return Err(ApiError::bad_request(format!(
                "status {other:?} is not one of open, resolved, all"
            )));
        }
    };
    let scopes = caller
        .scopes(&app, p.tenant.as_deref(), Access::Read, KIND, None)
        .await?;
    let r = app.engine.store().read()?;
    let mut items = Vec::new();
    for scope in &scopes {
        items.extend(r.violations(scope, false)?.into_iter().filter(keep));
    }
    Ok(Json(ViolationList {
        items,
        enforced: app.engine.residency_enforced(),
        auditor: app.engine.residency_state()?,
    }))
}

/// Query of an on-demand audit.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Check every receipt, not only those since the last audit.
    #[serde(default)]
    pub full: bool,
    /// The tenant whose counts to answer with (tenant-bound tokens: their own).
    pub tenant: Option<String>,
}

/// `POST /api/v1/residency/audit`: runs the auditor now (over every tenant's receipts; the
/// answer counts only the named tenant's, or the caller's own, unless an appliance-wide
/// auditor or administrator names none).
pub async fn audit(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(p): Query<AuditParams>,
) -> Result<Json<AuditOutcome>, ApiError> {
    let only = if p.tenant.is_none() && caller.actor.tenant.is_none() {
        caller
            .appliance(&app, Access::Audit, "residency_audit")
            .await?;
        None
    } else {
        Some(
            caller
                .scope(
                    &app,
                    p.tenant.as_deref(),
                    Access::Audit,
                    "residency_audit",
                    None,
                )
                .await?,
        )
    };
    let engine = app.engine.clone();
    let outcome = tokio::task::spawn_blocking(move || engine.audit_residency(p.full))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(match only {
        Some(scope) => outcome.for_tenant(scope.tenant().as_str()),
        None => outcome,
    }))
}

/// Why a violation is resolved by hand.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// What was done (e.g. "artifact moved to eu-bucket and deleted from us-bucket").
    pub reason: String,
}

/// `POST /api/v1/residency/violations/{id}/resolve`
pub async fn resolve(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(t): Query<super::executions::TenantParam>,
    body: Bytes,
) -> Result<Json<Violation>, ApiError> {
    // Found like any object (another tenant's id answers "not found" and is recorded), then
    // resolving needs the audit role on that tenant.
    let (found, ()) = caller
        .locate(&app, t.tenant.as_deref(), KIND, &id, |s| {
            Ok::<_, ApiError>(
                app.engine
                    .store()
                    .read()?
                    .violations(s, false)?
                    .iter()
                    .any(|v| v.id == id)
                    .then_some(()),
            )
        })
        .await?;
    let scope = caller
        .scope(
            &app,
            Some(found.tenant().as_str()),
            Access::Audit,
            KIND,
            Some(&id),
        )
        .await?;
    let req: ResolveRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"reason\": \"...\"}}: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let reason = req.reason.trim();
    if reason.is_empty() || reason.len() > 2000 {
        return Err(ApiError::bad_request(
            "reason must say what was done, in 1 to 2000 characters",
        ));
    }
    let engine = app.engine.clone();
    let by = caller.actor.subject.clone();
    let reason = reason.to_owned();
    let result =
        tokio::task::spawn_blocking(move || engine.resolve_violation(&scope, &id, &by, &reason))
            .await
            .map_err(ApiError::internal)?;
    match result {
        Ok(v) => Ok(Json(v)),
        Err(ResolveError::NotFound(id)) => {
            Err(ApiError::not_found(format!("{KIND} {id} not found")))
        }
        Err(e @ ResolveError::AlreadyResolved(_)) => Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "already_resolved",
            e.to_string(),
        )),
        Err(ResolveError::Engine(e)) => Err(e.into()),
    }
}
