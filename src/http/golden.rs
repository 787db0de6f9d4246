//! Golden routes: the goldens with their signed package and last run (shared, like the
//! catalog they come from), and running them now in a tenant as synthetic canary runs.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::error::ApiError;
use crate::app::{App, golden, workflows};
use crate::domain::actor::Access;
use crate::domain::golden::GoldenRun;

/// One golden.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct GoldenStatus {
    /// Name (`maestro run -w golden/NAME`).
    pub name: String,
    /// Its package, `NAME@VERSION`.
    pub package: String,
    /// Whether the package is installed and runnable.
    pub installed: bool,
    /// Its last run. Tenant-scoped callers see no execution id nor tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<GoldenRun>,
}

/// The goldens.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct GoldenList {
    /// Every golden, by name.
    pub items: Vec<GoldenStatus>,
}

/// The goldens with their last runs, as `caller` may see them.
pub(crate) fn statuses(app: &App, appliance_wide: bool) -> Result<Vec<GoldenStatus>, ApiError> {
    let mut last = app.golden_runs()?;
    Ok(golden::shipped_packages()
        .into_iter()
        .filter(|p| p.golden)
        .map(|p| {
            let run = last.remove(&p.name).map(|mut r| {
                if !appliance_wide {
                    r.execution = None;
                    r.tenant = String::new();
                }
                r
            });
            GoldenStatus {
                installed: app.golden_manifest(&p.name).is_ok(),
                package: format!("{}@{}", p.name, p.version),
                name: p.name,
                last: run,
            }
        })
        .collect())
}

/// `GET /api/v1/goldens`
pub async fn list(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<GoldenList>, ApiError> {
    caller.appliance(&app, Access::Read, "catalog").await?;
    let items = statuses(&app, caller.actor.tenant.is_none())?;
    Ok(Json(GoldenList { items }))
}

/// Query of the run route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// The tenant to run in (appliance-wide tokens must name one).
    pub tenant: Option<String>,
}

/// Body of the run route.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// Only these goldens (default: all).
    #[serde(default)]
    pub names: Vec<String>,
}

/// The runs.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RunResult {
    /// Whether every golden ended as expected.
    pub passed: bool,
    /// One run per golden.
    pub runs: Vec<GoldenRun>,
}

/// `POST /api/v1/goldens/run`
pub async fn run(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<RunParams>,
    body: Bytes,
) -> Result<Json<RunResult>, ApiError> {
    // The guard first: a caller of another tenant learns nothing from the body's answer.
    let scope = caller
        .scope(&app, q.tenant.as_deref(), Access::Run, "executions", None)
        .await?;
    let req: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("the body is not a golden run request: {e}"))
        })?
    };
    if let Some(n) = req.names.iter().find(|n| workflows::get(n).is_none()) {
        return Err(ApiError::not_found(format!(
            "no golden {n:?} (goldens: {})",
            workflows::names().join(", ")
        )));
    }
    let runs = app
        .run_goldens(scope.tenant(), &req.names, &caller.actor)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(RunResult {
        passed: runs.iter().all(|r| r.passed),
        runs,
    }))
}
