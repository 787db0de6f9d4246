//! Admission: who may run what, where. Every submission gets a [`Decision`] with the exact
//! input that was evaluated, its digest and the digest of the rules' parameters, so the
//! decision can be replayed. Denied submissions are recorded with a receipt like any other.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::actions::http::host_allowed;
use crate::domain::actor::Actor;
use crate::domain::execution::{Decision, DenyReason, Execution};
use crate::domain::expr;
use crate::domain::ids::{DecisionId, Digest};

/// Policy id of the built-in admission rules.
pub const POLICY: &str = "maestro.builtin.admission";

/// What the admission rules need to know about the appliance and the tenant.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    /// Regions the tenant may use (empty: all).
    pub allowed_regions: &'a [String],
    /// Whether `builtin/exec` is enabled.
    pub exec_enabled: bool,
    /// Hosts `builtin/http` may call.
    pub http_allowed_hosts: &'a [String],
    /// Storage locations and their regions.
    pub locations: &'a BTreeMap<String, String>,
}

fn canonical_digest(value: &Value) -> Digest {
    Digest::of(&serde_json_canonicalizer::to_vec(value).expect("json canonicalizes"))
}

fn literal<'v>(with: &'v serde_json::Map<String, Value>, key: &str) -> Option<&'v str> {
    with.get(key)
        .and_then(Value::as_str)
        .filter(|s| !expr::has_expression(s))
}

/// Digest of the rules' parameters for a tenant: pinned in every decision, computed once.
pub fn policy_digest(params: &Params<'_>) -> Digest {
    canonical_digest(&json!({
        "policy": POLICY,
        "version": 1,
        "allowed_regions": params.allowed_regions,
        "exec_enabled": params.exec_enabled,
        "http_allowed_hosts": params.http_allowed_hosts,
        "locations": params.locations,
    }))
}

/// Decides whether an accepted-but-not-yet-queued execution may run. `policy_digest` is
/// [`policy_digest`] of `params`.
pub fn decide(
    actor: &Actor,
    exec: &Execution,
    params: &Params<'_>,
    policy_digest: Digest,
) -> Decision {
    let tasks: Vec<Value> = exec
        .manifest
        .tasks
        .iter()
        .map(|t| {
            let mut v = json!({"id": t.id, "uses": t.uses});
            if let Some(loc) = literal(&t.with, "location") {
                v["location"] = json!(loc);
            }
            if let Some(url) = literal(&t.with, "url") {
                v["url"] = json!(url);
            }
            v
        })
        .collect();
    let input = json!({
        "actor": {"subject": actor.subject, "tenant": actor.tenant, "roles": actor.roles},
        "tenant": {"id": exec.tenant, "allowed_regions": params.allowed_regions},
        "execution": {"id": exec.id, "canary": exec.canary},
        "manifest": {
            "name": exec.manifest.name,
            "version": exec.manifest.version,
            "region": exec.region,
            "digest": exec.manifest_digest,
            "tasks": tasks,
        },
    });
    let mut reasons = Vec::new();
    if !params.allowed_regions.is_empty()
        && !params.allowed_regions.iter().any(|r| r == &exec.region)
    {
        reasons.push(DenyReason {
            code: "region_not_allowed".into(),
            message: format!(
                "tenant {} may not run in region {:?} (allowed: {})",
                exec.tenant,
                exec.region,
                params.allowed_regions.join(", ")
            ),
        });
    }
    for task in &exec.manifest.tasks {
        match task.uses.as_str() {
            "builtin/exec" if !params.exec_enabled => reasons.push(DenyReason {
                code: "action_disabled".into(),
                message: format!(
                    "task {:?} uses builtin/exec, which is disabled on this appliance",
                    task.id
                ),
            }),
            "builtin/http" => {
                if let Some(url) = literal(&task.with, "url") {
                    let allowed = reqwest::Url::parse(url).ok().is_some_and(|u| {
                        u.host_str().is_some_and(|h| {
                            host_allowed(params.http_allowed_hosts, h, u.port_or_known_default())
                        })
                    });
                    if !allowed {
                        reasons.push(DenyReason {
                            code: "host_not_allowed".into(),
                            message: format!(
                                "task {:?} calls {url:?}, whose host is not allow-listed",
                                task.id
                            ),
                        });
                    }
                }
            }
            "builtin/artifact" => {
                if let Some(loc) = literal(&task.with, "location")
                    && !params.locations.contains_key(loc)
                {
                    reasons.push(DenyReason {
                        code: "unknown_location".into(),
                        message: format!(
                            "task {:?} writes to unknown storage location {loc:?}",
                            task.id
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    Decision {
        id: DecisionId::generate(),
        tenant: exec.tenant.clone(),
        execution: exec.id.clone(),
        kind: "admission".into(),
        policy: POLICY.into(),
        policy_digest,
        input_digest: canonical_digest(&input),
        input,
        allow: reasons.is_empty(),
        reasons,
        decided_at: jiff::Timestamp::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::Role;
    use crate::domain::ids::{ExecutionId, TenantId};
    use crate::domain::validate::{self, Context};

    fn exec(yaml: &str) -> Execution {
        let v = validate::load(yaml, &Context::default()).unwrap();
        Execution::new(
            ExecutionId::generate(),
            TenantId::new("acme").unwrap(),
            v.manifest,
            v.digest,
            false,
            "op".into(),
            jiff::Timestamp::now(),
        )
    }

    fn actor() -> Actor {
        Actor {
            subject: "op".into(),
            tenant: Some(TenantId::new("acme").unwrap()),
            roles: vec![Role::Operator],
        }
    }

    const MANIFEST: &str = r#"
name: a
version: "1.0.0"
region: eu-west
tasks:
  - {id: call, uses: builtin/http, with: {url: "http://127.0.0.1:9/x"}}
  - {id: run, uses: builtin/exec, with: {command: [echo]}}
  - {id: save, uses: builtin/artifact, with: {name: r, location: us-bucket, content: x}}
"#;

    fn run(params: &Params<'_>) -> Decision {
        decide(&actor(), &exec(MANIFEST), params, policy_digest(params))
    }

    #[test]
    fn every_reason_is_given() {
        let allowed = vec!["us-east".to_string()];
        let locations = BTreeMap::from([("eu-bucket".to_string(), "eu-west".to_string())]);
        let d = run(&Params {
            allowed_regions: &allowed,
            exec_enabled: false,
            http_allowed_hosts: &[],
            locations: &locations,
        });
        assert!(!d.allow);
        let codes: Vec<_> = d.reasons.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "region_not_allowed",
                "host_not_allowed",
                "action_disabled",
                "unknown_location"
            ]
        );
        assert_eq!(d.input_digest, canonical_digest(&d.input));
    }

    #[test]
    fn allowed_when_the_rules_permit() {
        let locations = BTreeMap::from([("us-bucket".to_string(), "us-east".to_string())]);
        let hosts = vec!["127.0.0.1".to_string()];
        let d = run(&Params {
            allowed_regions: &[],
            exec_enabled: true,
            http_allowed_hosts: &hosts,
            locations: &locations,
        });
        assert!(d.allow, "{:?}", d.reasons);
        assert!(d.reasons.is_empty());
    }

    #[test]
    fn digests_are_stable_and_follow_the_rules() {
        let e = exec(MANIFEST);
        let locations = BTreeMap::new();
        let p = Params {
            allowed_regions: &[],
            exec_enabled: false,
            http_allowed_hosts: &[],
            locations: &locations,
        };
        let (a, b) = (
            decide(&actor(), &e, &p, policy_digest(&p)),
            decide(&actor(), &e, &p, policy_digest(&p)),
        );
        assert_eq!(
            (a.input_digest, a.policy_digest),
            (b.input_digest, b.policy_digest)
        );
        assert_ne!(a.id, b.id);
        let enabled = Params {
            exec_enabled: true,
            ..p.clone()
        };
        assert_ne!(policy_digest(&p), policy_digest(&enabled));
    }
}
