//! Audit and decision routes: the hash-linked audit log (a tenant's events; every event for
//! appliance-wide administrators), recorded policy decisions, and their replayed
//! explanations.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use super::executions::TenantParam;
use crate::app::App;
use crate::app::replay::{Replay, ReplayError};
use crate::domain::actor::Access;
use crate::domain::audit::AuditEvent;
use crate::domain::execution::Decision;
use crate::domain::ids::DecisionId;

/// Query of the audit route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// The tenant; appliance-wide administrators naming none see every event.
    pub tenant: Option<String>,
    /// Only events after this sequence number (the `next_after` of the previous page).
    pub after: Option<u64>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<usize>,
}

/// A page of audit events, oldest first.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuditPage {
    /// The events.
    pub items: Vec<AuditEvent>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// `GET /api/v1/audit`
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(p): Query<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let items = if p.tenant.is_none() && caller.actor.tenant.is_none() {
        caller.appliance(&app, Access::Audit, "audit").await?;
        app.engine.store().read()?.audit_all(p.after, limit)?
    } else {
        let scope = caller
            .scope(&app, p.tenant.as_deref(), Access::Audit, "audit", None)
            .await?;
        app.engine
            .store()
            .read()?
            .audit_of(&scope, p.after, limit)?
    };
    let next_after = (items.len() == limit)
        .then(|| items.last().map(|e| e.seq))
        .flatten();
    Ok(Json(AuditPage { items, next_after }))
}

/// The decision `id` in a tenant the guard lets the caller read, or "not found".
async fn located(
    app: &App,
    caller: &Caller,
    tenant: Option<&str>,
    id: &str,
) -> Result<Decision, ApiError> {
    let parsed = DecisionId::new(id).ok();
    caller
        .locate(app, tenant, "decision", id, |s| match &parsed {
            Some(d) => app.engine.store().read()?.decision(s, d),
            None => Ok(None),
        })
        .await
        .map(|(_, d)| d)
}

/// `GET /api/v1/decisions/{id}`
pub async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(t): Query<TenantParam>,
) -> Result<Json<Decision>, ApiError> {
    located(&app, &caller, t.tenant.as_deref(), &id)
        .await
        .map(Json)
}

/// `GET /api/v1/decisions/{id}/explain`
pub async fn explain(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(t): Query<TenantParam>,
) -> Result<Json<Replay>, ApiError> {
    let decision = located(&app, &caller, t.tenant.as_deref(), &id).await?;
    app.replay(&decision).map(Json).map_err(|e| match e {
        ReplayError::Store(s) => s.into(),
        other => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_replayable",
            format!("decision {id} cannot be replayed: {other}"),
        ),
    })
}
