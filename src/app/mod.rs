//! The application: resolves configuration (including the demo layer), opens the store,
//! loads or creates keys and the log origin, starts the engine, and holds what the HTTP and
//! CLI layers share.

pub mod background;
pub mod backup;
pub mod catalog;
pub mod demo;
pub mod disclosure;
pub mod golden;
pub mod guard;
pub mod oidc;
pub mod package;
pub mod postrelease;
pub mod replay;
pub mod report;
pub mod session;
pub mod supply_chain;
pub mod tokens;
pub mod workflows;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngExt as _;

use crate::attest::keys::{Algorithm, SigningKey};
use crate::config::{self, Config, KeyAlgorithm, Layer, Overrides};
use crate::domain::actor::{Access, Actor, TenantScope};
use crate::domain::audit::{AuditKind, NewAuditEvent};
use crate::domain::ids::TenantId;
use crate::engine::{Engine, EngineConfig, Recovery, Signing};
use crate::policy::{Limits, Policies, PolicyBundle};
use crate::store::Store;
use crate::telemetry::Metrics;
use tokens::Tokens;

/// Why the appliance could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration.
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    /// The config file could not be read.
    #[error("reading {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Keys could not be loaded or created.
    #[error("signing key: {0}")]
    Key(#[from] crate::attest::AttestError),
    /// The engine could not start.
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// The policies could not load.
    #[error("policy: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    /// Anything else, with its explanation.
    #[error("{0}")]
    Other(String),
}

/// Where the configuration came from, and demo credentials created on this start.
pub struct Resolved {
    /// The configuration.
    pub config: Config,
    /// The config file used, if any.
    pub file: Option<PathBuf>,
    /// Tokens created by demo seeding on this start (shown once).
    pub demo: Option<demo::Credentials>,
}

/// Resolves the configuration: `--config` or `MAESTRO_CONFIG` or `./maestro.toml` if it
/// exists, then the environment, then flags; under all of them the data directory's demo
/// layer, if it has one (created on first use of demo mode).
pub fn resolve_config(
    config_file: Option<&Path>,
    env: &BTreeMap<String, String>,
    overrides: &Overrides,
) -> Result<Resolved, AppError> {
    resolve(config_file, env, overrides, true)
}

/// [`resolve_config`] without the demo layer, and without creating one: for commands that
/// must not write into the data directory before they act (restore, health checks).
pub fn resolve_config_without_demo(
    config_file: Option<&Path>,
    env: &BTreeMap<String, String>,
    overrides: &Overrides,
) -> Result<Config, AppError> {
    Ok(resolve(config_file, env, overrides, false)?.config)
}

fn resolve(
    config_file: Option<&Path>,
    env: &BTreeMap<String, String>,
    overrides: &Overrides,
    demo_layer: bool,
) -> Result<Resolved, AppError> {
    let file = config_file
        .map(Path::to_owned)
        .or_else(|| env.get("MAESTRO_CONFIG").map(PathBuf::from))
        .or_else(|| Some(PathBuf::from("maestro.toml")).filter(|p| p.exists()));
    let text = match &file {
        Some(p) => std::fs::read_to_string(p).map_err(|source| AppError::ReadConfig {
            path: p.clone(),
            source,
        })?,
        None => String::new(),
    };
    let file_layer = || Layer {
        name: format!(
            "config file {}",
            file.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        text: &text,
    };
    let config = config::load(&[file_layer()], env, overrides)?;
    // A data directory created in demo mode keeps its demo layer, with or without --demo.
    if !demo_layer || (!config.demo && !config.data_dir.join(demo::FILE).exists()) {
        return Ok(Resolved {
            config,
            file,
            demo: None,
        });
    }
    let (demo_text, credentials) = demo::layer(&config.data_dir)?;
    let config = config::load(
        &[
            Layer {
                name: format!("demo config {}", config.data_dir.join(demo::FILE).display()),
                text: &demo_text,
            },
            file_layer(),
        ],
        env,
        overrides,
    )?;
    Ok(Resolved {
        config,
        file,
        demo: credentials,
    })
}

/// A started appliance.
pub struct App {
    /// The configuration it runs with.
    pub config: Config,
    /// The engine (and through it the store).
    pub engine: Engine,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// API tokens.
    pub tokens: Tokens,
    /// OpenID Connect bearer tokens, when an issuer is configured.
    pub oidc: Option<oidc::Oidc>,
    /// When it started.
    pub started_at: jiff::Timestamp,
    /// What recovery found.
    pub recovery: Recovery,
    /// The version recorded by the previous start, if different from this one.
    pub previous_version: Option<String>,
    /// The provenance search index.
    pub search: Arc<crate::search::SearchIndex>,
    /// Queue depths of the last hour, for the console.
    pub queue_history: Arc<background::QueueHistory>,
    /// Console sessions and logins in progress.
    pub sessions: session::Sessions,
    /// The in-toto layout and its trusted keys, or why there are none (then nothing
    /// verifies).
    pub supply_chain: Result<supply_chain::Trust, String>,
    /// Post-release validation: readiness and serialization.
    pub postrelease: postrelease::PostRelease,
    /// Policy bundles loaded for replays.
    bundles: replay::BundleCache,
    /// Recent replays.
    replays: replay::ReplayCache,
    /// The indexer and sampler; stops when the appliance is dropped.
    _background: background::Background,
}

/// Whether a rollout may proceed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RolloutGate {
    /// True when nothing blocks it.
    pub open: bool,
    /// What blocks it.
    pub reasons: Vec<String>,
}

fn algorithm(a: KeyAlgorithm) -> Algorithm {
    match a {
        KeyAlgorithm::Ed25519 => Algorithm::Ed25519,
        KeyAlgorithm::EcdsaP256 => Algorithm::EcdsaP256,
    }
}

impl App {
    /// Opens the store, loads keys and starts the engine.
    pub async fn start(config: Config) -> Result<App, AppError> {
        let metrics = Arc::new(Metrics::new());
        let store = Arc::new(Store::open(&config.data_dir)?);
        // The store is ours now: a backup's staging copy a crash left behind goes.
        if let Ok(entries) = std::fs::read_dir(&config.data_dir) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(backup::STAGING_PREFIX)
                {
                    tracing::info!(path = %e.path().display(), "removing a stale backup copy");
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let (key, created) =
            SigningKey::load_or_generate(&config.key_file(), algorithm(config.signing.algorithm))?;
        if created {
            tracing::info!(path = %config.key_file().display(), keyid = key.public().keyid(), "generated the appliance signing key");
        }
        let mut tenant_keys = HashMap::new();
        for (id, t) in &config.tenants {
            if let Some(path) = &t.signing_key_file {
                let tenant = TenantId::new(id).map_err(|e| AppError::Other(e.to_string()))?;
                tenant_keys.insert(tenant, Arc::new(SigningKey::load(path)?));
            }
        }
        let origin = Self::log_origin(&store, config.signing.log_origin.as_deref())?;
        let version = env!("CARGO_PKG_VERSION").to_owned();
        let previous_version = store
            .meta("appliance_version")?
            .and_then(|v| String::from_utf8(v).ok())
            .filter(|v| v != &version);
        store.set_meta("appliance_version", version.as_bytes())?;
        let keys = supply_chain::layout_keys(&config, &store)?;
        let trust = supply_chain::trust(&config, keys);
        let policies = Arc::new(Self::load_policies(&config, &store, trust.as_ref())?);
        let mut engine_config = EngineConfig::from_config(&config).map_err(AppError::Other)?;
        engine_config.packages = catalog::installed_packages(
            &store,
            trust.as_ref(),
            config.features.intoto_verify_enforce,
            engine_config.max_tasks,
        )?;
        let signing = Signing {
            appliance: Arc::new(key),
            tenant_keys,
            origin,
            version,
        };
        let (engine, recovery) =
            Engine::start(store, engine_config, signing, policies, metrics.clone()).await?;
        let stale = metrics.oidc_stale_keys.clone();
        let oidc = oidc::Oidc::from_config(&config.oidc)
            .map_err(AppError::Other)?
            .map(|o| o.on_stale_keys(move || stale.inc()));
        let search = Arc::new(
            crate::search::SearchIndex::open(&config.index_dir())
                .map_err(|e| AppError::Other(e.to_string()))?,
        );
        let queue_history = Arc::new(background::QueueHistory::default());
        let depths = engine.clone();
        let auditor = engine.clone();
        let background = background::Background::start(
            engine.shared_store(),
            search.clone(),
            metrics.clone(),
            queue_history.clone(),
            move || depths.queue_depths(),
            background::Auditor {
                every: crate::domain::duration::parse(&config.residency.audit_interval)
                    .map_err(|e| AppError::Other(format!("residency.audit_interval: {e}")))?,
                audit: Box::new(move || match auditor.audit_residency(false) {
                    Ok(o) => {
                        if o.new + o.reopened > 0 {
                            tracing::warn!(
                                new = o.new,
                                reopened = o.reopened,
                                open = o.open,
                                receipts = o.receipts,
                                full = o.full,
                                "the residency auditor found violations"
                            );
                        } else {
                            tracing::info!(
                                open = o.open,
                                receipts = o.receipts,
                                full = o.full,
                                seconds = o.seconds,
                                "residency audit finished"
                            );
                        }
                        true
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the residency audit failed; retrying in a minute");
                        false
                    }
                }),
            },
        );
        let app = App {
            sessions: session::Sessions::default(),
            search,
            queue_history,
            _background: background,
            tokens: Tokens::from_config(&config.tokens),
            oidc,
            config,
            engine,
            metrics,
            started_at: jiff::Timestamp::now(),
            recovery,
            previous_version,
            bundles: Default::default(),
            replays: Default::default(),
            supply_chain: trust,
            postrelease: Default::default(),
        };
        if !app.config.postrelease.on_start || !app.post_release_due() {
            app.postrelease.set(postrelease::State::Passed);
        }
        if let Some(last) = app.last_post_release()? {
            app.metrics
                .postrelease_last_passed
                .set(i64::from(last.passed));
        }
        if app.config.golden.install && !app.goldens_installed() {
            for i in app.install_goldens()? {
                if let Some(e) = &i.error {
                    tracing::warn!(package = %i.package, error = %e, "golden package not installed");
                }
            }
        }
        app.export_golden_runs()?;
        Ok(app)
    }

    /// Loads the configured policy bundle (embedded, or `policy.dir`) with `policy.data`,
    /// stores it by digest so its decisions can be replayed, and records an audit event when
    /// it differs from the bundle active before.
    fn load_policies(
        config: &Config,
        store: &Store,
        trust: Result<&supply_chain::Trust, &String>,
    ) -> Result<Policies, AppError> {
        let (bundle, source, verified) = match (&config.policy.bundle, &config.policy.dir) {
            (Some(archive), _) => {
                let admitted = supply_chain::admit_bundle(config, store, trust, archive)?;
                (admitted.bundle, admitted.source, Some(admitted.verified))
            }
            (None, Some(dir)) => (
                PolicyBundle::from_dir(dir)?,
                dir.display().to_string(),
                None,
            ),
            (None, None) => (PolicyBundle::embedded(), "embedded".to_owned(), None),
        };
        let data = serde_json::to_value(&config.policy.data)
            .map_err(|e| AppError::Other(format!("policy.data: {e}")))?;
        let limits = Limits {
            time: crate::domain::duration::parse(&config.policy.max_eval_time)
                .map_err(|e| AppError::Other(format!("policy.max_eval_time: {e}")))?,
            memory_bytes: config.policy.max_memory_mb.saturating_mul(1024 * 1024),
        };
        let policies = Policies::load_appliance(bundle.with_data(&data), limits)?;
        let digest = policies.digest();
        let previous = store
            .meta("active_policy")?
            .and_then(|v| String::from_utf8(v).ok());
        if previous.as_deref() != Some(digest.to_string().as_str()) {
            let bundle_json = serde_json::to_value(policies.bundle())
                .map_err(|e| AppError::Other(e.to_string()))?;
            store.write(|w| {
                w.put_policy(&digest, &bundle_json)?;
                w.append_audit(NewAuditEvent::system(
                    AuditKind::PolicyActivated,
                    serde_json::json!({
                        "digest": digest,
                        "previous": previous,
                        "source": source,
                        "verified": verified,
                        "files": policies.versions(),
                    }),
                ))?;
                w.set_meta("active_policy", digest.to_string().as_bytes())
            })?;
            tracing::info!(%digest, %source, "policy bundle activated");
        }
        Ok(policies)
    }

    fn log_origin(store: &Store, configured: Option<&str>) -> Result<String, AppError> {
        let stored = store
            .meta("log_origin")?
            .and_then(|v| String::from_utf8(v).ok());
        match (stored, configured) {
            (Some(s), Some(c)) if s != c => Err(AppError::Other(format!(
                "signing.log_origin {c:?} differs from this log's origin {s:?}; a log's origin cannot change (remove the setting or set it to {s:?})"
            ))),
            (Some(s), _) => Ok(s),
            (None, c) => {
                let origin = match c {
                    Some(c) => c.to_owned(),
                    None => {
                        let id: [u8; 6] = rand::rng().random();
                        format!("maestro/{}", hex::encode(id))
                    }
                };
                let valid =
                    !origin.is_empty() && !origin.chars().any(|c| c.is_whitespace() || c == '+');
                if !valid {
                    return Err(AppError::Other(format!(
                        "signing.log_origin {origin:?} must be non-empty without spaces or '+'"
                    )));
                }
                store.set_meta("log_origin", origin.as_bytes())?;
                Ok(origin)
            }
        }
    }

    /// The actor of a bearer token: an API token, or a JWT of the configured issuer.
    pub async fn authenticate(&self, token: &str) -> Result<Actor, oidc::AuthError> {
        match &self.oidc {
            Some(o) if oidc::is_jwt(token) => o.verify(token).await,
            _ => self
                .tokens
                .authenticate(token)
                .ok_or(oidc::AuthError::UnknownToken),
        }
    }

    /// What the appliance's own receipts verify against: its keys and its log origin (the
    /// console's "verified" badge runs the same offline checks as `maestro verify-receipt`).
    pub fn trust(&self) -> crate::attest::receipt::Trust {
        let s = self.engine.signing();
        let mut keys = vec![s.appliance.public().clone()];
        let mut tenants: Vec<_> = s.tenant_keys.iter().collect();
        tenants.sort_by(|a, b| a.0.cmp(b.0));
        keys.extend(tenants.into_iter().map(|(_, k)| k.public().clone()));
        crate::attest::receipt::Trust {
            keys,
            origin: Some(s.origin.clone()),
        }
    }

    /// Ids of configured tenants.
    pub fn tenant_ids(&self) -> Vec<TenantId> {
        self.engine.config().tenants.keys().cloned().collect()
    }

    /// Whether a rollout of this appliance may proceed, and if not, why. Closed while the
    /// residency auditor enforces and violations are open.
    pub fn rollout_gate(&self) -> RolloutGate {
        let mut reasons = Vec::new();
        if self.engine.residency_enforced() {
            for (tenant, b) in self.engine.residency_blocks().tenants {
                let mut what: Vec<String> = b.locations.into_iter().collect();
                what.extend(b.regions.into_iter().map(|r| format!("region {r}")));
                reasons.push(format!(
                    "tenant {tenant} has open residency violations ({})",
                    what.join(", ")
                ));
            }
        }
        RolloutGate {
            open: reasons.is_empty(),
            reasons,
        }
    }

    /// A system scope on a configured tenant (demo seeding, embedded CLI runs).
    pub fn system_scope(&self, tenant: &TenantId, access: Access) -> Option<TenantScope> {
        self.engine
            .config()
            .tenants
            .contains_key(tenant)
            .then(|| TenantScope::system(tenant.clone(), access))
    }
}
