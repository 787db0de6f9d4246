//! Report routes: run the tenant isolation report against the live appliance and archive it
//! as signed evidence; read an archived report.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::auth::Caller;
use super::error::ApiError;
use super::executions::TenantParam;
use crate::app::App;
use crate::app::report::ArchivedReport;
use crate::domain::actor::Access;

/// What the guard calls a report.
const KIND: &str = "isolation_report";

/// `POST /api/v1/reports/isolation`: about the named tenant (or the caller's own), or for
/// appliance-wide auditors and administrators naming none, about the whole appliance.
pub async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(t): Query<TenantParam>,
) -> Result<(StatusCode, Json<ArchivedReport>), ApiError> {
    let owner = if t.tenant.is_none() && caller.actor.tenant.is_none() {
        caller.appliance(&app, Access::Audit, KIND).await?;
        None
    } else {
        Some(
            caller
                .scope(&app, t.tenant.as_deref(), Access::Audit, KIND, None)
                .await?,
        )
    };
    let focus = owner.as_ref().map(|s| s.tenant().clone());
    let report = super::probe::isolation_report(&app, &caller.actor, focus).await?;
    let archived = app
        .archive_report(&report, owner)
        .await
        .map_err(|e| ApiError::unavailable(format!("the report could not be archived: {e}")))?;
    tracing::info!(id = %report.id, passed = report.passed, "isolation report archived");
    Ok((StatusCode::CREATED, Json(archived)))
}

/// `GET /api/v1/reports/isolation/{id}`
pub async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(t): Query<TenantParam>,
) -> Result<Json<ArchivedReport>, ApiError> {
    if t.tenant.is_none() && caller.actor.tenant.is_none() {
        caller.appliance(&app, Access::Read, KIND).await?;
        if let Some(r) = app.archived_report(None, &id)? {
            return Ok(Json(r));
        }
    }
    caller
        .locate(&app, t.tenant.as_deref(), KIND, &id, |s| {
            app.archived_report(Some(s), &id)
        })
        .await
        .map(|(_, r)| Json(r))
}
