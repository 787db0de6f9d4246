//! `maestro drill …`: rehearsals of failures on a throw-away appliance in a temporary
//! directory, never on real data. `mis-tagged-bucket` runs workflows into a bucket,
//! re-tags the bucket to a region the tenant may not use, restarts, and shows that the
//! residency auditor flags every affected receipt and that, enforcing, new runs into the
//! bucket are denied and the rollout gate is closed. `residency-corpus` writes the generated
//! corpus of planted violations and shows the auditor finds each one and nothing clean.

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;

use super::output::Output;
use super::{Exit, fail};
use crate::app::App;
use crate::config::{Config, LocationConfig, TenantConfig};
use crate::domain::actor::{Access, Actor, Role};
use crate::domain::execution::ExecutionStatus;
use crate::domain::ids::TenantId;
use crate::domain::validate;
use crate::engine::residency::corpus;

/// Drills.
#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Re-tag a bucket after runs wrote to it: every affected receipt must be flagged and,
    /// enforcing, new runs into it denied and the rollout blocked. Exits 0 when all of that
    /// happened.
    MisTaggedBucket {
        /// Workflow runs before the re-tag.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Write the generated corpus of planted residency violations and audit it: every
    /// planted violation must be found and no clean run flagged. Exits 0 when so.
    ResidencyCorpus {
        /// Receipts in the corpus.
        #[arg(long, default_value_t = 5000)]
        size: usize,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

const TENANT: &str = "drill";

fn drill_config(dir: &std::path::Path, bucket_region: &str) -> Config {
    let mut c = Config {
        data_dir: dir.to_owned(),
        regions: vec!["eu-west".into(), "us-east".into()],
        ..Config::default()
    };
    c.locations.insert(
        "eu-bucket".into(),
        LocationConfig {
            region: bucket_region.into(),
            replicas: Vec::new(),
        },
    );
    c.tenants.insert(
        TENANT.into(),
        TenantConfig {
            allowed_regions: vec!["eu-west".into()],
            ..TenantConfig::default()
        },
    );
    c.features.residency_auditor_enforce = true;
    c
}

const WORKFLOW: &str = r#"name: drill-report
version: "1.0.0"
region: eu-west
tasks:
  - id: report
    uses: builtin/artifact
    with: {name: report.txt, location: eu-bucket, content: "quarterly numbers"}
"#;

async fn submit(app: &App) -> anyhow::Result<crate::domain::execution::Execution> {
    let tenant = TenantId::new(TENANT)?;
    let scope = app
        .system_scope(&tenant, Access::Run)
        .ok_or_else(|| fail(Exit::Error, "the drill tenant is not configured"))?;
    let manifest = validate::load(WORKFLOW, &app.engine.validation_context())
        .map_err(|p| fail(Exit::Error, format!("{p:?}")))?;
    let actor = Actor {
        subject: "drill:mis-tagged-bucket".into(),
        tenant: Some(tenant),
        roles: vec![Role::Operator],
    };
    let exec = app.engine.submit(&scope, &actor, manifest, false).await?;
    Ok(if exec.status.is_final() {
        exec
    } else {
        app.engine
            .wait_final(&scope, &exec.id, Duration::from_secs(30))
            .await?
            .unwrap_or(exec)
    })
}

async fn mis_tagged_bucket(runs: usize, out: &Output) -> anyhow::Result<Exit> {
    let dir = tempfile_dir()?;
    let mut steps = Vec::new();
    let mut ok = true;
    let mut step = |name: &str, passed: bool, detail: String| {
        ok &= passed;
        steps.push(json!({"step": name, "passed": passed, "detail": detail}));
    };

    let app = Arc::new(App::start(drill_config(dir.path(), "eu-west")).await?);
    let mut ids = Vec::new();
    for _ in 0..runs {
        let e = submit(&app).await?;
        if e.status == ExecutionStatus::Succeeded {
            ids.push(e.id.clone());
        }
    }
    step(
        "runs write to eu-bucket (eu-west)",
        ids.len() == runs,
        format!("{} of {runs} succeeded", ids.len()),
    );
    let engine = app.engine.clone();
    let before = tokio::task::spawn_blocking(move || engine.audit_residency(false)).await??;
    step(
        "audit before the re-tag",
        before.open == 0,
        format!(
            "{} receipts, {} open violations",
            before.receipts, before.open
        ),
    );
    app.engine.shutdown(Duration::from_secs(2)).await;
    drop(app);

    // The operator re-tags the bucket: it is in us-east now.
    let app = Arc::new(App::start(drill_config(dir.path(), "us-east")).await?);
    let engine = app.engine.clone();
    let after = tokio::task::spawn_blocking(move || engine.audit_residency(false)).await??;
    let open = app
        .engine
        .store()
        .read()?
        .all_violations()?
        .into_iter()
        .filter(|v| v.is_open())
        .collect::<Vec<_>>();
    let flagged: std::collections::BTreeSet<_> = open
        .iter()
        .filter(|v| v.finding.location.as_deref() == Some("eu-bucket"))
        .map(|v| v.execution.clone())
        .collect();
    let missed: Vec<_> = ids.iter().filter(|id| !flagged.contains(*id)).collect();
    step(
        "after the re-tag, every affected receipt is flagged",
        missed.is_empty() && !ids.is_empty(),
        format!(
            "{} of {} receipts flagged ({} open violations; rules changed, so every receipt was checked: {})",
            flagged.len(),
            ids.len(),
            open.len(),
            after.full || before.rules != after.rules
        ),
    );
    let denied = submit(&app).await?;
    let codes: Vec<String> = denied
        .decisions
        .iter()
        .flat_map(|d| d.reasons.iter().map(|r| r.code.clone()))
        .collect();
    step(
        "a new run into eu-bucket is denied",
        denied.status == ExecutionStatus::Denied
            && codes.iter().any(|c| c == "residency_violation_open"),
        format!("status {}, reasons {codes:?}", denied.status.as_str()),
    );
    let gate = app.rollout_gate();
    step(
        "the rollout is blocked",
        !gate.open,
        gate.reasons.join("; "),
    );
    app.engine.shutdown(Duration::from_secs(2)).await;
    print(out, "mis-tagged-bucket", ok, &steps);
    Ok(if ok { Exit::Ok } else { Exit::Failed })
}

fn print(out: &Output, drill: &str, ok: bool, steps: &[serde_json::Value]) {
    out.print(
        &json!({"drill": drill, "passed": ok, "steps": steps}),
        || {
            let mut s = format!("drill {drill}: {}\n", if ok { "PASSED" } else { "FAILED" });
            for st in steps {
                s.push_str(&format!(
                    "  [{}] {}: {}\n",
                    if st["passed"] == true { "ok" } else { "FAIL" },
                    st["step"].as_str().unwrap_or(""),
                    st["detail"].as_str().unwrap_or("")
                ));
            }
            s.trim_end().to_owned()
        },
    );
}

fn tempfile_dir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("maestro-drill-")
        .tempdir()
        .map_err(|e| fail(Exit::Error, format!("creating a temporary directory: {e}")))
}

fn residency_corpus(size: usize, seed: u64, out: &Output) -> anyhow::Result<Exit> {
    let dir = tempfile_dir()?;
    let store = crate::store::Store::open(dir.path())?;
    let key = crate::attest::keys::SigningKey::generate(crate::attest::keys::Algorithm::Ed25519)?;
    let c = corpus::generate(seed, size);
    corpus::write(&store, &key, &c)?;
    let o = crate::engine::residency::audit(&store, &c.rules, true)?;
    let cmp = corpus::compare(&c, &store.read()?.all_violations()?);
    let all_kinds = cmp.kinds == corpus::planted_kinds() || size < corpus::planted_kinds().len();
    let ok =
        cmp.missed.is_empty() && cmp.unexpected.is_empty() && o.unreadable_count == 0 && all_kinds;
    let steps = vec![
        json!({"step": "corpus", "passed": true, "detail": format!("{} receipts: {} clean, {} with planted violations of {} kinds, {} findings expected", size, cmp.clean, cmp.planted, cmp.kinds.len(), cmp.expected_findings)}),
        json!({"step": "every planted violation found", "passed": cmp.missed.is_empty(), "detail": format!("{} missed {:?}", cmp.missed.len(), cmp.missed.iter().take(5).collect::<Vec<_>>())}),
        json!({"step": "nothing clean flagged", "passed": cmp.unexpected.is_empty(), "detail": format!("{} unexpected {:?}", cmp.unexpected.len(), cmp.unexpected.iter().take(5).collect::<Vec<_>>())}),
        json!({"step": "audit", "passed": o.unreadable_count == 0, "detail": format!("{} receipts in {:.2} s, {} violations", o.receipts, o.seconds, o.open)}),
    ];
    print(out, "residency-corpus", ok, &steps);
    Ok(if ok { Exit::Ok } else { Exit::Failed })
}

/// `maestro drill …`
pub async fn drill(cmd: DrillCommand, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        DrillCommand::MisTaggedBucket { runs } => mis_tagged_bucket(runs.max(1), out).await,
        DrillCommand::ResidencyCorpus { size, seed } => residency_corpus(size, seed, out),
    }
}
