//! `maestro run` and `maestro validate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::client::Client;
use super::output::{execution_text, exit_for};
use super::{Exit, Output, Target, fail};
use crate::app::{App, golden, workflows};
use crate::attest::receipt::ReceiptBundle;
use crate::config::TenantConfig;
use crate::domain::actor::{Access, Actor, Role};
use crate::domain::duration;
use crate::domain::execution::Execution;
use crate::domain::validate::{self, Problem};

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The workflow: a manifest file (YAML or JSON), the name of an embedded workflow
    /// (`hello`), or `golden/NAME` for a golden's signed package from the catalog (`maestro
    /// golden install` installs them); `maestro run -w list` lists them.
    #[arg(short = 'w', long = "workflow")]
    pub workflow: String,
    /// Mark the run as a synthetic canary (kept out of tenant statistics).
    #[arg(long)]
    pub canary: bool,
    /// Where to run.
    #[command(flatten)]
    pub target: Target,
    /// How long to wait for the execution to finish (0s: return once it is queued).
    #[arg(long, default_value = "5m")]
    pub wait: String,
    /// Write the receipt file here (for `maestro verify-receipt`).
    #[arg(long)]
    pub receipt_out: Option<PathBuf>,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest file (YAML or JSON), `-` for standard input, or `post-release` to run
    /// post-release validation (canaries, receipts, log, decision replays) now.
    pub file: PathBuf,
    /// Accepted regions (default: any well-formed region).
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Post-release: where (a server with an appliance-wide auditor or admin token, or the
    /// local data directory).
    #[command(flatten)]
    pub target: Target,
    /// Post-release: save the evidence bundle here.
    #[arg(long)]
    pub evidence_out: Option<PathBuf>,
}

enum Source {
    File(String),
    /// An embedded workflow (`NAME`) or a golden's installed package (`golden/NAME`),
    /// resolved where it runs.
    Named(String),
}

fn load_source(workflow: &str) -> anyhow::Result<Source> {
    let path = Path::new(workflow);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| fail(Exit::Usage, format!("reading {workflow}: {e}")))?;
        return Ok(Source::File(text));
    }
    let name = workflow.strip_prefix(golden::PREFIX).unwrap_or(workflow);
    if workflows::get(name).is_some() {
        return Ok(Source::Named(workflow.to_owned()));
    }
    Err(fail(
        Exit::NotFound,
        format!(
            "{workflow:?} is neither a file nor an embedded workflow (embedded: {}; \
             golden/NAME runs the signed golden package)",
            workflows::names().join(", ")
        ),
    ))
}

fn problems_text(problems: &[Problem]) -> String {
    let mut s = if problems.len() == 1 {
        "the manifest is invalid:".to_string()
    } else {
        format!("the manifest has {} problems:", problems.len())
    };
    for p in problems {
        s.push_str(&format!("\n  {p}"));
        if let Some(h) = &p.hint {
            s.push_str(&format!("\n      hint: {h}"));
        }
    }
    s
}

/// `maestro validate FILE`, or `maestro validate post-release`
pub async fn validate(
    args: ValidateArgs,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    if super::postrelease::is_post_release(&args.file) {
        return super::postrelease::run(
            &args.target,
            args.evidence_out.as_deref(),
            config_file,
            out,
        )
        .await;
    }
    let text = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&args.file)
            .map_err(|e| fail(Exit::Usage, format!("reading {}: {e}", args.file.display())))?
    };
    let ctx = validate::Context {
        regions: &args.regions,
        ..validate::Context::default()
    };
    match validate::load(&text, &ctx) {
        Ok(v) => {
            out.print(
                &json!({"valid": true, "name": v.manifest.name, "version": v.manifest.version, "digest": v.digest, "tasks": v.manifest.tasks.len()}),
                || format!("valid: {}@{} ({} tasks) {}", v.manifest.name, v.manifest.version, v.manifest.tasks.len(), v.digest),
            );
            Ok(Exit::Ok)
        }
        Err(problems) => {
            if out.is_json() {
                out.json_always(&json!({"valid": false, "problems": problems}));
                Ok(Exit::Invalid)
            } else {
                Err(fail(Exit::Invalid, problems_text(&problems)))
            }
        }
    }
}

fn print_result(
    out: &Output,
    exec: &Execution,
    receipt: Option<&ReceiptBundle>,
    saved: Option<&Path>,
) {
    out.print(&json!({"execution": exec, "receipt": receipt}), || {
        let mut s = execution_text(exec);
        if let Some(p) = saved {
            s.push_str(&format!("  saved      {}\n", p.display()));
        }
        s
    });
}

/// Saves the receipt where asked, prints the result, and gives the exit code.
fn finish(
    out: &Output,
    args: &RunArgs,
    exec: &Execution,
    receipt: Option<&ReceiptBundle>,
) -> anyhow::Result<Exit> {
    let saved = match (receipt, args.receipt_out.as_deref()) {
        (Some(r), Some(path)) => {
            std::fs::write(path, serde_json::to_vec_pretty(r)?)
                .map_err(|e| fail(Exit::Error, format!("writing {}: {e}", path.display())))?;
            Some(path)
        }
        _ => None,
    };
    print_result(out, exec, receipt, saved);
    Ok(exit_for(exec.status))
}

/// `maestro run`
pub async fn run(args: RunArgs, config_file: Option<&Path>, out: &Output) -> anyhow::Result<Exit> {
    if args.workflow == "list" {
        let names = workflows::names();
        let goldens: Vec<String> = names
            .iter()
            .map(|n| format!("{}{n}", golden::PREFIX))
            .collect();
        out.print(&json!({"workflows": names, "goldens": goldens}), || {
            names
                .iter()
                .map(|n| format!("{n:<18} golden/{n}"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        return Ok(Exit::Ok);
    }
    let wait =
        duration::parse(&args.wait).map_err(|e| fail(Exit::Usage, format!("--wait: {e}")))?;
    let source = load_source(&args.workflow)?;
    match &args.target.server {
        Some(server) => run_remote(&args, server, source, wait, out).await,
        None => run_local(&args, config_file, source, wait, out).await,
    }
}

async fn run_remote(
    args: &RunArgs,
    server: &str,
    source: Source,
    wait: Duration,
    out: &Output,
) -> anyhow::Result<Exit> {
    let client = Client::new(server, args.target.token.clone())?;
    let mut query = vec![];
    if !wait.is_zero() {
        query.push(("wait", duration::format(wait.min(Duration::from_secs(300)))));
    }
    let (content_type, body) = match source {
        Source::Named(name) => (
            "application/json",
            serde_json::to_vec(
                &json!({"workflow": name, "canary": args.canary, "tenant": args.target.tenant}),
            )?,
        ),
        Source::File(text) => {
            if let Some(t) = &args.target.tenant {
                query.push(("tenant", t.clone()));
            }
            if args.canary {
                query.push(("canary", "true".into()));
            }
            ("application/yaml", text.into_bytes())
        }
    };
    let (_, exec): (u16, Execution) = client
        .post("/api/v1/executions", &query, content_type, body)
        .await?;
    let mut tenant_q = vec![];
    if let Some(t) = &args.target.tenant {
        tenant_q.push(("tenant", t.clone()));
    }
    let receipt: Option<ReceiptBundle> = if exec.status.is_final() {
        Some(
            client
                .get(
                    &format!("/api/v1/executions/{}/receipt", exec.id),
                    &tenant_q,
                )
                .await?,
        )
    } else {
        None
    };
    finish(out, args, &exec, receipt.as_ref())
}

async fn run_local(
    args: &RunArgs,
    config_file: Option<&Path>,
    source: Source,
    wait: Duration,
    out: &Output,
) -> anyhow::Result<Exit> {
    let mut config = super::inspect::local_config(&args.target, config_file)?;
    if config.tenants.is_empty() {
        config.tenants.insert(
            super::inspect::LOCAL_DEFAULT_TENANT.into(),
            TenantConfig::default(),
        );
    }
    let tenant_id = super::inspect::local_tenant(&args.target, &config)?;
    let app = Arc::new(App::start(config).await?);
    let scope = app.system_scope(&tenant_id, Access::Run).ok_or_else(|| {
        fail(
            Exit::NotFound,
            format!("tenant {tenant_id} is not configured"),
        )
    })?;
    let manifest = match source {
        Source::File(text) => validate::load(&text, &app.engine.validation_context())
            .map_err(|p| fail(Exit::Invalid, problems_text(&p))),
        Source::Named(name) => app.named_workflow(&name).map_err(|e| match e {
            golden::GoldenError::Invalid { problems, .. } => {
                fail(Exit::Invalid, problems_text(&problems))
            }
            e => fail(Exit::NotFound, e.to_string()),
        }),
    };
    let manifest = match manifest {
        Ok(m) => m,
        Err(e) => {
            app.engine.shutdown(Duration::from_secs(1)).await;
            return Err(e);
        }
    };
    let actor = Actor {
        subject: format!("cli:{}", whoami()),
        tenant: Some(tenant_id.clone()),
        roles: vec![Role::Operator],
    };
    let exec = app
        .engine
        .submit(&scope, &actor, manifest, args.canary)
        .await;
    let exec = match exec {
        Ok(e) => e,
        Err(e) => {
            app.engine.shutdown(Duration::from_secs(1)).await;
            return Err(fail(Exit::Unavailable, e.to_string()));
        }
    };
    let exec = if exec.status.is_final() || wait.is_zero() {
        exec
    } else {
        app.engine
            .wait_final(&scope, &exec.id, wait)
            .await?
            .unwrap_or(exec)
    };
    let receipt = if exec.status.is_final() {
        app.engine.evidence().receipt_bundle(&scope, &exec.id)?
    } else {
        None
    };
    // Executions still queued or running stay in the store and resume at the next start.
    app.engine.shutdown(Duration::from_secs(1)).await;
    finish(out, args, &exec, receipt.as_ref())
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "local".into())
}
