//! The package catalog: publishing a signed release (a workflow package or a policy
//! bundle with its in-toto links and SLSA provenance) after verifying it under the
//! configured layout, installing it (verified again: the layout may have expired, the
//! trusted keys may have rotated), and reading entries back.
//!
//! With `features.intoto_verify_enforce`, a release whose chain does not verify is refused
//! and nothing is stored; without it, it is accepted with its failures recorded. Both cases
//! append a `supply_chain_unverified` audit event. A published version is never replaced:
//! publishing the same archive again changes nothing, another archive under the same
//! version is refused.
//!
//! An installed workflow package is handed to the engine (`engine::packages`), so manifests
//! can run it with `uses: pkg:NAME@VERSION`; at start every installed one is loaded again.

use serde_json::json;

use super::App;
use super::package::{Release, open};
use super::supply_chain::{Trust, check_release, unverified_event};
use crate::domain::actor::Actor;
use crate::domain::audit::{AuditKind, NewAuditEvent};
use crate::domain::ids::Digest;
use crate::domain::package::{CatalogEntry, FILES_DIR, Kind, MANIFEST_FILE, Verdict};
use crate::domain::validate;
use crate::engine::packages::{InstalledPackage, Packages};
use crate::store::{Store, StoreError};

/// Why a catalog operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The release cannot be read as one.
    #[error("{0}")]
    Invalid(String),
    /// Its supply chain does not verify and `intoto_verify_enforce` refuses it.
    #[error("{reference} does not verify, and intoto_verify_enforce refuses it: {}", failures.join("; "))]
    Unverified {
        /// `NAME@VERSION`.
        reference: String,
        /// What failed.
        failures: Vec<String>,
    },
    /// Another archive is published under this name and version.
    #[error("{0}")]
    Conflict(String),
    /// No such entry.
    #[error("{0}")]
    NotFound(String),
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outcome of a publication.
#[derive(Debug, Clone)]
pub struct Published {
    /// The entry.
    pub entry: CatalogEntry,
    /// False when the same archive was already published (nothing changed).
    pub created: bool,
}

impl App {
    /// Every catalog entry.
    pub fn catalog(&self) -> Result<Vec<CatalogEntry>, StoreError> {
        self.engine.store().read()?.catalog()
    }

    /// One catalog entry.
    pub fn catalog_entry(
        &self,
        kind: Kind,
        name: &str,
        version: &str,
    ) -> Result<CatalogEntry, CatalogError> {
        self.engine
            .store()
            .read()?
            .catalog_entry(kind, name, version)?
            .ok_or_else(|| not_found(kind, name, version))
    }

    /// The release of a catalog entry as published (a tar.gz of its files).
    pub fn catalog_release(
        &self,
        kind: Kind,
        name: &str,
        version: &str,
    ) -> Result<Vec<u8>, CatalogError> {
        self.engine
            .store()
            .read()?
            .catalog_release(kind, name, version)?
            .ok_or_else(|| not_found(kind, name, version))
    }

    /// Publishes a release sent as a tar.gz of its directory's files. Blocking: verifies
    /// signatures and reads the archive.
    pub fn publish(&self, actor: &Actor, tar: &[u8]) -> Result<Published, CatalogError> {
        let release = Release::from_tar(tar).map_err(|e| CatalogError::Invalid(e.to_string()))?;
        let (archive, kind) = release
            .archive()
            .map_err(|e| CatalogError::Invalid(e.to_string()))?;
        let opened = match open(&release.files[archive]) {
            Ok(o) => o,
            Err(e) => {
                // A tampered or broken archive: refused in every mode, and audited.
                let why = format!("{archive}: {e}");
                self.audit_unverified(
                    "publish",
                    actor,
                    kind,
                    archive,
                    std::slice::from_ref(&why),
                    true,
                )?;
                return Err(CatalogError::Invalid(why));
            }
        };
        let meta = opened.meta;
        let reference = meta.reference();
        let digest = Digest::of(&release.files[archive]);
        let store = self.engine.store();
        let existing = |store: &crate::store::Store| -> Result<Option<Published>, CatalogError> {
            match store
                .read()?
                .catalog_entry(kind, &meta.name, &meta.version)?
            {
                None => Ok(None),
                Some(e) if e.digest == digest => Ok(Some(Published {
                    entry: e,
                    created: false,
                })),
                Some(e) => Err(CatalogError::Conflict(format!(
                    "{reference} is published with archive digest {}; this archive has {digest}. \
                     A published version is never replaced: publish a new version",
                    e.digest
                ))),
            }
        };
        if let Some(done) = existing(store)? {
            return Ok(done);
        }
        let (verified, failures) = self.verify_release(&release, archive, kind);
        self.refuse_unverified("publish", actor, kind, &reference, verified, &failures)?;
        let entry = CatalogEntry {
            kind,
            name: meta.name.clone(),
            version: meta.version.clone(),
            digest,
            files: meta.files.clone(),
            policy_digest: meta.policy_digest,
            release: release
                .files
                .iter()
                .map(|(n, b)| (n.clone(), Digest::of(b)))
                .collect(),
            published: Verdict {
                at: jiff::Timestamp::now(),
                by: actor.subject.clone(),
                verified,
                failures,
            },
            installed: None,
        };
        let stored = release
            .to_tar()
            .map_err(|e| CatalogError::Invalid(e.to_string()))?;
        let written = store.write(|w| {
            w.put_catalog(&entry, Some(&stored))?;
            w.append_audit(event(AuditKind::PackagePublished, actor, &entry, verified))
                .map(|_| ())
        });
        if let Err(e) = written {
            // Published meanwhile by another request: answer as if it had come first.
            return match existing(store)? {
                Some(done) => Ok(done),
                None => Err(e.into()),
            };
        }
        tracing::info!(package = %reference, %digest, verified, "published into the catalog");
        Ok(Published {
            entry,
            created: true,
        })
    }

    /// Installs a published release: verifies it again now (layout expiry, the keys trusted
    /// today) and records the verdict. Blocking.
    pub fn install(
        &self,
        actor: &Actor,
        kind: Kind,
        name: &str,
        version: &str,
    ) -> Result<CatalogEntry, CatalogError> {
        let mut entry = self.catalog_entry(kind, name, version)?;
        let tar = self.catalog_release(kind, name, version)?;
        let release = Release::from_tar(&tar)
            .map_err(|e| CatalogError::Invalid(format!("stored release: {e}")))?;
        let archive = entry.archive_name();
        let runnable = match kind {
            Kind::WorkflowPackage => Some(load_package(
                &entry,
                &release,
                self.engine.config().max_tasks,
            )?),
            Kind::PolicyBundle => None,
        };
        let (verified, failures) = self.verify_release(&release, &archive, kind);
        let reference = entry.reference();
        if let Err(refused) =
            self.refuse_unverified("install", actor, kind, &reference, verified, &failures)
        {
            // What no longer verifies no longer runs.
            if let Some(p) = &runnable {
                self.engine.config().packages.remove(&p.name, &p.version);
            }
            return Err(refused);
        }
        entry.installed = Some(Verdict {
            at: jiff::Timestamp::now(),
            by: actor.subject.clone(),
            verified,
            failures,
        });
        self.engine.store().write(|w| {
            w.put_catalog(&entry, None)?;
            w.append_audit(event(AuditKind::PackageInstalled, actor, &entry, verified))
                .map(|_| ())
        })?;
        if let Some(p) = runnable {
            self.engine.config().packages.install(p);
        }
        tracing::info!(package = %reference, verified, "installed from the catalog");
        Ok(entry)
    }

    /// Records a `supply_chain_unverified` audit event.
    fn audit_unverified(
        &self,
        action: &str,
        actor: &Actor,
        kind: Kind,
        reference: &str,
        failures: &[String],
        refused: bool,
    ) -> Result<(), StoreError> {
        let mut e = unverified_event(action, kind, Some(reference), failures, refused);
        e.actor = actor.subject.clone();
        self.engine.store().write(|w| w.append_audit(e).map(|_| ()))
    }

    /// Whether a release verifies under the configured layout, and what failed.
    fn verify_release(&self, release: &Release, archive: &str, kind: Kind) -> (bool, Vec<String>) {
        let (verified, failures, _) =
            check_release(self.supply_chain.as_ref(), release, archive, kind);
        (verified, failures)
    }

    /// Audits an unverified release, and refuses it under `intoto_verify_enforce`.
    fn refuse_unverified(
        &self,
        action: &str,
        actor: &Actor,
        kind: Kind,
        reference: &str,
        verified: bool,
        failures: &[String],
    ) -> Result<(), CatalogError> {
        if verified {
            return Ok(());
        }
        let enforce = self.config.features.intoto_verify_enforce;
        self.audit_unverified(action, actor, kind, reference, failures, enforce)?;
        if enforce {
            return Err(CatalogError::Unverified {
                reference: reference.to_owned(),
                failures: failures.to_vec(),
            });
        }
        tracing::warn!(
            package = reference,
            action,
            ?failures,
            "accepted a release that does not verify, because intoto_verify_enforce is off"
        );
        Ok(())
    }
}

/// Every installed workflow package of the store, verified again and loaded for the
/// engine. One that no longer verifies is audited and, with `intoto_verify_enforce`, left
/// out; one that cannot be loaded any more is left out with an error in the log. Runs that
/// use a package left out are refused as not installed.
pub fn installed_packages(
    store: &Store,
    trust: Result<&Trust, &String>,
    enforce: bool,
    max_tasks: usize,
) -> Result<Packages, StoreError> {
    let packages = Packages::default();
    let read = store.read()?;
    for entry in read.catalog()? {
        if entry.kind != Kind::WorkflowPackage || entry.installed.is_none() {
            continue;
        }
        let release = read
            .catalog_release(entry.kind, &entry.name, &entry.version)?
            .ok_or_else(|| CatalogError::NotFound("its release is missing".into()))
            .and_then(|tar| {
                Release::from_tar(&tar).map_err(|e| CatalogError::Invalid(e.to_string()))
            });
        let loaded = release.and_then(|release| {
            let (verified, failures, _) =
                check_release(trust, &release, &entry.archive_name(), entry.kind);
            if !verified {
                let event = unverified_event(
                    "load",
                    entry.kind,
                    Some(&entry.reference()),
                    &failures,
                    enforce,
                );
                store.write(|w| w.append_audit(event).map(|_| ()))?;
                if enforce {
                    return Err(CatalogError::Unverified {
                        reference: entry.reference(),
                        failures,
                    });
                }
                tracing::warn!(package = %entry.reference(), ?failures, "an installed package does not verify; it stays usable because intoto_verify_enforce is off");
            }
            load_package(&entry, &release, max_tasks)
        });
        match loaded {
            Ok(p) => packages.install(p),
            Err(CatalogError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::error!(package = %entry.reference(), error = %e, "an installed package is left out");
            }
        }
    }
    Ok(packages)
}

/// The runnable form of a workflow package's release: its `maestro.yaml`, valid, with at
/// most `max_tasks` tasks (its region is not checked: a package runs in the execution's).
fn load_package(
    entry: &CatalogEntry,
    release: &Release,
    max_tasks: usize,
) -> Result<InstalledPackage, CatalogError> {
    let invalid = |m: String| CatalogError::Invalid(format!("{}: {m}", entry.reference()));
    let archive = release.files.get(&entry.archive_name()).ok_or_else(|| {
        invalid(format!(
            "the release does not hold {}",
            entry.archive_name()
        ))
    })?;
    let opened = open(archive).map_err(|e| invalid(e.to_string()))?;
    let text = opened
        .files
        .get(MANIFEST_FILE)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| {
            invalid(format!(
                "{FILES_DIR}{MANIFEST_FILE} is missing or not UTF-8"
            ))
        })?;
    // The packages it uses are checked where it runs, as a workflow of its own.
    let ctx = validate::Context {
        max_tasks,
        catalog: &validate::AnyPackage,
        ..validate::Context::default()
    };
    let valid = validate::load(text, &ctx).map_err(|problems| {
        invalid(format!(
            "{FILES_DIR}{MANIFEST_FILE}: {}",
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let version = semver::Version::parse(&entry.version).map_err(|e| invalid(e.to_string()))?;
    Ok(InstalledPackage::new(
        &entry.name,
        version,
        entry.digest,
        valid.manifest,
    ))
}

fn not_found(kind: Kind, name: &str, version: &str) -> CatalogError {
    CatalogError::NotFound(format!(
        "{} {name}@{version} is not in the catalog",
        kind.noun()
    ))
}

fn event(kind: AuditKind, actor: &Actor, entry: &CatalogEntry, verified: bool) -> NewAuditEvent {
    let mut e = NewAuditEvent::system(
        kind,
        json!({
            "kind": entry.kind,
            "package": entry.reference(),
            "digest": entry.digest,
            "verified": verified,
        }),
    );
    e.actor = actor.subject.clone();
    e
}
