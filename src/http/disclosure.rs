//! Disclosure pack routes: a tenant's pack for one region, or one execution's. The pack is
//! built off the async runtime into an unnamed temporary file in the data directory, then
//! streamed; its SHA-256 is in the `X-Maestro-Pack-Sha256` header.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use crate::app::App;
use crate::app::disclosure::{DisclosureError, PackInfo, PackRequest};
use crate::domain::actor::{Access, TenantScope};
use crate::domain::disclosure::{Explain, MEDIA_TYPE};
use crate::domain::ids::ExecutionId;

/// What the guard calls a pack.
const KIND: &str = "disclosure";

/// Query of both pack routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackParams {
    /// The region (required).
    pub region: Option<String>,
    /// The tenant, for tokens not bound to one.
    pub tenant: Option<String>,
    /// Include artifact bytes.
    #[serde(default)]
    pub artifacts: bool,
    /// `denies` (default) or `all`: which decisions are explained rule by rule.
    pub explain: Option<String>,
}

impl PackParams {
    fn request(&self, execution: Option<ExecutionId>) -> Result<PackRequest, ApiError> {
        let region = self
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ApiError::bad_request("the query parameter region is required"))?;
        let explain = match self.explain.as_deref() {
            None => Explain::Denies,
            Some(e) => Explain::parse(e).ok_or_else(|| {
                ApiError::bad_request(format!("explain {e:?} is not one of denies, all"))
            })?,
        };
        Ok(PackRequest {
            region,
            execution,
            artifact_bytes: self.artifacts,
            explain,
        })
    }
}

/// `GET /api/v1/disclosure` (and `/api/disclosure`)
pub async fn tenant_pack(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(p): Query<PackParams>,
) -> Result<Response, ApiError> {
    let scope = caller
        .scope(&app, p.tenant.as_deref(), Access::Read, KIND, None)
        .await?;
    let req = p.request(None)?;
    pack_response(app, scope, req).await
}

/// `GET /api/executions/{id}/disclosure` (and under `/api/v1/`)
pub async fn execution_pack(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<PackParams>,
) -> Result<Response, ApiError> {
    let parsed = ExecutionId::new(&id).ok();
    let (scope, id) = caller
        .locate(&app, p.tenant.as_deref(), "execution", &id, |s| {
            match &parsed {
                Some(p) => app.engine.store().read()?.execution(s, p),
                None => Ok(None),
            }
            .map(|e| e.map(|e| e.id))
        })
        .await?;
    let req = p.request(Some(id))?;
    pack_response(app, scope, req).await
}

async fn pack_response(
    app: Arc<App>,
    scope: TenantScope,
    req: PackRequest,
) -> Result<Response, ApiError> {
    let built = tokio::task::spawn_blocking(move || {
        let mut file = tempfile::tempfile_in(app.engine.store().dir())?;
        let info = app.disclosure_pack(&scope, &req, std::io::BufWriter::new(&mut file))?;
        std::io::Seek::rewind(&mut file)?;
        Ok::<_, DisclosureError>((info, scope, file))
    })
    .await
    .map_err(ApiError::internal)?;
    let (info, scope, file) = built.map_err(|e| match e {
        DisclosureError::UnknownRegion { .. } => ApiError::bad_request(e.to_string()),
        DisclosureError::NotFinal(_) | DisclosureError::OutsideRegion { .. } => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_disclosable",
            e.to_string(),
        ),
        DisclosureError::NotFound(_) => ApiError::not_found(e.to_string()),
        other => ApiError::internal(other),
    })?;
    tracing::info!(tenant = %scope.tenant(), region = %info.region, executions = info.executions, sha256 = %info.sha256, "disclosure pack");
    Ok(stream(file, &scope, &info))
}

fn stream(file: std::fs::File, scope: &TenantScope, info: &PackInfo) -> Response {
    let name = format!("disclosure-{}-{}.tar.gz", scope.tenant(), info.region);
    let mut resp = super::file_body(file).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    if let Ok(v) = HeaderValue::from_str(&info.bytes.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&info.sha256.to_string()) {
        h.insert("x-maestro-pack-sha256", v);
    }
    if let Ok(v) = HeaderValue::from_str(&info.executions.to_string()) {
        h.insert("x-maestro-pack-executions", v);
    }
    resp
}
