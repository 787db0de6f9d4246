//! Recording links and writing layouts: artifacts hashed as the reference `in-toto-run`
//! records them (paths relative to a base directory, directories walked, regular files only,
//! `sha256` of the raw bytes, the reference's default excludes), link file names
//! (`STEP.KEYID8.link`), and layouts built from the YAML template in
//! `docs/provenance/INTOTO_LAYOUT.yaml` with the functionary keys filled in.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::fnmatch::Pattern;
use super::model::{KeyEntry, Layout, Link, Step};
use super::rules::{Artifacts, HashDict};
use super::verify::{Failure, check};
use crate::attest::keys::PublicKey;

/// File names the reference never records (`*.link*`, `*.pyc`, `*~`; `.git` directories).
const EXCLUDED: [&str; 3] = ["*.link*", "*.pyc", "*~"];

/// Hashes the files at `paths` (files or directories, relative to `base`).
pub fn record_artifacts(base: &Path, paths: &[String]) -> Result<Artifacts, String> {
    let excluded: Vec<Pattern> = EXCLUDED.iter().map(|p| Pattern::new(p)).collect();
    let mut out = Artifacts::new();
    for path in paths {
        let name = normalize(path)?;
        let full = if name.is_empty() {
            base.to_path_buf()
        } else {
            base.join(&name)
        };
        let meta = std::fs::metadata(&full)
            .map_err(|e| format!("{path}: {e} (under {})", base.display()))?;
        if meta.is_dir() {
            walk(&full, &name, &excluded, &mut out)?;
        } else if meta.is_file() {
            out.insert(name, hash_file(&full)?);
        } else {
            return Err(format!("{path}: not a regular file or directory"));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, name: &str, excluded: &[Pattern], out: &mut Artifacts) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            return Err(format!("{}: a file name is not UTF-8", dir.display()));
        };
        let child = if name.is_empty() {
            file_name.to_owned()
        } else {
            format!("{name}/{file_name}")
        };
        let kind = entry.file_type().map_err(|e| format!("{child}: {e}"))?;
        if kind.is_symlink() {
            return Err(format!(
                "{child}: a symbolic link; only regular files are recorded"
            ));
        }
        if kind.is_dir() {
            if file_name != ".git" {
                walk(&entry.path(), &child, excluded, out)?;
            }
        } else if kind.is_file() && !excluded.iter().any(|p| p.matches(file_name)) {
            out.insert(child, hash_file(&entry.path())?);
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> Result<HashDict, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(HashDict::from([(
        "sha256".to_owned(),
        hex::encode(hasher.finalize()),
    )]))
}

/// `os.path.normpath` for relative paths: `./a//b/` → `a/b`; `..` and absolute paths are
/// refused, since artifacts are named relative to the base directory.
fn normalize(path: &str) -> Result<String, String> {
    if path.starts_with('/') {
        return Err(format!(
            "{path}: artifact paths are relative to the base directory"
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("{path}: \"..\" leaves the base directory")),
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

/// A link for a step that was performed outside the verifier (no command is run here).
pub fn link(name: &str, materials: Artifacts, products: Artifacts, command: Vec<String>) -> Link {
    Link {
        type_: "link".into(),
        name: name.to_owned(),
        materials,
        products,
        byproducts: serde_json::Map::new(),
        command,
        environment: serde_json::Map::new(),
    }
}

/// The `*.link` files of a directory, sorted by name.
pub fn link_paths(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "link") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// The file name the reference looks for: `STEP.KEYID8.link`.
pub fn link_file_name(step: &str, keyid: &str) -> String {
    format!("{step}.{}.link", keyid.get(..8).unwrap_or(keyid))
}

/// The layout template (`docs/provenance/INTOTO_LAYOUT.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Free text, copied into the layout.
    pub readme: String,
    /// The steps, in order.
    pub steps: Vec<TemplateStep>,
}

/// One step of the template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateStep {
    /// Step name.
    pub name: String,
    /// Role names whose keys may sign this step (given when the layout is signed).
    pub functionaries: Vec<String>,
    /// Links needed from distinct functionaries.
    #[serde(default = "one")]
    pub threshold: i64,
    /// The command the step is expected to run (a warning when it differs).
    #[serde(default)]
    pub expected_command: Vec<String>,
    /// Rules over materials.
    pub expected_materials: Vec<Vec<String>>,
    /// Rules over products.
    pub expected_products: Vec<Vec<String>>,
}

fn one() -> i64 {
    1
}

impl Template {
    /// Parses the YAML template.
    pub fn parse(text: &str) -> Result<Template, String> {
        serde_saphyr::from_str(text).map_err(|e| format!("layout template: {e}"))
    }

    /// The layout with each role's keys, expiring at `expires`; refused when not strict.
    pub fn layout(
        &self,
        functionaries: &BTreeMap<String, Vec<PublicKey>>,
        expires: jiff::Timestamp,
    ) -> Result<Layout, Vec<Failure>> {
        let mut keys = BTreeMap::new();
        let mut steps = Vec::new();
        let mut missing = Vec::new();
        for step in &self.steps {
            let mut pubkeys = Vec::new();
            for role in &step.functionaries {
                let Some(role_keys) = functionaries.get(role) else {
                    missing.push(format!(
                        "step {:?} names functionary {role:?}, whose key was not given",
                        step.name
                    ));
                    continue;
                };
                for key in role_keys {
                    match KeyEntry::of(key) {
                        Ok(entry) => {
                            keys.insert(key.keyid().to_owned(), entry);
                        }
                        Err(e) => missing.push(e),
                    }
                    pubkeys.push(key.keyid().to_owned());
                }
            }
            steps.push(Step {
                type_: "step".into(),
                name: step.name.clone(),
                expected_materials: step.expected_materials.clone(),
                expected_products: step.expected_products.clone(),
                pubkeys,
                expected_command: step.expected_command.clone(),
                threshold: step.threshold,
            });
        }
        let layout = Layout {
            type_: "layout".into(),
            expires: expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            inspect: Vec::new(),
            keys,
            readme: self.readme.clone(),
            steps,
        };
        let mut failures: Vec<Failure> = missing
            .into_iter()
            .map(|m| Failure {
                check: super::verify::Check::Layout,
                step: None,
                message: m,
                detail: Vec::new(),
            })
            .collect();
        failures.extend(check(&layout));
        if failures.is_empty() {
            Ok(layout)
        } else {
            Err(failures)
        }
    }
}
