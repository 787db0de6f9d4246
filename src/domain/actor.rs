//! Who is calling and what they may touch: roles, actors and the tenant scope.
//!
//! A [`TenantScope`] is the only way to read or write tenant data in the store. It is made
//! by [`Actor::scope`] (which checks the actor's tenant binding and roles) or, for the
//! appliance's own work (recovery, embedded CLI runs), by [`TenantScope::system`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::TenantId;

/// What an actor is allowed to do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Read executions, receipts and decisions of its tenant.
    Viewer,
    /// Viewer, plus submit executions.
    Operator,
    /// Read evidence; cross-tenant reads only where policy allows, always audited.
    Auditor,
    /// Everything, on every tenant.
    Admin,
}

impl Role {
    /// Parses the snake_case name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "auditor" => Some(Self::Auditor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// The kind of access a scope grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read tenant data.
    Read,
    /// Submit executions.
    Run,
}

impl Access {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Run => "run",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    /// Stable subject: the token name, or the OIDC `sub`.
    pub subject: String,
    /// The tenant the actor belongs to; `None` only for appliance-wide admins.
    pub tenant: Option<TenantId>,
    /// Granted roles.
    pub roles: Vec<Role>,
}

/// Why a scope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The actor is bound to another tenant. Callers answer this like a missing object.
    #[error("actor {subject:?} is not a member of tenant {tenant:?}")]
    OtherTenant {
        /// The actor.
        subject: String,
        /// The tenant asked for.
        tenant: String,
    },
    /// The actor's roles do not grant the access.
    #[error("actor {subject:?} lacks a role that grants {access} access")]
    MissingRole {
        /// The actor.
        subject: String,
        /// The access asked for.
        access: &'static str,
    },
    /// An appliance-wide actor must say which tenant it means.
    #[error("actor {subject:?} is not bound to a tenant: name one")]
    TenantRequired {
        /// The actor.
        subject: String,
    },
}

impl Actor {
    /// The appliance acting for itself (recovery, embedded CLI runs).
    pub fn system() -> Self {
        Actor {
            subject: "system:maestro".into(),
            tenant: None,
            roles: vec![Role::Admin],
        }
    }

    /// Whether the actor has a role.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether any role grants the access.
    pub fn grants(&self, access: Access) -> bool {
        self.roles.iter().any(|r| match (r, access) {
            (Role::Admin, _) => true,
            (Role::Operator, _) => true,
            (Role::Viewer | Role::Auditor, Access::Read) => true,
            (Role::Viewer | Role::Auditor, Access::Run) => false,
        })
    }

    /// The tenant a request is about: the named one, or the actor's own.
    pub fn target_tenant(&self, named: Option<&TenantId>) -> Result<TenantId, ScopeError> {
        match (named, &self.tenant) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(own)) => Ok(own.clone()),
            (None, None) => Err(ScopeError::TenantRequired {
                subject: self.subject.clone(),
            }),
        }
    }

    /// A scope on `tenant` for `access`, if the actor may have it.
    pub fn scope(&self, tenant: &TenantId, access: Access) -> Result<TenantScope, ScopeError> {
        let cross = self.tenant.as_ref().is_some_and(|own| own != tenant);
        if cross {
            return Err(ScopeError::OtherTenant {
                subject: self.subject.clone(),
                tenant: tenant.to_string(),
            });
        }
        if !self.grants(access) {
            return Err(ScopeError::MissingRole {
                subject: self.subject.clone(),
                access: access.as_str(),
            });
        }
        Ok(TenantScope {
            tenant: tenant.clone(),
            subject: self.subject.clone(),
            access,
        })
    }
}

/// Proof that an actor may access one tenant's data. Store and engine functions that touch
/// tenant data take one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant: TenantId,
    subject: String,
    access: Access,
}

impl TenantScope {
    /// A scope for the appliance's own work on a tenant (recovery, post-release validation,
    /// embedded CLI runs). Never built from request input.
    pub fn system(tenant: TenantId, access: Access) -> Self {
        TenantScope {
            tenant,
            subject: Actor::system().subject,
            access,
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Who holds the scope.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The access it grants.
    pub fn access(&self) -> Access {
        self.access
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> TenantId {
        TenantId::new(s).unwrap()
    }

    #[test]
    fn tenant_bound_actors_stay_in_their_tenant() {
        let viewer = Actor {
            subject: "v".into(),
            tenant: Some(t("acme")),
            roles: vec![Role::Viewer],
        };
        assert!(viewer.scope(&t("acme"), Access::Read).is_ok());
        assert!(matches!(
            viewer.scope(&t("acme"), Access::Run),
            Err(ScopeError::MissingRole { .. })
        ));
        assert!(matches!(
            viewer.scope(&t("globex"), Access::Read),
            Err(ScopeError::OtherTenant { .. })
        ));
        let admin_of_acme = Actor {
            subject: "a".into(),
            tenant: Some(t("acme")),
            roles: vec![Role::Admin],
        };
        assert!(admin_of_acme.scope(&t("globex"), Access::Read).is_err());
    }

    #[test]
    fn appliance_admins_must_name_a_tenant() {
        let admin = Actor {
            subject: "root".into(),
            tenant: None,
            roles: vec![Role::Admin],
        };
        assert!(admin.target_tenant(None).is_err());
        let tenant = admin.target_tenant(Some(&t("globex"))).unwrap();
        let scope = admin.scope(&tenant, Access::Run).unwrap();
        assert_eq!(scope.tenant().as_str(), "globex");
    }
}
