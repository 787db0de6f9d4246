//! Who is calling and what they may touch: roles, actors and the tenant scope.
//!
//! A [`TenantScope`] is the only way to read or write tenant data in the store. It is made
//! by the guard (`app::guard`) after the `mc.isolation` policy allowed the access or, for
//! the appliance's own work (recovery, embedded CLI runs), by [`TenantScope::system`].

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
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }

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
    /// Read the audit log.
    Audit,
    /// Publish and install catalog packages (appliance-wide administrators).
    Publish,
    /// Copy the whole data directory, signing key included (appliance-wide administrators).
    Backup,
}

impl Access {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Run => "run",
            Access::Audit => "audit",
            Access::Publish => "publish",
            Access::Backup => "backup",
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

/// Why no tenant could be chosen for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("actor {subject:?} is not bound to a tenant: name one")]
pub struct TenantRequired {
    /// The actor.
    pub subject: String,
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

    /// The tenant a request is about: the named one, or the actor's own.
    pub fn target_tenant(&self, named: Option<&TenantId>) -> Result<TenantId, TenantRequired> {
        match (named, &self.tenant) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(own)) => Ok(own.clone()),
            (None, None) => Err(TenantRequired {
                subject: self.subject.clone(),
            }),
        }
    }

    /// Whether `tenant` is another tenant than the actor's own (appliance-wide actors
    /// belong to none, so nothing is "other" to them).
    pub fn is_other_tenant(&self, tenant: &TenantId) -> bool {
        self.tenant.as_ref().is_some_and(|own| own != tenant)
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
    /// A scope the guard granted after `mc.isolation` allowed the access. Only the guard
    /// (`app::guard`) calls this.
    pub(crate) fn granted(tenant: TenantId, subject: &str, access: Access) -> Self {
        TenantScope {
            tenant,
            subject: subject.to_owned(),
            access,
        }
    }

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
    fn the_target_tenant_is_named_or_the_actors_own() {
        let viewer = Actor {
            subject: "v".into(),
            tenant: Some(t("acme")),
            roles: vec![Role::Viewer],
        };
        assert_eq!(viewer.target_tenant(None).unwrap(), t("acme"));
        assert_eq!(
            viewer.target_tenant(Some(&t("globex"))).unwrap(),
            t("globex")
        );
        assert!(viewer.is_other_tenant(&t("globex")));
        assert!(!viewer.is_other_tenant(&t("acme")));
        let admin = Actor {
            subject: "root".into(),
            tenant: None,
            roles: vec![Role::Admin],
        };
        assert!(admin.target_tenant(None).is_err());
        assert!(!admin.is_other_tenant(&t("globex")));
    }
}
