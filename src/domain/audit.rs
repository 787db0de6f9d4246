//! Audit events: an append-only, hash-linked record of security-relevant events (denied and
//! cross-tenant access, auditor reads, policy activation). Each event's hash covers its
//! content and the previous event's hash, so any rewrite or removal breaks the chain.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::{DecisionId, Digest, TenantId};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// An actor tried to reach another tenant's data; it was answered like missing data.
    CrossTenantDenied,
    /// An actor lacked a role for an action on its own tenant.
    AccessDenied,
    /// An auditor read another tenant's data, as policy allows.
    CrossTenantRead,
    /// A policy bundle became active.
    PolicyActivated,
    /// A submission was denied by admission policy.
    AdmissionDenied,
    /// A bearer token was presented and refused (forged, expired, wrong issuer or audience,
    /// unknown key, disallowed algorithm, unknown API token).
    AuthenticationFailed,
    /// Evidence (a signed report) was archived.
    EvidenceArchived,
    /// An operator resolved a residency violation by hand.
    ResidencyViolationResolved,
    /// A package or policy bundle did not verify under the layout: refused with
    /// `intoto_verify_enforce`, used with this warning without it.
    SupplyChainUnverified,
    /// The set of keys trusted to sign the in-toto layout changed.
    SupplyChainKeysRotated,
    /// A package or policy bundle was published into the catalog.
    PackagePublished,
    /// A catalog package or policy bundle was installed (verified again, ready for use).
    PackageInstalled,
    /// A backup of the whole data directory was taken through the API.
    BackupTaken,
}

/// An audit event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEvent {
    /// Position in the log (from 0).
    pub seq: u64,
    /// When.
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// What.
    pub kind: AuditKind,
    /// The tenant whose data was concerned (absent for appliance-wide events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    /// The actor's tenant, when it differs (cross-tenant events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_tenant: Option<TenantId>,
    /// Who.
    pub actor: String,
    /// The route, for API events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The decision recorded with the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionId>,
    /// Event details.
    #[serde(default)]
    pub detail: Value,
    /// Hash of the previous event (absent for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Digest>,
    /// SHA-256 of the RFC 8785 canonical JSON of this event without `hash`.
    pub hash: Digest,
}

/// An event before it takes its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    /// What.
    pub kind: AuditKind,
    /// The tenant concerned.
    pub tenant: Option<TenantId>,
    /// The actor's tenant, when it differs.
    pub actor_tenant: Option<TenantId>,
    /// Who.
    pub actor: String,
    /// The route.
    pub route: Option<String>,
    /// The decision.
    pub decision: Option<DecisionId>,
    /// Details.
    pub detail: Value,
}

impl NewAuditEvent {
    /// An appliance-wide event of the appliance itself (no tenant, route or decision).
    pub fn system(kind: AuditKind, detail: Value) -> Self {
        NewAuditEvent {
            kind,
            tenant: None,
            actor_tenant: None,
            actor: super::actor::Actor::system().subject,
            route: None,
            decision: None,
            detail,
        }
    }
}

fn content_hash(e: &AuditEvent) -> Digest {
    let mut v = serde_json::to_value(e).expect("event serializes");
    if let Some(o) = v.as_object_mut() {
        o.remove("hash");
    }
    Digest::of(&serde_json_canonicalizer::to_vec(&v).expect("json canonicalizes"))
}

impl NewAuditEvent {
    /// Places the event after `prev` (the previous event's seq and hash).
    pub fn seal(self, prev: Option<(u64, Digest)>, at: Timestamp) -> AuditEvent {
        let mut e = AuditEvent {
            seq: prev.map_or(0, |(s, _)| s + 1),
            at,
            kind: self.kind,
            tenant: self.tenant,
            actor_tenant: self.actor_tenant,
            actor: self.actor,
            route: self.route,
            decision: self.decision,
            detail: self.detail,
            prev: prev.map(|(_, h)| h),
            hash: Digest([0; 32]),
        };
        e.hash = content_hash(&e);
        e
    }
}

/// Checks that events link into a chain: each hash matches its content and the previous
/// event's hash. Returns the first broken position.
pub fn verify_chain(events: &[AuditEvent]) -> Result<(), String> {
    for (i, e) in events.iter().enumerate() {
        if content_hash(e) != e.hash {
            return Err(format!("event {} does not match its hash", e.seq));
        }
        if i > 0 {
            let p = &events[i - 1];
            if e.prev != Some(p.hash) || e.seq != p.seq + 1 {
                return Err(format!("event {} does not follow event {}", e.seq, p.seq));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(actor: &str) -> NewAuditEvent {
        NewAuditEvent {
            kind: AuditKind::CrossTenantDenied,
            tenant: Some(TenantId::new("acme").unwrap()),
            actor_tenant: Some(TenantId::new("globex").unwrap()),
            actor: actor.into(),
            route: Some("GET /api/v1/executions/{id}".into()),
            decision: None,
            detail: serde_json::json!({"id": "ex_x"}),
        }
    }

    #[test]
    fn events_chain_and_tampering_breaks_the_chain() {
        let now = Timestamp::now();
        let a = event("a").seal(None, now);
        let b = event("b").seal(Some((a.seq, a.hash)), now);
        let c = event("c").seal(Some((b.seq, b.hash)), now);
        assert_eq!((a.seq, b.seq, c.seq), (0, 1, 2));
        verify_chain(&[a.clone(), b.clone(), c.clone()]).unwrap();
        let mut forged = b.clone();
        forged.actor = "someone else".into();
        assert!(verify_chain(&[a.clone(), forged, c.clone()]).is_err());
        assert!(
            verify_chain(&[a, c]).is_err(),
            "a removed event breaks the chain"
        );
    }
}
