//! `GET /api/v1/search`: the provenance search. The guard's scopes decide which tenants are
//! searched; the query text never does.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::Caller;
use super::error::ApiError;
use crate::app::App;
use crate::domain::actor::{Access, TenantScope};
use crate::domain::search::{self, Results};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 20;

/// Query parameters of a search.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// The query (see docs/search.md); empty lists everything visible, newest first.
    #[serde(default)]
    pub q: String,
    /// Page size, 1-100.
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// The tenant, for tokens not bound to one (default: every tenant the token may read).
    pub tenant: Option<String>,
}

/// Parses `q` and runs it on the guard's scopes, from `cursor`.
pub async fn run(
    app: &Arc<App>,
    scopes: Vec<TenantScope>,
    q: &str,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Results, ApiError> {
    let query = search::parse(q)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.to_string()))?;
    let offset = match cursor {
        None | Some("") => 0,
        Some(c) => c.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "cursor {:?} is not a next_cursor of this search",
                c.chars().take(40).collect::<String>()
            ))
        })?,
    };
    if !(1..=crate::search::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {}",
            crate::search::MAX_LIMIT
        )));
    }
    blocking(app, scopes, query, limit, offset).await
}

/// Runs a search on the guard's scopes off the async executor.
pub async fn blocking(
    app: &Arc<App>,
    scopes: Vec<TenantScope>,
    query: search::Query,
    limit: usize,
    offset: usize,
) -> Result<Results, ApiError> {
    let index = app.search.clone();
    tokio::task::spawn_blocking(move || index.search(&scopes, &query, limit, offset))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// `GET /api/v1/search`
pub async fn search(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(p): Query<SearchParams>,
) -> Result<Json<Results>, ApiError> {
    let scopes = caller
        .scopes(&app, p.tenant.as_deref(), Access::Read, "search", None)
        .await?;
    let results = run(
        &app,
        scopes,
        &p.q,
        p.limit.unwrap_or(DEFAULT_LIMIT),
        p.cursor.as_deref(),
    )
    .await?;
    Ok(Json(results))
}
