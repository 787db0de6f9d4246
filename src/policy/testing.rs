//! `maestro policy test DIR`: runs Rego unit tests the way `opa test` does — every rule whose
//! name starts with `test_` passes when it evaluates to `true`; `todo_` rules are skipped.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{Limits, Policies, PolicyBundle, PolicyError};

/// The outcome of one test rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TestOutcome {
    /// It evaluated to true.
    Pass,
    /// It was undefined or not true.
    Fail,
    /// Evaluation failed.
    Error,
    /// A `todo_` rule.
    Skip,
}

/// One test.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// `data.<package>.<rule>`.
    pub name: String,
    /// File it is defined in.
    pub file: String,
    /// Outcome.
    pub outcome: TestOutcome,
    /// Error message, or the value when it was not true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// All tests of a directory.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// Every test, in file and source order.
    pub tests: Vec<TestResult>,
    /// Count of passes.
    pub passed: usize,
    /// Count of failures and errors.
    pub failed: usize,
    /// Count of skipped tests.
    pub skipped: usize,
}

fn test_rules(source: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for line in source.lines() {
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let rest = &line[name.len()..];
        let is_rule_head = !rest.trim_start().starts_with('(');
        if (name.starts_with("test_") || name.starts_with("todo_"))
            && is_rule_head
            && !seen.contains(&name)
        {
            seen.push(name);
        }
    }
    seen
}

/// Loads every `.rego` file of `dir` (tests included) and runs the test rules.
pub fn run(dir: &Path) -> Result<TestReport, PolicyError> {
    let bundle = PolicyBundle::from_dir(dir)?;
    let tests: Vec<(String, String)> = bundle
        .files
        .iter()
        .filter(|(p, _)| p.ends_with("_test.rego"))
        .map(|(p, s)| (p.clone(), s.clone()))
        .collect();
    let policies = Policies::load_with_tests(bundle, Limits::default())?;
    let mut report = TestReport {
        tests: Vec::new(),
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    for (file, source) in &tests {
        let Some(package) = source
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("package "))
            .map(|p| p.trim().to_owned())
        else {
            continue;
        };
        for rule in test_rules(source) {
            let name = format!("data.{package}.{rule}");
            let (outcome, detail) = if rule.starts_with("todo_") {
                (TestOutcome::Skip, None)
            } else {
                match policies.query(&name, &Value::Null) {
                    Ok(Value::Bool(true)) => (TestOutcome::Pass, None),
                    Ok(Value::Null) => (TestOutcome::Fail, Some("undefined".into())),
                    Ok(other) => (TestOutcome::Fail, Some(other.to_string())),
                    Err(e) => (TestOutcome::Error, Some(e.to_string())),
                }
            };
            match outcome {
                TestOutcome::Pass => report.passed += 1,
                TestOutcome::Skip => report.skipped += 1,
                _ => report.failed += 1,
            }
            report.tests.push(TestResult {
                name,
                file: file.clone(),
                outcome,
                detail,
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_tests_like_opa_test() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.rego"),
            "package p\n\nallow if input.x == 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("p_test.rego"),
            "package p_test\n\nimport data.p\n\ntest_allows if p.allow with input as {\"x\": 1}\n\ntest_refuses if not p.allow with input as {\"x\": 2}\n\ntest_wrong if p.allow with input as {\"x\": 3}\n\ntodo_later if true\n",
        )
        .unwrap();
        let r = run(dir.path()).unwrap();
        let outcomes: Vec<(&str, &TestOutcome)> = r
            .tests
            .iter()
            .map(|t| (t.name.as_str(), &t.outcome))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("data.p_test.test_allows", &TestOutcome::Pass),
                ("data.p_test.test_refuses", &TestOutcome::Pass),
                ("data.p_test.test_wrong", &TestOutcome::Fail),
                ("data.p_test.todo_later", &TestOutcome::Skip),
            ]
        );
        assert_eq!((r.passed, r.failed, r.skipped), (2, 1, 1));
    }
}
