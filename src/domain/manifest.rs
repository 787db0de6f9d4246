//! Manifest v1: the workflow document users submit (YAML or JSON), its Rust types (the
//! source of the published JSON Schema) and its content digest.
//!
//! Parsing and validation live in `domain::validate`; this file only defines the shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ids::Digest;

/// The JSON Schema `$id` of Manifest v1.
pub const SCHEMA_ID: &str = "https://maestro.conductor/schema/manifest-v1.json";

/// A workflow: named, versioned, bound to a region, made of tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "Maestro Manifest v1",
    description = "A workflow run by Maestro Conductor. YAML or JSON."
)]
pub struct Manifest {
    /// Workflow name: 1-64 characters, lowercase letters, digits, '.', '_' and '-', starting
    /// with a letter or digit.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$"))]
    pub name: String,
    /// Semantic version of the workflow, e.g. "1.2.0" (quote it in YAML).
    #[schemars(length(min = 5, max = 64))]
    pub version: String,
    /// Region where the execution and its data must stay, e.g. "eu-west".
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,31}$"))]
    pub region: String,
    /// Free text shown in the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// Limit for the whole execution, e.g. "10m" (default from config).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^([0-9]{1,9}(ms|s|m|h))+$"))]
    pub timeout: Option<String>,
    /// The tasks; they run as a DAG ordered by `needs` and output references.
    #[schemars(length(min = 1, max = 1024))]
    pub tasks: Vec<Task>,
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Task id, unique in the manifest: lowercase letters, digits, '_' and '-', starting with a
    /// letter.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9_-]{0,63}$"))]
    pub id: String,
    /// The action: `builtin/NAME` or a catalog package `pkg:NAME@VERSION`.
    #[schemars(regex(
        pattern = r"^(builtin/[a-z0-9-]+|pkg:[a-z0-9][a-z0-9._/-]*@[0-9A-Za-z.+-]+)$"
    ))]
    pub uses: String,
    /// Inputs of the action. String values may contain `${{ tasks.ID.outputs.KEY }}`
    /// references.
    #[serde(default, rename = "with", skip_serializing_if = "Map::is_empty")]
    pub with: Map<String, Value>,
    /// Tasks that must succeed before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub needs: Vec<String>,
    /// Retry policy for failed attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Limit for each attempt, e.g. "30s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^([0-9]{1,9}(ms|s|m|h))+$"))]
    pub timeout: Option<String>,
}

/// How a failed task is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Total attempts including the first (1-10).
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: u32,
    /// Delay before the second attempt, e.g. "100ms" (default "100ms").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^([0-9]{1,9}(ms|s|m|h))+$"))]
    pub backoff: Option<String>,
    /// Factor applied to the delay after each attempt (1-10, default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 10.0))]
    pub multiplier: Option<f64>,
}

/// Field names of [`Manifest`], in schema order (kept in sync by a test).
pub const MANIFEST_FIELDS: &[&str] = &[
    "name",
    "version",
    "region",
    "description",
    "timeout",
    "tasks",
];
/// Field names of [`Task`].
pub const TASK_FIELDS: &[&str] = &["id", "uses", "with", "needs", "retry", "timeout"];
/// Field names of [`Retry`].
pub const RETRY_FIELDS: &[&str] = &["max_attempts", "backoff", "multiplier"];

/// The content digest of a manifest document: SHA-256 over the RFC 8785 (JCS) canonical JSON
/// of the parsed document. The YAML and JSON spellings of one document have the same digest,
/// and any JCS implementation reproduces it.
pub fn document_digest(document: &Value) -> Digest {
    let canonical = serde_json_canonicalizer::to_vec(document)
        .expect("a serde_json::Value always canonicalizes");
    Digest::of(&canonical)
}

/// The JSON Schema of Manifest v1, as published at `docs/schema/manifest-v1.json`.
pub fn json_schema() -> Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Manifest)).expect("schema serializes");
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("$id".into(), Value::String(SCHEMA_ID.into()));
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(schema: &Value, def: Option<&str>) -> Vec<String> {
        let node = match def {
            None => schema,
            Some(name) => &schema["$defs"][name],
        };
        let mut keys: Vec<String> = node["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    fn sorted(fields: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn field_lists_match_the_schema() {
        let schema = json_schema();
        assert_eq!(properties(&schema, None), sorted(MANIFEST_FIELDS));
        assert_eq!(properties(&schema, Some("Task")), sorted(TASK_FIELDS));
        assert_eq!(properties(&schema, Some("Retry")), sorted(RETRY_FIELDS));
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
        assert_eq!(schema["$id"], Value::String(SCHEMA_ID.into()));
    }

    #[test]
    fn digest_ignores_key_order_and_spelling() {
        let a: Value =
            serde_json::from_str(r#"{"name":"x","version":"1.0.0","tasks":[]}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"tasks":[], "version":"1.0.0", "name":"x"}"#).unwrap();
        assert_eq!(document_digest(&a), document_digest(&b));
        let c: Value =
            serde_json::from_str(r#"{"tasks":[], "version":"1.0.1", "name":"x"}"#).unwrap();
        assert_ne!(document_digest(&a), document_digest(&c));
    }
}
