//! Workflow packages and policy bundles as archives: their kind, name and version rules,
//! file names, and the `package.json` every archive starts with (what it is and the digest
//! of every file it carries).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ids::Digest;

/// The file at the root of every package archive.
pub const META_FILE: &str = "package.json";
/// Where a package's own files sit in the archive.
pub const FILES_DIR: &str = "files/";
/// The manifest file of a workflow package (inside `files/`).
pub const MANIFEST_FILE: &str = "maestro.yaml";

/// What a package is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A workflow: `maestro.yaml` (Manifest v1) and its files, run with `uses: pkg:NAME@VERSION`.
    WorkflowPackage,
    /// A policy bundle: `.rego` files and `data.json`.
    PolicyBundle,
}

impl Kind {
    /// The archive file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::WorkflowPackage => "mpkg",
            Kind::PolicyBundle => "mbundle",
        }
    }

    /// The kebab-case name (`workflow-package`, `policy-bundle`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WorkflowPackage => "workflow-package",
            Kind::PolicyBundle => "policy-bundle",
        }
    }

    /// Parses the kebab-case name.
    pub fn parse(text: &str) -> Option<Kind> {
        [Kind::WorkflowPackage, Kind::PolicyBundle]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// How to call it in messages.
    pub fn noun(self) -> &'static str {
        match self {
            Kind::WorkflowPackage => "package",
            Kind::PolicyBundle => "policy bundle",
        }
    }
}

/// The `package.json` of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageMeta {
    /// What it is.
    pub kind: Kind,
    /// Name (`[a-z0-9][a-z0-9._-]*`, at most 64 characters).
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// Every file under `files/`, by path relative to it, with its digest.
    pub files: BTreeMap<String, Digest>,
    /// The digest policy decisions pin (policy bundles only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<Digest>,
}

impl PackageMeta {
    /// `NAME-VERSION.EXT`, the archive's file name.
    pub fn archive_name(&self) -> String {
        archive_name(self.kind, &self.name, &self.version)
    }

    /// `NAME@VERSION`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Checks the name and version; says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        check_version(&self.version)?;
        if self.kind == Kind::PolicyBundle && self.policy_digest.is_none() {
            return Err("a policy bundle's package.json needs \"policy_digest\"".into());
        }
        if self.kind == Kind::WorkflowPackage && !self.files.contains_key(MANIFEST_FILE) {
            return Err(format!("a workflow package needs files/{MANIFEST_FILE}"));
        }
        Ok(())
    }
}

/// A release in the appliance's catalog: what it is, and the verdicts of its verification
/// when it was published and when it was last installed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CatalogEntry {
    /// What it is.
    pub kind: Kind,
    /// Name.
    pub name: String,
    /// Version; a published version is never replaced.
    pub version: String,
    /// The archive's digest (the provenance subject).
    pub digest: Digest,
    /// Every file of the archive under `files/`, with its digest.
    pub files: BTreeMap<String, Digest>,
    /// The digest policy decisions pin (policy bundles only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_digest: Option<Digest>,
    /// The release's files (archive and evidence), with their digests.
    pub release: BTreeMap<String, Digest>,
    /// Publication.
    pub published: Verdict,
    /// The last installation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installed: Option<Verdict>,
}

impl CatalogEntry {
    /// `NAME-VERSION.EXT`, the archive's file name.
    pub fn archive_name(&self) -> String {
        archive_name(self.kind, &self.name, &self.version)
    }

    /// `NAME@VERSION`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// When, by whom, and with what outcome a release was verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Verdict {
    /// When.
    #[schemars(with = "String")]
    pub at: jiff::Timestamp,
    /// Who.
    pub by: String,
    /// Whether its supply chain verified.
    pub verified: bool,
    /// What failed (accepted only with `intoto_verify_enforce` off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// `NAME-VERSION.EXT`.
pub fn archive_name(kind: Kind, name: &str, version: &str) -> String {
    format!("{name}-{version}.{}", kind.extension())
}

/// A package name: `[a-z0-9][a-z0-9._-]*`, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "package name {name:?}: use lowercase letters, digits, '.', '_' and '-', starting \
             with a letter or digit, at most 64 characters"
        ))
    }
}

/// A semantic version (`1.2.3`, `1.0.0-rc.1`).
pub fn check_version(version: &str) -> Result<(), String> {
    semver::Version::parse(version)
        .map(|_| ())
        .map_err(|e| format!("version {version:?} is not a semantic version (like 1.2.0): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_are_checked() {
        assert!(check_name("release-notes").is_ok());
        assert!(check_name("v1.2_x").is_ok());
        for bad in ["", "Notes", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_version("1.0.0-rc.1").is_ok());
        assert!(
            check_version("1.0")
                .unwrap_err()
                .contains("not a semantic version")
        );
        assert_eq!(
            archive_name(Kind::PolicyBundle, "base", "2.0.0"),
            "base-2.0.0.mbundle"
        );
    }
}
