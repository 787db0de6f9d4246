//! Catalog routes: the packages and policy bundles published into the appliance (shared by
//! every tenant, readable by any reader), publication of a signed release, its
//! installation, and the release as published for offline verification. Publishing and
//! installing are for appliance-wide administrators; both verify the supply chain first.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use crate::app::App;
use crate::app::catalog::CatalogError;
use crate::domain::actor::Access;
use crate::domain::package::{CatalogEntry, Kind};

/// What the guard calls the catalog.
const KIND: &str = "catalog";

/// Query of the list route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this kind: `workflow-package` or `policy-bundle`.
    pub kind: Option<String>,
    /// Only this name.
    pub name: Option<String>,
}

/// The catalog.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CatalogList {
    /// Entries by kind, name and version.
    pub items: Vec<CatalogEntry>,
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Invalid(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "release_invalid", m)
            }
            CatalogError::Unverified { ref failures, .. } => {
                ApiError::unverified(e.to_string(), failures.clone())
            }
            CatalogError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "version_exists", m),
            CatalogError::NotFound(m) => ApiError::not_found(m),
            CatalogError::Store(s) => s.into(),
        }
    }
}

fn kind(text: &str) -> Result<Kind, ApiError> {
    Kind::parse(text).ok_or_else(|| {
        ApiError::not_found(format!(
            "no catalog kind {text:?}: use workflow-package or policy-bundle"
        ))
    })
}

/// Runs blocking catalog work (verification, archive reads) off the executor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CatalogError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(Into::into)
}

/// `GET /api/v1/catalog`
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> Result<Json<CatalogList>, ApiError> {
    caller.appliance(&app, Access::Read, KIND).await?;
    let wanted = p.kind.as_deref().map(kind).transpose()?;
    let items = app
        .catalog()?
        .into_iter()
        .filter(|e| wanted.is_none_or(|k| e.kind == k))
        .filter(|e| p.name.as_ref().is_none_or(|n| &e.name == n))
        .collect();
    Ok(Json(CatalogList { items }))
}

/// `GET /api/v1/catalog/{kind}/{name}/{version}`
pub async fn get(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((k, name, version)): Path<(String, String, String)>,
) -> Result<Json<CatalogEntry>, ApiError> {
    caller.appliance(&app, Access::Read, KIND).await?;
    Ok(Json(app.catalog_entry(kind(&k)?, &name, &version)?))
}

/// `GET /api/v1/catalog/{kind}/{name}/{version}/release`: the release as published, a
/// tar.gz of the archive and its evidence, for `maestro package verify` elsewhere.
pub async fn release(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((k, name, version)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    caller.appliance(&app, Access::Read, KIND).await?;
    let bytes = app.catalog_release(kind(&k)?, &name, &version)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-{version}.release.tar.gz\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /api/v1/catalog`: the body is a release (a tar.gz of the release directory's
/// files). 201 when published, 200 when the same archive already was.
pub async fn publish(
    State(app): State<Arc<App>>,
    caller: Caller,
    body: Body,
) -> Result<Response, ApiError> {
    caller.appliance(&app, Access::Publish, KIND).await?;
    let limit = app.config.limits.max_release_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the release exceeds limits.max_release_bytes ({limit} bytes)"),
        )
    })?;
    let actor = caller.actor.clone();
    let published = blocking(move || app.publish(&actor, &bytes)).await?;
    let status = if published.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(published.entry)).into_response())
}

/// `POST /api/v1/catalog/{kind}/{name}/{version}/install`
pub async fn install(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((k, name, version)): Path<(String, String, String)>,
) -> Result<Json<CatalogEntry>, ApiError> {
    caller.appliance(&app, Access::Publish, KIND).await?;
    let kind = kind(&k)?;
    let actor = caller.actor.clone();
    blocking(move || app.install(&actor, kind, &name, &version))
        .await
        .map(Json)
}
