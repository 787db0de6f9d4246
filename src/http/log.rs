//! Transparency-log and key routes: the latest checkpoint (signed note and JSON), consistency
//! proofs, and the public keys that verify receipts and checkpoints. These hold no tenant
//! data and need no token.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::app::App;
use crate::attest::keys::Algorithm;
use crate::engine::evidence::{CheckpointView, ConsistencyProof};
use crate::tlog;

/// The log's state.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct LogInfo {
    /// Origin (first line of checkpoints).
    pub origin: String,
    /// The latest checkpoint, if any receipt has been logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointView>,
}

/// `GET /api/v1/log`
pub async fn info(State(app): State<Arc<App>>) -> Result<Json<LogInfo>, ApiError> {
    Ok(Json(LogInfo {
        origin: app.engine.signing().origin.clone(),
        checkpoint: app.engine.evidence().latest_checkpoint()?,
    }))
}

/// `GET /api/v1/log/checkpoint`: the signed note, as text.
pub async fn checkpoint(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let cp = app
        .engine
        .evidence()
        .latest_checkpoint()?
        .ok_or_else(|| ApiError::not_found("no checkpoint yet: the log is empty"))?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        cp.note,
    )
        .into_response())
}

/// Query of the consistency route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size (default: the current size).
    pub to: Option<u64>,
}

/// `GET /api/v1/log/consistency`
pub async fn consistency(
    State(app): State<Arc<App>>,
    Query(p): Query<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let to = match p.to {
        Some(t) => t,
        None => app.engine.store().read()?.log_size()?,
    };
    Ok(Json(app.engine.evidence().consistency_proof(p.from, to)?))
}

/// A public key.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct KeyView {
    /// Key id (securesystemslib convention; the DSSE keyid and Sigstore hint).
    pub keyid: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// PEM public key.
    pub pem: String,
    /// What it signs: `appliance` (checkpoints and receipts) or `tenant:<id>`.
    pub signs: String,
    /// For Ed25519 keys, the signed-note verifier key of the log
    /// (`<origin>+<id>+<key>`), usable by other signed-note tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note_verifier_key: Option<String>,
}

/// The keys response.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Keys {
    /// The log origin.
    pub log_origin: String,
    /// Current keys.
    pub keys: Vec<KeyView>,
}

/// The current keys of an app.
pub fn keys_of(app: &App) -> Keys {
    let s = app.engine.signing();
    let view = |key: &crate::attest::keys::SigningKey, signs: String| {
        let p = key.public();
        KeyView {
            keyid: p.keyid().to_owned(),
            algorithm: p.algorithm(),
            pem: p.pem().to_owned(),
            note_verifier_key: (signs == "appliance")
                .then(|| {
                    p.ed25519_raw()
                        .map(|raw| tlog::ed25519_verifier_key(&s.origin, &raw))
                })
                .flatten(),
            signs,
        }
    };
    let mut keys = vec![view(&s.appliance, "appliance".into())];
    let mut tenants: Vec<_> = s.tenant_keys.iter().collect();
    tenants.sort_by(|a, b| a.0.cmp(b.0));
    for (t, k) in tenants {
        keys.push(view(k, format!("tenant:{t}")));
    }
    Keys {
        log_origin: s.origin.clone(),
        keys,
    }
}

/// `GET /api/v1/keys`
pub async fn keys(State(app): State<Arc<App>>) -> Json<Keys> {
    Json(keys_of(&app))
}
