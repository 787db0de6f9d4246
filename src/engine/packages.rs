//! Workflow packages installed from the catalog, as the engine runs them: each one's
//! manifest (validated when it was installed), the archive digest it came from, and the
//! inputs it takes (every `${{ inputs.KEY }}` its tasks reference). Validation looks
//! packages up here (`uses: pkg:NAME@VERSION`), admission reads their tasks, and the runner
//! runs them. Filled by the application at start and on every installation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::domain::actions::{Uses, parse_uses};
use crate::domain::expr::{self, Reference};
use crate::domain::ids::Digest;
use crate::domain::manifest::Manifest;
use crate::domain::validate::Catalog;

/// An installed workflow package.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledPackage {
    /// Name.
    pub name: String,
    /// Version.
    pub version: semver::Version,
    /// The archive's digest.
    pub digest: Digest,
    /// Its `maestro.yaml`.
    pub manifest: Manifest,
    /// The inputs its tasks reference.
    pub inputs: BTreeSet<String>,
}

impl InstalledPackage {
    /// A package of `manifest`, valid already.
    pub fn new(name: &str, version: semver::Version, digest: Digest, manifest: Manifest) -> Self {
        let inputs = referenced_inputs(&manifest);
        InstalledPackage {
            name: name.to_owned(),
            version,
            digest,
            manifest,
            inputs,
        }
    }

    /// `NAME@VERSION`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Every `inputs.KEY` the tasks of `manifest` reference.
pub fn referenced_inputs(manifest: &Manifest) -> BTreeSet<String> {
    let mut inputs = BTreeSet::new();
    for task in &manifest.tasks {
        expr::for_each_string(
            &Value::Object(task.with.clone()),
            &mut String::new(),
            &mut |_, s| {
                for occ in expr::scan(s) {
                    if let Ok(Reference::Input { key, .. }) = occ.reference {
                        inputs.insert(key);
                    }
                }
            },
        );
    }
    inputs
}

/// Installed packages by name and version.
type ByVersion = BTreeMap<(String, semver::Version), Arc<InstalledPackage>>;

/// The installed packages, shared by validation, admission and the runner.
#[derive(Debug, Clone, Default)]
pub struct Packages(Arc<parking_lot::RwLock<ByVersion>>);

impl Packages {
    /// Adds (or replaces, on reinstallation) a package.
    pub fn install(&self, package: InstalledPackage) {
        self.0.write().insert(
            (package.name.clone(), package.version.clone()),
            Arc::new(package),
        );
    }

    /// Removes a package (its installation no longer verifies).
    pub fn remove(&self, name: &str, version: &semver::Version) {
        self.0.write().remove(&(name.to_owned(), version.clone()));
    }

    /// An installed package.
    pub fn get(&self, name: &str, version: &semver::Version) -> Option<Arc<InstalledPackage>> {
        self.0
            .read()
            .get(&(name.to_owned(), version.clone()))
            .cloned()
    }

    /// How many are installed.
    pub fn len(&self) -> usize {
        self.0.read().len()
    }

    /// Whether none is installed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Catalog for Packages {
    fn versions(&self, name: &str) -> Vec<semver::Version> {
        self.0
            .read()
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn inputs(&self, name: &str, version: &semver::Version) -> Option<BTreeSet<String>> {
        self.get(name, version).map(|p| p.inputs.clone())
    }

    fn runs_packages(&self, name: &str, version: &semver::Version) -> bool {
        self.get(name, version).is_some_and(|p| {
            p.manifest
                .tasks
                .iter()
                .any(|t| matches!(parse_uses(&t.uses), Ok(Uses::Package { .. })))
        })
    }
}
