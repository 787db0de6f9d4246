//! Runner tests: DAG order and references, retries, timeouts, skips, artifacts.

use super::*;
use crate::config::{ExecActionConfig, HttpActionConfig};
use crate::domain::ids::{ExecutionId, TenantId};
use crate::domain::validate::Context;
use std::collections::BTreeMap;

fn env(dir: &std::path::Path) -> RunEnv {
    RunEnv {
        actions: ActionEnv::new(
            HttpActionConfig::default(),
            ExecActionConfig::default(),
            BTreeMap::from([("eu".to_string(), "eu-west".to_string())]),
            dir.to_owned(),
            1024,
            "http://127.0.0.1:7878".into(),
        )
        .unwrap(),
        execution_timeout: Duration::from_secs(30),
        task_timeout: Duration::from_secs(10),
        max_output_bytes: 4096,
        packages: Packages::default(),
    }
}

fn exec(yaml: &str) -> Execution {
    exec_in(yaml, &Context::default())
}

/// A new execution of `yaml`, validated in `ctx`.
fn exec_in(yaml: &str, ctx: &Context<'_>) -> Execution {
    let v = validate::load(yaml, ctx).unwrap_or_else(|p| panic!("{p:#?}"));
    Execution::new(
        ExecutionId::generate(),
        TenantId::new("acme").unwrap(),
        v.manifest,
        v.digest,
        false,
        "t".into(),
        Timestamp::now(),
    )
}

async fn go(yaml: &str) -> RunOutcome {
    let dir = tempfile::tempdir().unwrap();
    run(exec(yaml), &env(dir.path())).await
}

#[tokio::test]
async fn a_dag_runs_with_fan_out_fan_in_and_references() {
    let out = go(r#"
name: dag
version: "1.0.0"
region: eu-west
tasks:
  - {id: src, uses: builtin/echo, with: {message: "hello"}}
  - {id: up, uses: builtin/transform, with: {input: "${{ tasks.src.outputs.message }}", op: upper}}
  - {id: len, uses: builtin/transform, with: {input: "${{ tasks.src.outputs.message }}", op: length}}
  - id: join
    uses: builtin/transform
    with: {input: ["${{ tasks.up.outputs.value }}", "${{ tasks.len.outputs.value }}", "${{ execution.tenant }}"], op: concat, separator: "/"}
  - {id: save, uses: builtin/artifact, with: {name: out.txt, location: eu, content: "${{ tasks.join.outputs.value }}"}}
"#)
    .await;
    let e = &out.execution;
    assert_eq!(e.status, ExecutionStatus::Succeeded, "{:?}", e.error);
    assert_eq!(e.tasks[3].outputs["value"], "HELLO/5/acme");
    assert_eq!(out.artifacts.len(), 1);
    assert_eq!(out.artifacts[0].1, b"HELLO/5/acme");
    assert_eq!(e.artifacts[0].region, "eu-west");
    let t = |i: usize| {
        (
            e.tasks[i].attempts[0].started_at,
            e.tasks[i].attempts[0].finished_at,
        )
    };
    assert!(
        t(0).1 <= t(1).0 && t(0).1 <= t(2).0,
        "fan-out starts after its source"
    );
    assert!(
        t(1).1 <= t(3).0 && t(2).1 <= t(3).0,
        "fan-in waits for both"
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried_with_backoff() {
    let out = go(r#"
name: retry
version: "1.0.0"
region: eu-west
tasks:
  - {id: flaky, uses: builtin/fail, with: {attempts: 2}, retry: {max_attempts: 3, backoff: 20ms, multiplier: 2}}
"#)
    .await;
    let t = &out.execution.tasks[0];
    assert_eq!(out.execution.status, ExecutionStatus::Succeeded);
    assert_eq!(t.attempts.len(), 3);
    assert!(!t.attempts[0].ok && !t.attempts[1].ok && t.attempts[2].ok);
    let gap = |a: &Attempt, b: &Attempt| b.started_at.duration_since(a.finished_at).as_secs_f64();
    assert!(gap(&t.attempts[0], &t.attempts[1]) >= 0.019);
    assert!(gap(&t.attempts[1], &t.attempts[2]) >= 0.039);
}

#[tokio::test]
async fn exhausted_retries_fail_and_skip_dependents() {
    let out = go(r#"
name: fail
version: "1.0.0"
region: eu-west
tasks:
  - {id: bad, uses: builtin/fail, with: {message: nope}, retry: {max_attempts: 2, backoff: 1ms}}
  - {id: after, uses: builtin/echo, needs: [bad], with: {message: x}}
  - {id: independent, uses: builtin/echo, with: {message: y}}
"#)
    .await;
    let e = &out.execution;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(e.tasks[0].status, TaskStatus::Failed);
    assert_eq!(e.tasks[0].attempts.len(), 2);
    assert_eq!(e.tasks[1].status, TaskStatus::Skipped);
    assert_eq!(e.tasks[2].status, TaskStatus::Succeeded);
    assert_eq!(
        e.error.as_deref(),
        Some("task \"bad\" failed: nope (attempt 2)")
    );
}

#[tokio::test]
async fn attempts_and_executions_time_out() {
    let out = go(r#"
name: slow
version: "1.0.0"
region: eu-west
tasks:
  - {id: slow, uses: builtin/sleep, with: {duration: 5s}, timeout: 50ms}
"#)
    .await;
    assert_eq!(out.execution.status, ExecutionStatus::Failed);
    assert_eq!(
        out.execution.tasks[0].attempts[0].error.as_deref(),
        Some("attempt timed out after 50ms")
    );
    let started = std::time::Instant::now();
    let out = go(r#"
name: slow
version: "1.0.0"
region: eu-west
timeout: 100ms
tasks:
  - {id: slow, uses: builtin/sleep, with: {duration: 5s}}
  - {id: next, uses: builtin/echo, needs: [slow], with: {message: x}}
"#)
    .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let e = &out.execution;
    assert_eq!(e.error.as_deref(), Some("execution timed out after 100ms"));
    assert_eq!(e.tasks[0].status, TaskStatus::Failed);
    assert!(
        e.tasks[0].attempts[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("cancelled")
    );
    assert_eq!(e.tasks[1].status, TaskStatus::Skipped);
}

#[tokio::test]
async fn bad_references_and_duplicate_artifacts_fail_the_task() {
    let out = go(r#"
name: refs
version: "1.0.0"
region: eu-west
tasks:
  - {id: a, uses: builtin/echo, with: {message: {x: 1}}}
  - {id: b, uses: builtin/echo, with: {message: "${{ tasks.a.outputs.message.y }}"}}
  - {id: c, uses: builtin/artifact, with: {name: n, location: eu, content: "1"}}
  - {id: d, uses: builtin/artifact, needs: [c], with: {name: n, location: eu, content: "2"}}
"#)
    .await;
    let e = &out.execution;
    assert_eq!(e.tasks[1].status, TaskStatus::Failed);
    assert!(
        e.tasks[1].attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("nothing at y")
    );
    assert_eq!(e.tasks[3].status, TaskStatus::Failed);
    assert!(
        e.tasks[3].attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(out.artifacts.len(), 1);
}

#[tokio::test]
async fn oversized_outputs_fail() {
    let big = "x".repeat(5000);
    let out = go(&format!(
        "name: big\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {{id: a, uses: builtin/echo, with: {{message: \"{big}\"}}}}\n"
    ))
    .await;
    assert!(
        out.execution.tasks[0].attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("limits.max_output_bytes")
    );
}

const NOTES: &str = r#"
name: notes
version: "1.2.0"
region: us-east
tasks:
  - {id: shout, uses: builtin/transform, with: {input: "${{ inputs.text }}", op: upper}}
  - {id: save, uses: builtin/artifact, with: {name: "${{ inputs.name }}", location: eu, content: "${{ tasks.shout.outputs.value }} from ${{ manifest.name }}"}}
"#;

#[tokio::test]
async fn a_package_runs_its_tasks_with_the_inputs_of_its_task() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(dir.path());
    let notes = validate::load(NOTES, &Context::default()).unwrap();
    let digest = Digest::of(b"archive");
    env.packages.install(InstalledPackage::new(
        "notes",
        semver::Version::new(1, 2, 0),
        digest,
        notes.manifest,
    ));
    assert_eq!(
        env.packages
            .get("notes", &semver::Version::new(1, 2, 0))
            .unwrap()
            .inputs,
        ["name".to_string(), "text".to_string()].into()
    );
    let ctx = Context {
        catalog: &env.packages,
        ..Context::default()
    };
    let yaml = r#"
name: uses-notes
version: "1.0.0"
region: eu-west
tasks:
  - {id: greet, uses: builtin/echo, with: {message: hello}}
  - {id: notes, uses: "pkg:notes@1.2.0", with: {text: "${{ tasks.greet.outputs.message }}", name: n.txt}, retry: {max_attempts: 2, backoff: 10ms}}
  - {id: after, uses: builtin/echo, with: {message: "${{ tasks.notes.outputs.tasks.shout.value }}"}}
"#;
    let e = exec_in(yaml, &ctx);
    let out = run(e, &env).await;
    let e = &out.execution;
    assert_eq!(e.status, ExecutionStatus::Succeeded, "{:?}", e.error);
    let notes = &e.tasks[1];
    assert_eq!(notes.attempts.len(), 1);
    assert_eq!(
        notes.outputs["package"]["digest"],
        serde_json::json!(digest)
    );
    assert_eq!(notes.outputs["package"]["version"], "1.2.0");
    assert_eq!(e.tasks[2].outputs["message"], "HELLO");
    // The package's artifact is the execution's, in the execution's region.
    assert_eq!(e.artifacts.len(), 1);
    assert_eq!(e.artifacts[0].task, "notes/save");
    assert_eq!(e.artifacts[0].region, "eu-west");
    assert_eq!(out.artifacts[0].1, b"HELLO from notes");

    // A failing package task fails the package task, with the package named; retries rerun it.
    let broken = yaml.replace("text: \"${{ tasks.greet.outputs.message }}\"", "text: [1]");
    let e = exec_in(&broken, &ctx);
    let out = run(e, &env).await;
    let failed = &out.execution.tasks[1];
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.attempts.len(), 2);
    let error = failed.attempts[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("pkg:notes@1.2.0: task \"shout\" failed:"),
        "{error}"
    );
    assert_eq!(out.execution.tasks[2].status, TaskStatus::Skipped);

    // Outside a package there are no inputs; an unknown package fails at once.
    let out = go(&NOTES.replace("us-east", "eu-west")).await;
    let error = out.execution.tasks[0].attempts[0].error.clone().unwrap();
    assert!(
        error.contains("inputs exist only in a workflow package"),
        "{error}"
    );
}
