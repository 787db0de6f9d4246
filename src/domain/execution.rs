//! Executions and what they record: status, task runs and attempts, artifacts with their
//! storage location and region, policy decisions, timings and the receipt reference.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::{DecisionId, Digest, ExecutionId, TenantId};
use super::manifest::Manifest;

/// Where an execution is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Accepted and durable, waiting for a runner.
    Queued,
    /// A runner is executing its tasks.
    Running,
    /// Every task succeeded.
    Succeeded,
    /// A task failed after its retries, or the execution timed out.
    Failed,
    /// Admission policy refused it; no task ran.
    Denied,
    /// It was running when the appliance stopped; it was not resumed.
    Interrupted,
}

impl ExecutionStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ExecutionStatus; 6] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Denied,
        Self::Interrupted,
    ];

    /// Whether the execution is over (and has a receipt).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Denied => "denied",
            Self::Interrupted => "interrupted",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for its dependencies.
    Pending,
    /// An attempt is in progress.
    Running,
    /// An attempt succeeded.
    Succeeded,
    /// Every attempt failed.
    Failed,
    /// Not run because a dependency failed or the execution stopped.
    Skipped,
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// When it started.
    #[schemars(with = "String")]
    pub started_at: Timestamp,
    /// When it ended.
    #[schemars(with = "String")]
    pub finished_at: Timestamp,
    /// Whether it succeeded.
    pub ok: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The run of one task of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskRun {
    /// Task id from the manifest.
    pub id: String,
    /// Action from the manifest.
    pub uses: String,
    /// Current state.
    pub status: TaskStatus,
    /// Attempts so far.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Outputs of the successful attempt.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
}

/// A blob a task wrote to a storage location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Artifact {
    /// Task that wrote it.
    pub task: String,
    /// Name given by the task.
    pub name: String,
    /// SHA-256 of the bytes.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// Storage location name.
    pub location: String,
    /// Region tag of the location when the artifact was written.
    pub region: String,
}

/// A reason given by a deny decision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub struct DenyReason {
    /// Stable code, e.g. `region_not_allowed`.
    pub code: String,
    /// Human explanation.
    pub message: String,
}

/// A policy decision about an execution (admission today; more kinds with policies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Decision {
    /// Decision id.
    pub id: DecisionId,
    /// Tenant the decision is about.
    pub tenant: TenantId,
    /// Execution the decision is about (absent for access decisions of the guard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionId>,
    /// What was decided: `admission`, `residency`, or `access` (the guard).
    pub kind: String,
    /// The policy that decided, e.g. `mc.admission`.
    pub policy: String,
    /// Digest of the policy (or policy bundle) that was evaluated.
    pub policy_digest: Digest,
    /// Digest of the canonical JSON input.
    pub input_digest: Digest,
    /// The input that was evaluated, kept for replay.
    pub input: Value,
    /// Whether the action was allowed.
    pub allow: bool,
    /// Why it was denied (empty when allowed).
    #[serde(default)]
    pub reasons: Vec<DenyReason>,
    /// When.
    #[schemars(with = "String")]
    pub decided_at: Timestamp,
}

/// Where an execution's receipt is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReceiptRef {
    /// SHA-256 of the receipt's in-toto Statement (the signed payload).
    pub digest: Digest,
    /// Index of the receipt in the transparency log.
    pub log_index: u64,
}

/// One run of a manifest for a tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Execution {
    /// Execution id.
    pub id: ExecutionId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Where it is in its life.
    pub status: ExecutionStatus,
    /// The manifest as validated.
    pub manifest: Manifest,
    /// Digest of the manifest document.
    pub manifest_digest: Digest,
    /// The region the data must stay in (from the manifest).
    pub region: String,
    /// A synthetic run (post-release validation); kept out of tenant statistics.
    #[serde(default)]
    pub canary: bool,
    /// Who submitted it.
    pub submitted_by: String,
    /// When it was accepted.
    #[schemars(with = "String")]
    pub submitted_at: Timestamp,
    /// When a runner started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub started_at: Option<Timestamp>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<Timestamp>,
    /// One entry per manifest task, in manifest order.
    pub tasks: Vec<TaskRun>,
    /// Artifacts written by its tasks.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// Policy decisions about it.
    #[serde(default)]
    pub decisions: Vec<Decision>,
    /// Why it failed, was denied or was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its receipt, once final.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptRef>,
}

impl Execution {
    /// A new queued execution with pending tasks.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: ExecutionId,
        tenant: TenantId,
        manifest: Manifest,
        manifest_digest: Digest,
        canary: bool,
        submitted_by: String,
        submitted_at: Timestamp,
    ) -> Self {
        let tasks = manifest
            .tasks
            .iter()
            .map(|t| TaskRun {
                id: t.id.clone(),
                uses: t.uses.clone(),
                status: TaskStatus::Pending,
                attempts: Vec::new(),
                outputs: Map::new(),
            })
            .collect();
        Self {
            id,
            tenant,
            status: ExecutionStatus::Queued,
            region: manifest.region.clone(),
            manifest,
            manifest_digest,
            canary,
            submitted_by,
            submitted_at,
            started_at: None,
            finished_at: None,
            tasks,
            artifacts: Vec::new(),
            decisions: Vec::new(),
            error: None,
            receipt: None,
        }
    }

    /// A short view for lists.
    pub fn summary(&self) -> ExecutionSummary {
        ExecutionSummary {
            id: self.id.clone(),
            tenant: self.tenant.clone(),
            status: self.status,
            name: self.manifest.name.clone(),
            version: self.manifest.version.clone(),
            region: self.region.clone(),
            canary: self.canary,
            submitted_at: self.submitted_at,
            finished_at: self.finished_at,
            receipt_digest: self.receipt.as_ref().map(|r| r.digest),
        }
    }
}

/// The short view of an execution used in lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionSummary {
    /// Execution id.
    pub id: ExecutionId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Status.
    pub status: ExecutionStatus,
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// Region.
    pub region: String,
    /// Synthetic run.
    pub canary: bool,
    /// When it was accepted.
    #[schemars(with = "String")]
    pub submitted_at: Timestamp,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub finished_at: Option<Timestamp>,
    /// Digest of its receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_digest: Option<Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for s in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                Value::String(s.as_str().into())
            );
        }
        assert_eq!(ExecutionStatus::parse("done"), None);
        assert!(!ExecutionStatus::Running.is_final());
        assert!(ExecutionStatus::Interrupted.is_final());
    }
}
