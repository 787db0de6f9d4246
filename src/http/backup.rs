//! `GET /api/v1/backup`: a consistent backup of the whole data directory while the
//! appliance serves (appliance-wide administrators only: it holds the signing key). It is
//! written off the async runtime to an unnamed temporary file in the data directory, then
//! streamed; its SHA-256 is in the `X-Maestro-Backup-Sha256` header.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Query, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;
use crate::app::App;
use crate::app::backup::BackupError;
use crate::domain::actor::Access;
use crate::domain::audit::{AuditKind, NewAuditEvent};

/// What the guard calls a backup.
const KIND: &str = "data";

/// Whether a backup is being taken (one at a time: each needs the store's size free).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Clears [`RUNNING`] when the backup ends, however it ends.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

/// `GET /api/v1/backup?keys=BOOL`: the backup archive (tar.gz).
pub async fn backup(
    State(app): State<Arc<App>>,
    method: Method,
    caller: Caller,
    Query(params): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    // The guard first: a caller who may not take a backup learns nothing about its query.
    caller.appliance(&app, Access::Backup, KIND).await?;
    if method == Method::HEAD {
        // A HEAD would take (and audit) a whole backup to send no body.
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "a backup is taken with GET only",
        ));
    }
    let mut keys = true;
    for (name, value) in &params {
        match (name.as_str(), value.as_str()) {
            ("keys", "true") => keys = true,
            ("keys", "false") => keys = false,
            ("keys", other) => {
                return Err(ApiError::bad_request(format!(
                    "keys must be true or false, not {other:?}"
                )));
            }
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}; the only one is keys"
                )));
            }
        }
    }
    if RUNNING.swap(true, Ordering::AcqRel) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "backup_running",
            "a backup is being taken; try again when it is done",
        ));
    }
    let running = Running;
    let worker = app.clone();
    let built = tokio::task::spawn_blocking(move || {
        // The store copy and the archive both go to the data volume.
        crate::app::backup::ensure_space(worker.engine.store(), 2)?;
        let dir = worker.engine.store().dir().to_owned();
        let io = |source| BackupError::Io {
            path: dir.clone(),
            source,
        };
        let mut file = tempfile::tempfile_in(&dir).map_err(io)?;
        let written = worker.backup(keys, std::io::BufWriter::new(&mut file))?;
        std::io::Seek::rewind(&mut file).map_err(io)?;
        Ok::<_, BackupError>((written, file))
    })
    .await
    .map_err(ApiError::internal)?;
    drop(running);
    let (written, file) = built.map_err(|e| match e {
        BackupError::NoSpace { .. } => {
            ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "no_space", e.to_string())
        }
        other => ApiError::internal(other),
    })?;
    tracing::info!(
        actor = %caller.actor.subject,
        bytes = written.bytes,
        sha256 = %written.sha256,
        log_size = written.manifest.snapshot.log_size,
        keys = written.manifest.keys,
        "backup"
    );
    let event = NewAuditEvent {
        kind: AuditKind::BackupTaken,
        tenant: None,
        actor_tenant: caller.actor.tenant.clone(),
        actor: caller.actor.subject.clone(),
        route: Some(caller.route.clone()),
        decision: None,
        detail: serde_json::json!({
            "sha256": written.sha256.to_string(),
            "bytes": written.bytes,
            "log_size": written.manifest.snapshot.log_size,
            "keys": written.manifest.keys,
        }),
    };
    app.engine
        .audit(event, None)
        .await
        .map_err(ApiError::internal)?;
    let mut resp = super::file_body(file).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&written.bytes.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    let name = format!(
        "maestro-backup-{}.tar.gz",
        written.manifest.created_at.strftime("%Y%m%dT%H%M%SZ")
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&written.sha256.to_string()) {
        h.insert("x-maestro-backup-sha256", v);
    }
    Ok(resp)
}
