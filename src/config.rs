//! Configuration: one [`Config`] struct, loaded by a pure function from TOML layers (the demo
//! layer, then the config file), then `MAESTRO_*` environment variables, then flags.
//! Unknown keys are errors; every error says which layer and key is wrong.
//!
//! Environment variables map to keys by lowercasing and splitting on `__`:
//! `MAESTRO_LIMITS__RUNNERS=64` sets `limits.runners`. Values are parsed as TOML values
//! (`64`, `true`, `["a","b"]`), or taken as strings when they do not parse.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::actor::Role;
use crate::domain::duration;
use crate::domain::ids::TenantId;

/// Environment variables the client commands read; they are not config keys.
pub const CLIENT_ENV: &[&str] = &[
    "MAESTRO_URL",
    "MAESTRO_TOKEN",
    "MAESTRO_CONFIG",
    "MAESTRO_OUTPUT",
];

/// A configuration problem: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// The layer or key: `config file maestro.toml`, `MAESTRO_LIMITS__RUNNERS`, `tenants.acme`.
    pub origin: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn err(origin: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        origin: origin.into(),
        message: message.into(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the store, keys and work directories live.
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Seed demo tenants, tokens and executions on first start.
    pub demo: bool,
    /// Logging.
    pub log: LogConfig,
    /// Receipt and checkpoint signing.
    pub signing: SigningConfig,
    /// Limits and quotas.
    pub limits: Limits,
    /// Group commit.
    pub commit: CommitConfig,
    /// Built-in actions that reach outside.
    pub actions: ActionsConfig,
    /// Regions of this deployment; empty accepts any well-formed region.
    pub regions: Vec<String>,
    /// Other names of declared regions, e.g. names earlier configurations used: alias →
    /// region. Receipts that record an alias count as that region.
    pub region_aliases: BTreeMap<String, String>,
    /// The region this node runs in: runs whose data must stay elsewhere are denied.
    pub node_region: Option<String>,
    /// Storage locations ("buckets") by name, each tagged with a region.
    pub locations: BTreeMap<String, LocationConfig>,
    /// The residency auditor.
    pub residency: ResidencyConfig,
    /// Tenants by id.
    pub tenants: BTreeMap<String, TenantConfig>,
    /// API tokens (hashed).
    pub tokens: Vec<TokenConfig>,
    /// Feature flags.
    pub features: Features,
    /// Policies.
    pub policy: PolicyConfig,
    /// The in-toto layout and the keys trusted to sign it.
    pub supply_chain: SupplyChainConfig,
    /// OpenID Connect bearer tokens (JWTs); off unless `issuer` is set.
    pub oidc: OidcConfig,
    /// The golden workflows: installing their signed packages and running them on a schedule.
    pub golden: GoldenConfig,
    /// Post-release validation.
    pub postrelease: PostReleaseConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("maestro-data"),
            listen: "127.0.0.1:7070".into(),
            demo: false,
            log: LogConfig::default(),
            signing: SigningConfig::default(),
            limits: Limits::default(),
            commit: CommitConfig::default(),
            actions: ActionsConfig::default(),
            regions: Vec::new(),
            region_aliases: BTreeMap::new(),
            node_region: None,
            locations: BTreeMap::new(),
            residency: ResidencyConfig::default(),
            tenants: BTreeMap::new(),
            tokens: Vec::new(),
            features: Features::default(),
            policy: PolicyConfig::default(),
            supply_chain: SupplyChainConfig::default(),
            oidc: OidcConfig::default(),
            golden: GoldenConfig::default(),
            postrelease: PostReleaseConfig::default(),
        }
    }
}

/// Post-release validation: canary runs, every receipt verified, the log consistent with the
/// last validation, every decision replayed; `/readyz` holds until it passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostReleaseConfig {
    /// Validate when the appliance starts with a version other than the last one recorded
    /// (or one never validated), holding readiness until it passes.
    pub on_start: bool,
    /// The tenant canaries run as (default: `golden.tenant`; neither: no canary runs).
    pub tenant: Option<String>,
    /// Public keys (PEM) receipts must verify with (default: every key the appliance ever
    /// signed with).
    pub trusted_keys: Vec<PathBuf>,
}

impl Default for PostReleaseConfig {
    fn default() -> Self {
        PostReleaseConfig {
            on_start: true,
            tenant: None,
            trusted_keys: Vec::new(),
        }
    }
}

/// The golden workflows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoldenConfig {
    /// Publish and install the shipped golden packages at start (verified under
    /// `supply_chain` like any release); `maestro golden install` does it on demand.
    pub install: bool,
    /// The tenant the scheduled golden runs run as (synthetic canary runs). Unset: no
    /// scheduled runs; `maestro golden run --tenant T` runs them on demand.
    pub tenant: Option<String>,
    /// Time between scheduled runs.
    pub interval: String,
}

impl Default for GoldenConfig {
    fn default() -> Self {
        GoldenConfig {
            install: false,
            tenant: None,
            interval: "24h".into(),
        }
    }
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter directive.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Signing key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// Ed25519.
    Ed25519,
    /// ECDSA P-256.
    EcdsaP256,
}

/// Receipt and checkpoint signing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigningConfig {
    /// Algorithm of a generated key.
    pub algorithm: KeyAlgorithm,
    /// PKCS#8 PEM private key; default `<data_dir>/keys/appliance.pem`, generated at first
    /// start.
    pub key_file: Option<PathBuf>,
    /// Log origin (the first line of checkpoints); default `maestro/<random id>`, fixed at
    /// first start.
    pub log_origin: Option<String>,
}

impl Default for SigningConfig {
    fn default() -> Self {
        SigningConfig {
            algorithm: KeyAlgorithm::Ed25519,
            key_file: None,
            log_origin: None,
        }
    }
}

/// Limits and quotas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Executions running at once (the runner pool).
    pub runners: usize,
    /// Queued executions per tenant before submissions get 429.
    pub queue_per_tenant: usize,
    /// Submissions per second across all tenants.
    pub global_rate: u32,
    /// Burst above the global rate.
    pub global_burst: u32,
    /// Default submissions per second per tenant.
    pub tenant_rate: u32,
    /// Default burst per tenant.
    pub tenant_burst: u32,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest release published into the catalog (a tar.gz of its files).
    pub max_release_bytes: usize,
    /// Most tasks in a manifest.
    pub max_tasks: usize,
    /// Default limit for a whole execution.
    pub execution_timeout: String,
    /// Default limit for one task attempt.
    pub task_timeout: String,
    /// Largest artifact.
    pub max_artifact_bytes: usize,
    /// Largest outputs of one task (JSON).
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            runners: 64,
            queue_per_tenant: 10_000,
            global_rate: 20_000,
            global_burst: 40_000,
            tenant_rate: 10_000,
            tenant_burst: 20_000,
            max_body_bytes: 1024 * 1024,
            max_release_bytes: 64 * 1024 * 1024,
            max_tasks: 256,
            execution_timeout: "10m".into(),
            task_timeout: "5m".into(),
            max_artifact_bytes: 8 * 1024 * 1024,
            max_output_bytes: 256 * 1024,
        }
    }
}

/// Group commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommitConfig {
    /// Most commands in one transaction.
    pub max_batch: usize,
}

impl Default for CommitConfig {
    fn default() -> Self {
        CommitConfig { max_batch: 2048 }
    }
}

/// Built-in actions that reach outside the appliance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsConfig {
    /// `builtin/http`.
    pub http: HttpActionConfig,
    /// `builtin/exec`.
    pub exec: ExecActionConfig,
}

/// `builtin/http` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpActionConfig {
    /// Hosts tasks may call: `host` (any port) or `host:port`. Empty: none.
    pub allowed_hosts: Vec<String>,
    /// Tasks may also call the appliance itself at `${{ appliance.url }}`: its listen
    /// address (`host:port`) joins `allowed_hosts`. The golden `http` workflow needs it.
    pub allow_self: bool,
    /// Request timeout.
    pub timeout: String,
    /// Largest response body kept.
    pub max_response_bytes: usize,
}

impl Default for HttpActionConfig {
    fn default() -> Self {
        HttpActionConfig {
            allowed_hosts: Vec::new(),
            allow_self: false,
            timeout: "10s".into(),
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// `builtin/exec` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExecActionConfig {
    /// Off unless set.
    pub enabled: bool,
    /// Programs tasks may run (names looked up on `path`, or absolute paths); `"*"` allows
    /// any.
    pub allowed_commands: Vec<String>,
    /// `PATH` of the clean environment commands run in.
    pub path: String,
    /// Limit per command.
    pub timeout: String,
    /// Largest stdout or stderr kept.
    pub max_output_bytes: usize,
}

impl Default for ExecActionConfig {
    fn default() -> Self {
        ExecActionConfig {
            enabled: false,
            allowed_commands: Vec::new(),
            path: "/usr/local/bin:/usr/bin:/bin".into(),
            timeout: "30s".into(),
            max_output_bytes: 1024 * 1024,
        }
    }
}

/// A storage location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    /// Region tag.
    pub region: String,
    /// Locations that receive a copy of everything written here (replication targets).
    #[serde(default)]
    pub replicas: Vec<String>,
}

/// The residency auditor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResidencyConfig {
    /// How often the auditor checks new receipts (it also runs at start, and checks every
    /// receipt again whenever the regions, locations or tenants' allowed regions change).
    pub audit_interval: String,
}

impl Default for ResidencyConfig {
    fn default() -> Self {
        ResidencyConfig {
            audit_interval: "1h".into(),
        }
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    /// Name shown in the console.
    pub display_name: Option<String>,
    /// Share of the runners when tenants compete (default 1).
    pub weight: u32,
    /// Submissions per second (default `limits.tenant_rate`).
    pub rate: Option<u32>,
    /// Burst (default `limits.tenant_burst`).
    pub burst: Option<u32>,
    /// Queued executions before 429 (default `limits.queue_per_tenant`).
    pub max_queued: Option<usize>,
    /// Regions the tenant's data may be in; empty allows every region.
    pub allowed_regions: Vec<String>,
    /// A key of its own to sign the tenant's receipts.
    pub signing_key_file: Option<PathBuf>,
}

impl Default for TenantConfig {
    fn default() -> Self {
        TenantConfig {
            display_name: None,
            weight: 1,
            rate: None,
            burst: None,
            max_queued: None,
            allowed_regions: Vec::new(),
            signing_key_file: None,
        }
    }
}

/// An API token: its SHA-256 (never the token), the tenant it belongs to, its roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Name, shown as the actor's subject in audit and receipts.
    pub name: String,
    /// `sha256:<hex>` of the token (`maestro token new` prints it).
    pub sha256: String,
    /// The tenant; absent for appliance-wide admins.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Roles.
    pub roles: Vec<Role>,
}

/// Feature flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Features {
    /// The console never writes (cannot be turned off).
    pub console_readonly: bool,
    /// Refuse packages and bundles whose in-toto chain does not verify.
    pub intoto_verify_enforce: bool,
    /// Residency violations block runs.
    pub residency_auditor_enforce: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            console_readonly: true,
            intoto_verify_enforce: false,
            residency_auditor_enforce: false,
        }
    }
}

/// Policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// A directory of `.rego` files (and `data.json`) replacing the embedded policies.
    pub dir: Option<PathBuf>,
    /// A signed policy bundle (`NAME-VERSION.mbundle` in its release directory, or
    /// `catalog:NAME@VERSION` for one installed in the catalog) replacing the embedded
    /// policies; verified under `supply_chain` before it becomes active, at every start.
    pub bundle: Option<PathBuf>,
    /// Longest one policy evaluation may run.
    pub max_eval_time: String,
    /// Heap ceiling (MiB) of the process while policies evaluate.
    pub max_memory_mb: u64,
    /// Data merged into the policies' `data` document (e.g.
    /// `[policy.data.mc.cross_tenant_readers]`).
    pub data: toml::Table,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            dir: None,
            bundle: None,
            max_eval_time: "200ms".into(),
            max_memory_mb: 2048,
            data: toml::Table::new(),
        }
    }
}

/// What packages and policy bundles are verified against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupplyChainConfig {
    /// The signed in-toto layout (`maestro attest layout`).
    pub layout: Option<PathBuf>,
    /// Public keys (PEM files) trusted to sign the layout; it needs a valid signature by at
    /// least one, and none that fails. Rotate by adding the new key, re-signing the layout,
    /// then removing the old key; every change of this set is audited.
    pub layout_keys: Vec<PathBuf>,
}

/// OpenID Connect: JWT bearer tokens from an issuer, verified against its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The issuer (`iss`), e.g. `https://login.example.com/realms/ops`. Unset: JWTs are
    /// not accepted.
    pub issuer: Option<String>,
    /// The audience (`aud`) tokens must name.
    pub audience: String,
    /// Where the issuer's keys (JWKS) are; default: `jwks_uri` of the issuer's
    /// `/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// A JWKS file instead of fetching keys (air-gapped sites); re-read when it changes.
    pub jwks_file: Option<PathBuf>,
    /// Accepted signature algorithms (asymmetric only: RS*, PS*, ES256, ES384, EdDSA).
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: String,
    /// How long fetched keys are used before they are fetched again.
    pub jwks_cache_ttl: String,
    /// How long past `jwks_cache_ttl` the last keys stay in use while the issuer cannot be
    /// reached (`0s`: refuse tokens as soon as a refresh fails).
    pub jwks_max_stale: String,
    /// The claim naming the actor's tenant (absent: an appliance-wide actor).
    pub tenant_claim: String,
    /// The claim listing the actor's roles (an array, or a space-separated string).
    pub roles_claim: String,
    /// The console's client id at the issuer: console login (authorization code + PKCE) is
    /// on when set. ID tokens must name it as their audience.
    pub client_id: Option<String>,
    /// The client secret, for confidential clients (absent: a public client).
    pub client_secret: Option<String>,
    /// Where the issuer sends the browser back: the console's public URL and
    /// `/auth/callback` (default `http://<listen>/auth/callback`). An `https` URL marks the
    /// session cookie `Secure`.
    pub redirect_url: Option<String>,
    /// Scopes requested at login.
    pub scopes: String,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: None,
            audience: "maestro".into(),
            jwks_url: None,
            jwks_file: None,
            algorithms: vec![
                "RS256".into(),
                "ES256".into(),
                "PS256".into(),
                "EdDSA".into(),
            ],
            leeway: "30s".into(),
            jwks_cache_ttl: "10m".into(),
            jwks_max_stale: "1h".into(),
            tenant_claim: "tenant".into(),
            roles_claim: "roles".into(),
            client_id: None,
            client_secret: None,
            redirect_url: None,
            scopes: "openid profile".into(),
        }
    }
}

/// Asymmetric JWT algorithms the appliance may accept.
pub const JWT_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// Values given as command-line flags (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--demo`.
    pub demo: bool,
}

/// A TOML layer: its name for messages and its text.
pub struct Layer<'a> {
    /// e.g. `config file maestro.toml`.
    pub name: String,
    /// TOML text.
    pub text: &'a str,
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Resolves the configuration from layers (lowest first), the environment and flags, then
/// validates it.
pub fn load(
    layers: &[Layer<'_>],
    env: &BTreeMap<String, String>,
    overrides: &Overrides,
) -> Result<Config, ConfigError> {
    let mut table = toml::Table::new();
    for layer in layers {
        let parsed: toml::Table = layer.text.parse().map_err(|e: toml::de::Error| {
            err(&layer.name, e.to_string().trim_end().replace('\n', " "))
        })?;
        check_shape(&parsed, &layer.name)?;
        merge(&mut table, parsed);
    }
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("MAESTRO_") else {
            continue;
        };
        if CLIENT_ENV.contains(&name.as_str()) || rest.is_empty() {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let mut node = &mut table;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                node.insert(key.clone(), parsed.clone());
            } else {
                let entry = node
                    .entry(key.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                node = match entry {
                    toml::Value::Table(t) => t,
                    _ => return Err(err(name, format!("{key} is not a section"))),
                };
            }
        }
        let single = toml::Table::from_iter([(path[0].clone(), table[&path[0]].clone())]);
        check_shape(&single, name)?;
    }
    let mut config: Config = Config::deserialize(toml::Value::Table(table))
        .map_err(|e| err("configuration", e.to_string().trim_end().replace('\n', " ")))?;
    if let Some(d) = &overrides.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(l) = &overrides.listen {
        config.listen = l.clone();
    }
    if overrides.demo {
        config.demo = true;
    }
    config.validate()?;
    Ok(config)
}

/// Deserializes a single layer to report unknown keys and wrong types against the layer
/// that introduced them.
fn check_shape(table: &toml::Table, origin: &str) -> Result<(), ConfigError> {
    Config::deserialize(toml::Value::Table(table.clone()))
        .map(|_| ())
        .map_err(|e| err(origin, e.to_string().trim_end().replace('\n', " ")))
}

use crate::domain::residency::is_region_id as region_ok;

impl Config {
    /// The appliance's own base URL as its tasks reach it: `http://` and the listen
    /// address, with a wildcard address (`0.0.0.0`, `[::]`) given as loopback.
    pub fn self_url(&self) -> String {
        let listen = self.listen.trim();
        let listen = if let Some(port) = listen.strip_prefix("0.0.0.0:") {
            format!("127.0.0.1:{port}")
        } else if let Some(port) = listen.strip_prefix("[::]:") {
            format!("[::1]:{port}")
        } else {
            listen.to_owned()
        };
        format!("http://{listen}")
    }

    /// The residency rules this configuration puts in force.
    pub fn residency_rules(&self) -> crate::domain::residency::Rules {
        use crate::domain::residency::{LocationRule, Rules};
        Rules {
            regions: self.regions.iter().cloned().collect(),
            aliases: self.region_aliases.clone(),
            locations: self
                .locations
                .iter()
                .map(|(name, l)| {
                    (
                        name.clone(),
                        LocationRule {
                            region: l.region.clone(),
                            replicas: l.replicas.clone(),
                        },
                    )
                })
                .collect(),
            tenants: self
                .tenants
                .iter()
                .map(|(id, t)| (id.clone(), t.allowed_regions.iter().cloned().collect()))
                .collect(),
        }
    }

    fn validate_locations(&self, known_region: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        for (alias, region) in &self.region_aliases {
            let origin = format!("region_aliases.{alias}");
            if alias.trim().is_empty() || alias.len() > 64 || alias.chars().any(char::is_control) {
                return Err(err(origin, "an alias is 1 to 64 printable characters"));
            }
            if self.regions.iter().any(|r| r == alias) {
                return Err(err(origin, "a declared region cannot also be an alias"));
            }
            if !region_ok(region) || !known_region(region) {
                return Err(err(origin, format!("{region:?} is not a declared region")));
            }
        }
        if let Some(r) = &self.node_region
            && (!region_ok(r) || !known_region(r))
        {
            return Err(err(
                "node_region",
                format!("{r:?} is not a declared region"),
            ));
        }
        duration::parse(&self.residency.audit_interval).map_err(|e| {
            err(
                "residency.audit_interval",
                format!("{:?}: {e}", self.residency.audit_interval),
            )
        })?;
        for (name, loc) in &self.locations {
            let origin = format!("locations.{name}");
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(err(
                    origin,
                    "location names use lowercase letters, digits, '-' and '_'",
                ));
            }
            if !region_ok(&loc.region) {
                return Err(err(
                    origin,
                    format!("region {:?} is not a region id", loc.region),
                ));
            }
            if !known_region(&loc.region) {
                return Err(err(
                    origin,
                    format!("region {:?} is not in regions", loc.region),
                ));
            }
            for r in &loc.replicas {
                if r == name || !self.locations.contains_key(r) {
                    return Err(err(
                        origin,
                        format!("replica {r:?} is not another configured location"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_oidc(&self) -> Result<(), ConfigError> {
        let o = &self.oidc;
        duration::parse(&o.leeway)
            .map_err(|e| err("oidc.leeway", format!("{:?}: {e}", o.leeway)))?;
        if duration::parse(&o.leeway).is_ok_and(|d| d > std::time::Duration::from_secs(300)) {
            return Err(err("oidc.leeway", "at most 5m"));
        }
        let Some(issuer) = &o.issuer else {
            if o.client_id.is_some() {
                return Err(err(
                    "oidc.client_id",
                    "console login needs oidc.issuer as well",
                ));
            }
            return Ok(());
        };
        if let Some(url) = &o.redirect_url
            && !((url.starts_with("https://") || url.starts_with("http://"))
                && url.ends_with("/auth/callback"))
        {
            return Err(err(
                "oidc.redirect_url",
                format!("{url:?} must be the console's http(s) URL ending in /auth/callback"),
            ));
        }
        if o.client_id.as_deref() == Some("") {
            return Err(err("oidc.client_id", "must not be empty"));
        }
        if !o.scopes.split_whitespace().any(|s| s == "openid") {
            return Err(err("oidc.scopes", "must include openid"));
        }
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
            return Err(err(
                "oidc.issuer",
                format!("{issuer:?} is not an http(s) URL"),
            ));
        }
        if o.audience.is_empty() {
            return Err(err("oidc.audience", "must not be empty"));
        }
        if o.jwks_url.is_some() && o.jwks_file.is_some() {
            return Err(err("oidc", "give jwks_url or jwks_file, not both"));
        }
        if o.algorithms.is_empty() {
            return Err(err("oidc.algorithms", "name at least one algorithm"));
        }
        for a in &o.algorithms {
            if !JWT_ALGORITHMS.contains(&a.as_str()) {
                return Err(err(
                    "oidc.algorithms",
                    format!(
                        "{a:?} is not accepted (never none or HMAC); use {}",
                        JWT_ALGORITHMS.join(", ")
                    ),
                ));
            }
        }
        for (key, v) in [
            ("oidc.tenant_claim", &o.tenant_claim),
            ("oidc.roles_claim", &o.roles_claim),
        ] {
            if v.is_empty() {
                return Err(err(key, "must not be empty"));
            }
        }
        Ok(())
    }

    /// Checks values that types cannot: addresses, durations, references between sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|e| {
            err(
                "listen",
                format!(
                    "{:?} is not an address such as 127.0.0.1:7070: {e}",
                    self.listen
                ),
            )
        })?;
        for (key, value) in [
            ("limits.execution_timeout", &self.limits.execution_timeout),
            ("limits.task_timeout", &self.limits.task_timeout),
            ("actions.http.timeout", &self.actions.http.timeout),
            ("actions.exec.timeout", &self.actions.exec.timeout),
            ("policy.max_eval_time", &self.policy.max_eval_time),
            ("oidc.jwks_cache_ttl", &self.oidc.jwks_cache_ttl),
            ("golden.interval", &self.golden.interval),
        ] {
            match duration::parse(value) {
                Ok(d) if !d.is_zero() => {}
                Ok(_) => return Err(err(key, "must be greater than zero")),
                Err(e) => return Err(err(key, format!("{value:?}: {e}"))),
            }
        }
        for (key, tenant) in [
            ("golden.tenant", &self.golden.tenant),
            ("postrelease.tenant", &self.postrelease.tenant),
        ] {
            if let Some(t) = tenant
                && !self.tenants.contains_key(t)
            {
                return Err(err(
                    key,
                    format!("tenant {t:?} is not defined under [tenants]"),
                ));
            }
        }
        if let Err(e) = duration::parse(&self.oidc.jwks_max_stale) {
            return Err(err(
                "oidc.jwks_max_stale",
                format!("{:?}: {e}", self.oidc.jwks_max_stale),
            ));
        }
        for (key, n) in [
            ("limits.runners", self.limits.runners),
            ("limits.queue_per_tenant", self.limits.queue_per_tenant),
            ("limits.max_body_bytes", self.limits.max_body_bytes),
            ("limits.max_release_bytes", self.limits.max_release_bytes),
            ("limits.max_tasks", self.limits.max_tasks),
            ("limits.global_rate", self.limits.global_rate as usize),
            ("limits.tenant_rate", self.limits.tenant_rate as usize),
            ("commit.max_batch", self.commit.max_batch),
            ("policy.max_memory_mb", self.policy.max_memory_mb as usize),
        ] {
            if n == 0 {
                return Err(err(key, "must be greater than zero"));
            }
        }
        self.validate_oidc()?;
        if !self.features.console_readonly {
            return Err(err(
                "features.console_readonly",
                "the console is read-only by construction; this flag cannot be turned off",
            ));
        }
        for r in &self.regions {
            if !region_ok(r) {
                return Err(err(
                    "regions",
                    format!("{r:?} is not a region id (lowercase letters, digits, '-')"),
                ));
            }
        }
        let known_region = |r: &str| self.regions.is_empty() || self.regions.iter().any(|x| x == r);
        self.validate_locations(known_region)?;
        for (id, tenant) in &self.tenants {
            let origin = format!("tenants.{id}");
            TenantId::new(id).map_err(|e| err(&origin, e.to_string()))?;
            if tenant.weight == 0 || tenant.weight > 1000 {
                return Err(err(origin, "weight must be between 1 and 1000"));
            }
            for r in &tenant.allowed_regions {
                if !known_region(r) {
                    return Err(err(
                        &origin,
                        format!("allowed region {r:?} is not in regions"),
                    ));
                }
            }
            if tenant.rate == Some(0) {
                return Err(err(origin, "rate must be greater than zero"));
            }
        }
        let mut names = std::collections::HashSet::new();
        let mut hashes = std::collections::HashSet::new();
        for (i, token) in self.tokens.iter().enumerate() {
            let origin = format!("tokens[{i}] ({})", token.name);
            if token.name.is_empty() || !names.insert(token.name.as_str()) {
                return Err(err(origin, "token names must be present and unique"));
            }
            let hex_part = token.sha256.strip_prefix("sha256:").unwrap_or("");
            if hex_part.len() != 64 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(
                    origin,
                    "sha256 must be \"sha256:\" and 64 hex digits (maestro token new prints it)",
                ));
            }
            if !hashes.insert(hex_part.to_ascii_lowercase()) {
                return Err(err(origin, "two tokens have the same hash"));
            }
            if token.roles.is_empty() {
                return Err(err(origin, "a token needs at least one role"));
            }
            match &token.tenant {
                Some(t) if !self.tenants.contains_key(t) => {
                    return Err(err(
                        origin,
                        format!("tenant {t:?} is not defined under [tenants]"),
                    ));
                }
                None if !token.roles.contains(&Role::Admin) => {
                    return Err(err(
                        origin,
                        "a token without a tenant must have the admin role",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Directory of the search index (derived state; `maestro index rebuild` recreates it).
    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }

    /// Path of the appliance signing key.
    pub fn key_file(&self) -> PathBuf {
        self.signing
            .key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join("appliance.pem"))
    }

    /// The listen address (validated).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.parse().expect("validated")
    }
}

#[cfg(test)]
mod tests;
