//! `${{ … }}` references inside task inputs: parsing, listing and resolving them.
//!
//! Grammar (whitespace inside the braces is ignored):
//! - `tasks.ID.outputs.KEY[.FIELD…]`: an output of another task (FIELD descends into
//!   objects, or lists by index);
//! - `inputs.KEY[.FIELD…]`: an input of a workflow package, from the `with:` of the
//!   `uses: pkg:NAME@VERSION` task that runs it;
//! - `execution.id`, `execution.tenant`, `execution.region`, `manifest.name`,
//!   `manifest.version`: facts about the running execution;
//! - `appliance.url`: the appliance's own base URL as its tasks reach it (`http://` and the
//!   listen address, a wildcard address given as loopback).
//!
//! A string that is exactly one expression is replaced by the referenced value with its JSON
//! type; otherwise every expression is interpolated as text.

use serde_json::Value;

/// A parsed reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// An output of a task: `tasks.ID.outputs.KEY.PATH…`.
    TaskOutput {
        /// The producing task.
        task: String,
        /// The output key.
        key: String,
        /// Further fields or indexes into the output value.
        path: Vec<String>,
    },
    /// An input of a workflow package: `inputs.KEY.PATH…`.
    Input {
        /// The input key.
        key: String,
        /// Further fields or indexes into the input value.
        path: Vec<String>,
    },
    /// A fact about the execution (`execution.id`, `manifest.name`, …).
    Context(ContextValue),
}

/// Facts about the execution that expressions can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextValue {
    /// `execution.id`
    ExecutionId,
    /// `execution.tenant`
    Tenant,
    /// `execution.region`
    Region,
    /// `manifest.name`
    ManifestName,
    /// `manifest.version`
    ManifestVersion,
    /// `appliance.url`
    ApplianceUrl,
}

/// One `${{ … }}` occurrence in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// Byte range of the whole `${{ … }}` in the string.
    pub span: std::ops::Range<usize>,
    /// The parsed reference, or why it did not parse.
    pub reference: Result<Reference, String>,
}

const OPEN: &str = "${{";
const CLOSE: &str = "}}";

/// Finds every expression in `text`. An unterminated `${{` is reported as an occurrence with
/// an error.
pub fn scan(text: &str) -> Vec<Occurrence> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find(OPEN) {
        let start = from + rel;
        let body_start = start + OPEN.len();
        match text[body_start..].find(CLOSE) {
            Some(rel_end) => {
                let body = &text[body_start..body_start + rel_end];
                let end = body_start + rel_end + CLOSE.len();
                out.push(Occurrence {
                    span: start..end,
                    reference: parse_reference(body.trim()),
                });
                from = end;
            }
            None => {
                out.push(Occurrence {
                    span: start..text.len(),
                    reference: Err("unterminated expression: missing \"}}\"".into()),
                });
                break;
            }
        }
    }
    out
}

/// Parses the inside of `${{ … }}`.
pub fn parse_reference(body: &str) -> Result<Reference, String> {
    let parts: Vec<&str> = body.split('.').collect();
    let valid_segment = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if parts.iter().any(|p| !valid_segment(p)) {
        return Err(format!(
            "invalid expression {body:?}: expected tasks.ID.outputs.KEY or execution.id"
        ));
    }
    match parts.as_slice() {
        ["tasks", task, "outputs", key, path @ ..] => Ok(Reference::TaskOutput {
            task: (*task).to_owned(),
            key: (*key).to_owned(),
            path: path.iter().map(|s| (*s).to_owned()).collect(),
        }),
        ["tasks", task, other, ..] if *other != "outputs" => Err(format!(
            "invalid expression {body:?}: write tasks.{task}.outputs.KEY"
        )),
        ["tasks", ..] => Err(format!(
            "invalid expression {body:?}: expected tasks.ID.outputs.KEY"
        )),
        ["inputs", key, path @ ..] => Ok(Reference::Input {
            key: (*key).to_owned(),
            path: path.iter().map(|s| (*s).to_owned()).collect(),
        }),
        ["execution", "id"] => Ok(Reference::Context(ContextValue::ExecutionId)),
        ["execution", "tenant"] => Ok(Reference::Context(ContextValue::Tenant)),
        ["execution", "region"] => Ok(Reference::Context(ContextValue::Region)),
        ["manifest", "name"] => Ok(Reference::Context(ContextValue::ManifestName)),
        ["manifest", "version"] => Ok(Reference::Context(ContextValue::ManifestVersion)),
        ["appliance", "url"] => Ok(Reference::Context(ContextValue::ApplianceUrl)),
        [first, ..] if *first == "task" || *first == "steps" => Err(format!(
            "invalid expression {body:?}: references start with \"tasks.\""
        )),
        _ => Err(format!(
            "invalid expression {body:?}: expected tasks.ID.outputs.KEY, inputs.KEY, \
             execution.id, execution.tenant, execution.region, manifest.name, manifest.version \
             or appliance.url"
        )),
    }
}

/// Calls `f` with every string in `value` and its path suffix (e.g. `.a[0].b`).
pub fn for_each_string(value: &Value, path: &mut String, f: &mut dyn FnMut(&str, &str)) {
    match value {
        Value::String(s) => f(path, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                for_each_string(item, path, f);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                for_each_string(v, path, f);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Whether a string contains any expression.
pub fn has_expression(text: &str) -> bool {
    text.contains(OPEN)
}

/// Looks references up while resolving.
pub trait Lookup {
    /// The value of a reference, or why it is unavailable.
    fn lookup(&self, reference: &Reference) -> Result<Value, String>;
}

/// Descends into `value` along `path` (object fields or list indexes).
pub fn descend<'a>(mut value: &'a Value, path: &[String]) -> Option<&'a Value> {
    for segment in path {
        value = match value {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// Resolves every expression inside `value`, returning a new value.
pub fn resolve(value: &Value, lookup: &dyn Lookup) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => resolve_string(s, lookup)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve(v, lookup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve(v, lookup)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn resolve_string(text: &str, lookup: &dyn Lookup) -> Result<Value, String> {
    let occurrences = scan(text);
    if occurrences.is_empty() {
        return Ok(Value::String(text.to_owned()));
    }
    if occurrences.len() == 1 && occurrences[0].span == (0..text.len()) {
        let reference = occurrences[0].reference.clone()?;
        return lookup.lookup(&reference);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for occ in occurrences {
        out.push_str(&text[last..occ.span.start]);
        let value = lookup.lookup(&occ.reference?)?;
        match value {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        last = occ.span.end;
    }
    out.push_str(&text[last..]);
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed;
    impl Lookup for Fixed {
        fn lookup(&self, r: &Reference) -> Result<Value, String> {
            match r {
                Reference::TaskOutput { task, key, path } if task == "a" && key == "n" => {
                    descend(&json!({"x": [10, 20]}), path)
                        .cloned()
                        .ok_or_else(|| "no such field".to_string())
                }
                Reference::TaskOutput { task, key, .. } if task == "a" && key == "s" => {
                    Ok(json!("hi"))
                }
                Reference::Context(ContextValue::ExecutionId) => Ok(json!("ex_1")),
                _ => Err(format!("unknown {r:?}")),
            }
        }
    }

    #[test]
    fn parses_references() {
        assert_eq!(
            parse_reference("tasks.build.outputs.digest").unwrap(),
            Reference::TaskOutput {
                task: "build".into(),
                key: "digest".into(),
                path: vec![]
            }
        );
        assert!(
            parse_reference("tasks.build.output.digest")
                .unwrap_err()
                .contains("tasks.build.outputs.KEY")
        );
        assert!(
            parse_reference("steps.a.outputs.b")
                .unwrap_err()
                .contains("tasks.")
        );
        assert!(parse_reference("tasks..outputs.b").is_err());
        assert!(parse_reference("env.HOME").is_err());
        assert_eq!(
            parse_reference("appliance.url").unwrap(),
            Reference::Context(ContextValue::ApplianceUrl)
        );
        assert!(
            parse_reference("appliance.host")
                .unwrap_err()
                .contains("or appliance.url")
        );
    }

    #[test]
    fn scans_all_occurrences_including_unterminated() {
        let occ = scan("a ${{ tasks.x.outputs.y }} b ${{ execution.id }} c ${{ oops");
        assert_eq!(occ.len(), 3);
        assert!(occ[0].reference.is_ok());
        assert!(occ[1].reference.is_ok());
        assert!(
            occ[2]
                .reference
                .as_ref()
                .unwrap_err()
                .contains("unterminated")
        );
    }

    #[test]
    fn whole_string_keeps_type_and_mixed_text_interpolates() {
        let v = json!({
            "whole": "${{ tasks.a.outputs.n.x.1 }}",
            "mixed": "id=${{ execution.id }} s=${{tasks.a.outputs.s}} n=${{ tasks.a.outputs.n }}",
            "list": ["${{ tasks.a.outputs.s }}", 3],
        });
        let r = resolve(&v, &Fixed).unwrap();
        assert_eq!(r["whole"], json!(20));
        assert_eq!(r["mixed"], json!("id=ex_1 s=hi n={\"x\":[10,20]}"));
        assert_eq!(r["list"], json!(["hi", 3]));
        assert!(resolve(&json!("${{ tasks.b.outputs.s }}"), &Fixed).is_err());
    }
}
