//! Execution routes: submit, list, get, receipts (ours and Sigstore bundles), inclusion
//! proofs, receipts by digest.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::auth::Caller;
use super::error::ApiError;
use crate::app::App;
use crate::app::golden::GoldenError;
use crate::domain::actor::{Access, TenantScope};
use crate::domain::duration;
use crate::domain::execution::{Execution, ExecutionStatus, ExecutionSummary};
use crate::domain::ids::{Digest, ExecutionId};
use crate::domain::validate;
use crate::store::ListQuery;

/// Longest a submission may wait for its execution to finish.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// JSON body of a submission.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The manifest (Manifest v1, see /api/v1/schema/manifest-v1.json). Give this or
    /// `workflow`.
    #[serde(default)]
    #[schemars(with = "Option<crate::domain::manifest::Manifest>")]
    pub manifest: Option<Value>,
    /// The name of an embedded workflow (see /api/v1/workflows). Give this or `manifest`.
    #[serde(default)]
    pub workflow: Option<String>,
    /// Mark the run as a synthetic canary (kept out of tenant statistics).
    #[serde(default)]
    pub canary: bool,
    /// The tenant, for tokens not bound to one.
    #[serde(default)]
    pub tenant: Option<String>,
}

/// Query parameters of a submission.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    /// Wait up to this long (e.g. `30s`, at most 5m) for the execution to finish.
    pub wait: Option<String>,
    /// The tenant, for tokens not bound to one (YAML bodies).
    pub tenant: Option<String>,
    /// Canary flag (YAML bodies).
    pub canary: Option<bool>,
}

/// A page of executions.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ExecutionList {
    /// Newest first.
    pub items: Vec<ExecutionSummary>,
    /// Pass as `cursor` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn is_yaml(headers: &HeaderMap) -> Option<bool> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Some(false),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Some(true),
        _ => None,
    }
}

fn json_error(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request(format!(
        "invalid JSON body at line {} column {}: {e}",
        e.line(),
        e.column()
    ))
}

/// `POST /api/v1/executions`
pub async fn submit(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let wait = match q.wait.as_deref() {
        None => None,
        Some(w) => {
            let d = duration::parse(w).map_err(|e| ApiError::bad_request(format!("wait: {e}")))?;
            if d > MAX_WAIT {
                return Err(ApiError::bad_request("wait: at most 5m"));
            }
            Some(d)
        }
    };
    enum Submitted<'a> {
        Yaml(&'a str),
        Json(SubmitRequest),
    }
    let submitted = match is_yaml(&headers) {
        Some(true) => Submitted::Yaml(
            std::str::from_utf8(&body)
                .map_err(|_| ApiError::bad_request("the YAML body is not UTF-8"))?,
        ),
        Some(false) => Submitted::Json(serde_json::from_slice(&body).map_err(|e| json_error(&e))?),
        None => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json ({\"manifest\": …}) or application/yaml (the manifest)",
            ));
        }
    };
    // The guard and a slot of the rate limits before the manifest is validated: a flood past
    // the quota costs little.
    let tenant = match &submitted {
        Submitted::Json(r) => r.tenant.clone().or(q.tenant.clone()),
        Submitted::Yaml(_) => q.tenant.clone(),
    };
    let scope = caller
        .scope(&app, tenant.as_deref(), Access::Run, "executions", None)
        .await?;
    let admitted = app.engine.admit(scope.tenant())?;
    let ctx = app.engine.validation_context();
    let (manifest, canary) = match submitted {
        Submitted::Yaml(text) => (
            validate::load(text, &ctx).map_err(ApiError::manifest_invalid)?,
            q.canary.unwrap_or(false),
        ),
        Submitted::Json(req) => {
            let m = match (req.manifest, req.workflow) {
                (Some(doc), None) => {
                    validate::validate(doc, &ctx).map_err(ApiError::manifest_invalid)?
                }
                (None, Some(name)) => app.named_workflow(&name).map_err(|e| match e {
                    GoldenError::Invalid { problems, .. } => ApiError::manifest_invalid(problems),
                    GoldenError::Unknown { .. } => ApiError::not_found(format!(
                        "workflow {name:?} not found; GET /api/v1/workflows lists them"
                    )),
                    e @ GoldenError::NotInstalled { .. } => ApiError::not_found(e.to_string()),
                })?,
                _ => {
                    return Err(ApiError::bad_request(
                        "give exactly one of \"manifest\" and \"workflow\"",
                    ));
                }
            };
            (m, req.canary || q.canary.unwrap_or(false))
        }
    };
    let exec = app
        .engine
        .submit_admitted(admitted, &scope, &caller.actor, manifest, canary)
        .await?;
    if exec.status == ExecutionStatus::Denied {
        return Err(ApiError::denied(exec));
    }
    let location = format!("/api/v1/executions/{}", exec.id);
    let exec = match wait {
        Some(w) => app
            .engine
            .wait_final(&scope, &exec.id, w)
            .await?
            .unwrap_or(exec),
        None => exec,
    };
    let status = if exec.status.is_final() {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, [(header::LOCATION, location)], Json(exec)).into_response())
}

/// Query of the list route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Filter by status.
    pub status: Option<String>,
    /// Filter by manifest name.
    pub name: Option<String>,
    /// Only canary (true) or regular (false) runs.
    pub canary: Option<bool>,
    /// Page size (1-1000, default 50).
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// The tenant, for tokens not bound to one.
    pub tenant: Option<String>,
}

/// `GET /api/v1/executions`
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> Result<Json<ExecutionList>, ApiError> {
    let scope = caller
        .scope(&app, p.tenant.as_deref(), Access::Read, "executions", None)
        .await?;
    let status = match p.status.as_deref() {
        None => None,
        Some(s) => Some(ExecutionStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status {s:?} is not one of {}",
                ExecutionStatus::ALL.map(|s| s.as_str()).join(", ")
            ))
        })?),
    };
    let after =
        match p.cursor.as_deref() {
            None => None,
            Some(c) => Some(ExecutionId::new(c).map_err(|_| {
                ApiError::bad_request("cursor is not a cursor from a previous page")
            })?),
        };
    let limit = p.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let query = ListQuery {
        status,
        name: p.name,
        canary: p.canary,
        after,
        limit,
    };
    let page = app.engine.store().read()?.list_executions(&scope, &query)?;
    Ok(Json(ExecutionList {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Query naming a tenant.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantParam {
    /// The tenant, for tokens not bound to one.
    pub tenant: Option<String>,
}

/// The execution `id` in a tenant the guard lets the caller read, or "not found".
async fn located(
    app: &App,
    caller: &Caller,
    tenant: Option<&str>,
    id: &str,
) -> Result<(TenantScope, Execution), ApiError> {
    let parsed = ExecutionId::new(id).ok();
    caller
        .locate(app, tenant, "execution", id, |s| match &parsed {
            Some(p) => app.engine.store().read()?.execution(s, p),
            None => Ok(None),
        })
        .await
}

/// `GET /api/v1/executions/{id}`
pub async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(t): Query<TenantParam>,
) -> Result<Json<Execution>, ApiError> {
    located(&app, &caller, t.tenant.as_deref(), &id)
        .await
        .map(|(_, e)| Json(e))
}

/// Query of the receipt route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptParams {
    /// `maestro` (default: the receipt file with its log proof) or `sigstore` (a Sigstore
    /// bundle v0.3).
    pub format: Option<String>,
    /// The tenant, for tokens not bound to one.
    pub tenant: Option<String>,
}

fn receipt_response(
    app: &App,
    scope: &TenantScope,
    id: &ExecutionId,
    format: Option<&str>,
) -> Result<Response, ApiError> {
    let missing = || {
        ApiError::not_found(format!(
            "receipt of execution {id} not found (is the execution final?)"
        ))
    };
    match format.unwrap_or("maestro") {
        "maestro" => {
            let bundle = app
                .engine
                .evidence()
                .receipt_bundle(scope, id)?
                .ok_or_else(missing)?;
            Ok((
                [(header::CONTENT_TYPE, crate::attest::receipt::MEDIA_TYPE)],
                Json(bundle),
            )
                .into_response())
        }
        "sigstore" => {
            let bundle = app
                .engine
                .evidence()
                .sigstore_bundle(scope, id)?
                .ok_or_else(missing)?;
            Ok((
                [(header::CONTENT_TYPE, crate::attest::bundle::MEDIA_TYPE)],
                Json(bundle),
            )
                .into_response())
        }
        other => Err(ApiError::bad_request(format!(
            "format {other:?} is not maestro or sigstore"
        ))),
    }
}

/// `GET /api/v1/executions/{id}/receipt`
pub async fn receipt(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<ReceiptParams>,
) -> Result<Response, ApiError> {
    let (scope, e) = located(&app, &caller, p.tenant.as_deref(), &id).await?;
    receipt_response(&app, &scope, &e.id, p.format.as_deref())
}

/// `GET /api/v1/receipts/{digest}`
pub async fn receipt_by_digest(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(digest): Path<String>,
    Query(p): Query<ReceiptParams>,
) -> Result<Response, ApiError> {
    let parsed = Digest::parse(&digest).ok();
    let (scope, id) = caller
        .locate(
            &app,
            p.tenant.as_deref(),
            "receipt",
            &digest,
            |s| match &parsed {
                Some(d) => app.engine.evidence().receipt_by_digest(s, d),
                None => Ok(None),
            },
        )
        .await?;
    receipt_response(&app, &scope, &id, p.format.as_deref())
}

/// Query of the proof route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofParams {
    /// Prove against the checkpoint of this tree size (default: the latest).
    pub tree_size: Option<u64>,
    /// The tenant, for tokens not bound to one.
    pub tenant: Option<String>,
}

/// `GET /api/v1/executions/{id}/proof`
pub async fn proof(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<ProofParams>,
) -> Result<Json<crate::engine::evidence::InclusionProof>, ApiError> {
    let (scope, e) = located(&app, &caller, p.tenant.as_deref(), &id).await?;
    app.engine
        .evidence()
        .inclusion_proof(&scope, &e.id, p.tree_size)?
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "receipt of execution {id} not found (is the execution final?)"
            ))
        })
}
