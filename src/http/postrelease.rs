//! Post-release routes (appliance-wide actors only): the last validation, running one now,
//! and an archived evidence bundle.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;
use crate::app::App;
use crate::app::postrelease::Report;
use crate::domain::actor::Access;

/// What the guard calls post-release validation.
const KIND: &str = "postrelease";

/// `GET /api/v1/postrelease`: the last validation.
pub async fn last(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Report>, ApiError> {
    caller.appliance(&app, Access::Read, KIND).await?;
    app.last_post_release()?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no post-release validation has run yet"))
}

/// `POST /api/v1/postrelease`: validates now; readiness follows the result.
pub async fn run(State(app): State<Arc<App>>, caller: Caller) -> Result<Json<Report>, ApiError> {
    caller.appliance(&app, Access::Audit, KIND).await?;
    app.validate_post_release("demand")
        .await
        .map(Json)
        .map_err(ApiError::internal)
}

/// `GET /api/v1/postrelease/{id}/evidence`: the archived evidence bundle (tar.gz).
pub async fn evidence(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.appliance(&app, Access::Read, KIND).await?;
    let bytes = app
        .post_release_evidence(&id)?
        .ok_or_else(|| ApiError::not_found(format!("no post-release evidence {id:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{id}.tar.gz\""),
            ),
        ],
        Body::from(bytes),
    )
        .into_response())
}
