//! Demo mode: on first start, two tenants (acme, globex) with regions, storage locations and
//! tokens (printed once, stored only as hashes in `<data_dir>/demo.toml`), and a few
//! executions so the console and API have something to show.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::golden::{self, GoldenError};
use super::{App, AppError, tokens};
use crate::domain::actor::{Access, Actor, Role};
use crate::domain::ids::TenantId;

/// File name of the demo layer in the data directory.
pub const FILE: &str = "demo.toml";

/// A token created for the demo.
#[derive(Debug, Clone, Serialize)]
pub struct DemoToken {
    /// Token name.
    pub name: String,
    /// Tenant, or none for the appliance admin.
    pub tenant: Option<String>,
    /// Roles.
    pub roles: Vec<Role>,
    /// The token itself (shown once).
    pub token: String,
}

/// Tokens created on this start.
#[derive(Debug, Clone, Serialize)]
pub struct Credentials {
    /// One per demo actor.
    pub tokens: Vec<DemoToken>,
}

impl Credentials {
    /// The token of a name.
    pub fn token(&self, name: &str) -> Option<&str> {
        self.tokens
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.token.as_str())
    }
}

/// Reads the demo layer, creating it (and its tokens) if the data directory has none.
pub fn layer(data_dir: &Path) -> Result<(String, Option<Credentials>), AppError> {
    let path = data_dir.join(FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok((text, None));
    }
    let specs: [(&str, Option<&str>, &[Role]); 5] = [
        ("acme-operator", Some("acme"), &[Role::Operator]),
        ("acme-viewer", Some("acme"), &[Role::Viewer]),
        ("globex-operator", Some("globex"), &[Role::Operator]),
        ("globex-auditor", Some("globex"), &[Role::Auditor]),
        ("admin", None, &[Role::Admin]),
    ];
    let mut created = Vec::new();
    let mut text = String::from(
        "# Demo tenants, regions and storage locations, created by `maestro serve --demo`.\n\
         # Tokens are stored as SHA-256 hashes only; they were printed once at creation.\n\n\
         regions = [\"eu-west\", \"us-east\"]\n\n\
         [locations.eu-bucket]\nregion = \"eu-west\"\n\n\
         [locations.us-bucket]\nregion = \"us-east\"\n\n\
         [tenants.acme]\ndisplay_name = \"Acme Corp\"\nallowed_regions = [\"eu-west\"]\n\n\
         [tenants.globex]\ndisplay_name = \"Globex\"\nallowed_regions = [\"eu-west\", \"us-east\"]\n\n\
         # The golden workflows ship as signed packages, verified under the shipped layout;\n\
         # they are installed at start and run as acme every day. The golden `http` calls\n\
         # the appliance's own /healthz.\n\
         [actions.http]\nallow_self = true\n\n\
         [golden]\ninstall = true\ntenant = \"acme\"\n",
    );
    std::fs::create_dir_all(data_dir)
        .map_err(|e| AppError::Other(format!("creating {}: {e}", data_dir.display())))?;
    text.push_str(&trust_layer(data_dir)?);
    for (name, tenant, roles) in specs {
        let token = tokens::generate();
        let entry = tokens::config_entry(name, tenant, roles, &token);
        text.push('\n');
        text.push_str(&tokens::toml_entry(&entry));
        created.push(DemoToken {
            name: name.to_owned(),
            tenant: tenant.map(str::to_owned),
            roles: roles.to_vec(),
            token,
        });
    }
    write_private(&path, &text)
        .map_err(|e| AppError::Other(format!("writing {}: {e}", path.display())))?;
    Ok((text, Some(Credentials { tokens: created })))
}

/// Writes the shipped in-toto layout and its owner's key into `DATA/trust/`, and the
/// `[supply_chain]` section trusting them.
fn trust_layer(data_dir: &Path) -> Result<String, AppError> {
    let (layout, key) = golden::shipped_trust()
        .ok_or_else(|| AppError::Other("this binary ships no in-toto layout".into()))?;
    let dir = std::path::absolute(data_dir.join("trust"))
        .map_err(|e| AppError::Other(format!("{}: {e}", data_dir.display())))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| AppError::Other(format!("creating {}: {e}", dir.display())))?;
    let (layout_path, key_path) = (dir.join("root.layout"), dir.join("owner.pub"));
    for (path, bytes) in [(&layout_path, layout), (&key_path, key)] {
        std::fs::write(path, bytes)
            .map_err(|e| AppError::Other(format!("writing {}: {e}", path.display())))?;
    }
    let quoted = |p: &Path| serde_json::to_string(&p.display().to_string()).unwrap_or_default();
    Ok(format!(
        "\n[supply_chain]\nlayout = {}\nlayout_keys = [{}]\n",
        quoted(&layout_path),
        quoted(&key_path)
    ))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Runs a few workflows for each demo tenant and waits for them, so there is data to look
/// at: successes, a retried run, a failure, and a denial.
pub async fn seed_executions(app: &App) -> Result<usize, AppError> {
    let plan: [(&str, &[&str]); 2] = [
        (
            "acme",
            &[
                "hello",
                "fan-out-fan-in",
                "artifacts",
                "retry-transient",
                "transform-chain",
                "policy-deny",
                "residency-deny",
                "timeout",
            ],
        ),
        (
            "globex",
            &[
                "hello",
                "transform-chain",
                "fan-out-fan-in",
                "golden/uses-package",
            ],
        ),
    ];
    let mut ids = Vec::new();
    for (tenant, names) in plan {
        let tenant = TenantId::new(tenant).map_err(|e| AppError::Other(e.to_string()))?;
        let Some(scope) = app.system_scope(&tenant, Access::Run) else {
            continue;
        };
        let actor = Actor {
            subject: "demo-seed".into(),
            tenant: Some(tenant.clone()),
            roles: vec![Role::Operator],
        };
        for name in names {
            let manifest = match app.named_workflow(name) {
                Ok(m) => m,
                Err(e @ GoldenError::NotInstalled { .. }) => {
                    tracing::warn!(error = %e, "demo run skipped");
                    continue;
                }
                Err(e) => return Err(AppError::Other(format!("demo workflow {name}: {e}"))),
            };
            let exec = app
                .engine
                .submit(&scope, &actor, manifest, false)
                .await
                .map_err(|e| AppError::Other(format!("seeding {name}: {e}")))?;
            ids.push((scope.clone(), exec.id));
        }
    }
    for (scope, id) in &ids {
        app.engine
            .wait_final(scope, id, Duration::from_secs(30))
            .await?;
    }
    Ok(ids.len())
}
