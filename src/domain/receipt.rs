//! The receipt's content: an in-toto Statement v1 whose predicate is the execution record.
//! Building it from an execution, and checking a received one for internal consistency
//! ("predicate integrity"). Signing and logging live in `attest` and `tlog`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::execution::{Artifact, Execution, ExecutionStatus, TaskStatus};
use super::ids::{DecisionId, Digest, ExecutionId, TenantId};

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// Our predicate type: a Maestro execution record, version 1.
pub const PREDICATE_TYPE: &str = "https://maestro.conductor/attestation/execution/v1";
/// DSSE payload type of in-toto statements.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// An in-toto Statement v1 carrying an execution record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub statement_type: String,
    /// The manifest and every artifact, by digest.
    pub subject: Vec<Subject>,
    /// Always [`PREDICATE_TYPE`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The execution record.
    pub predicate: Predicate,
}

/// An in-toto subject: a name and its digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Subject {
    /// `manifest:NAME@VERSION` or `artifact:NAME`.
    pub name: String,
    /// Algorithm to lowercase hex digest; we always give `sha256`.
    pub digest: BTreeMap<String, String>,
}

/// The manifest an execution ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestRef {
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// Digest of the manifest document.
    pub digest: Digest,
}

/// A task as recorded in a receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    /// Task id.
    pub id: String,
    /// Action.
    pub uses: String,
    /// Final state.
    pub status: TaskStatus,
    /// Number of attempts made.
    pub attempts: u32,
    /// Digest of the canonical JSON of the outputs, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs_digest: Option<Digest>,
    /// Last error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An artifact as recorded in a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRecord {
    /// Task that wrote it.
    pub task: String,
    /// Name.
    pub name: String,
    /// SHA-256 of the bytes.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// Storage location.
    pub location: String,
    /// Region tag of the location when written.
    pub region: String,
}

impl From<&Artifact> for ArtifactRecord {
    fn from(a: &Artifact) -> Self {
        ArtifactRecord {
            task: a.task.clone(),
            name: a.name.clone(),
            digest: a.digest,
            size: a.size,
            media_type: a.media_type.clone(),
            location: a.location.clone(),
            region: a.region.clone(),
        }
    }
}

/// A policy decision as recorded in a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// Decision id (its explanation can be replayed by id).
    pub id: DecisionId,
    /// What was decided.
    pub kind: String,
    /// Policy id.
    pub policy: String,
    /// Digest of the policy evaluated.
    pub policy_digest: Digest,
    /// Digest of the input evaluated.
    pub input_digest: Digest,
    /// Outcome.
    pub allow: bool,
    /// Deny reason codes.
    #[serde(default)]
    pub reasons: Vec<String>,
}

/// Timestamps of an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Accepted.
    #[schemars(with = "String")]
    pub submitted_at: Timestamp,
    /// Started by a runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub started_at: Option<Timestamp>,
    /// Ended.
    #[schemars(with = "String")]
    pub finished_at: Timestamp,
}

/// The appliance that produced the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplianceInfo {
    /// Maestro version.
    pub version: String,
    /// Transparency log origin.
    pub log_origin: String,
}

/// The execution record: the predicate of a receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Predicate {
    /// Format version of this predicate (1).
    pub receipt_version: u32,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Execution id.
    pub execution_id: ExecutionId,
    /// 1 for the tenant's first receipt, then +1 for each.
    pub sequence: u64,
    /// Digest of the tenant's previous receipt (absent for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_receipt: Option<Digest>,
    /// Final status.
    pub status: ExecutionStatus,
    /// Synthetic run.
    pub canary: bool,
    /// Region the data must stay in.
    pub region: String,
    /// The manifest.
    pub manifest: ManifestRef,
    /// Tasks in manifest order.
    pub tasks: Vec<TaskRecord>,
    /// Artifacts with their storage location and region.
    pub artifacts: Vec<ArtifactRecord>,
    /// Policy decisions.
    pub decisions: Vec<DecisionRecord>,
    /// Timestamps.
    pub timings: Timings,
    /// Why it failed, was denied or was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Who submitted it.
    pub submitted_by: String,
    /// The producing appliance.
    pub appliance: ApplianceInfo,
}

/// The tenant's receipt chain position for a new receipt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChainHead {
    /// Number of receipts the tenant has.
    pub count: u64,
    /// Digest of the latest one.
    pub last: Option<Digest>,
}

/// Builds the statement for a final execution.
pub fn statement(exec: &Execution, head: &ChainHead, appliance: ApplianceInfo) -> Statement {
    let outputs_digest = |o: &serde_json::Map<String, serde_json::Value>| {
        let canonical = serde_json_canonicalizer::to_vec(o).expect("json map canonicalizes");
        Digest::of(&canonical)
    };
    let tasks = exec
        .tasks
        .iter()
        .map(|t| TaskRecord {
            id: t.id.clone(),
            uses: t.uses.clone(),
            status: t.status,
            attempts: t.attempts.len() as u32,
            outputs_digest: (t.status == TaskStatus::Succeeded).then(|| outputs_digest(&t.outputs)),
            error: t
                .attempts
                .last()
                .and_then(|a| a.error.clone())
                .filter(|_| t.status == TaskStatus::Failed),
        })
        .collect();
    let decisions = exec
        .decisions
        .iter()
        .map(|d| DecisionRecord {
            id: d.id.clone(),
            kind: d.kind.clone(),
            policy: d.policy.clone(),
            policy_digest: d.policy_digest,
            input_digest: d.input_digest,
            allow: d.allow,
            reasons: d.reasons.iter().map(|r| r.code.clone()).collect(),
        })
        .collect();
    let mut subject = vec![digest_subject(
        format!("manifest:{}@{}", exec.manifest.name, exec.manifest.version),
        &exec.manifest_digest,
    )];
    subject.extend(
        exec.artifacts
            .iter()
            .map(|a| digest_subject(format!("artifact:{}", a.name), &a.digest)),
    );
    Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject,
        predicate_type: PREDICATE_TYPE.into(),
        predicate: Predicate {
            receipt_version: 1,
            tenant: exec.tenant.clone(),
            execution_id: exec.id.clone(),
            sequence: head.count + 1,
            previous_receipt: head.last,
            status: exec.status,
            canary: exec.canary,
            region: exec.region.clone(),
            manifest: ManifestRef {
                name: exec.manifest.name.clone(),
                version: exec.manifest.version.clone(),
                digest: exec.manifest_digest,
            },
            tasks,
            artifacts: exec.artifacts.iter().map(ArtifactRecord::from).collect(),
            decisions,
            timings: Timings {
                submitted_at: exec.submitted_at,
                started_at: exec.started_at,
                finished_at: exec.finished_at.unwrap_or(exec.submitted_at),
            },
            error: exec.error.clone(),
            submitted_by: exec.submitted_by.clone(),
            appliance,
        },
    }
}

fn digest_subject(name: String, digest: &Digest) -> Subject {
    Subject {
        name,
        digest: BTreeMap::from([("sha256".to_string(), digest.hex())]),
    }
}

impl Statement {
    /// The exact bytes that are signed and logged.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("statement serializes")
    }
}

/// Checks a statement for internal consistency; returns every inconsistency found.
pub fn check_integrity(s: &Statement) -> Vec<String> {
    let mut problems = Vec::new();
    if s.statement_type != STATEMENT_TYPE {
        problems.push(format!(
            "_type is {:?}, expected {STATEMENT_TYPE:?}",
            s.statement_type
        ));
    }
    if s.predicate_type != PREDICATE_TYPE {
        problems.push(format!(
            "predicateType is {:?}, expected {PREDICATE_TYPE:?}",
            s.predicate_type
        ));
    }
    let p = &s.predicate;
    if p.receipt_version != 1 {
        problems.push(format!(
            "receiptVersion {} is not supported",
            p.receipt_version
        ));
    }
    if !p.status.is_final() {
        problems.push(format!("status {:?} is not final", p.status.as_str()));
    }
    if p.sequence == 0 {
        problems.push("sequence must start at 1".into());
    }
    if (p.sequence == 1) != p.previous_receipt.is_none() {
        problems.push(format!(
            "sequence {} {} a previous receipt",
            p.sequence,
            if p.previous_receipt.is_some() {
                "has"
            } else {
                "lacks"
            }
        ));
    }
    let mut expected: Vec<(String, String)> = vec![(
        format!("manifest:{}@{}", p.manifest.name, p.manifest.version),
        p.manifest.digest.hex(),
    )];
    expected.extend(
        p.artifacts
            .iter()
            .map(|a| (format!("artifact:{}", a.name), a.digest.hex())),
    );
    let mut actual: Vec<(String, String)> = s
        .subject
        .iter()
        .map(|sub| {
            (
                sub.name.clone(),
                sub.digest.get("sha256").cloned().unwrap_or_default(),
            )
        })
        .collect();
    expected.sort();
    actual.sort();
    for e in &expected {
        if !actual.contains(e) {
            problems.push(format!("subject {} with sha256 {} is missing", e.0, e.1));
        }
    }
    for a in &actual {
        if !expected.contains(a) {
            problems.push(format!(
                "subject {} (sha256 {}) is not in the predicate",
                a.0, a.1
            ));
        }
    }
    match p.status {
        ExecutionStatus::Succeeded => {
            if let Some(t) = p.tasks.iter().find(|t| t.status != TaskStatus::Succeeded) {
                problems.push(format!(
                    "status is succeeded but task {:?} is {:?}",
                    t.id, t.status
                ));
            }
        }
        ExecutionStatus::Denied => {
            if !p.decisions.iter().any(|d| !d.allow) {
                problems.push("status is denied but no decision denies".into());
            }
            if let Some(t) = p.tasks.iter().find(|t| t.attempts > 0) {
                problems.push(format!("status is denied but task {:?} ran", t.id));
            }
        }
        _ => {}
    }
    if p.status != ExecutionStatus::Denied && p.decisions.iter().any(|d| !d.allow) {
        problems.push("a decision denies but the execution was not denied".into());
    }
    if let Some(started) = p.timings.started_at {
        if started < p.timings.submitted_at {
            problems.push("startedAt is before submittedAt".into());
        }
        if p.timings.finished_at < started {
            problems.push("finishedAt is before startedAt".into());
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::{Attempt, Decision};
    use crate::domain::validate::{self, Context};

    fn execution() -> Execution {
        let v = validate::load(
            "name: n\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {id: a, uses: builtin/echo, with: {message: hi}}\n",
            &Context::default(),
        )
        .unwrap();
        let now = Timestamp::now();
        let mut e = Execution::new(
            ExecutionId::generate(),
            TenantId::new("acme").unwrap(),
            v.manifest,
            v.digest,
            false,
            "tester".into(),
            now,
        );
        e.status = ExecutionStatus::Succeeded;
        e.started_at = Some(now);
        e.finished_at = Some(now);
        e.tasks[0].status = TaskStatus::Succeeded;
        e.tasks[0].attempts.push(Attempt {
            number: 1,
            started_at: now,
            finished_at: now,
            ok: true,
            error: None,
        });
        e.artifacts.push(Artifact {
            task: "a".into(),
            name: "report".into(),
            digest: Digest::of(b"x"),
            size: 1,
            media_type: "text/plain".into(),
            location: "eu-bucket".into(),
            region: "eu-west".into(),
        });
        e.decisions.push(Decision {
            id: DecisionId::generate(),
            tenant: e.tenant.clone(),
            execution: Some(e.id.clone()),
            kind: "admission".into(),
            policy: "mc.admission".into(),
            policy_digest: Digest::of(b"p"),
            input_digest: Digest::of(b"i"),
            input: serde_json::json!({}),
            allow: true,
            reasons: vec![],
            decided_at: now,
        });
        e
    }

    fn info() -> ApplianceInfo {
        ApplianceInfo {
            version: "0.1.0".into(),
            log_origin: "test/log".into(),
        }
    }

    #[test]
    fn a_built_statement_is_consistent_and_round_trips() {
        let s = statement(&execution(), &ChainHead::default(), info());
        assert_eq!(check_integrity(&s), Vec::<String>::new());
        assert_eq!(s.subject.len(), 2);
        let back: Statement = serde_json::from_slice(&s.to_payload()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.to_payload(), s.to_payload());
    }

    #[test]
    fn tampering_is_reported() {
        let mut s = statement(&execution(), &ChainHead::default(), info());
        s.predicate.artifacts[0].digest = Digest::of(b"y");
        let p = check_integrity(&s);
        assert_eq!(p.len(), 2, "{p:?}");
        let mut s = statement(&execution(), &ChainHead::default(), info());
        s.predicate.tasks[0].status = TaskStatus::Failed;
        assert!(check_integrity(&s)[0].contains("task \"a\""));
        let mut s = statement(
            &execution(),
            &ChainHead {
                count: 3,
                last: None,
            },
            info(),
        );
        s.predicate_type = "x".into();
        assert_eq!(check_integrity(&s).len(), 2);
    }

    #[test]
    fn the_chain_links_receipts() {
        let first = statement(&execution(), &ChainHead::default(), info());
        let digest = Digest::of(&first.to_payload());
        let second = statement(
            &execution(),
            &ChainHead {
                count: 1,
                last: Some(digest),
            },
            info(),
        );
        assert_eq!(second.predicate.sequence, 2);
        assert_eq!(second.predicate.previous_receipt, Some(digest));
        assert!(check_integrity(&second).is_empty());
    }
}
