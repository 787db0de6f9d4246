//! Authentication and tenant scoping for handlers: the [`Authed`] extractor turns a bearer
//! token into an actor; [`scope`] turns an actor and a named tenant into the
//! [`TenantScope`] that every data access needs. A tenant the actor may not see answers
//! exactly like a missing object.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::app::App;
use crate::domain::actor::{Access, Actor, ScopeError, TenantScope};
use crate::domain::ids::TenantId;

/// An authenticated caller.
pub struct Authed(pub Actor);

impl FromRequestParts<Arc<App>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthenticated(
                "missing Authorization header: send Authorization: Bearer <token>",
            ));
        };
        let text = value
            .to_str()
            .map_err(|_| ApiError::unauthenticated("the Authorization header is not text"))?;
        let Some((scheme, token)) = text.split_once(' ') else {
            return Err(ApiError::unauthenticated(
                "expected Authorization: Bearer <token>",
            ));
        };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::unauthenticated(format!(
                "unsupported authorization scheme {scheme:?}; use Bearer"
            )));
        }
        app.authenticate(token.trim())
            .map(Authed)
            .ok_or_else(|| ApiError::unauthenticated("the token is not valid"))
    }
}

/// The scope for a request: the named tenant (or the actor's own) with an access.
/// `what` names the object for the not-found message, e.g. `execution ex_…`.
pub fn scope(
    actor: &Actor,
    named: Option<&str>,
    access: Access,
    what: &str,
) -> Result<TenantScope, ApiError> {
    let not_found = || ApiError::not_found(format!("{what} not found"));
    let named = match named {
        Some(t) => Some(TenantId::new(t).map_err(|_| not_found())?),
        None => None,
    };
    let tenant = actor.target_tenant(named.as_ref()).map_err(|_| {
        ApiError::bad_request("this token is not bound to a tenant: name one with ?tenant=<id>")
    })?;
    actor.scope(&tenant, access).map_err(|e| match e {
        ScopeError::OtherTenant { .. } => not_found(),
        ScopeError::MissingRole { access, .. } => {
            ApiError::forbidden(format!("the token's roles do not grant {access} access"))
        }
        ScopeError::TenantRequired { .. } => {
            ApiError::bad_request("this token is not bound to a tenant: name one with ?tenant=<id>")
        }
    })
}

/// Scopes an appliance-wide actor may try when no tenant is named (every configured
/// tenant), or the single scope of a tenant-bound actor.
pub fn candidate_scopes(
    app: &App,
    actor: &Actor,
    named: Option<&str>,
    access: Access,
    what: &str,
) -> Result<Vec<TenantScope>, ApiError> {
    if named.is_some() || actor.tenant.is_some() {
        return Ok(vec![scope(actor, named, access, what)?]);
    }
    app.tenant_ids()
        .iter()
        .map(|t| scope(actor, Some(t.as_str()), access, what))
        .collect()
}
