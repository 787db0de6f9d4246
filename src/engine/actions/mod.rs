//! Built-in action implementations. Each takes resolved inputs and returns outputs (and
//! artifacts with their bytes); an `Err` is the attempt's error message. The catalog of
//! inputs and outputs is `domain::actions`; a test keeps the two in step.

pub mod exec;
pub mod http;
mod transform;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::Digest as _;

use crate::config::{ExecActionConfig, HttpActionConfig};
use crate::domain::actions::ActionSpec;
use crate::domain::duration;
use crate::domain::execution::Artifact;
use crate::domain::ids::{Digest, ExecutionId, TenantId};

/// What actions may use: clients, limits, storage locations, the work directory root.
pub struct ActionEnv {
    /// HTTP client for `builtin/http` (no redirects, timeouts set).
    pub http: reqwest::Client,
    /// `builtin/http` settings.
    pub http_config: HttpActionConfig,
    /// `builtin/exec` settings.
    pub exec_config: ExecActionConfig,
    /// Storage locations and their region tags.
    pub locations: BTreeMap<String, String>,
    /// Root of per-execution work directories.
    pub work_root: PathBuf,
    /// Largest artifact.
    pub max_artifact_bytes: usize,
    /// The appliance's own base URL (`appliance.url`).
    pub appliance_url: String,
}

impl ActionEnv {
    /// Builds the environment, including the HTTP client.
    pub fn new(
        http_config: HttpActionConfig,
        exec_config: ExecActionConfig,
        locations: BTreeMap<String, String>,
        work_root: PathBuf,
        max_artifact_bytes: usize,
        appliance_url: String,
    ) -> Result<Self, String> {
        let timeout = duration::parse(&http_config.timeout)
            .map_err(|e| format!("actions.http.timeout: {e}"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("maestro/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(ActionEnv {
            http,
            http_config,
            exec_config,
            locations,
            work_root,
            max_artifact_bytes,
            appliance_url,
        })
    }
}

/// Where an action runs.
pub struct ActionCtx<'a> {
    /// Shared environment.
    pub env: &'a ActionEnv,
    /// The execution.
    pub execution: &'a ExecutionId,
    /// Its tenant.
    pub tenant: &'a TenantId,
    /// The task id.
    pub task: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
}

/// An artifact produced by an action, with its bytes.
#[derive(Debug, Clone)]
pub struct ArtifactOut {
    /// Metadata as recorded.
    pub meta: Artifact,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// The result of a successful attempt.
#[derive(Debug, Clone, Default)]
pub struct ActionResult {
    /// Outputs.
    pub outputs: Map<String, Value>,
    /// Artifacts written.
    pub artifacts: Vec<ArtifactOut>,
}

fn outputs(value: Value) -> ActionResult {
    ActionResult {
        outputs: match value {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        artifacts: Vec::new(),
    }
}

pub(crate) fn str_input<'a>(input: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match input.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("input {key:?} must be a string, got {other}")),
        None => Err(format!("input {key:?} is missing")),
    }
}

fn opt_str<'a>(input: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("input {key:?} must be a string, got {other}")),
    }
}

/// Runs a built-in action.
pub async fn run(
    spec: &ActionSpec,
    input: &Map<String, Value>,
    ctx: &ActionCtx<'_>,
) -> Result<ActionResult, String> {
    for key in input.keys() {
        if spec.input(key).is_none() {
            return Err(format!("{} has no input {key:?}", spec.name));
        }
    }
    for required in spec.inputs.iter().filter(|i| i.required) {
        if !input.contains_key(required.name) {
            return Err(format!("input {:?} is missing", required.name));
        }
    }
    for (key, value) in input {
        if let Some(i) = spec.input(key) {
            i.kind
                .check(value)
                .map_err(|e| format!("input {key:?} after resolving references: {e}"))?;
        }
    }
    match spec.name {
        "builtin/echo" => Ok(outputs(json!({"message": input["message"]}))),
        "builtin/hash" => hash(input),
        "builtin/sleep" => {
            let d = duration::parse(str_input(input, "duration")?)?;
            tokio::time::sleep(d).await;
            Ok(outputs(json!({"slept_ms": d.as_millis() as u64})))
        }
        "builtin/fail" => {
            let message = opt_str(input, "message")?.unwrap_or("failed as requested");
            match input.get("attempts").and_then(Value::as_u64) {
                Some(n) if u64::from(ctx.attempt) > n => {
                    Ok(outputs(json!({"attempt": ctx.attempt})))
                }
                _ => Err(format!("{message} (attempt {})", ctx.attempt)),
            }
        }
        "builtin/transform" => transform::run(input).map(|v| outputs(json!({"value": v}))),
        "builtin/artifact" => artifact(input, ctx),
        "builtin/http" => http::run(input, ctx).await.map(outputs),
        "builtin/exec" => exec::run(input, ctx).await.map(outputs),
        other => Err(format!("action {other} has no implementation")),
    }
}

fn hash(input: &Map<String, Value>) -> Result<ActionResult, String> {
    let data = str_input(input, "data")?;
    let algorithm = opt_str(input, "algorithm")?.unwrap_or("sha256");
    let hex = match algorithm {
        "sha256" => hex::encode(sha2::Sha256::digest(data.as_bytes())),
        "sha512" => hex::encode(sha2::Sha512::digest(data.as_bytes())),
        other => return Err(format!("unknown algorithm {other:?}")),
    };
    Ok(outputs(json!({
        "digest": format!("{algorithm}:{hex}"),
        "algorithm": algorithm,
        "size": data.len(),
    })))
}

fn artifact(input: &Map<String, Value>, ctx: &ActionCtx<'_>) -> Result<ActionResult, String> {
    let name = str_input(input, "name")?;
    if name.is_empty()
        || name.len() > 200
        || name.contains(['/', '\\', '\0'])
        || name == "."
        || name == ".."
    {
        return Err(format!(
            "artifact name {name:?} must be 1-200 characters without '/', '\\' or NUL"
        ));
    }
    let location = str_input(input, "location")?;
    let Some(region) = ctx.env.locations.get(location) else {
        let known: Vec<&str> = ctx.env.locations.keys().map(String::as_str).collect();
        return Err(format!(
            "unknown storage location {location:?} (configured: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        ));
    };
    let content = str_input(input, "content")?;
    let bytes = match opt_str(input, "encoding")?.unwrap_or("utf8") {
        "utf8" => content.as_bytes().to_vec(),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content)
            .map_err(|e| format!("content is not base64: {e}"))?,
        other => return Err(format!("unknown encoding {other:?}")),
    };
    if bytes.len() > ctx.env.max_artifact_bytes {
        return Err(format!(
            "artifact is {} bytes; the limit is {}",
            bytes.len(),
            ctx.env.max_artifact_bytes
        ));
    }
    let digest = Digest::of(&bytes);
    let meta = Artifact {
        task: ctx.task.to_owned(),
        name: name.to_owned(),
        digest,
        size: bytes.len() as u64,
        media_type: opt_str(input, "media_type")?
            .unwrap_or("text/plain")
            .to_owned(),
        location: location.to_owned(),
        region: region.clone(),
    };
    Ok(ActionResult {
        outputs: json!({
            "name": name,
            "digest": digest.to_string(),
            "size": bytes.len(),
            "location": location,
            "region": region,
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        artifacts: vec![ArtifactOut { meta, bytes }],
    })
}

#[cfg(test)]
mod tests;
