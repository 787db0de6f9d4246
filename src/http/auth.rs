//! Authentication and the guard for handlers: the [`Caller`] extractor turns a bearer token
//! into an actor and remembers the route; [`Caller::scope`] and [`Caller::scopes`] ask the
//! guard (`mc.isolation`) for the [`TenantScope`] every data access needs. A tenant the
//! actor may not see answers exactly like a missing object.
//!
//! The router's middleware gives every request a [`GuardMark`]; the guard sets it, and a
//! successful answer on a token route whose handler never asked the guard is turned into
//! an error, so a new route cannot skip it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::app::App;
use crate::app::guard::{Refused, Subject};
use crate::app::oidc::AuthError;
use crate::domain::actor::{Access, Actor, TenantScope};
use crate::domain::audit::{AuditKind, NewAuditEvent};
use crate::domain::ids::TenantId;

/// Set when a request consulted the guard.
#[derive(Debug, Clone, Default)]
pub struct GuardMark(Arc<AtomicBool>);

impl GuardMark {
    /// Whether the guard was consulted.
    pub fn consulted(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// An authenticated caller on a route.
pub struct Caller {
    /// Who.
    pub actor: Actor,
    /// `METHOD /path/{param}`, as the guard and audit events name it.
    pub route: String,
    mark: GuardMark,
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<App>,
    ) -> Result<Self, Self::Rejection> {
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        let route = format!("{} {path}", parts.method);
        let actor = match bearer(parts) {
            Ok(token) => app.authenticate(token).await,
            Err(e) => Err(e),
        };
        let actor = match actor {
            Ok(a) => a,
            Err(e) => return Err(refuse_credentials(app, &route, e).await),
        };
        Ok(Caller {
            actor,
            route,
            mark: parts
                .extensions
                .get::<GuardMark>()
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// The bearer token of a request.
pub(super) fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(AuthError::Missing(
            "missing Authorization header: send Authorization: Bearer <token>".into(),
        ));
    };
    let text = value
        .to_str()
        .map_err(|_| AuthError::Missing("the Authorization header is not text".into()))?;
    let Some((scheme, token)) = text.split_once(' ') else {
        return Err(AuthError::Missing(
            "expected Authorization: Bearer <token>".into(),
        ));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Missing(format!(
            "unsupported authorization scheme {scheme:?}; use Bearer"
        )));
    }
    Ok(token.trim())
}

/// Counts a refused request and, when a credential was presented, records it in the audit
/// log before answering 401.
pub(super) async fn refuse_credentials(app: &App, route: &str, e: AuthError) -> ApiError {
    app.metrics
        .auth_failures
        .with_label_values(&[e.reason()])
        .inc();
    if !matches!(e, AuthError::Missing(_)) {
        let event = NewAuditEvent {
            kind: AuditKind::AuthenticationFailed,
            tenant: None,
            actor_tenant: None,
            actor: "unauthenticated".into(),
            route: Some(route.to_owned()),
            decision: None,
            detail: serde_json::json!({"reason": e.reason(), "message": e.to_string()}),
        };
        if let Err(err) = app.engine.audit(event, None).await {
            tracing::error!(error = %err, "a refused credential could not be audited");
        }
        tracing::warn!(route, reason = e.reason(), "bearer token refused");
    }
    ApiError::unauthenticated(e.to_string())
}

fn not_found(kind: &str, id: Option<&str>, tenant: &str) -> ApiError {
    match id {
        Some(id) => ApiError::not_found(format!("{kind} {id} not found")),
        None => ApiError::not_found(format!("tenant {tenant} not found")),
    }
}

fn refusal(e: Refused, kind: &str, id: Option<&str>, tenant: &str) -> ApiError {
    match e {
        Refused::Hidden => not_found(kind, id, tenant),
        Refused::Forbidden(m) => ApiError::forbidden(m),
        Refused::Unrecorded(m) => ApiError::unavailable(m),
    }
}

fn tenant_required() -> ApiError {
    ApiError::bad_request("this token is not bound to a tenant: name one with ?tenant=<id>")
}

impl Caller {
    /// A caller already authenticated another way (a console session).
    pub(super) fn authenticated(actor: Actor, parts: &Parts) -> Caller {
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
        Caller {
            actor,
            route: format!("{} {path}", parts.method),
            mark: parts
                .extensions
                .get::<GuardMark>()
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Asks the guard for a scope on `tenant`.
    async fn guard(
        &self,
        app: &App,
        tenant: &TenantId,
        action: Access,
        kind: &str,
        id: Option<&str>,
    ) -> Result<TenantScope, ApiError> {
        self.mark.set();
        let subject = Subject { tenant, kind, id };
        app.authorize(&self.actor, action, subject, &self.route)
            .await
            .map_err(|e| refusal(e, kind, id, tenant.as_str()))
    }

    /// The scope for the named tenant (or the actor's own) to take `action` on the object
    /// `kind`/`id`, if the guard allows it.
    pub async fn scope(
        &self,
        app: &App,
        named: Option<&str>,
        action: Access,
        kind: &str,
        id: Option<&str>,
    ) -> Result<TenantScope, ApiError> {
        let named = match named {
            Some(t) => Some(TenantId::new(t).map_err(|_| not_found(kind, id, t))?),
            None => None,
        };
        let tenant = self
            .actor
            .target_tenant(named.as_ref())
            .map_err(|_| tenant_required())?;
        if !app.engine.config().tenants.contains_key(&tenant) {
            // No such tenant: nothing to guard and nothing to record (a name nobody serves
            // must not grow a namespace of decisions); the answer is the one another
            // tenant's name gets.
            self.mark.set();
            return Err(not_found(kind, id, tenant.as_str()));
        }
        self.guard(app, &tenant, action, kind, id).await
    }

    /// The scopes to look in: the named tenant's (or the actor's own), or for an
    /// appliance-wide actor naming none, every configured tenant's.
    pub async fn scopes(
        &self,
        app: &App,
        named: Option<&str>,
        action: Access,
        kind: &str,
        id: Option<&str>,
    ) -> Result<Vec<TenantScope>, ApiError> {
        self.mark.set();
        if named.is_some() || self.actor.tenant.is_some() {
            return Ok(vec![self.scope(app, named, action, kind, id).await?]);
        }
        let mut out = Vec::new();
        for tenant in app.tenant_ids() {
            out.push(self.guard(app, &tenant, action, kind, id).await?);
        }
        Ok(out)
    }

    /// Asks the guard whether the caller may take `action` on appliance-wide data of `kind`
    /// (every tenant's, and the appliance's own).
    pub async fn appliance(&self, app: &App, action: Access, kind: &str) -> Result<(), ApiError> {
        self.mark.set();
        app.authorize_appliance(&self.actor, action, kind, &self.route)
            .await
            .map_err(|e| refusal(e, kind, None, ""))
    }

    /// The object `kind`/`id` in a tenant the guard lets the caller read (the named one,
    /// the actor's own, or for appliance-wide actors any), found by `lookup`. When it is in
    /// none of them, the attempt is recorded if the object exists in another tenant, and
    /// the answer is "not found" either way.
    pub async fn locate<T, E: Into<ApiError>>(
        &self,
        app: &App,
        named: Option<&str>,
        kind: &str,
        id: &str,
        lookup: impl Fn(&TenantScope) -> Result<Option<T>, E>,
    ) -> Result<(TenantScope, T), ApiError> {
        for scope in self
            .scopes(app, named, Access::Read, kind, Some(id))
            .await?
        {
            if let Some(found) = lookup(&scope).map_err(Into::into)? {
                return Ok((scope, found));
            }
        }
        let exists = |s: &TenantScope| lookup(s).is_ok_and(|v| v.is_some());
        let tenant = self.actor.tenant.as_ref().map_or("", |t| t.as_str());
        match app
            .probe_other_tenants(&self.actor, Access::Read, kind, id, &self.route, exists)
            .await
        {
            Err(Refused::Unrecorded(m)) => Err(ApiError::unavailable(m)),
            _ => Err(not_found(kind, Some(id), tenant)),
        }
    }
}
