//! `maestro validate post-release`: run post-release validation now on a server (an
//! appliance-wide auditor or admin token) or the local data directory, print each check,
//! and optionally save the evidence bundle.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::client::Client;
use super::{Exit, Output, Target, fail};
use crate::app::App;
use crate::app::postrelease::Report;

/// Runs it and prints the report; exit 7 when a check failed.
pub async fn run(
    target: &Target,
    evidence_out: Option<&Path>,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let (report, bundle) = match &target.server {
        Some(server) => {
            let client = Client::new(server, target.token.clone())?;
            let (_, report): (u16, Report) = client
                .post("/api/v1/postrelease", &[], "application/json", Vec::new())
                .await?;
            let bundle = match evidence_out {
                Some(_) => Some(
                    client
                        .get_bytes(&format!("/api/v1/postrelease/{}/evidence", report.id))
                        .await?,
                ),
                None => None,
            };
            (report, bundle)
        }
        None => {
            let config = super::inspect::local_config(target, config_file)?;
            let app = std::sync::Arc::new(App::start(config).await?);
            let report = app.validate_post_release("demand").await;
            let bundle = match (&report, evidence_out) {
                (Ok(r), Some(_)) => app.post_release_evidence(&r.id)?,
                _ => None,
            };
            app.engine.shutdown(Duration::from_secs(1)).await;
            (report?, bundle)
        }
    };
    let saved: Option<PathBuf> = match (bundle, evidence_out) {
        (Some(bytes), Some(path)) => {
            std::fs::write(path, bytes)
                .map_err(|e| fail(Exit::Error, format!("writing {}: {e}", path.display())))?;
            Some(path.to_owned())
        }
        _ => None,
    };
    out.print(&report, || text(&report, saved.as_deref()));
    Ok(if report.passed {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

fn text(r: &Report, saved: Option<&Path>) -> String {
    let mut s = format!(
        "post-release validation of {} {} in {} ms ({})\n",
        r.version,
        if r.passed { "PASSED" } else { "FAILED" },
        r.millis,
        r.id
    );
    for c in &r.checks {
        s.push_str(&format!(
            "  {} {:<10} {}\n",
            if c.passed { "pass" } else { "FAIL" },
            c.name,
            c.detail
        ));
        for f in &c.failures {
            s.push_str(&format!("       {} {}: {}\n", f.tenant, f.id, f.detail));
        }
    }
    if let Some(d) = &r.evidence_digest {
        s.push_str(&format!("  evidence   {d}\n"));
    }
    if let Some(p) = saved {
        s.push_str(&format!("  saved      {}\n", p.display()));
    }
    s
}

/// Whether `file` names post-release validation rather than a manifest.
pub fn is_post_release(file: &Path) -> bool {
    file.as_os_str() == "post-release"
}
