//! Golden workflows: what a run of each must end with (its `expect.yaml`), the check of an
//! execution against it, and the record of a golden's last run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::execution::{Execution, ExecutionStatus};
use super::ids::ExecutionId;

/// The expected end of a golden run (`fixtures/golden/NAME/expect.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The final status.
    pub status: ExecutionStatus,
    /// Deny reason codes the decision must give (a negative golden), each explained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Text the execution's error must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Outputs some tasks must have, by task and key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Map<String, Value>>,
}

impl Expect {
    /// Parses an `expect.yaml`.
    pub fn parse(text: &str) -> Result<Expect, String> {
        let doc = super::validate::parse_document(text).map_err(|p| p.to_string())?;
        serde_json::from_value(doc).map_err(|e| e.to_string())
    }

    /// Every way `exec` differs from what is expected (empty: it passed).
    pub fn check(&self, exec: &Execution) -> Vec<String> {
        let mut problems = Vec::new();
        if exec.status != self.status {
            problems.push(format!(
                "status is {}, expected {}{}",
                exec.status.as_str(),
                self.status.as_str(),
                exec.error
                    .as_deref()
                    .map(|e| format!(" (error: {e})"))
                    .unwrap_or_default()
            ));
        }
        if !self.deny.is_empty() {
            let reasons: Vec<_> = exec.decisions.iter().flat_map(|d| &d.reasons).collect();
            for code in &self.deny {
                match reasons.iter().find(|r| &r.code == code) {
                    None => problems.push(format!(
                        "no deny reason {code:?} (reasons: {})",
                        if reasons.is_empty() {
                            "none".to_owned()
                        } else {
                            reasons
                                .iter()
                                .map(|r| r.code.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    )),
                    Some(r) if r.message.trim().is_empty() => {
                        problems.push(format!("deny reason {code:?} has no explanation"));
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(text) = &self.error
            && !exec
                .error
                .as_deref()
                .is_some_and(|e| e.contains(text.as_str()))
        {
            problems.push(format!(
                "the error does not contain {text:?} (error: {})",
                exec.error.as_deref().unwrap_or("none")
            ));
        }
        for (task, outputs) in &self.outputs {
            let Some(run) = exec.tasks.iter().find(|t| &t.id == task) else {
                problems.push(format!("no task {task:?}"));
                continue;
            };
            for (key, want) in outputs {
                match run.outputs.get(key) {
                    Some(got) if got == want => {}
                    got => problems.push(format!(
                        "tasks.{task}.outputs.{key} is {}, expected {want}",
                        got.map_or("absent".to_owned(), Value::to_string)
                    )),
                }
            }
        }
        problems
    }
}

/// The last run of one golden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GoldenRun {
    /// The golden's name.
    pub name: String,
    /// The version of its package that ran.
    pub version: String,
    /// The execution (absent when it could not be submitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionId>,
    /// The tenant it ran as.
    pub tenant: String,
    /// The execution's final status, if it got one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ExecutionStatus>,
    /// Whether it ended as expected.
    pub passed: bool,
    /// How it differed from what was expected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// When it finished.
    #[schemars(with = "String")]
    pub at: jiff::Timestamp,
    /// How long it took, in milliseconds.
    pub millis: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::execution::{Decision, DenyReason};
    use crate::domain::ids::{DecisionId, Digest, TenantId};
    use crate::domain::validate::{self, Context};
    use serde_json::json;

    fn exec() -> Execution {
        let m = validate::load(
            "name: g\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {id: a, uses: builtin/echo, with: {message: hi}}\n",
            &Context::default(),
        )
        .unwrap();
        let mut e = Execution::new(
            ExecutionId::generate(),
            TenantId::new("acme").unwrap(),
            m.manifest,
            m.digest,
            true,
            "test".into(),
            jiff::Timestamp::now(),
        );
        e.status = ExecutionStatus::Succeeded;
        e.tasks[0].outputs = json!({"message": "hi"}).as_object().unwrap().clone();
        e
    }

    fn deny(e: &mut Execution, code: &str, message: &str) {
        e.status = ExecutionStatus::Denied;
        e.decisions.push(Decision {
            id: DecisionId::generate(),
            tenant: e.tenant.clone(),
            execution: Some(e.id.clone()),
            kind: "admission".into(),
            policy: "mc.admission".into(),
            policy_digest: Digest::of(b"p"),
            input_digest: Digest::of(b"i"),
            input: json!({}),
            allow: false,
            reasons: vec![DenyReason {
                code: code.into(),
                message: message.into(),
            }],
            decided_at: jiff::Timestamp::now(),
        });
    }

    #[test]
    fn an_expectation_parses_and_refuses_unknown_fields() {
        let e = Expect::parse("status: denied\ndeny: [action_disabled]\n").unwrap();
        assert_eq!(e.status, ExecutionStatus::Denied);
        assert_eq!(e.deny, ["action_disabled"]);
        let err = Expect::parse("status: denied\nreasons: [x]\n").unwrap_err();
        assert!(err.contains("reasons"), "{err}");
        assert!(Expect::parse("status: sideways\n").is_err());
    }

    #[test]
    fn every_difference_from_the_expectation_is_named() {
        let ok = Expect::parse("status: succeeded\noutputs: {a: {message: hi}}\n").unwrap();
        assert_eq!(ok.check(&exec()), Vec::<String>::new());

        let mut failed = exec();
        failed.status = ExecutionStatus::Failed;
        failed.error = Some("task \"a\" failed: boom".into());
        let p = ok.check(&failed);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("status is failed, expected succeeded"),
            "{p:?}"
        );
        assert!(p[0].contains("boom"), "{p:?}");

        let other =
            Expect::parse("status: succeeded\noutputs: {a: {message: ho, size: 2}, b: {}}\n")
                .unwrap();
        let p = other.check(&exec());
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p.iter()
                .any(|p| p.contains("tasks.a.outputs.message is \"hi\", expected \"ho\""))
        );
        assert!(
            p.iter()
                .any(|p| p.contains("tasks.a.outputs.size is absent"))
        );
        assert!(p.iter().any(|p| p.contains("no task \"b\"")));

        let timeout = Expect::parse("status: failed\nerror: timed out\n").unwrap();
        failed.error = Some("attempt timed out after 200ms".into());
        assert!(timeout.check(&failed).is_empty());
        failed.error = None;
        assert!(timeout.check(&failed)[0].contains("error: none"));
    }

    #[test]
    fn a_negative_golden_needs_its_deny_reason_with_an_explanation() {
        let expect = Expect::parse("status: denied\ndeny: [action_disabled]\n").unwrap();
        let mut e = exec();
        deny(&mut e, "action_disabled", "builtin/exec is disabled");
        assert!(expect.check(&e).is_empty());
        let mut other = exec();
        deny(&mut other, "region_not_allowed", "no");
        let p = expect.check(&other);
        assert_eq!(
            p,
            ["no deny reason \"action_disabled\" (reasons: region_not_allowed)"]
        );
        let mut silent = exec();
        deny(&mut silent, "action_disabled", "  ");
        assert_eq!(
            expect.check(&silent),
            ["deny reason \"action_disabled\" has no explanation"]
        );
        // Allowed when it must be denied: both the status and the missing reason.
        assert_eq!(expect.check(&exec()).len(), 2);
    }
}
