//! Runs one execution: its tasks as a DAG (independent tasks concurrently), resolving
//! `${{ … }}` references from finished tasks, with per-attempt timeouts, retries with
//! backoff, and an overall deadline. Returns the final execution and its artifacts' bytes.
//!
//! A `uses: pkg:NAME@VERSION` task runs the installed package's tasks the same way, as one
//! attempt of that task: its resolved `with:` are the package's `${{ inputs.KEY }}`, its
//! outputs are the package (name, version, archive digest) and every package task's outputs
//! by id, and the artifacts its tasks write are the execution's, named `TASK/SUBTASK`.
//! Packages do not run packages.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt as _};
use jiff::Timestamp;
use serde_json::{Map, Value};

use super::actions::{self, ActionCtx, ActionEnv, ActionResult, ArtifactOut};
use super::packages::{InstalledPackage, Packages};
use crate::domain::actions::{Uses, parse_uses};
use crate::domain::duration;
use crate::domain::execution::{Attempt, Execution, ExecutionStatus, TaskStatus};
use crate::domain::expr::{self, ContextValue, Reference};
use crate::domain::ids::Digest;
use crate::domain::manifest::Task;
use crate::domain::validate;

/// What running needs besides the execution.
pub struct RunEnv {
    /// Action clients and settings.
    pub actions: ActionEnv,
    /// Default limit of a whole execution.
    pub execution_timeout: Duration,
    /// Default limit of one attempt.
    pub task_timeout: Duration,
    /// Largest outputs of one task, as JSON.
    pub max_output_bytes: usize,
    /// Installed workflow packages.
    pub packages: Packages,
}

/// A finished execution and the bytes of its artifacts.
pub struct RunOutcome {
    /// The execution in a final status.
    pub execution: Execution,
    /// Artifact bytes by digest.
    pub artifacts: Vec<(Digest, Vec<u8>)>,
}

struct TaskOutcome {
    attempts: Vec<Attempt>,
    result: Result<ActionResult, String>,
}

struct Resolver<'a> {
    exec: &'a Execution,
    outputs: &'a HashMap<String, Map<String, Value>>,
    /// The package inputs, when running a package.
    inputs: Option<&'a Map<String, Value>>,
    /// `appliance.url`.
    appliance_url: &'a str,
}

impl expr::Lookup for Resolver<'_> {
    fn lookup(&self, reference: &Reference) -> Result<Value, String> {
        match reference {
            Reference::Context(c) => Ok(Value::String(match c {
                ContextValue::ExecutionId => self.exec.id.to_string(),
                ContextValue::Tenant => self.exec.tenant.to_string(),
                ContextValue::Region => self.exec.region.clone(),
                ContextValue::ManifestName => self.exec.manifest.name.clone(),
                ContextValue::ManifestVersion => self.exec.manifest.version.clone(),
                ContextValue::ApplianceUrl => self.appliance_url.to_owned(),
            })),
            Reference::Input { key, path } => {
                let inputs = self.inputs.ok_or_else(|| {
                    format!(
                        "inputs.{key}: inputs exist only in a workflow package, given by the \
                         with: of the pkg: task that runs it"
                    )
                })?;
                let value = inputs
                    .get(key)
                    .ok_or_else(|| format!("the package was given no input {key:?}"))?;
                expr::descend(value, path)
                    .cloned()
                    .ok_or_else(|| format!("input {key} has nothing at {}", path.join(".")))
            }
            Reference::TaskOutput { task, key, path } => {
                let outputs = self
                    .outputs
                    .get(task)
                    .ok_or_else(|| format!("task {task:?} has no outputs"))?;
                let value = outputs
                    .get(key)
                    .ok_or_else(|| format!("task {task:?} has no output {key:?}"))?;
                expr::descend(value, path)
                    .cloned()
                    .ok_or_else(|| format!("output {task}.{key} has nothing at {}", path.join(".")))
            }
        }
    }
}

fn backoff(task: &Task, attempt: u32) -> Duration {
    let retry = task.retry.as_ref();
    let base = retry
        .and_then(|r| r.backoff.as_deref())
        .and_then(|b| duration::parse(b).ok())
        .unwrap_or(Duration::from_millis(100));
    let factor = retry.and_then(|r| r.multiplier).unwrap_or(2.0);
    let secs = base.as_secs_f64() * factor.powi(attempt.saturating_sub(1) as i32);
    Duration::from_secs_f64(secs.min(3600.0))
}

/// A task that fails before any action runs: one attempt, recorded with its error.
fn failed_at_once(error: String) -> TaskOutcome {
    let now = Timestamp::now();
    TaskOutcome {
        attempts: vec![Attempt {
            number: 1,
            started_at: now,
            finished_at: now,
            ok: false,
            error: Some(error.clone()),
        }],
        result: Err(error),
    }
}

/// What a task runs.
enum Runnable {
    Builtin(&'static crate::domain::actions::ActionSpec),
    Package(Arc<InstalledPackage>),
}

async fn run_task(
    task: Task,
    input: Map<String, Value>,
    exec: &Execution,
    env: &RunEnv,
    package_task: Option<&str>,
) -> TaskOutcome {
    // Inside a package, actions see the task as `TASK/SUBTASK` (work directories, artifacts).
    let label = match package_task {
        Some(p) => format!("{p}/{}", task.id),
        None => task.id.clone(),
    };
    let max_attempts = task.retry.as_ref().map_or(1, |r| r.max_attempts.max(1));
    let timeout = task
        .timeout
        .as_deref()
        .and_then(|t| duration::parse(t).ok())
        .unwrap_or(env.task_timeout);
    let runnable = match parse_uses(&task.uses) {
        Ok(Uses::Builtin(spec)) => Runnable::Builtin(spec),
        Ok(Uses::Package { name, version }) if package_task.is_some() => {
            return failed_at_once(format!(
                "pkg:{name}@{version}: a package's tasks cannot run another package"
            ));
        }
        Ok(Uses::Package { name, version }) => match env.packages.get(&name, &version) {
            Some(p) => Runnable::Package(p),
            None => {
                return failed_at_once(format!("package {name}@{version} is not installed"));
            }
        },
        Err(e) => return failed_at_once(e.message),
    };
    let mut attempts = Vec::new();
    let mut last_err = String::new();
    for number in 1..=max_attempts {
        let started_at = Timestamp::now();
        let ctx = ActionCtx {
            env: &env.actions,
            execution: &exec.id,
            tenant: &exec.tenant,
            task: &label,
            attempt: number,
        };
        let attempt = async {
            match &runnable {
                Runnable::Builtin(spec) => actions::run(spec, &input, &ctx).await,
                Runnable::Package(p) => run_package(p, &task.id, &input, exec, env).await,
            }
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "attempt timed out after {}",
                duration::format(timeout)
            )),
        };
        let result = result.and_then(|r| {
            let size = serde_json::to_vec(&r.outputs)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            if size > env.max_output_bytes {
                Err(format!(
                    "outputs are {size} bytes; the limit is {} (limits.max_output_bytes)",
                    env.max_output_bytes
                ))
            } else {
                Ok(r)
            }
        });
        let finished_at = Timestamp::now();
        match result {
            Ok(r) => {
                attempts.push(Attempt {
                    number,
                    started_at,
                    finished_at,
                    ok: true,
                    error: None,
                });
                return TaskOutcome {
                    attempts,
                    result: Ok(r),
                };
            }
            Err(e) => {
                attempts.push(Attempt {
                    number,
                    started_at,
                    finished_at,
                    ok: false,
                    error: Some(e.clone()),
                });
                last_err = e;
                if number < max_attempts {
                    tokio::time::sleep(backoff(&task, number)).await;
                }
            }
        }
    }
    TaskOutcome {
        attempts,
        result: Err(last_err),
    }
}

/// Runs an installed package's tasks as one attempt of the task `task_id` of `exec`.
fn run_package<'a>(
    package: &'a InstalledPackage,
    task_id: &'a str,
    inputs: &'a Map<String, Value>,
    exec: &'a Execution,
    env: &'a RunEnv,
) -> Pin<Box<dyn Future<Output = Result<ActionResult, String>> + Send + 'a>> {
    Box::pin(async move {
        let mut child = Execution::new(
            exec.id.clone(),
            exec.tenant.clone(),
            package.manifest.clone(),
            package.digest,
            exec.canary,
            exec.submitted_by.clone(),
            exec.submitted_at,
        );
        // The package runs where the execution runs.
        child.region = exec.region.clone();
        let outcome = run_with(child, env, Some((task_id, inputs))).await;
        let done = outcome.execution;
        if done.status != ExecutionStatus::Succeeded {
            return Err(format!(
                "pkg:{}: {}",
                package.reference(),
                done.error.unwrap_or_else(|| "failed".into())
            ));
        }
        let mut outputs = Map::new();
        outputs.insert(
            "package".into(),
            serde_json::json!({
                "name": package.name,
                "version": package.version.to_string(),
                "digest": package.digest,
            }),
        );
        outputs.insert(
            "tasks".into(),
            Value::Object(
                done.tasks
                    .into_iter()
                    .map(|t| (t.id, Value::Object(t.outputs)))
                    .collect(),
            ),
        );
        let artifacts = done
            .artifacts
            .into_iter()
            .zip(outcome.artifacts)
            .map(|(meta, (_, bytes))| ArtifactOut { meta, bytes })
            .collect();
        Ok(ActionResult { outputs, artifacts })
    })
}

/// Runs every task of a queued or running execution to a final status.
pub async fn run(exec: Execution, env: &RunEnv) -> RunOutcome {
    run_with(exec, env, None).await
}

/// Runs every task of `exec`; `package` is the task that runs it and its inputs, when it is
/// a package's run.
async fn run_with(
    mut exec: Execution,
    env: &RunEnv,
    package: Option<(&str, &Map<String, Value>)>,
) -> RunOutcome {
    let inputs = package.map(|(_, i)| i);
    let deps = validate::dependencies(&exec.manifest);
    let n = exec.manifest.tasks.len();
    let limit = exec
        .manifest
        .timeout
        .as_deref()
        .and_then(|t| duration::parse(t).ok())
        .unwrap_or(env.execution_timeout);
    let deadline = tokio::time::Instant::now() + limit;
    let snapshot = exec.clone();
    let mut outputs: HashMap<String, Map<String, Value>> = HashMap::new();
    let mut artifacts: Vec<ArtifactOut> = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut running = FuturesUnordered::new();
    let mut started: HashMap<usize, Timestamp> = HashMap::new();
    let mut timed_out = false;
    loop {
        #[allow(clippy::needless_range_loop)] // i indexes tasks, deps and the manifest alike
        for i in 0..n {
            if exec.tasks[i].status != TaskStatus::Pending {
                continue;
            }
            let dep_states: Vec<TaskStatus> =
                deps[i].iter().map(|&d| exec.tasks[d].status).collect();
            if dep_states
                .iter()
                .any(|s| matches!(s, TaskStatus::Failed | TaskStatus::Skipped))
            {
                exec.tasks[i].status = TaskStatus::Skipped;
                continue;
            }
            if !dep_states.iter().all(|s| *s == TaskStatus::Succeeded) {
                continue;
            }
            let task = exec.manifest.tasks[i].clone();
            let resolved = expr::resolve(
                &Value::Object(task.with.clone()),
                &Resolver {
                    exec: &snapshot,
                    outputs: &outputs,
                    inputs,
                    appliance_url: &env.actions.appliance_url,
                },
            );
            match resolved {
                Ok(Value::Object(input)) => {
                    exec.tasks[i].status = TaskStatus::Running;
                    started.insert(i, Timestamp::now());
                    let fut = run_task(task, input, &snapshot, env, package.map(|(t, _)| t));
                    running.push(async move { (i, fut.await) });
                }
                Ok(_) | Err(_) => {
                    let now = Timestamp::now();
                    let error = match resolved {
                        Err(e) => format!("resolving inputs: {e}"),
                        _ => "inputs did not resolve to an object".to_string(),
                    };
                    exec.tasks[i].status = TaskStatus::Failed;
                    exec.tasks[i].attempts.push(Attempt {
                        number: 1,
                        started_at: now,
                        finished_at: now,
                        ok: false,
                        error: Some(error),
                    });
                }
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some((i, outcome)) = running.next() => {
                started.remove(&i);
                let task_id = exec.tasks[i].id.clone();
                let run = &mut exec.tasks[i];
                run.attempts = outcome.attempts;
                match outcome.result {
                    Ok(result) => {
                        let duplicate = result.artifacts.iter().find(|a| names.contains(&a.meta.name)).map(|a| a.meta.name.clone());
                        if let Some(name) = duplicate {
                            run.status = TaskStatus::Failed;
                            if let Some(last) = run.attempts.last_mut() {
                                last.ok = false;
                                last.error = Some(format!("artifact name {name:?} is already used in this execution"));
                            }
                        } else {
                            for a in &result.artifacts {
                                names.insert(a.meta.name.clone());
                            }
                            run.status = TaskStatus::Succeeded;
                            run.outputs = result.outputs.clone();
                            outputs.insert(task_id, result.outputs);
                            artifacts.extend(result.artifacts);
                        }
                    }
                    Err(_) => run.status = TaskStatus::Failed,
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                timed_out = true;
                break;
            }
        }
    }
    drop(running);
    let now = Timestamp::now();
    if timed_out {
        let message = format!("execution timed out after {}", duration::format(limit));
        for (i, t) in exec.tasks.iter_mut().enumerate() {
            match t.status {
                TaskStatus::Running => {
                    t.status = TaskStatus::Failed;
                    t.attempts.push(Attempt {
                        number: t.attempts.len() as u32 + 1,
                        started_at: started.get(&i).copied().unwrap_or(now),
                        finished_at: now,
                        ok: false,
                        error: Some(format!("cancelled: {message}")),
                    });
                }
                TaskStatus::Pending => t.status = TaskStatus::Skipped,
                _ => {}
            }
        }
        exec.error = Some(message);
    }
    let all_ok = exec.tasks.iter().all(|t| t.status == TaskStatus::Succeeded);
    exec.status = if all_ok {
        ExecutionStatus::Succeeded
    } else {
        ExecutionStatus::Failed
    };
    if !all_ok && exec.error.is_none() {
        exec.error = exec
            .tasks
            .iter()
            .find(|t| t.status == TaskStatus::Failed)
            .map(|t| {
                let last = t
                    .attempts
                    .last()
                    .and_then(|a| a.error.clone())
                    .unwrap_or_default();
                format!("task {:?} failed: {last}", t.id)
            });
    }
    exec.finished_at = Some(now);
    exec.artifacts = artifacts.iter().map(|a| a.meta.clone()).collect();
    RunOutcome {
        execution: exec,
        artifacts: artifacts
            .into_iter()
            .map(|a| (a.meta.digest, a.bytes))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
