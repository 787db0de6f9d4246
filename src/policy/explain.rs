//! Explanations: evaluates a package with line coverage on, and reports for every rule
//! definition of the package its value for this input, whether it fired, and which of its
//! lines were evaluated. Deterministic: the same policy and input give the same explanation.
//!
//! Rule definitions are found by their heads at column 0 (the layout `opa fmt` produces and
//! every shipped policy uses); a definition runs to the next head.

use serde::Serialize;
use serde_json::Value;

use super::{Policies, PolicyError, limit_error, reasons, to_json, to_regorus};
use crate::domain::execution::DenyReason;
use crate::domain::ids::Digest;

/// Why a package decided what it decided.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Explanation {
    /// The package evaluated.
    pub package: String,
    /// Digest of the bundle evaluated.
    pub policy_digest: Digest,
    /// The decision.
    pub allow: bool,
    /// The deny reasons.
    pub reasons: Vec<DenyReason>,
    /// Every rule definition of the package, in source order.
    pub rules: Vec<RuleExplanation>,
}

/// One rule definition.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RuleExplanation {
    /// Rule name.
    pub rule: String,
    /// File and line of its head.
    pub file: String,
    /// Line of its head (1-based).
    pub line: u32,
    /// `fired` (its body held and the rule has a value), `not_fired`, `default` (the value
    /// when no definition fires), or `function`.
    pub outcome: String,
    /// The rule's value for this input (absent when undefined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Lines of the definition that were evaluated.
    pub evaluated: Vec<u32>,
    /// Lines of the definition that were not reached.
    pub not_evaluated: Vec<u32>,
    /// The definition's source text.
    pub source: String,
}

/// A rule head: a line at column 0 that is not a comment, package or import.
fn head_name(line: &str) -> Option<String> {
    let first = line.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let word: String = line
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    match word.as_str() {
        "package" | "import" => None,
        "default" => {
            let rest = line["default".len()..].trim_start();
            Some(
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect(),
            )
        }
        _ => Some(word),
    }
}

fn package_of(source: &str) -> Option<String> {
    source
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("package "))
        .map(|p| p.trim().to_owned())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

pub(super) fn explain(
    p: &Policies,
    package: &str,
    input: &Value,
) -> Result<Explanation, PolicyError> {
    let mut engine = p.template.clone();
    engine.set_enable_coverage(true);
    engine.set_input(to_regorus(input).map_err(|e| PolicyError::Eval {
        package: package.to_owned(),
        message: format!("input: {e}"),
    })?);
    let query = format!("data.{package}");
    let results = engine
        .eval_query(query.clone(), false)
        .map_err(|e| limit_error(&query, e.to_string()))?;
    let document = results
        .result
        .first()
        .and_then(|r| r.expressions.first())
        .map(|e| to_json(&e.value))
        .unwrap_or(Value::Null);
    let coverage = engine
        .get_coverage_report()
        .map_err(|e| PolicyError::Eval {
            package: package.to_owned(),
            message: format!("coverage: {e}"),
        })?;
    let mut rules = Vec::new();
    for (path, source) in p.bundle.policy_files() {
        if package_of(source).as_deref() != Some(package) {
            continue;
        }
        let file = coverage.files.iter().find(|f| &f.path == path);
        let lines: Vec<&str> = source.lines().collect();
        let heads: Vec<(usize, String)> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| head_name(l).map(|n| (i, n)))
            .collect();
        for (k, (start, name)) in heads.iter().enumerate() {
            let end = heads.get(k + 1).map_or(lines.len(), |(i, _)| *i);
            // Trailing blank and comment lines belong to no rule.
            let mut last = end;
            while last > *start + 1 && {
                let t = lines[last - 1].trim();
                t.is_empty() || t.starts_with('#')
            } {
                last -= 1;
            }
            let span: Vec<u32> = (*start as u32 + 1..=last as u32).collect();
            let covered = |n: &u32| file.is_some_and(|f| f.covered.contains(n));
            let uncovered = |n: &u32| file.is_some_and(|f| f.not_covered.contains(n));
            let evaluated: Vec<u32> = span.iter().copied().filter(covered).collect();
            let not_evaluated: Vec<u32> = span.iter().copied().filter(uncovered).collect();
            let value = document.get(name).cloned();
            let head = lines[*start];
            let is_default = head.starts_with("default ");
            let is_function = head[name.len()..].trim_start().starts_with('(');
            let last_reached = span
                .iter()
                .rev()
                .find(|n| covered(n) || uncovered(n))
                .is_some_and(covered);
            let outcome = if is_default {
                "default"
            } else if is_function {
                "function"
            } else if value.as_ref().is_some_and(truthy) && last_reached {
                "fired"
            } else {
                "not_fired"
            };
            rules.push(RuleExplanation {
                rule: name.clone(),
                file: path.clone(),
                line: *start as u32 + 1,
                outcome: outcome.into(),
                value: if is_function { None } else { value },
                evaluated,
                not_evaluated,
                source: lines[*start..last].join("\n"),
            });
        }
    }
    if rules.is_empty() {
        return Err(PolicyError::MissingPackage(package.to_owned()));
    }
    let reasons = reasons(document.get("deny"));
    let allow = document
        .get("allow")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        && reasons.is_empty();
    Ok(Explanation {
        package: package.to_owned(),
        policy_digest: p.digest,
        allow,
        reasons,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_found_by_their_first_word() {
        assert_eq!(head_name("allow if {").as_deref(), Some("allow"));
        assert_eq!(
            head_name("default allow := false").as_deref(),
            Some("allow")
        );
        assert_eq!(
            head_name("deny contains reason if {").as_deref(),
            Some("deny")
        );
        assert_eq!(
            head_name("host_allowed(task) if {").as_deref(),
            Some("host_allowed")
        );
        assert_eq!(head_name("\tinput.x == 1"), None);
        assert_eq!(head_name("# comment"), None);
        assert_eq!(head_name("package mc.x"), None);
        assert_eq!(head_name("import rego.v1"), None);
    }
}
