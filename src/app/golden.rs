//! Golden workflows as signed catalog packages: the releases this binary ships (built and
//! signed from `fixtures/golden/` and `fixtures/packages/` by `scripts/sign-shipped`, listed
//! in `packages/SOURCES`), publishing and installing them into the catalog (`maestro golden
//! install`, or at start with `golden.install`), resolving `golden/NAME` to the installed
//! package's manifest, and running them all against their expectations (`maestro golden
//! run`, and the scheduled worker with `golden.tenant`), with the last run of each kept in
//! the store and exported as metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_embed::RustEmbed;

use super::catalog::CatalogError;
use super::package::Release;
use super::{App, AppError, workflows};
use crate::domain::actor::{Access, Actor, Role, TenantScope};
use crate::domain::golden::GoldenRun;
use crate::domain::ids::TenantId;
use crate::domain::package::Kind;
use crate::domain::validate::{self, Problem, ValidManifest};
use crate::store::StoreError;

/// The shipped releases: `packages/` of the repository.
#[derive(RustEmbed)]
#[folder = "packages/"]
struct Shipped;

/// The prefix naming a golden's signed package in `maestro run -w`.
pub const PREFIX: &str = "golden/";
/// The actor of installations and scheduled runs.
pub const ACTOR: &str = "system:golden";
/// The store meta key holding the last run of each golden.
const RUNS_META: &str = "golden_runs";
/// How long one golden may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A shipped workflow package: `packages/SOURCES` lines of kind `package`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedPackage {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Whether it is a golden (from `fixtures/golden/`); otherwise a package goldens use.
    pub golden: bool,
}

/// Every shipped workflow package, the ones goldens use first.
pub fn shipped_packages() -> Vec<ShippedPackage> {
    let sources = Shipped::get("SOURCES")
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_default();
    let mut out: Vec<ShippedPackage> = sources
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                ["package", name, version, source] => Some(ShippedPackage {
                    name: (*name).to_owned(),
                    version: (*version).to_owned(),
                    golden: source.starts_with("fixtures/golden/"),
                }),
                _ => None,
            }
        })
        .collect();
    out.sort_by_key(|p| (p.golden, p.name.clone()));
    out
}

/// The shipped release `NAME-VERSION/`, as its files.
pub fn shipped_release(name: &str, version: &str) -> Option<Release> {
    let dir = format!("{name}-{version}/");
    let files: BTreeMap<String, Vec<u8>> = Shipped::iter()
        .filter_map(|path| {
            let file = path.strip_prefix(&dir)?;
            (!file.contains('/'))
                .then(|| Some((file.to_owned(), Shipped::get(&path)?.data.into_owned())))?
        })
        .collect();
    (!files.is_empty()).then_some(Release { files })
}

/// The SHA-256 of a shipped release's archive.
pub fn shipped_digest(name: &str, version: &str) -> Option<crate::domain::ids::Digest> {
    let release = shipped_release(name, version)?;
    let (archive, _) = release.archive().ok()?;
    Some(crate::domain::ids::Digest::of(&release.files[archive]))
}

/// The shipped in-toto layout and the public key that signs it (`packages/root.layout`,
/// `packages/keys/owner.pub`): the trust the demo appliance verifies goldens under.
pub fn shipped_trust() -> Option<(Vec<u8>, Vec<u8>)> {
    Some((
        Shipped::get("root.layout")?.data.into_owned(),
        Shipped::get("keys/owner.pub")?.data.into_owned(),
    ))
}

/// Why a golden cannot run.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    /// No golden has this name.
    #[error("no golden workflow {name:?} (goldens: {})", workflows::names().join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// Its package is not installed (or was left out because it no longer verifies, or
    /// another archive holds its name and version).
    #[error(
        "the golden {name} is not installed as package {reference} (the archive this binary ships); run `maestro golden install`"
    )]
    NotInstalled {
        /// The golden.
        name: String,
        /// `NAME@VERSION`.
        reference: String,
    },
    /// The installed package's manifest does not validate here (e.g. a package it uses is
    /// missing).
    #[error("the golden {name}: {}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The golden.
        name: String,
        /// What is wrong.
        problems: Vec<Problem>,
    },
}

/// The outcome of installing one shipped package.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Installed {
    /// `NAME@VERSION`.
    pub package: String,
    /// Whether its chain verified.
    pub verified: bool,
    /// Why it could not be installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The actor of installations (appliance-wide) and scheduled runs (an operator of the
/// golden tenant).
pub fn actor(tenant: Option<&TenantId>) -> Actor {
    Actor {
        subject: ACTOR.into(),
        tenant: tenant.cloned(),
        roles: vec![if tenant.is_some() {
            Role::Operator
        } else {
            Role::Admin
        }],
    }
}

impl App {
    /// Publishes and installs every shipped workflow package (packages goldens use first),
    /// verified under the configured trust like any release. One already installed from the
    /// same archive is left as it is. Blocking.
    pub fn install_goldens(&self) -> Result<Vec<Installed>, StoreError> {
        let actor = actor(None);
        let mut out = Vec::new();
        for p in shipped_packages() {
            let reference = format!("{}@{}", p.name, p.version);
            let result = (|| -> Result<bool, CatalogError> {
                let release = shipped_release(&p.name, &p.version).ok_or_else(|| {
                    CatalogError::NotFound(format!("{reference} is not shipped in this binary"))
                })?;
                let tar = release
                    .to_tar()
                    .map_err(|e| CatalogError::Invalid(e.to_string()))?;
                let published = self.publish(&actor, &tar)?;
                if let Some(v) = &published.entry.installed
                    && self.golden_package(&p.name, &p.version).is_some()
                {
                    return Ok(v.verified);
                }
                let entry = self.install(&actor, Kind::WorkflowPackage, &p.name, &p.version)?;
                Ok(entry.installed.is_some_and(|v| v.verified))
            })();
            match result {
                Ok(verified) => out.push(Installed {
                    package: reference,
                    verified,
                    error: None,
                }),
                Err(CatalogError::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(package = %reference, error = %e, "a shipped package could not be installed");
                    out.push(Installed {
                        package: reference,
                        verified: false,
                        error: Some(e.to_string()),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Whether every golden's package is installed and runnable.
    pub fn goldens_installed(&self) -> bool {
        shipped_packages()
            .iter()
            .all(|p| self.golden_package(&p.name, &p.version).is_some())
    }

    /// The installed package `NAME@VERSION` when it is the shipped archive (another
    /// archive published under the same name and version is not the golden).
    fn golden_package(
        &self,
        name: &str,
        version: &str,
    ) -> Option<Arc<crate::engine::packages::InstalledPackage>> {
        let v = semver::Version::parse(version).ok()?;
        let installed = self.engine.config().packages.get(name, &v)?;
        (Some(installed.digest) == shipped_digest(name, version)).then_some(installed)
    }

    /// The manifest of a golden as its installed, signed package holds it, validated here.
    pub fn golden_manifest(&self, name: &str) -> Result<ValidManifest, GoldenError> {
        let unknown = || GoldenError::Unknown {
            name: name.to_owned(),
        };
        let shipped = shipped_packages()
            .into_iter()
            .find(|p| p.golden && p.name == name)
            .ok_or_else(unknown)?;
        let package = self
            .golden_package(&shipped.name, &shipped.version)
            .ok_or_else(|| GoldenError::NotInstalled {
                name: name.to_owned(),
                reference: format!("{}@{}", shipped.name, shipped.version),
            })?;
        let doc = serde_json::to_value(&package.manifest).map_err(|e| GoldenError::Invalid {
            name: name.to_owned(),
            problems: vec![Problem {
                code: validate::ProblemCode::InvalidValue,
                path: String::new(),
                message: e.to_string(),
                hint: None,
            }],
        })?;
        validate::validate(doc, &self.engine.validation_context()).map_err(|problems| {
            GoldenError::Invalid {
                name: name.to_owned(),
                problems,
            }
        })
    }

    /// A named workflow: `golden/NAME` from the catalog, `NAME` from the binary.
    pub fn named_workflow(&self, name: &str) -> Result<ValidManifest, GoldenError> {
        if let Some(golden) = name.strip_prefix(PREFIX) {
            return self.golden_manifest(golden);
        }
        let text = workflows::get(name).ok_or_else(|| GoldenError::Unknown {
            name: name.to_owned(),
        })?;
        validate::load(&text, &self.engine.validation_context()).map_err(|problems| {
            GoldenError::Invalid {
                name: name.to_owned(),
                problems,
            }
        })
    }

    /// Runs every golden (or those named) from the catalog as synthetic canary runs of
    /// `tenant` submitted by `actor`, concurrently, checks each against its expectation, and
    /// records the results.
    pub async fn run_goldens(
        &self,
        tenant: &TenantId,
        only: &[String],
        actor: &Actor,
    ) -> Result<Vec<GoldenRun>, AppError> {
        let scope = self
            .system_scope(tenant, Access::Run)
            .ok_or_else(|| AppError::Other(format!("tenant {tenant} is not configured")))?;
        let names: Vec<String> = workflows::names()
            .into_iter()
            .filter(|n| only.is_empty() || only.contains(n))
            .collect();
        if let Some(unknown) = only.iter().find(|n| !names.contains(n)) {
            return Err(AppError::Other(
                GoldenError::Unknown {
                    name: unknown.clone(),
                }
                .to_string(),
            ));
        }
        let runs = names.iter().map(|name| {
            let (scope, actor) = (scope.clone(), actor.clone());
            async move {
                let manifest = self.golden_manifest(name).map_err(|e| e.to_string());
                self.run_expected(name, &scope, &actor, manifest).await
            }
        });
        let runs = futures::future::join_all(runs).await;
        self.record_golden_runs(&runs)?;
        Ok(runs)
    }

    /// Runs `manifest` (the workflow `name`) as a canary run of the scope's tenant and
    /// checks how it ended against the workflow's `expect.yaml`.
    pub(super) async fn run_expected(
        &self,
        name: &str,
        scope: &TenantScope,
        actor: &Actor,
        manifest: Result<ValidManifest, String>,
    ) -> GoldenRun {
        let started = Instant::now();
        let mut run = GoldenRun {
            name: name.to_owned(),
            version: String::new(),
            execution: None,
            tenant: scope.tenant().to_string(),
            status: None,
            passed: false,
            problems: Vec::new(),
            at: jiff::Timestamp::now(),
            millis: 0,
        };
        let outcome = async {
            let expect =
                workflows::expect(name).ok_or_else(|| format!("{name} has no expectation"))??;
            let manifest = manifest?;
            run.version = manifest.manifest.version.clone();
            let exec = self
                .engine
                .submit(scope, actor, manifest, true)
                .await
                .map_err(|e| e.to_string())?;
            let id = exec.id.clone();
            let exec = if exec.status.is_final() {
                exec
            } else {
                self.engine
                    .wait_final(scope, &id, RUN_TIMEOUT)
                    .await
                    .map_err(|e| e.to_string())?
                    .unwrap_or(exec)
            };
            Ok::<_, String>((expect, exec))
        }
        .await;
        match outcome {
            Ok((expect, exec)) => {
                run.execution = Some(exec.id.clone());
                run.status = Some(exec.status);
                run.problems = if exec.status.is_final() {
                    expect.check(&exec)
                } else {
                    vec![format!(
                        "still {} after {}s",
                        exec.status.as_str(),
                        RUN_TIMEOUT.as_secs()
                    )]
                };
            }
            Err(e) => run.problems = vec![e],
        }
        run.passed = run.problems.is_empty();
        run.at = jiff::Timestamp::now();
        run.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        run
    }

    fn record_golden_runs(&self, runs: &[GoldenRun]) -> Result<(), StoreError> {
        for run in runs {
            let result = if run.passed { "passed" } else { "failed" };
            self.metrics
                .golden_runs
                .with_label_values(&[&run.name, result])
                .inc();
            self.export_golden(run);
            if !run.passed {
                tracing::error!(golden = %run.name, problems = ?run.problems, "a golden workflow is red");
            }
        }
        // Read and written in one transaction: two runs finishing together (the scheduled
        // worker and one on demand) both land.
        self.engine.store().write(|w| {
            let mut last: BTreeMap<String, GoldenRun> = w
                .meta(RUNS_META)?
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            for run in runs {
                last.insert(run.name.clone(), run.clone());
            }
            let bytes =
                serde_json::to_vec(&last).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            w.set_meta(RUNS_META, &bytes)
        })
    }

    fn export_golden(&self, run: &GoldenRun) {
        self.metrics
            .golden_last_passed
            .with_label_values(&[&run.name])
            .set(i64::from(run.passed));
        self.metrics
            .golden_last_run
            .with_label_values(&[&run.name])
            .set(run.at.as_second());
    }

    /// The last run of each golden that ran, by name.
    pub fn golden_runs(&self) -> Result<BTreeMap<String, GoldenRun>, StoreError> {
        Ok(self
            .engine
            .store()
            .meta(RUNS_META)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default())
    }

    /// Exports the recorded last runs as metrics (at start, so a restart keeps a red
    /// golden visible).
    pub fn export_golden_runs(&self) -> Result<(), StoreError> {
        for run in self.golden_runs()?.values() {
            self.export_golden(run);
        }
        Ok(())
    }

    /// Runs the goldens every `golden.interval` as `golden.tenant`, while the appliance
    /// lives; the first run comes one interval after start.
    pub fn spawn_golden_worker(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let tenant = self.config.golden.tenant.as_deref()?;
        let tenant = TenantId::new(tenant).ok()?;
        let every = crate::domain::duration::parse(&self.config.golden.interval).ok()?;
        let app = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(app) = app.upgrade() else { return };
                match app.run_goldens(&tenant, &[], &actor(Some(&tenant))).await {
                    Ok(runs) => {
                        let red = runs.iter().filter(|r| !r.passed).count();
                        tracing::info!(goldens = runs.len(), red, "scheduled golden run finished");
                    }
                    Err(e) => tracing::error!(error = %e, "the scheduled golden run failed"),
                }
            }
        }))
    }
}
