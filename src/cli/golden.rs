//! `maestro golden`: install the shipped golden packages into the catalog, run the goldens
//! against their expectations, and show the last run of each — on a server (`--server`) or
//! a local data directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::client::Client;
use super::{Exit, Output, Target, fail};
use crate::app::golden::{self, Installed};
use crate::app::{App, package::Release};
use crate::domain::golden::GoldenRun;

/// `maestro golden …`
#[derive(Debug, Subcommand)]
pub enum GoldenCommand {
    /// Publish and install the golden packages this binary ships (and the packages they
    /// use), verified under the appliance's in-toto layout. Needs an appliance-wide admin
    /// token with --server.
    Install(TargetArgs),
    /// Run the goldens now (all, or those named) from their signed packages as synthetic
    /// canary runs, and check each against its expectation. Exit 7 when one is red.
    Run(RunArgs),
    /// The goldens, whether each is installed, and its last run.
    List(TargetArgs),
}

/// Where.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Where.
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `golden run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Only these goldens.
    pub names: Vec<String>,
    /// Where, and as which tenant.
    #[command(flatten)]
    pub target: Target,
}

/// Runs a `golden` command.
pub async fn golden(
    command: GoldenCommand,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    match command {
        GoldenCommand::Install(a) => match &a.target.server {
            Some(server) => {
                install_remote(&Client::new(server, a.target.token.clone())?, out).await
            }
            None => {
                let app = local_app(&a.target, config_file).await?;
                let installed = app.install_goldens();
                app.engine.shutdown(Duration::from_secs(1)).await;
                print_installed(out, &installed?)
            }
        },
        GoldenCommand::Run(a) => {
            let (passed, runs) = match &a.target.server {
                Some(server) => {
                    let client = Client::new(server, a.target.token.clone())?;
                    let body = json!({ "names": a.names });
                    let query: Vec<(&str, String)> = a
                        .target
                        .tenant
                        .iter()
                        .map(|t| ("tenant", t.clone()))
                        .collect();
                    let (_, result): (u16, Value) = client
                        .post(
                            "/api/v1/goldens/run",
                            &query,
                            "application/json",
                            serde_json::to_vec(&body)?,
                        )
                        .await?;
                    let runs: Vec<GoldenRun> = serde_json::from_value(result["runs"].clone())
                        .map_err(|e| fail(Exit::Error, format!("the server's answer: {e}")))?;
                    (result["passed"] == true, runs)
                }
                None => {
                    let app = local_app(&a.target, config_file).await?;
                    let tenant = super::inspect::local_tenant(&a.target, &app.config)?;
                    let actor = golden::actor(Some(&tenant));
                    let runs = app.run_goldens(&tenant, &a.names, &actor).await;
                    app.engine.shutdown(Duration::from_secs(1)).await;
                    let runs = runs.map_err(|e| fail(Exit::NotFound, e.to_string()))?;
                    (runs.iter().all(|r| r.passed), runs)
                }
            };
            out.print(&json!({"passed": passed, "runs": runs}), || {
                runs.iter().map(run_line).collect::<Vec<_>>().join("\n")
            });
            Ok(if passed { Exit::Ok } else { Exit::Failed })
        }
        GoldenCommand::List(a) => {
            let items: Value = match &a.target.server {
                Some(server) => {
                    Client::new(server, a.target.token.clone())?
                        .get("/api/v1/goldens", &[])
                        .await?
                }
                None => {
                    let app = local_app(&a.target, config_file).await?;
                    let runs = app.golden_runs();
                    let items: Vec<Value> = golden::shipped_packages()
                        .into_iter()
                        .filter(|p| p.golden)
                        .map(|p| {
                            json!({
                                "name": p.name,
                                "package": format!("{}@{}", p.name, p.version),
                                "installed": app.golden_manifest(&p.name).is_ok(),
                                "last": runs.as_ref().ok().and_then(|r| r.get(&p.name)),
                            })
                        })
                        .collect();
                    app.engine.shutdown(Duration::from_secs(1)).await;
                    json!({ "items": items })
                }
            };
            out.print(&items, || {
                items["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| {
                        let last = serde_json::from_value::<GoldenRun>(g["last"].clone())
                            .map(|r| run_line(&r))
                            .unwrap_or_else(|_| {
                                format!("{:<16} never ran", g["name"].as_str().unwrap_or(""))
                            });
                        format!(
                            "{}  {}",
                            if g["installed"] == true {
                                "installed    "
                            } else {
                                "NOT installed"
                            },
                            last
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(Exit::Ok)
        }
    }
}

async fn local_app(target: &Target, config_file: Option<&Path>) -> anyhow::Result<Arc<App>> {
    let config = super::inspect::local_config(target, config_file)?;
    Ok(Arc::new(App::start(config).await?))
}

/// One line per golden run.
fn run_line(r: &GoldenRun) -> String {
    let mut s = format!(
        "{:<16} {:<6} {:<11} {:>6} ms  {}",
        r.name,
        if r.passed { "ok" } else { "RED" },
        r.status.map(|s| s.as_str()).unwrap_or("-"),
        r.millis,
        r.execution.as_ref().map(|e| e.as_str()).unwrap_or("")
    );
    for p in &r.problems {
        s.push_str(&format!("\n    {p}"));
    }
    s
}

fn print_installed(out: &Output, installed: &[Installed]) -> anyhow::Result<Exit> {
    out.print(&json!({ "installed": installed }), || {
        installed
            .iter()
            .map(|i| match &i.error {
                Some(e) => format!("{:<24} NOT installed: {e}", i.package),
                None if i.verified => format!("{:<24} installed, verified", i.package),
                None => format!("{:<24} installed, NOT verified", i.package),
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(if installed.iter().all(|i| i.error.is_none()) {
        Exit::Ok
    } else {
        Exit::Unverified
    })
}

/// Publishes and installs every shipped package through a server's catalog API.
async fn install_remote(client: &Client, out: &Output) -> anyhow::Result<Exit> {
    let mut installed = Vec::new();
    for p in golden::shipped_packages() {
        let package = format!("{}@{}", p.name, p.version);
        let release: Release = golden::shipped_release(&p.name, &p.version).ok_or_else(|| {
            fail(
                Exit::Error,
                format!("{package} is not shipped in this binary"),
            )
        })?;
        let tar = release
            .to_tar()
            .map_err(|e| fail(Exit::Error, e.to_string()))?;
        let result = async {
            client
                .post::<Value>("/api/v1/catalog", &[], "application/gzip", tar)
                .await?;
            let path = format!(
                "/api/v1/catalog/workflow-package/{}/{}/install",
                p.name, p.version
            );
            let (_, entry): (u16, Value) = client
                .post(&path, &[], "application/json", Vec::new())
                .await?;
            anyhow::Ok(entry["installed"]["verified"] == true)
        }
        .await;
        installed.push(match result {
            Ok(verified) => Installed {
                package,
                verified,
                error: None,
            },
            Err(e) => {
                // Credentials or the server itself: the same for every package.
                if let Some(f) = e.downcast_ref::<super::Failure>()
                    && matches!(f.exit, Exit::Unauthorized | Exit::Unavailable)
                {
                    return Err(e);
                }
                Installed {
                    package,
                    verified: false,
                    error: Some(e.to_string()),
                }
            }
        });
    }
    print_installed(out, &installed)
}
