//! Admission: every submission is evaluated by `mc.admission` (who may run what) and
//! `mc.residency` (where its data may go). Each gives a [`Decision`] with the exact input
//! evaluated, its digest and the policy bundle's digest, so it can be replayed and explained.
//! A policy that fails to evaluate denies (fail closed).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::packages::Packages;
use crate::domain::actions::{Uses, parse_uses};
use crate::domain::actor::Actor;
use crate::domain::execution::{Decision, DenyReason, Execution};
use crate::domain::expr;
use crate::domain::ids::{DecisionId, Digest, ExecutionId, TenantId};
use crate::domain::residency::TenantBlocks;
use crate::policy::{Policies, PolicyError, Verdict};

/// The admission package.
pub const ADMISSION: &str = "mc.admission";
/// The residency package.
pub const RESIDENCY: &str = "mc.residency";

/// What admission needs to know about the appliance and the tenant.
#[derive(Debug, Clone)]
pub struct Params<'a> {
    /// Regions the tenant may use (empty: all).
    pub allowed_regions: &'a [String],
    /// Whether `builtin/exec` is enabled.
    pub exec_enabled: bool,
    /// Hosts `builtin/http` may call (`host` or `host:port`).
    pub http_allowed_hosts: &'a [String],
    /// Storage locations and their regions.
    pub locations: &'a BTreeMap<String, String>,
    /// The region of this node, if declared.
    pub node_region: Option<&'a str>,
    /// What open residency violations block for the tenant, when the auditor enforces.
    pub blocked: Option<&'a TenantBlocks>,
    /// Installed workflow packages: a `pkg:` task is decided on with the tasks it runs.
    pub packages: &'a Packages,
}

fn literal<'v>(with: &'v serde_json::Map<String, Value>, key: &str) -> Option<&'v str> {
    with.get(key)
        .and_then(Value::as_str)
        .filter(|s| !expr::has_expression(s))
}

/// Splits an allow-list entry into host and optional port (`[::1]:80`, `host:443`, `host`).
fn host_entry(entry: &str) -> Value {
    let entry = entry.to_ascii_lowercase();
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, tail)) => (
                h.to_owned(),
                tail.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()),
            ),
            None => (entry.clone(), None),
        }
    } else {
        match entry.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_owned(), p.parse::<u16>().ok()),
            _ => (entry.clone(), None),
        }
    };
    json!({"host": host, "port": port})
}

/// What policy sees of one task: id, uses, and the literal location and URL host it names.
fn task_view(id: &str, uses: &str, with: &Map<String, Value>) -> Value {
    let mut v = json!({"id": id, "uses": uses});
    if let Some(loc) = literal(with, "location") {
        v["location"] = json!(loc);
    }
    if let Some(url) = literal(with, "url")
        && let Ok(u) = reqwest::Url::parse(url)
        && let Some(host) = u.host_str()
    {
        v["url_host"] = json!(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        );
        v["url_port"] = json!(u.port_or_known_default());
    }
    v
}

/// Resolves a package task's `${{ inputs.KEY }}` from the literal `with:` of the task that
/// runs it; every other reference stays (and so is not a literal).
struct Inputs<'a>(&'a Map<String, Value>);

impl expr::Lookup for Inputs<'_> {
    fn lookup(&self, reference: &expr::Reference) -> Result<Value, String> {
        match reference {
            expr::Reference::Input { key, path } => self
                .0
                .get(key)
                .filter(|v| !crate::domain::validate::contains_expression(v))
                .and_then(|v| expr::descend(v, path))
                .cloned()
                .ok_or_else(|| format!("inputs.{key} is not a literal")),
            _ => Err("not an input".into()),
        }
    }
}

/// Every task as policy sees it; a `pkg:` task is followed by the tasks of its package
/// (ids `TASK/SUB`), with the package inputs given literally resolved, so a location or host
/// a package uses is decided on like one the manifest names.
fn tasks(exec: &Execution, packages: &Packages) -> Vec<Value> {
    let mut out = Vec::new();
    for t in &exec.manifest.tasks {
        out.push(task_view(&t.id, &t.uses, &t.with));
        let Ok(Uses::Package { name, version }) = parse_uses(&t.uses) else {
            continue;
        };
        let Some(package) = packages.get(&name, &version) else {
            continue;
        };
        for sub in &package.manifest.tasks {
            let with: Map<String, Value> = sub
                .with
                .iter()
                .map(|(k, v)| {
                    let v = expr::resolve(v, &Inputs(&t.with)).unwrap_or_else(|_| v.clone());
                    (k.clone(), v)
                })
                .collect();
            out.push(task_view(&format!("{}/{}", t.id, sub.id), &sub.uses, &with));
        }
    }
    out
}

/// The input of `mc.admission`.
pub fn admission_input(actor: &Actor, exec: &Execution, params: &Params<'_>) -> Value {
    json!({
        "actor": {"subject": actor.subject, "tenant": actor.tenant, "roles": actor.roles},
        "tenant": {"id": exec.tenant, "allowed_regions": params.allowed_regions},
        "execution": {"id": exec.id, "canary": exec.canary},
        "manifest": {
            "name": exec.manifest.name,
            "version": exec.manifest.version,
            "region": exec.region,
            "digest": exec.manifest_digest,
            "tasks": tasks(exec, params.packages),
        },
        "appliance": {
            "exec_enabled": params.exec_enabled,
            "http_allowed": params.http_allowed_hosts.iter().map(|h| host_entry(h)).collect::<Vec<_>>(),
            "locations": params.locations,
        },
    })
}

/// The input of `mc.residency` at admission.
pub fn residency_input(exec: &Execution, params: &Params<'_>) -> Value {
    let blocked = params.blocked.cloned().unwrap_or_default();
    json!({
        "tenant": {
            "id": exec.tenant,
            "allowed_regions": params.allowed_regions,
            "blocked": {"locations": blocked.locations, "regions": blocked.regions},
        },
        "manifest": {"region": exec.region, "tasks": tasks(exec, params.packages)},
        "appliance": {"locations": params.locations, "node_region": params.node_region},
    })
}

/// Evaluates one package into a decision to record (fail-closed: a policy error denies).
/// `execution` is the execution it governs, if any.
pub fn decision(
    policies: &Policies,
    kind: &str,
    package: &str,
    tenant: &TenantId,
    execution: Option<&ExecutionId>,
    input: Value,
) -> Decision {
    let result = policies.evaluate(package, &input);
    record(policies, kind, package, tenant, execution, input, result)
}

/// The decision to record for an evaluation already made (fail-closed: an error denies).
pub fn record(
    policies: &Policies,
    kind: &str,
    package: &str,
    tenant: &TenantId,
    execution: Option<&ExecutionId>,
    input: Value,
    result: Result<Verdict, PolicyError>,
) -> Decision {
    let (allow, reasons) = match result {
        Ok(v) => (v.allow, v.reasons),
        Err(e) => (
            false,
            vec![DenyReason {
                code: "policy_error".into(),
                message: e.to_string(),
            }],
        ),
    };
    Decision {
        id: DecisionId::generate(),
        tenant: tenant.clone(),
        execution: execution.cloned(),
        kind: kind.into(),
        policy: package.into(),
        policy_digest: policies.digest(),
        input_digest: Digest::of(
            &serde_json_canonicalizer::to_vec(&input).expect("json canonicalizes"),
        ),
        input,
        allow,
        reasons,
        decided_at: jiff::Timestamp::now(),
    }
}

/// The admission and residency decisions for a submission.
pub fn decide(
    policies: &Policies,
    actor: &Actor,
    exec: &Execution,
    params: &Params<'_>,
) -> Vec<Decision> {
    vec![
        decision(
            policies,
            "admission",
            ADMISSION,
            &exec.tenant,
            Some(&exec.id),
            admission_input(actor, exec, params),
        ),
        decision(
            policies,
            "residency",
            RESIDENCY,
            &exec.tenant,
            Some(&exec.id),
            residency_input(exec, params),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::Role;
    use crate::domain::validate::{self, Context};
    use crate::policy::{Limits, PolicyBundle};

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

    fn policies() -> Policies {
        Policies::load_appliance(PolicyBundle::embedded(), Limits::default()).unwrap()
    }

    #[test]
    fn every_reason_is_given_by_the_two_policies() {
        let allowed = vec!["eu-west".to_string()];
        let locations = BTreeMap::from([("us-bucket".to_string(), "us-east".to_string())]);
        let d = decide(
            &policies(),
            &actor(),
            &exec(MANIFEST),
            &Params {
                allowed_regions: &allowed,
                exec_enabled: false,
                http_allowed_hosts: &[],
                locations: &locations,
                node_region: None,
                blocked: None,
                packages: &Packages::default(),
            },
        );
        assert_eq!(d.len(), 2);
        let codes = |d: &Decision| d.reasons.iter().map(|r| r.code.clone()).collect::<Vec<_>>();
        assert_eq!(codes(&d[0]), ["action_disabled", "host_not_allowed"]);
        assert_eq!(
            codes(&d[1]),
            ["location_outside_region", "location_region_not_allowed"]
        );
        assert!(
            d.iter()
                .all(|d| !d.allow && d.policy_digest == policies().digest())
        );
        assert_eq!(
            d[0].input_digest,
            Digest::of(&serde_json_canonicalizer::to_vec(&d[0].input).unwrap())
        );
    }

    #[test]
    fn allowed_when_the_rules_permit() {
        let locations = BTreeMap::from([("us-bucket".to_string(), "eu-west".to_string())]);
        let hosts = vec!["127.0.0.1:9".to_string()];
        let d = decide(
            &policies(),
            &actor(),
            &exec(MANIFEST),
            &Params {
                allowed_regions: &[],
                exec_enabled: true,
                http_allowed_hosts: &hosts,
                locations: &locations,
                node_region: None,
                blocked: None,
                packages: &Packages::default(),
            },
        );
        assert!(
            d.iter().all(|d| d.allow),
            "{:?}",
            d.iter().map(|d| &d.reasons).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_node_region_and_open_violations_deny_through_the_residency_policy() {
        let locations = BTreeMap::from([("us-bucket".to_string(), "eu-west".to_string())]);
        let blocked = TenantBlocks {
            locations: ["us-bucket".to_string()].into(),
            regions: Default::default(),
        };
        let d = decide(
            &policies(),
            &actor(),
            &exec(MANIFEST),
            &Params {
                allowed_regions: &[],
                exec_enabled: true,
                http_allowed_hosts: &[],
                locations: &locations,
                node_region: Some("us-east"),
                blocked: Some(&blocked),
                packages: &Packages::default(),
            },
        );
        let codes: Vec<_> = d[1].reasons.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(codes, ["node_outside_region", "residency_violation_open"]);
    }

    #[test]
    fn allow_list_entries_are_split_like_the_http_action_does() {
        assert_eq!(
            host_entry("API.internal"),
            json!({"host": "api.internal", "port": null})
        );
        assert_eq!(
            host_entry("127.0.0.1:8080"),
            json!({"host": "127.0.0.1", "port": 8080})
        );
        assert_eq!(
            host_entry("[::1]:9000"),
            json!({"host": "::1", "port": 9000})
        );
        assert_eq!(host_entry("[::1]"), json!({"host": "::1", "port": null}));
    }
}
