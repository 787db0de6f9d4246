//! `maestro disclosure pack|verify`: a tenant's (or one execution's) disclosure pack for a
//! region, from a server or the local data directory, written atomically to a file; and its
//! offline verification against trusted keys.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use serde_json::json;

use super::client::Client;
use super::inspect::{local_config, local_tenant, start_local, tenant_query};
use super::output::checks_text;
use super::partial::PartialFile;
use super::verify::{TrustArgs, trusted};
use super::{Exit, Output, Target, fail};
use crate::app::disclosure::verify::{PackReport, verify};
use crate::app::disclosure::{DisclosureError, PackInfo, PackRequest};
use crate::attest::receipt::Trust;
use crate::domain::actor::Access;
use crate::domain::disclosure::Explain;
use crate::domain::ids::{Digest, ExecutionId};

/// `maestro disclosure …`
#[derive(Debug, Subcommand)]
pub enum DisclosureCommand {
    /// Write the disclosure pack of a tenant (or of one execution) for a region: a
    /// deterministic tar.gz with the receipts, inclusion proofs and their checkpoint,
    /// decisions with explanations, manifests, artifact metadata, the residency report and
    /// a signed index.
    Pack {
        /// Server, token, or local data directory; `--tenant` for tokens and data
        /// directories with more than one tenant.
        #[command(flatten)]
        target: Target,
        /// The region (a declared region or an alias).
        #[arg(long)]
        region: String,
        /// Only this execution.
        #[arg(long)]
        execution: Option<String>,
        /// Include artifact bytes, not only metadata.
        #[arg(long)]
        artifacts: bool,
        /// Explain every decision rule by rule, not only denies.
        #[arg(long)]
        explain_all: bool,
        /// Where to write the pack.
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify a pack offline: archive safety, the signed index and every file's digest, the
    /// checkpoint, every receipt and its inclusion proof, records and decisions against
    /// their receipts, tenant and region. Exits 4 when a check fails.
    Verify {
        /// The pack (`-` for standard input).
        pack: PathBuf,
        /// The keys to trust.
        #[command(flatten)]
        trust: TrustArgs,
    },
}

/// `maestro disclosure …`
pub async fn disclosure(
    cmd: DisclosureCommand,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    match cmd {
        DisclosureCommand::Pack {
            target,
            region,
            execution,
            artifacts,
            explain_all,
            out: path,
        } => {
            let execution = execution
                .map(|e| ExecutionId::new(&e).map_err(|e| fail(Exit::Usage, e.to_string())))
                .transpose()?;
            let req = PackRequest {
                region,
                execution,
                artifact_bytes: artifacts,
                explain: if explain_all {
                    Explain::All
                } else {
                    Explain::Denies
                },
            };
            let written = PartialFile::new(&path);
            let file = written.create()?;
            let result = match target.server.as_deref() {
                Some(server) => remote(server, &target, &req, file).await,
                None => local(&target, config_file, &req, file).await,
            };
            let info = match result {
                Ok(info) => info,
                Err(e) => {
                    written.abandon();
                    return Err(e);
                }
            };
            written.commit()?;
            out.print(
                &json!({
                    "out": path,
                    "sha256": info.sha256,
                    "bytes": info.bytes,
                    "executions": info.executions,
                    "region": info.region,
                }),
                || {
                    format!(
                        "disclosure pack for {}: {} executions, {} bytes, {} written to {}",
                        info.region,
                        info.executions,
                        info.bytes,
                        info.sha256,
                        path.display()
                    )
                },
            );
            Ok(Exit::Ok)
        }
        DisclosureCommand::Verify { pack, trust } => {
            let keys = trusted(&trust, config_file)?;
            let trust = Trust {
                keys,
                origin: trust.origin.clone(),
            };
            let report = if pack.as_os_str() == "-" {
                verify(std::io::stdin().lock(), &trust)
            } else {
                let f = std::fs::File::open(&pack)
                    .map_err(|e| fail(Exit::Usage, format!("reading {}: {e}", pack.display())))?;
                verify(std::io::BufReader::new(f), &trust)
            };
            out.print(&report, || text(&report));
            Ok(if report.valid {
                Exit::Ok
            } else {
                Exit::Unverified
            })
        }
    }
}

fn text(r: &PackReport) -> String {
    format!(
        "disclosure pack: {} executions, {} files, region {}\n{}pack is {}valid\n",
        r.executions,
        r.files,
        r.region.as_deref().unwrap_or("?"),
        checks_text(&r.checks),
        if r.valid { "" } else { "NOT " }
    )
}

async fn remote(
    server: &str,
    target: &Target,
    req: &PackRequest,
    mut file: std::fs::File,
) -> anyhow::Result<PackInfo> {
    let c = Client::new(server, target.token.clone())?;
    let mut q = tenant_query(target);
    q.push(("region", req.region.clone()));
    if req.artifact_bytes {
        q.push(("artifacts", "true".into()));
    }
    if req.explain == Explain::All {
        q.push(("explain", "all".into()));
    }
    let path = match &req.execution {
        Some(id) => format!("/api/v1/executions/{id}/disclosure"),
        None => "/api/v1/disclosure".into(),
    };
    let mut hashing = crate::archive::HashingWriter::new(&mut file);
    let headers = c.download(&path, &q, &mut hashing).await?;
    let (_, sha256, bytes) = hashing.finish();
    file.sync_all()?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(claimed) = header("x-maestro-pack-sha256")
        && Digest::parse(&claimed).ok() != Some(sha256)
    {
        return Err(fail(
            Exit::Error,
            format!("the download has digest {sha256}, the server announced {claimed}"),
        ));
    }
    Ok(PackInfo {
        sha256,
        bytes,
        executions: header("x-maestro-pack-executions")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        files: 0,
        region: req.region.clone(),
    })
}

async fn local(
    target: &Target,
    config_file: Option<&Path>,
    req: &PackRequest,
    file: std::fs::File,
) -> anyhow::Result<PackInfo> {
    let config = local_config(target, config_file)?;
    let tenant = local_tenant(target, &config)?;
    let app = start_local(config).await?;
    let scope = app
        .system_scope(&tenant, Access::Read)
        .ok_or_else(|| fail(Exit::NotFound, format!("tenant {tenant} is not configured")))?;
    let worker = app.clone();
    let req = req.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut w = std::io::BufWriter::new(file);
        let info = worker.disclosure_pack(&scope, &req, &mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok::<_, DisclosureError>(info)
    })
    .await?;
    app.engine.shutdown(Duration::from_secs(1)).await;
    result.map_err(|e| match e {
        DisclosureError::UnknownRegion { .. } => fail(Exit::Usage, e.to_string()),
        DisclosureError::NotFound(_) => fail(Exit::NotFound, e.to_string()),
        DisclosureError::NotFinal(_) | DisclosureError::OutsideRegion { .. } => {
            fail(Exit::Usage, e.to_string())
        }
        other => fail(Exit::Error, other.to_string()),
    })
}
