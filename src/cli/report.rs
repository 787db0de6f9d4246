//! `maestro report isolation`: runs the tenant isolation checks against the live appliance (a
//! server, or the local data directory), archives the signed report there, and writes it as
//! Markdown (the template `docs/release/ISOLATION_REPORT.md`), PDF or JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::client::Client;
use super::inspect::{local_config, tenant_query};
use super::{Exit, Output, Target, fail};
use crate::app::report::ArchivedReport;

use crate::domain::actor::{Access, Actor, Role};
use crate::domain::ids::{Digest, TenantId};
use crate::domain::report::IsolationReport;

/// `maestro report …`
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Run the tenant isolation checks against the live appliance (other tenants' tokens on
    /// every route, guessed ids, injected tenant fields, path traversal, forged and unknown
    /// credentials, a missing role; namespaces, queues and storage), archive the signed
    /// report, and write it. Exits 7 when a check failed.
    Isolation {
        /// Server, token, or local data directory; `--tenant` limits the report to one tenant.
        #[command(flatten)]
        target: Target,
        /// Report format.
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
        /// Where to write the report (`-` for standard output, except PDF).
        #[arg(long)]
        out: PathBuf,
        /// Write this archived report (ir_…) instead of running a new one.
        #[arg(long)]
        id: Option<String>,
    },
}

/// Formats of a written report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, through the report template.
    Md,
    /// PDF with real text.
    Pdf,
    /// The report, its digest and its signed envelope.
    Json,
}

/// The report's bytes in `format`, rendered from the signed payload (which must match the
/// digest it was archived with).
pub fn render(archived: &ArchivedReport, format: ReportFormat) -> anyhow::Result<Vec<u8>> {
    let payload = archived.envelope.payload_bytes()?;
    if Digest::of(&payload) != archived.digest {
        return Err(fail(
            Exit::Unverified,
            "the report's signed payload does not match its digest",
        ));
    }
    let report: IsolationReport = serde_json::from_slice(&payload)?;
    let md = report.to_markdown();
    Ok(match format {
        ReportFormat::Md => md.into_bytes(),
        ReportFormat::Pdf => {
            crate::pdf::from_markdown(&format!("Tenant Isolation Report {}", report.id), &md)
        }
        ReportFormat::Json => serde_json::to_vec_pretty(archived)?,
    })
}

/// `maestro report …`
pub async fn report(
    cmd: ReportCommand,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let ReportCommand::Isolation {
        target,
        format,
        out: path,
        id,
    } = cmd;
    if path.as_os_str() == "-" && format == ReportFormat::Pdf {
        return Err(fail(Exit::Usage, "write a PDF to a file: --out report.pdf"));
    }
    let archived = match target.server.as_deref() {
        Some(server) => {
            let c = Client::new(server, target.token.clone())?;
            let q = tenant_query(&target);
            match &id {
                Some(id) => {
                    c.get(&format!("/api/v1/reports/isolation/{id}"), &q)
                        .await?
                }
                None => {
                    c.post(
                        "/api/v1/reports/isolation",
                        &q,
                        "application/json",
                        b"{}".to_vec(),
                    )
                    .await?
                    .1
                }
            }
        }
        None => local(&target, config_file, id.as_deref()).await?,
    };
    let bytes = render(&archived, format)?;
    if path.as_os_str() == "-" {
        use std::io::Write as _;
        std::io::stdout().write_all(&bytes)?;
    } else {
        std::fs::write(&path, &bytes)
            .map_err(|e| fail(Exit::Error, format!("writing {}: {e}", path.display())))?;
    }
    let r = &archived.report;
    let failed = r
        .checks
        .iter()
        .chain(&r.boundaries)
        .filter(|c| !c.passed)
        .count();
    if path.as_os_str() != "-" {
        out.print(
            &json!({
                "id": r.id,
                "passed": r.passed,
                "failed_checks": failed,
                "digest": archived.digest,
                "out": path,
            }),
            || {
                format!(
                    "isolation report {}: {} ({} checks, {} boundaries, {failed} failed), archived with digest {}, written to {}",
                    r.id,
                    if r.passed { "PASS" } else { "FAIL" },
                    r.checks.len(),
                    r.boundaries.len(),
                    archived.digest,
                    path.display()
                )
            },
        );
    }
    Ok(if r.passed { Exit::Ok } else { Exit::Failed })
}

/// Runs (or reads) the report on the local data directory, the appliance started in-process.
async fn local(
    target: &Target,
    config_file: Option<&Path>,
    id: Option<&str>,
) -> anyhow::Result<ArchivedReport> {
    let config = local_config(target, config_file)?;
    let focus = match &target.tenant {
        Some(t) => Some(TenantId::new(t).map_err(|e| fail(Exit::Usage, e.to_string()))?),
        None => None,
    };
    let app = super::inspect::start_local(config).await?;
    let scope = match &focus {
        Some(t) => Some(
            app.system_scope(t, Access::Read)
                .ok_or_else(|| fail(Exit::NotFound, format!("tenant {t} is not configured")))?,
        ),
        None => None,
    };
    let result = match id {
        Some(id) => app
            .archived_report(scope.as_ref(), id)
            .map_err(anyhow::Error::from)
            .and_then(|r| {
                r.ok_or_else(|| fail(Exit::NotFound, format!("isolation report {id} not found")))
            }),
        None => {
            let actor = Actor {
                subject: format!(
                    "cli:{}",
                    std::env::var("USER").unwrap_or_else(|_| "local".into())
                ),
                tenant: None,
                roles: vec![Role::Admin],
            };
            match crate::http::probe::isolation_report(&app, &actor, focus).await {
                Ok(report) => app.archive_report(&report, scope).await.map_err(Into::into),
                Err(e) => Err(fail(Exit::Error, e.to_string())),
            }
        }
    };
    app.engine.shutdown(Duration::from_secs(1)).await;
    result
}
