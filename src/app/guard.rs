//! The guard: before a route, search, export or page touches tenant data it asks
//! `mc.isolation` whether this actor may take this action on this subject, and only an
//! allow yields the [`TenantScope`] that store reads need.
//!
//! What the guard records, durably and before it answers:
//! - a cross-tenant attempt that policy denies: an `access` decision, a
//!   `cross_tenant_denied` audit event and `mc_tenant_cross_access_total{outcome="denied"}` (`source="probe"` for the isolation
//!   report's own attempts);
//!   the caller is answered exactly like missing data ([`Refused::Hidden`]);
//! - a cross-tenant read that policy allows (auditors, where `data.mc.cross_tenant_readers`
//!   grants it): an `access` decision and a `cross_tenant_read` audit event;
//! - an action on the actor's own tenant that its roles do not grant: an `access` decision
//!   and an `access_denied` audit event ([`Refused::Forbidden`]).
//!
//! A policy that fails to evaluate denies (fail closed).

use serde_json::{Value, json};

use crate::domain::execution::DenyReason;

use super::App;
use super::tokens::PROBE_SUBJECT;
use crate::domain::actor::{Access, Actor, TenantScope};
use crate::domain::audit::{AuditKind, NewAuditEvent};
use crate::domain::ids::TenantId;
use crate::engine::admission;

/// The isolation package.
pub const ISOLATION: &str = "mc.isolation";

/// What a request wants to touch.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The tenant that owns the data.
    pub tenant: &'a TenantId,
    /// What kind of data: `execution`, `executions`, `receipt`, `decision`, `audit`, …
    pub kind: &'a str,
    /// The object's id, when one object is meant.
    pub id: Option<&'a str>,
}

/// Why the guard refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Another tenant's data: answer exactly like missing data.
    #[error("not found")]
    Hidden,
    /// The actor's own tenant, but its roles do not grant the action.
    #[error("{0}")]
    Forbidden(String),
    /// The outcome could not be recorded, so nothing is served.
    #[error("the access decision could not be recorded: {0}")]
    Unrecorded(String),
}

/// The input of `mc.isolation`; `tenant` is `None` for appliance-wide data.
pub fn isolation_input(
    actor: &Actor,
    action: Access,
    tenant: Option<&TenantId>,
    kind: &str,
    id: Option<&str>,
    route: &str,
) -> Value {
    json!({
        "actor": {"subject": actor.subject, "tenant": actor.tenant, "roles": actor.roles},
        "action": action.as_str(),
        "subject": {"tenant": tenant, "kind": kind, "id": id},
        "route": route,
    })
}

impl App {
    /// Asks `mc.isolation` whether `actor` may take `action` on `subject` through `route`
    /// (e.g. `GET /api/v1/executions/{id}`); records what must be recorded (see the module
    /// documentation) before answering.
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: Access,
        subject: Subject<'_>,
        route: &str,
    ) -> Result<TenantScope, Refused> {
        self.check(
            actor,
            action,
            Some(subject.tenant),
            subject.kind,
            subject.id,
            route,
        )
        .await?;
        Ok(TenantScope::granted(
            subject.tenant.clone(),
            &actor.subject,
            action,
        ))
    }

    /// Like [`App::authorize`] for appliance-wide data (every tenant's audit events): the
    /// subject has no tenant, so only appliance-wide actors with a granting role pass.
    pub async fn authorize_appliance(
        &self,
        actor: &Actor,
        action: Access,
        kind: &str,
        route: &str,
    ) -> Result<(), Refused> {
        self.check(actor, action, None, kind, None, route).await
    }

    async fn check(
        &self,
        actor: &Actor,
        action: Access,
        tenant: Option<&TenantId>,
        kind: &str,
        id: Option<&str>,
        route: &str,
    ) -> Result<(), Refused> {
        let policies = self.engine.policies();
        let input = isolation_input(actor, action, tenant, kind, id, route);
        let result = policies.evaluate(ISOLATION, &input);
        let allowed = matches!(&result, Ok(v) if v.allow);
        self.metrics
            .decisions
            .with_label_values(&[ISOLATION, if allowed { "allow" } else { "deny" }])
            .inc();
        let cross = tenant.is_some_and(|t| actor.is_other_tenant(t));
        if allowed && !cross {
            return Ok(());
        }
        let (reasons, decision) = match tenant {
            Some(t) => {
                let d = admission::record(policies, "access", ISOLATION, t, None, input, result);
                (d.reasons.clone(), Some(d))
            }
            None => (
                match result {
                    Ok(v) => v.reasons,
                    Err(e) => vec![DenyReason {
                        code: "policy_error".into(),
                        message: e.to_string(),
                    }],
                },
                None,
            ),
        };
        let event_kind = match (allowed, cross) {
            (true, _) => AuditKind::CrossTenantRead,
            (false, true) => AuditKind::CrossTenantDenied,
            (false, false) => AuditKind::AccessDenied,
        };
        if cross {
            self.metrics
                .cross_tenant_access
                .with_label_values(&[
                    route,
                    if allowed { "allowed" } else { "denied" },
                    if actor.subject.starts_with(PROBE_SUBJECT) {
                        "probe"
                    } else {
                        "request"
                    },
                ])
                .inc();
        }
        let event = NewAuditEvent {
            kind: event_kind,
            tenant: tenant.cloned(),
            actor_tenant: actor.tenant.clone().filter(|_| cross),
            actor: actor.subject.clone(),
            route: Some(route.to_owned()),
            decision: decision.as_ref().map(|d| d.id.clone()),
            detail: json!({
                "action": action.as_str(),
                "kind": kind,
                "id": id,
                "reasons": reasons,
            }),
        };
        let reasons: Vec<String> = reasons.into_iter().map(|r| r.message).collect();
        self.engine
            .audit(event, decision.as_ref())
            .await
            .map_err(|e| Refused::Unrecorded(e.to_string()))?;
        match (allowed, cross) {
            (true, _) => Ok(()),
            (false, true) => {
                tracing::warn!(actor = %actor.subject, tenant = ?tenant, route, "cross-tenant access denied");
                Err(Refused::Hidden)
            }
            (false, false) => Err(Refused::Forbidden(if reasons.is_empty() {
                format!("{} is not allowed", action.as_str())
            } else {
                reasons.join("; ")
            })),
        }
    }

    /// After an object was not found in the actor's own tenant: if it exists in another
    /// tenant the actor may not read, the attempt is recorded like any denied cross-tenant
    /// access (guessed or enumerated ids). The caller answers "not found" either way.
    pub async fn probe_other_tenants(
        &self,
        actor: &Actor,
        action: Access,
        kind: &str,
        id: &str,
        route: &str,
        exists: impl Fn(&TenantScope) -> bool,
    ) -> Result<(), Refused> {
        let Some(own) = &actor.tenant else {
            return Ok(());
        };
        for tenant in self.tenant_ids() {
            if &tenant == own || !exists(&TenantScope::system(tenant.clone(), Access::Read)) {
                continue;
            }
            let subject = Subject {
                tenant: &tenant,
                kind,
                id: Some(id),
            };
            let input = isolation_input(actor, action, Some(&tenant), kind, Some(id), route);
            if matches!(self.engine.policies().evaluate(ISOLATION, &input), Ok(v) if v.allow) {
                // Allowed had the tenant been named (auditors): nothing was read, nothing to record.
                return Ok(());
            }
            return match self.authorize(actor, action, subject, route).await {
                Ok(_) | Err(Refused::Hidden) => Ok(()),
                Err(e) => Err(e),
            };
        }
        Ok(())
    }
}
