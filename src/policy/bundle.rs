//! Policy bundles: a set of `.rego` files and a data document, identified by a digest that
//! every decision pins. The default bundle is embedded from `policy/rego/`; a directory (and
//! later a signed bundle) can replace it.

use std::collections::BTreeMap;
use std::path::Path;

use rust_embed::RustEmbed;
use serde_json::Value;

use super::PolicyError;
use crate::domain::ids::Digest;

#[derive(RustEmbed)]
#[folder = "policy/rego/"]
struct Embedded;

/// Largest policy file accepted.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most files in a bundle.
pub const MAX_FILES: usize = 512;

/// Policy sources and data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PolicyBundle {
    /// Path → Rego source. Test files (`*_test.rego`) are kept but not evaluated for
    /// decisions.
    pub files: BTreeMap<String, String>,
    /// The data document (`data`), merged under the policies.
    pub data: Value,
}

fn is_test(path: &str) -> bool {
    path.ends_with("_test.rego")
}

impl PolicyBundle {
    /// The policies shipped with this build (`policy/rego/`), with no data.
    pub fn embedded() -> Self {
        let files = Embedded::iter()
            .filter(|p| p.ends_with(".rego"))
            .filter_map(|p| {
                let text = String::from_utf8(Embedded::get(&p)?.data.into_owned()).ok()?;
                Some((p.to_string(), text))
            })
            .collect();
        PolicyBundle {
            files,
            data: Value::Object(Default::default()),
        }
    }

    /// Reads every `.rego` file in `dir` (recursively) and `data.json` if present.
    pub fn from_dir(dir: &Path) -> Result<Self, PolicyError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d)
                .map_err(|e| PolicyError::Io(format!("{}: {e}", d.display())))?;
            for entry in entries {
                let entry = entry.map_err(|e| PolicyError::Io(format!("{}: {e}", d.display())))?;
                let path = entry.path();
                let kind = entry
                    .file_type()
                    .map_err(|e| PolicyError::Io(e.to_string()))?;
                if kind.is_symlink() {
                    return Err(PolicyError::Io(format!(
                        "{}: symbolic links are not followed in policy bundles",
                        path.display()
                    )));
                }
                if kind.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path
                    .strip_prefix(dir)
                    .map_err(|e| PolicyError::Io(e.to_string()))?
                    .to_string_lossy()
                    .replace('\\', "/");
                if !(rel.ends_with(".rego") || rel == "data.json") {
                    continue;
                }
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0) as usize;
                if size > MAX_FILE_BYTES {
                    return Err(PolicyError::Io(format!(
                        "{rel}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit"
                    )));
                }
                let bytes =
                    std::fs::read(&path).map_err(|e| PolicyError::Io(format!("{rel}: {e}")))?;
                files.insert(rel, bytes);
                if files.len() > MAX_FILES + 1 {
                    return Err(PolicyError::Io(format!(
                        "more than {MAX_FILES} policy files"
                    )));
                }
            }
        }
        Self::from_files(&files).map_err(|e| match e {
            PolicyError::Io(m) if m.starts_with("no policy") => {
                PolicyError::Io(format!("{} has {m}", dir.display()))
            }
            other => other,
        })
    }

    /// A bundle from files by path: every `.rego` file and `data.json` (a JSON object);
    /// other files are ignored.
    pub fn from_files(all: &BTreeMap<String, Vec<u8>>) -> Result<Self, PolicyError> {
        let mut files = BTreeMap::new();
        let mut data = Value::Object(Default::default());
        for (rel, bytes) in all {
            if !(rel.ends_with(".rego") || rel == "data.json") {
                continue;
            }
            if bytes.len() > MAX_FILE_BYTES {
                return Err(PolicyError::Io(format!(
                    "{rel}: {} bytes is over the {MAX_FILE_BYTES}-byte limit",
                    bytes.len()
                )));
            }
            let text = std::str::from_utf8(bytes)
                .map_err(|_| PolicyError::Io(format!("{rel}: not UTF-8 text")))?;
            if rel == "data.json" {
                data = serde_json::from_str(text).map_err(|e| {
                    PolicyError::Data(format!(
                        "data.json line {} column {}: {e}",
                        e.line(),
                        e.column()
                    ))
                })?;
                if !data.is_object() {
                    return Err(PolicyError::Data("data.json must be a JSON object".into()));
                }
            } else {
                files.insert(rel.clone(), text.to_owned());
            }
            if files.len() > MAX_FILES {
                return Err(PolicyError::Io(format!(
                    "more than {MAX_FILES} policy files"
                )));
            }
        }
        if files.keys().all(|p| is_test(p)) {
            return Err(PolicyError::Io("no policy (.rego) files".into()));
        }
        Ok(PolicyBundle { files, data })
    }

    /// The same bundle with `extra` merged over its data (objects merge, values replace).
    pub fn with_data(mut self, extra: &Value) -> Self {
        merge(&mut self.data, extra);
        self
    }

    /// The files that decide (test files excluded).
    pub fn policy_files(&self) -> impl Iterator<Item = (&String, &String)> {
        self.files.iter().filter(|(p, _)| !is_test(p))
    }

    /// The bundle digest: SHA-256 of the RFC 8785 canonical JSON of
    /// `{"files": {path: sha256 of the source}, "data": data}`, decision files only.
    pub fn digest(&self) -> Digest {
        let files: serde_json::Map<String, Value> = self
            .policy_files()
            .map(|(p, s)| (p.clone(), Value::String(Digest::of(s.as_bytes()).hex())))
            .collect();
        let doc = serde_json::json!({"files": files, "data": self.data});
        Digest::of(&serde_json_canonicalizer::to_vec(&doc).expect("json canonicalizes"))
    }
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_bundle_has_the_three_policies_and_their_tests() {
        let b = PolicyBundle::embedded();
        let names: Vec<&str> = b.policy_files().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            ["admission.rego", "isolation.rego", "residency.rego"]
        );
        assert!(b.files.keys().any(|p| is_test(p)));
    }

    #[test]
    fn the_digest_covers_sources_and_data_but_not_tests() {
        let a = PolicyBundle::embedded();
        let mut b = a.clone();
        b.files
            .insert("extra_test.rego".into(), "package x_test".into());
        assert_eq!(a.digest(), b.digest());
        let c = a.clone().with_data(&serde_json::json!({"mc": {"x": 1}}));
        assert_ne!(a.digest(), c.digest());
        let mut d = a.clone();
        d.files
            .insert("isolation.rego".into(), "package mc.isolation\n".into());
        assert_ne!(a.digest(), d.digest());
    }

    #[test]
    fn directories_load_with_data_and_refuse_junk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/p.rego"), "package p\nallow := true\n").unwrap();
        std::fs::write(dir.path().join("data.json"), r#"{"mc": {"k": 1}}"#).unwrap();
        let b = PolicyBundle::from_dir(dir.path()).unwrap();
        assert!(b.files.contains_key("sub/p.rego"));
        assert_eq!(b.data["mc"]["k"], 1);
        std::fs::write(dir.path().join("data.json"), "[1]").unwrap();
        assert!(PolicyBundle::from_dir(dir.path()).is_err());
        let empty = tempfile::tempdir().unwrap();
        assert!(
            PolicyBundle::from_dir(empty.path())
                .unwrap_err()
                .to_string()
                .contains("no policy")
        );
    }
}
