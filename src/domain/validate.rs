//! Manifest validation: parses YAML or JSON and reports every problem at once, each with its
//! path (`tasks[2].uses`), a stable code and a fix hint. Never panics on any input.
//!
//! Two passes: a structural pass over the parsed document (fields, types, shapes) and a
//! semantic pass (actions and their inputs, ids, `needs`, references, cycles, regions,
//! versions, durations). A document with no problems deserializes into [`Manifest`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::actions::{self, ActionSpec, Uses};
use super::duration;
use super::expr::{self, Reference};
use super::ids::Digest;
use super::manifest::{self, MANIFEST_FIELDS, Manifest, RETRY_FIELDS, TASK_FIELDS};

/// Stable machine codes of validation problems (shared with the SDKs' conformance vectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    /// The text is not valid YAML or JSON.
    Syntax,
    /// The document exceeds a size, depth or count limit.
    TooLarge,
    /// A field that Manifest v1 does not define.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// A value of the wrong JSON type.
    InvalidType,
    /// A value of the right type that breaks a rule (pattern, range, emptiness).
    InvalidValue,
    /// `version` is not a semantic version.
    InvalidVersion,
    /// A duration string that does not parse or is out of range.
    InvalidDuration,
    /// `uses` names no known action.
    UnknownAction,
    /// `uses: pkg:…` names a package that is not in the catalog.
    UnknownPackage,
    /// A `with` key the action does not accept.
    UnknownInput,
    /// A required `with` key is absent.
    MissingInput,
    /// Two tasks share an id.
    DuplicateId,
    /// `needs` or a reference names a task that does not exist.
    UnknownTask,
    /// A task needs or references itself.
    SelfReference,
    /// The task graph has a cycle.
    Cycle,
    /// A `${{ … }}` expression does not parse.
    InvalidExpression,
    /// A reference names an output the producing action does not have.
    UnknownOutput,
    /// `region` is not one of the appliance's regions.
    UnknownRegion,
}

/// One thing wrong with a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// Stable machine code.
    pub code: ProblemCode,
    /// Where: `tasks[2].uses`, `version`, or empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Packages known to the catalog, as far as validation needs to know.
pub trait Catalog: Send + Sync {
    /// Installed versions of a package (empty if unknown).
    fn versions(&self, name: &str) -> Vec<semver::Version>;
    /// The inputs an installed package takes (`None` if it is not installed).
    fn inputs(&self, name: &str, version: &semver::Version) -> Option<BTreeSet<String>>;
    /// Whether an installed package's own tasks run packages (then it runs only as a
    /// workflow of its own, never under `pkg:`).
    fn runs_packages(&self, _name: &str, _version: &semver::Version) -> bool {
        false
    }
    /// Whether every `pkg:` reference is accepted unchecked: a package's own manifest is
    /// validated so, the packages it uses are checked where it runs.
    fn accepts_any(&self) -> bool {
        false
    }
}

/// A catalog that accepts every package (see [`Catalog::accepts_any`]).
pub struct AnyPackage;

impl Catalog for AnyPackage {
    fn versions(&self, _: &str) -> Vec<semver::Version> {
        Vec::new()
    }

    fn inputs(&self, _: &str, _: &semver::Version) -> Option<BTreeSet<String>> {
        None
    }

    fn accepts_any(&self) -> bool {
        true
    }
}

/// A catalog with no packages.
pub struct EmptyCatalog;

impl Catalog for EmptyCatalog {
    fn versions(&self, _: &str) -> Vec<semver::Version> {
        Vec::new()
    }

    fn inputs(&self, _: &str, _: &semver::Version) -> Option<BTreeSet<String>> {
        None
    }
}

/// What validation needs to know about the appliance.
pub struct Context<'a> {
    /// Declared regions; empty means any well-formed region is accepted.
    pub regions: &'a [String],
    /// The package catalog.
    pub catalog: &'a dyn Catalog,
    /// Maximum number of tasks.
    pub max_tasks: usize,
    /// Maximum execution or task timeout.
    pub max_timeout: Duration,
}

impl Default for Context<'_> {
    fn default() -> Self {
        Context {
            regions: &[],
            catalog: &EmptyCatalog,
            max_tasks: 256,
            max_timeout: Duration::from_secs(24 * 3600),
        }
    }
}

/// A manifest that passed validation, with what the engine needs to run it.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    /// The typed manifest.
    pub manifest: Manifest,
    /// The document as parsed (what the digest covers).
    pub document: Value,
    /// [`manifest::document_digest`] of the document.
    pub digest: Digest,
    /// Dependencies of each task (indexes into `manifest.tasks`), from `needs` and references.
    pub deps: Vec<Vec<usize>>,
    /// A topological order of the tasks.
    pub order: Vec<usize>,
}

/// Maximum nesting depth of a manifest document.
pub const MAX_DEPTH: usize = 32;
/// Maximum size of a manifest document, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Parses and validates a manifest from YAML or JSON text.
pub fn load(text: &str, ctx: &Context<'_>) -> Result<ValidManifest, Vec<Problem>> {
    let document = parse_document(text).map_err(|p| vec![p])?;
    validate(document, ctx)
}

/// Parses YAML or JSON text into a JSON value; JSON is detected by a leading `{`.
pub fn parse_document(text: &str) -> Result<Value, Problem> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(problem(
            ProblemCode::TooLarge,
            "",
            format!(
                "manifest is {} bytes; the limit is {MAX_DOCUMENT_BYTES}",
                text.len()
            ),
            Some("split large inputs into artifacts".into()),
        ));
    }
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let parsed = if trimmed.starts_with('{') {
        serde_json::from_str::<UniqueKeys>(trimmed)
            .map(|u| u.0)
            .map_err(|e| {
                problem(
                    ProblemCode::Syntax,
                    "",
                    format!(
                        "invalid JSON at line {} column {}: {e}",
                        e.line(),
                        e.column()
                    ),
                    Some("check brackets, commas and quotes around that position".into()),
                )
            })
    } else {
        let options = serde_saphyr::options! { strict_booleans: true };
        serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
            let shown = e.to_string();
            let first_line = shown.lines().next().unwrap_or("");
            let first_line = first_line.strip_prefix("error: ").unwrap_or(first_line);
            use serde_saphyr::Error as E;
            match e.without_snippet() {
                E::Budget { .. }
                | E::AliasReplayLimitExceeded { .. }
                | E::AliasExpansionLimitExceeded { .. }
                | E::AliasReplayStackDepthExceeded { .. } => problem(
                    ProblemCode::TooLarge,
                    "",
                    format!("manifest exceeds the parser's limits: {first_line}"),
                    Some("reduce nesting and alias use".into()),
                ),
                _ => problem(
                    ProblemCode::Syntax,
                    "",
                    format!("invalid YAML: {first_line}"),
                    Some("check indentation and quoting around that position".into()),
                ),
            }
        })
    }?;
    if depth(&parsed) > MAX_DEPTH {
        return Err(problem(
            ProblemCode::TooLarge,
            "",
            format!("manifest is nested deeper than {MAX_DEPTH} levels"),
            None,
        ));
    }
    Ok(parsed)
}

/// A JSON value whose objects have no repeated key: a repeated key is an error, as it is
/// in YAML, rather than the last one silently winning.
struct UniqueKeys(Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate key {key:?}"
                )));
            }
            let UniqueKeys(v) = map.next_value()?;
            object.insert(key, v);
        }
        Ok(Value::Object(object))
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn problem(code: ProblemCode, path: &str, message: String, hint: Option<String>) -> Problem {
    Problem {
        code,
        path: path.to_owned(),
        message,
        hint,
    }
}

/// " (did you mean "x"?)" for the closest candidate, or "" if none is close.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::damerau_levenshtein(&input.to_ascii_lowercase(), &c.to_ascii_lowercase());
        let limit = (c.len().max(input.len()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    match best {
        Some((_, c)) => format!(" (did you mean {c:?}?)"),
        None => String::new(),
    }
}

fn child(path: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (path.is_empty(), simple) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

struct Checker<'c> {
    ctx: &'c Context<'c>,
    problems: Vec<Problem>,
}

/// What the structural pass learned about one task.
struct TaskView<'d> {
    path: String,
    id: Option<&'d str>,
    uses: Option<Uses>,
    with: Option<&'d Map<String, Value>>,
    /// `with` is present but not an object (already reported).
    with_invalid: bool,
    needs: Vec<(String, &'d str)>,
}

impl<'c> Checker<'c> {
    fn push(
        &mut self,
        code: ProblemCode,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.problems
            .push(problem(code, path, message.into(), hint));
    }

    fn type_error(&mut self, path: &str, expected: &str, found: &Value, hint: Option<String>) {
        self.push(
            ProblemCode::InvalidType,
            path,
            format!("expected {expected}, found {}", actions::kind_of(found)),
            hint,
        );
    }

    /// Checks that `value` is an object with only `fields` and all of `required`.
    fn object<'d>(
        &mut self,
        value: &'d Value,
        path: &str,
        what: &str,
        fields: &[&str],
        required: &[(&str, &str)],
    ) -> Option<&'d Map<String, Value>> {
        let Some(map) = value.as_object() else {
            let shown = if path.is_empty() {
                "the manifest"
            } else {
                what
            };
            self.push(
                ProblemCode::InvalidType,
                path,
                format!(
                    "expected {shown} to be an object, found {}",
                    actions::kind_of(value)
                ),
                Some(format!("{what} fields are: {}", fields.join(", "))),
            );
            return None;
        };
        for key in map.keys() {
            if !fields.contains(&key.as_str()) {
                self.push(
                    ProblemCode::UnknownField,
                    &child(path, key),
                    format!(
                        "unknown field in {what}{}",
                        did_you_mean(key, fields.iter().copied())
                    ),
                    Some(format!("{what} fields are: {}", fields.join(", "))),
                );
            }
        }
        for (field, hint) in required {
            if !map.contains_key(*field) {
                self.push(
                    ProblemCode::MissingField,
                    &child(path, field),
                    format!("missing required field {field:?}"),
                    Some((*hint).to_owned()),
                );
            }
        }
        Some(map)
    }

    fn string<'d>(
        &mut self,
        map: &'d Map<String, Value>,
        path: &str,
        key: &str,
        hint: Option<String>,
    ) -> Option<&'d str> {
        let value = map.get(key)?;
        match value.as_str() {
            Some(s) => Some(s),
            None => {
                self.type_error(&child(path, key), "a string", value, hint);
                None
            }
        }
    }

    fn duration(&mut self, map: &Map<String, Value>, path: &str, key: &str, max: Duration) {
        let Some(text) = self.string(
            map,
            path,
            key,
            Some("write a duration such as \"30s\"".into()),
        ) else {
            return;
        };
        let p = child(path, key);
        match duration::parse(text) {
            Ok(d) if d.is_zero() => self.push(
                ProblemCode::InvalidDuration,
                &p,
                format!("duration {text:?} must be greater than zero"),
                None,
            ),
            Ok(d) if d > max => self.push(
                ProblemCode::InvalidDuration,
                &p,
                format!(
                    "duration {text:?} exceeds the limit of {}",
                    duration::format(max)
                ),
                None,
            ),
            Ok(_) => {}
            Err(e) => self.push(
                ProblemCode::InvalidDuration,
                &p,
                format!("invalid duration {text:?}: {e}"),
                Some("write an integer and a unit (ms, s, m, h), e.g. \"30s\" or \"1m30s\"".into()),
            ),
        }
    }

    fn top_level<'d>(&mut self, doc: &'d Value) -> Vec<TaskView<'d>> {
        let Some(map) = self.object(
            doc,
            "",
            "manifest",
            MANIFEST_FIELDS,
            &[
                ("name", "add name: my-workflow"),
                ("version", "add version: \"1.0.0\""),
                (
                    "region",
                    "add region: with the region where the data must stay",
                ),
                ("tasks", "add tasks: with at least one task"),
            ],
        ) else {
            return Vec::new();
        };
        if let Some(name) = self.string(map, "", "name", None) {
            let ok = !name.is_empty()
                && name.len() <= 64
                && (name.as_bytes()[0].is_ascii_lowercase() || name.as_bytes()[0].is_ascii_digit())
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                });
            if !ok {
                self.push(
                    ProblemCode::InvalidValue,
                    "name",
                    format!("invalid workflow name {name:?}"),
                    Some("use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit".into()),
                );
            }
        }
        match map.get("version") {
            Some(Value::String(v)) => {
                if let Err(e) = semver::Version::parse(v) {
                    self.push(
                        ProblemCode::InvalidVersion,
                        "version",
                        format!("{v:?} is not a semantic version: {e}"),
                        Some("use MAJOR.MINOR.PATCH, e.g. \"1.0.0\"".into()),
                    );
                }
            }
            Some(other) => self.type_error("version", "a string", other, Some(version_hint(other))),
            None => {}
        }
        if let Some(region) = self.string(map, "", "region", None) {
            self.region(region);
        }
        if let Some(desc) = self.string(map, "", "description", None)
            && desc.len() > 4096
        {
            self.push(
                ProblemCode::TooLarge,
                "description",
                format!("description is {} bytes; the limit is 4096", desc.len()),
                None,
            );
        }
        if map.contains_key("timeout") {
            self.duration(map, "", "timeout", self.ctx.max_timeout);
        }
        let Some(tasks) = map.get("tasks") else {
            return Vec::new();
        };
        let Some(items) = tasks.as_array() else {
            self.type_error(
                "tasks",
                "a list of tasks",
                tasks,
                Some("write tasks: followed by items such as - id: hello".into()),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.push(
                ProblemCode::InvalidValue,
                "tasks",
                "a workflow needs at least one task",
                Some(
                    "add a task, e.g. - {id: hello, uses: builtin/echo, with: {message: hi}}"
                        .into(),
                ),
            );
        }
        if items.len() > self.ctx.max_tasks {
            self.push(
                ProblemCode::TooLarge,
                "tasks",
                format!("{} tasks; the limit is {}", items.len(), self.ctx.max_tasks),
                Some("split the workflow or raise limits.max_tasks".into()),
            );
            return Vec::new();
        }
        items
            .iter()
            .enumerate()
            .filter_map(|(i, t)| self.task(t, format!("tasks[{i}]")))
            .collect()
    }

    fn region(&mut self, region: &str) {
        let well_formed = !region.is_empty()
            && region.len() <= 32
            && region.as_bytes()[0].is_ascii_lowercase()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !well_formed {
            let lower = region.to_ascii_lowercase();
            let hint = if lower != region && !lower.is_empty() {
                format!("regions are lowercase: region: {lower}")
            } else {
                "use lowercase letters, digits and '-', e.g. eu-west".into()
            };
            self.push(
                ProblemCode::InvalidValue,
                "region",
                format!("invalid region {region:?}"),
                Some(hint),
            );
            return;
        }
        let regions = self.ctx.regions;
        if !regions.is_empty() && !regions.iter().any(|r| r == region) {
            self.push(
                ProblemCode::UnknownRegion,
                "region",
                format!(
                    "unknown region {region:?}{}",
                    did_you_mean(region, regions.iter().map(String::as_str))
                ),
                Some(format!("regions of this appliance: {}", regions.join(", "))),
            );
        }
    }

    fn task<'d>(&mut self, value: &'d Value, path: String) -> Option<TaskView<'d>> {
        let map = self.object(
            value,
            &path,
            "task",
            TASK_FIELDS,
            &[
                ("id", "add id: with a unique task name"),
                ("uses", "add uses: builtin/echo (or another action)"),
            ],
        )?;
        let id = self.string(map, &path, "id", None);
        if let Some(id) = id {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id.as_bytes()[0].is_ascii_lowercase()
                && id.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                self.push(
                    ProblemCode::InvalidValue,
                    &child(&path, "id"),
                    format!("invalid task id {id:?}"),
                    Some(
                        "use 1-64 lowercase letters, digits, '_' or '-', starting with a letter"
                            .into(),
                    ),
                );
            }
        }
        let uses =
            self.string(map, &path, "uses", None)
                .and_then(|u| match actions::parse_uses(u) {
                    Ok(uses) => Some(uses),
                    Err(e) => {
                        self.push(
                            ProblemCode::UnknownAction,
                            &child(&path, "uses"),
                            e.message,
                            Some(e.hint),
                        );
                        None
                    }
                });
        let with = match map.get("with") {
            None => None,
            Some(Value::Object(m)) => Some(m),
            Some(Value::Null) => None,
            Some(other) => {
                self.type_error(
                    &child(&path, "with"),
                    "an object of inputs",
                    other,
                    Some("write with: followed by key: value lines".into()),
                );
                None
            }
        };
        let mut needs = Vec::new();
        match map.get("needs") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{path}.needs[{i}]");
                    match item.as_str() {
                        Some(s) => needs.push((p, s)),
                        None => self.type_error(&p, "a task id", item, None),
                    }
                }
            }
            Some(other) => self.type_error(
                &child(&path, "needs"),
                "a list of task ids",
                other,
                Some(match other {
                    Value::String(s) => format!("write needs: [{s}]"),
                    _ => "write needs: [other-task]".into(),
                }),
            ),
        }
        if let Some(retry) = map.get("retry") {
            self.retry(retry, &child(&path, "retry"));
        }
        if map.contains_key("timeout") {
            self.duration(map, &path, "timeout", self.ctx.max_timeout);
        }
        let with_invalid = with.is_none() && map.get("with").is_some_and(|w| !w.is_null());
        Some(TaskView {
            path,
            id,
            uses,
            with,
            with_invalid,
            needs,
        })
    }

    fn retry(&mut self, value: &Value, path: &str) {
        let Some(map) = self.object(
            value,
            path,
            "retry",
            RETRY_FIELDS,
            &[("max_attempts", "add max_attempts: 3")],
        ) else {
            return;
        };
        if let Some(v) = map.get("max_attempts") {
            match v.as_u64() {
                Some(n) if (1..=10).contains(&n) => {}
                Some(n) => self.push(
                    ProblemCode::InvalidValue,
                    &child(path, "max_attempts"),
                    format!("max_attempts is {n}; it must be between 1 and 10"),
                    None,
                ),
                None => self.type_error(
                    &child(path, "max_attempts"),
                    "a whole number from 1 to 10",
                    v,
                    None,
                ),
            }
        }
        if map.contains_key("backoff") {
            self.duration(map, path, "backoff", Duration::from_secs(3600));
        }
        if let Some(v) = map.get("multiplier") {
            match v.as_f64() {
                Some(m) if (1.0..=10.0).contains(&m) => {}
                Some(m) => self.push(
                    ProblemCode::InvalidValue,
                    &child(path, "multiplier"),
                    format!("multiplier is {m}; it must be between 1 and 10"),
                    None,
                ),
                None => {
                    self.type_error(&child(path, "multiplier"), "a number from 1 to 10", v, None)
                }
            }
        }
    }

    /// The semantic pass; returns the dependency lists when ids are usable.
    fn semantics(&mut self, tasks: &[TaskView<'_>]) -> Vec<Vec<usize>> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, t) in tasks.iter().enumerate() {
            let Some(id) = t.id else { continue };
            if let Some(first) = index.get(id) {
                self.push(
                    ProblemCode::DuplicateId,
                    &child(&t.path, "id"),
                    format!(
                        "duplicate task id {id:?} (first defined at {})",
                        tasks[*first].path
                    ),
                    Some("give every task a unique id".into()),
                );
            } else {
                index.insert(id, i);
            }
        }
        let ids: Vec<&str> = tasks.iter().filter_map(|t| t.id).collect();
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
        for (i, t) in tasks.iter().enumerate() {
            if let Some(Uses::Package { name, version }) = &t.uses
                && !self.ctx.catalog.accepts_any()
            {
                let versions = self.ctx.catalog.versions(name);
                if !versions.contains(version) {
                    let hint = if versions.is_empty() {
                        "publish and install the package first; `maestro package list` shows the catalog".to_string()
                    } else {
                        let mut v: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
                        v.sort();
                        format!("installed versions: {}", v.join(", "))
                    };
                    self.push(
                        ProblemCode::UnknownPackage,
                        &child(&t.path, "uses"),
                        format!("package \"{name}@{version}\" is not in the catalog"),
                        Some(hint),
                    );
                } else if self.ctx.catalog.runs_packages(name, version) {
                    self.push(
                        ProblemCode::InvalidValue,
                        &child(&t.path, "uses"),
                        format!(
                            "package \"{name}@{version}\" runs other packages, and packages do not run packages"
                        ),
                        Some("run it as a workflow of its own (`maestro run -w golden/NAME` for a golden)".into()),
                    );
                } else if let Some(inputs) = self.ctx.catalog.inputs(name, version) {
                    let empty = Map::new();
                    let with = t.with.unwrap_or(&empty);
                    self.package_inputs(
                        &format!("pkg:{name}@{version}"),
                        &inputs,
                        with,
                        &child(&t.path, "with"),
                    );
                }
            }
            let spec = match &t.uses {
                Some(Uses::Builtin(spec)) => Some(*spec),
                _ => None,
            };
            if let (Some(spec), Some(with)) = (spec, t.with) {
                self.inputs(spec, with, &child(&t.path, "with"));
            } else if let (Some(spec), None, false) = (spec, t.with, t.with_invalid) {
                for input in spec.inputs.iter().filter(|i| i.required) {
                    self.push(
                        ProblemCode::MissingInput,
                        &child(&t.path, "with"),
                        format!("missing required input {:?} for {}", input.name, spec.name),
                        Some(format!("add with: {{{}: …}} ({})", input.name, input.doc)),
                    );
                }
            }
            let mut seen_needs: Vec<&str> = Vec::new();
            for (p, need) in &t.needs {
                if seen_needs.contains(need) {
                    self.push(
                        ProblemCode::InvalidValue,
                        p,
                        format!("{need:?} is listed twice in needs"),
                        Some("list each task once".into()),
                    );
                    continue;
                }
                seen_needs.push(need);
                match index.get(need) {
                    Some(&j) if j == i => self.push(
                        ProblemCode::SelfReference,
                        p,
                        format!("task {need:?} cannot need itself"),
                        None,
                    ),
                    Some(&j) => {
                        if !deps[i].contains(&j) {
                            deps[i].push(j);
                        }
                    }
                    None => self.push(
                        ProblemCode::UnknownTask,
                        p,
                        format!(
                            "unknown task {need:?}{}",
                            did_you_mean(need, ids.iter().copied())
                        ),
                        Some(format!("tasks in this manifest: {}", ids.join(", "))),
                    ),
                }
            }
            if let Some(with) = t.with {
                let mut refs = Vec::new();
                let mut path = child(&t.path, "with");
                expr::for_each_string(&Value::Object(with.clone()), &mut path, &mut |p, s| {
                    if expr::has_expression(s) {
                        for occ in expr::scan(s) {
                            refs.push((p.to_owned(), occ.reference));
                        }
                    }
                });
                for (p, reference) in refs {
                    match reference {
                        Err(e) => self.push(
                            ProblemCode::InvalidExpression,
                            &p,
                            e,
                            Some("write ${{ tasks.ID.outputs.KEY }}".into()),
                        ),
                        Ok(Reference::Context(_) | Reference::Input { .. }) => {}
                        Ok(Reference::TaskOutput { task, key, .. }) => {
                            match index.get(task.as_str()) {
                                Some(&j) if j == i => self.push(
                                    ProblemCode::SelfReference,
                                    &p,
                                    format!("task {task:?} cannot reference its own outputs"),
                                    None,
                                ),
                                Some(&j) => {
                                    if !deps[i].contains(&j) {
                                        deps[i].push(j);
                                    }
                                    if let Some(Uses::Builtin(producer)) = &tasks[j].uses
                                        && !producer.outputs.contains(&key.as_str())
                                    {
                                        self.push(
                                            ProblemCode::UnknownOutput,
                                            &p,
                                            format!(
                                                "{} has no output {key:?}{}",
                                                producer.name,
                                                did_you_mean(
                                                    &key,
                                                    producer.outputs.iter().copied()
                                                )
                                            ),
                                            Some(format!(
                                                "outputs of {}: {}",
                                                producer.name,
                                                producer.outputs.join(", ")
                                            )),
                                        );
                                    }
                                }
                                None => self.push(
                                    ProblemCode::UnknownTask,
                                    &p,
                                    format!(
                                        "reference to unknown task {task:?}{}",
                                        did_you_mean(&task, ids.iter().copied())
                                    ),
                                    Some(format!("tasks in this manifest: {}", ids.join(", "))),
                                ),
                            }
                        }
                    }
                }
            }
        }
        deps
    }

    /// The `with:` of a package task: exactly the inputs the package takes.
    fn package_inputs(
        &mut self,
        package: &str,
        inputs: &BTreeSet<String>,
        with: &Map<String, Value>,
        path: &str,
    ) {
        let listed = || {
            if inputs.is_empty() {
                format!("{package} takes no inputs")
            } else {
                format!(
                    "inputs of {package}: {}",
                    inputs.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        };
        for key in with.keys().filter(|k| !inputs.contains(*k)) {
            self.push(
                ProblemCode::UnknownInput,
                &child(path, key),
                format!(
                    "unknown input for {package}{}",
                    did_you_mean(key, inputs.iter().map(String::as_str))
                ),
                Some(listed()),
            );
        }
        for input in inputs.iter().filter(|i| !with.contains_key(*i)) {
            self.push(
                ProblemCode::MissingInput,
                path,
                format!("missing input {input:?} for {package}"),
                Some(format!(
                    "add {input}: … (its tasks use ${{{{ inputs.{input} }}}})"
                )),
            );
        }
    }

    fn inputs(&mut self, spec: &ActionSpec, with: &Map<String, Value>, path: &str) {
        let names = spec.inputs.iter().map(|i| i.name);
        for (key, value) in with {
            let Some(input) = spec.input(key) else {
                self.push(
                    ProblemCode::UnknownInput,
                    &child(path, key),
                    format!(
                        "unknown input for {}{}",
                        spec.name,
                        did_you_mean(key, names.clone())
                    ),
                    Some(format!(
                        "inputs of {}: {}",
                        spec.name,
                        names.clone().collect::<Vec<_>>().join(", ")
                    )),
                );
                continue;
            };
            if contains_expression(value) {
                // Typed after resolution; only a string with text around an expression is
                // known to stay a string.
                continue;
            }
            if let Err(e) = input.kind.check(value) {
                let code = if input.kind == actions::InputKind::Duration && value.is_string() {
                    ProblemCode::InvalidDuration
                } else {
                    ProblemCode::InvalidType
                };
                self.push(
                    code,
                    &child(path, key),
                    e,
                    Some(format!("{}: {}", input.name, input.doc)),
                );
            }
        }
        for input in spec.inputs.iter().filter(|i| i.required) {
            if !with.contains_key(input.name) {
                self.push(
                    ProblemCode::MissingInput,
                    path,
                    format!("missing required input {:?} for {}", input.name, spec.name),
                    Some(format!("add {}: … ({})", input.name, input.doc)),
                );
            }
        }
    }

    /// Reports one cycle, if any, and returns a topological order when there is none.
    fn order(&mut self, tasks: &[TaskView<'_>], deps: &[Vec<usize>]) -> Option<Vec<usize>> {
        let n = deps.len();
        let mut indegree = vec![0usize; n];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, ds) in deps.iter().enumerate() {
            indegree[i] = ds.len();
            for &d in ds {
                dependents[d].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).rev().collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop() {
            order.push(i);
            for &j in dependents[i].iter().rev() {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.push(j);
                }
            }
        }
        if order.len() == n {
            return Some(order);
        }
        // Walk dependencies from a task left in the cycle until one repeats.
        let start = (0..n).find(|&i| indegree[i] > 0)?;
        let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
        let mut path = vec![start];
        let mut cur = start;
        loop {
            seen.insert(cur, path.len() - 1);
            let next = *deps[cur].iter().find(|&&d| indegree[d] > 0)?;
            if let Some(&pos) = seen.get(&next) {
                let mut cycle: Vec<usize> = path[pos..].to_vec();
                let first = *cycle.iter().min()?;
                let rot = cycle.iter().position(|&c| c == first)?;
                cycle.rotate_left(rot);
                let mut names: Vec<&str> =
                    cycle.iter().map(|&c| tasks[c].id.unwrap_or("?")).collect();
                names.push(names[0]);
                self.push(
                    ProblemCode::Cycle,
                    &child(&tasks[first].path, "needs"),
                    format!("dependency cycle: {}", names.join(" -> ")),
                    Some("remove one of these needs or references".into()),
                );
                return None;
            }
            path.push(next);
            cur = next;
        }
    }
}

/// Whether any string inside `value` holds a `${{ … }}` expression.
pub fn contains_expression(value: &Value) -> bool {
    match value {
        Value::String(s) => expr::has_expression(s),
        Value::Array(a) => a.iter().any(contains_expression),
        Value::Object(m) => m.values().any(contains_expression),
        _ => false,
    }
}

/// Validates a parsed document.
pub fn validate(document: Value, ctx: &Context<'_>) -> Result<ValidManifest, Vec<Problem>> {
    let mut checker = Checker {
        ctx,
        problems: Vec::new(),
    };
    let tasks = checker.top_level(&document);
    let deps = checker.semantics(&tasks);
    let ids_usable = tasks.iter().all(|t| t.id.is_some())
        && !checker
            .problems
            .iter()
            .any(|p| p.code == ProblemCode::DuplicateId);
    let order = if ids_usable {
        checker.order(&tasks, &deps)
    } else {
        None
    };
    drop(tasks);
    if !checker.problems.is_empty() {
        return Err(checker.problems);
    }
    let manifest: Manifest = match serde_json::from_value(document.clone()) {
        Ok(m) => m,
        Err(e) => {
            return Err(vec![problem(
                ProblemCode::InvalidValue,
                "",
                format!("manifest does not match Manifest v1: {e}"),
                None,
            )]);
        }
    };
    let order = order.unwrap_or_default();
    let digest = manifest::document_digest(&document);
    Ok(ValidManifest {
        manifest,
        document,
        digest,
        deps,
        order,
    })
}

/// The hint for a version that is not a string: a number, unquoted, was read as one (and a
/// float has lost how it was written: `1.10` is the number 1.1).
fn version_hint(given: &Value) -> String {
    match given {
        Value::Number(n) if n.is_f64() => format!(
            "quote the version as you meant it (unquoted it is the number {n}): version: \"{n}.0\""
        ),
        Value::Number(n) => format!("quote the version: version: \"{n}.0.0\""),
        _ => "quote the version: version: \"1.0.0\"".into(),
    }
}

#[cfg(test)]
mod tests;

/// Dependencies of each task of a valid manifest (from `needs` and output references), as
/// indexes into `manifest.tasks`.
pub fn dependencies(manifest: &Manifest) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = manifest
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.as_str(), i))
        .collect();
    manifest
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut deps: Vec<usize> = Vec::new();
            let mut add = |id: &str| {
                if let Some(&j) = index.get(id)
                    && j != i
                    && !deps.contains(&j)
                {
                    deps.push(j);
                }
            };
            for need in &t.needs {
                add(need);
            }
            let mut path = String::new();
            expr::for_each_string(&Value::Object(t.with.clone()), &mut path, &mut |_, s| {
                for occ in expr::scan(s) {
                    if let Ok(Reference::TaskOutput { task, .. }) = occ.reference {
                        add(&task);
                    }
                }
            });
            deps
        })
        .collect()
}
