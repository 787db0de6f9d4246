//! Operational routes: liveness, readiness, metrics, the manifest schema, the OpenAPI
//! document, embedded workflows, version.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::postrelease::State as Validation;
use crate::app::{App, workflows};
use crate::domain::manifest;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness detail.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Readiness {
    /// Whether the appliance accepts work.
    pub ready: bool,
    /// Each condition and whether it holds.
    pub checks: Vec<ReadinessCheck>,
}

/// One readiness condition.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ReadinessCheck {
    /// Name.
    pub name: &'static str,
    /// Whether it holds.
    pub ok: bool,
    /// Detail.
    pub detail: String,
}

/// `GET /readyz`: 200 when the appliance accepts work, 503 otherwise.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let mut checks = Vec::new();
    checks.push(ReadinessCheck {
        name: "engine",
        ok: app.engine.is_accepting(),
        detail: if app.engine.is_accepting() {
            "accepting submissions".into()
        } else {
            "shutting down".into()
        },
    });
    let store = app.engine.store().read().and_then(|r| r.log_size());
    checks.push(ReadinessCheck {
        name: "store",
        ok: store.is_ok(),
        detail: match store {
            Ok(n) => format!("readable; {n} receipts logged"),
            Err(e) => format!("not readable: {e}"),
        },
    });
    let state = app.postrelease.state();
    checks.push(ReadinessCheck {
        name: "postrelease",
        ok: state == Validation::Passed,
        detail: match state {
            Validation::Pending => "post-release validation of this version has not run yet".into(),
            Validation::Running => "post-release validation is running".into(),
            Validation::Passed if !app.config.postrelease.on_start => {
                "post-release validation at start is off (postrelease.on_start)".into()
            }
            Validation::Passed => "post-release validation of this version passed".into(),
            Validation::Failed => {
                "post-release validation failed: GET /api/v1/postrelease says why".into()
            }
        },
    });
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(Readiness { ready, checks })).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    app.metrics.observe_disk(&app.config.data_dir);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

/// `GET /api/v1/schema/manifest-v1.json`
pub async fn manifest_schema() -> Response {
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        Json(manifest::json_schema()),
    )
        .into_response()
}

/// Embedded workflows.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Workflows {
    /// Names usable as `workflow` in a submission or `maestro run -w NAME`.
    pub names: Vec<String>,
}

/// `GET /api/v1/workflows`
pub async fn list_workflows() -> Json<Workflows> {
    Json(Workflows {
        names: workflows::names(),
    })
}

/// Version information.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Version {
    /// Maestro version.
    pub version: String,
    /// Store schema version.
    pub schema_version: u32,
    /// Log origin.
    pub log_origin: String,
}

/// `GET /api/v1/version`
pub async fn version(State(app): State<Arc<App>>) -> Json<Version> {
    Json(Version {
        version: env!("CARGO_PKG_VERSION").into(),
        schema_version: crate::store::SCHEMA_VERSION,
        log_origin: app.engine.signing().origin.clone(),
    })
}

/// `GET /api/openapi.json`
pub async fn openapi() -> Json<serde_json::Value> {
    Json(super::router::openapi())
}
