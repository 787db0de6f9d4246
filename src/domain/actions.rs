//! The catalog of built-in actions as data: each action's inputs (`with`), their kinds, and
//! the outputs it produces. The validator checks manifests against it; the engine's action
//! implementations must match it (a test in `engine::actions` enforces that).

use serde_json::Value;

/// The kind of value an input accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Any JSON value.
    Any,
    /// A string.
    String,
    /// A whole number.
    Integer,
    /// A boolean.
    Bool,
    /// An object whose values are strings.
    StringMap,
    /// A list of strings.
    StringList,
    /// A duration string such as `30s` (see `domain::duration`).
    Duration,
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
}

impl InputKind {
    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            InputKind::Any => "any value".into(),
            InputKind::String => "a string".into(),
            InputKind::Integer => "a whole number".into(),
            InputKind::Bool => "true or false".into(),
            InputKind::StringMap => "an object of strings".into(),
            InputKind::StringList => "a list of strings".into(),
            InputKind::Duration => "a duration such as \"30s\"".into(),
            InputKind::OneOf(options) => format!("one of {}", options.join(", ")),
        }
    }

    /// Checks a literal value (not an expression) against the kind.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let ok = match self {
            InputKind::Any => true,
            InputKind::String => value.is_string(),
            InputKind::Integer => value.is_i64() || value.is_u64(),
            InputKind::Bool => value.is_boolean(),
            InputKind::StringMap => value
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string)),
            InputKind::StringList => value
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            InputKind::Duration => {
                return match value.as_str() {
                    Some(s) => super::duration::parse(s).map(|_| ()),
                    None => Err(format!(
                        "expected {}, found {}",
                        self.describe(),
                        kind_of(value)
                    )),
                };
            }
            InputKind::OneOf(options) => {
                return match value.as_str() {
                    Some(s) if options.contains(&s) => Ok(()),
                    Some(s) => Err(format!(
                        "{s:?} is not {}{}",
                        self.describe(),
                        super::validate::did_you_mean(s, options.iter().copied())
                    )),
                    None => Err(format!(
                        "expected {}, found {}",
                        self.describe(),
                        kind_of(value)
                    )),
                };
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "expected {}, found {}",
                self.describe(),
                kind_of(value)
            ))
        }
    }
}

/// Names the JSON type of a value for messages ("a number", "an object", …).
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// One input of an action.
#[derive(Debug, Clone, Copy)]
pub struct InputSpec {
    /// The key under `with`.
    pub name: &'static str,
    /// What values it accepts.
    pub kind: InputKind,
    /// Whether the task must set it.
    pub required: bool,
    /// One line of documentation.
    pub doc: &'static str,
}

/// A built-in action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    /// The `uses` value, e.g. `builtin/echo`.
    pub name: &'static str,
    /// One line of documentation.
    pub summary: &'static str,
    /// Accepted inputs.
    pub inputs: &'static [InputSpec],
    /// Output keys the action always sets.
    pub outputs: &'static [&'static str],
}

impl ActionSpec {
    /// The spec of an input by name.
    pub fn input(&self, name: &str) -> Option<&InputSpec> {
        self.inputs.iter().find(|i| i.name == name)
    }
}

const fn req(name: &'static str, kind: InputKind, doc: &'static str) -> InputSpec {
    InputSpec {
        name,
        kind,
        required: true,
        doc,
    }
}

const fn opt(name: &'static str, kind: InputKind, doc: &'static str) -> InputSpec {
    InputSpec {
        name,
        kind,
        required: false,
        doc,
    }
}

/// Operations of `builtin/transform`.
pub const TRANSFORM_OPS: &[&str] = &[
    "upper",
    "lower",
    "trim",
    "reverse",
    "length",
    "base64_encode",
    "base64_decode",
    "sha256",
    "json_pointer",
    "concat",
    "split",
    "replace",
    "to_json",
    "from_json",
];

/// HTTP methods `builtin/http` may use.
pub const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// Every built-in action, sorted by name.
pub const BUILTINS: &[ActionSpec] = &[
    ActionSpec {
        name: "builtin/artifact",
        summary: "write bytes to a named storage location (which carries a region tag)",
        inputs: &[
            req(
                "name",
                InputKind::String,
                "artifact name, unique within the execution",
            ),
            req(
                "location",
                InputKind::String,
                "storage location name from the config",
            ),
            req("content", InputKind::String, "the bytes to write, as text"),
            opt(
                "encoding",
                InputKind::OneOf(&["utf8", "base64"]),
                "how content is encoded (default utf8)",
            ),
            opt(
                "media_type",
                InputKind::String,
                "media type (default text/plain)",
            ),
        ],
        outputs: &["name", "digest", "size", "location", "region"],
    },
    ActionSpec {
        name: "builtin/echo",
        summary: "return its message as output",
        inputs: &[req("message", InputKind::Any, "any value")],
        outputs: &["message"],
    },
    ActionSpec {
        name: "builtin/exec",
        summary: "run a command (disabled unless enabled in config)",
        inputs: &[
            req("command", InputKind::StringList, "program and arguments"),
            opt("stdin", InputKind::String, "text written to standard input"),
            opt("env", InputKind::StringMap, "extra environment variables"),
        ],
        outputs: &["exit_code", "stdout", "stderr", "truncated"],
    },
    ActionSpec {
        name: "builtin/fail",
        summary: "fail, optionally only for the first N attempts (for retry and chaos tests)",
        inputs: &[
            opt("message", InputKind::String, "the error message"),
            opt(
                "attempts",
                InputKind::Integer,
                "fail only the first N attempts, then succeed (default: always fail)",
            ),
        ],
        outputs: &["attempt"],
    },
    ActionSpec {
        name: "builtin/hash",
        summary: "digest a string",
        inputs: &[
            req("data", InputKind::String, "the text to digest"),
            opt(
                "algorithm",
                InputKind::OneOf(&["sha256", "sha512"]),
                "digest algorithm (default sha256)",
            ),
        ],
        outputs: &["digest", "algorithm", "size"],
    },
    ActionSpec {
        name: "builtin/http",
        summary: "call an allow-listed HTTP endpoint",
        inputs: &[
            req(
                "url",
                InputKind::String,
                "http or https URL; the host must be allow-listed",
            ),
            opt(
                "method",
                InputKind::OneOf(HTTP_METHODS),
                "HTTP method (default GET)",
            ),
            opt("headers", InputKind::StringMap, "request headers"),
            opt(
                "body",
                InputKind::Any,
                "request body: a string, or JSON for other values",
            ),
            opt(
                "expect_status",
                InputKind::Integer,
                "fail unless the response has this status (default: any 2xx)",
            ),
        ],
        outputs: &["status", "body", "body_digest", "json"],
    },
    ActionSpec {
        name: "builtin/sleep",
        summary: "wait for a duration",
        inputs: &[req("duration", InputKind::Duration, "how long to wait")],
        outputs: &["slept_ms"],
    },
    ActionSpec {
        name: "builtin/transform",
        summary: "transform a value (upper, lower, trim, json_pointer, concat, replace, …)",
        inputs: &[
            req("input", InputKind::Any, "the value to transform"),
            req("op", InputKind::OneOf(TRANSFORM_OPS), "the operation"),
            opt(
                "pointer",
                InputKind::String,
                "JSON pointer for json_pointer, e.g. /a/0",
            ),
            opt(
                "separator",
                InputKind::String,
                "separator for concat and split",
            ),
            opt("from", InputKind::String, "text to replace, for replace"),
            opt("to", InputKind::String, "replacement text, for replace"),
        ],
        outputs: &["value"],
    },
];

/// Looks up a built-in action by its `uses` value.
pub fn builtin(name: &str) -> Option<&'static ActionSpec> {
    BUILTINS.iter().find(|a| a.name == name)
}

/// A parsed `uses` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uses {
    /// A built-in action.
    Builtin(&'static ActionSpec),
    /// A workflow package from the catalog: `pkg:NAME@VERSION`.
    Package {
        /// Package name.
        name: String,
        /// Exact package version.
        version: semver::Version,
    },
}

impl PartialEq for ActionSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for ActionSpec {}

/// Why a `uses` value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsesError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Parses a `uses` value: `builtin/NAME` or `pkg:NAME@VERSION`.
pub fn parse_uses(uses: &str) -> Result<Uses, UsesError> {
    if let Some(rest) = uses.strip_prefix("pkg:") {
        let Some((name, version)) = rest.rsplit_once('@') else {
            return Err(UsesError {
                message: format!("package reference {uses:?} has no version"),
                hint: "write pkg:NAME@VERSION, e.g. pkg:release-notes@1.0.0".into(),
            });
        };
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'-' | b'/')
            });
        if !name_ok {
            return Err(UsesError {
                message: format!("invalid package name {name:?}"),
                hint: "package names use lowercase letters, digits, '.', '_', '-' and '/'".into(),
            });
        }
        let version = semver::Version::parse(version).map_err(|e| UsesError {
            message: format!("invalid package version {version:?}: {e}"),
            hint: "use an exact semantic version, e.g. 1.0.0".into(),
        })?;
        return Ok(Uses::Package {
            name: name.to_owned(),
            version,
        });
    }
    if let Some(spec) = builtin(uses) {
        return Ok(Uses::Builtin(spec));
    }
    let names = BUILTINS.iter().map(|a| a.name);
    let suggestion = super::validate::did_you_mean(uses, names.clone());
    let bare = format!("builtin/{uses}");
    let suggestion = if suggestion.is_empty() && builtin(&bare).is_some() {
        format!(" (did you mean {bare:?}?)")
    } else {
        suggestion
    };
    Err(UsesError {
        message: format!("unknown action {uses:?}{suggestion}"),
        hint: format!(
            "use a built-in action ({}) or a catalog package pkg:NAME@VERSION",
            names.collect::<Vec<_>>().join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_sorted_and_unique() {
        let names: Vec<_> = BUILTINS.iter().map(|a| a.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn uses_parsing() {
        assert!(
            matches!(parse_uses("builtin/echo"), Ok(Uses::Builtin(s)) if s.name == "builtin/echo")
        );
        let Ok(Uses::Package { name, version }) = parse_uses("pkg:release-notes@1.2.0") else {
            panic!("package reference should parse");
        };
        assert_eq!(
            (name.as_str(), version.to_string().as_str()),
            ("release-notes", "1.2.0")
        );
        let err = parse_uses("builtin/ech0").unwrap_err();
        assert_eq!(
            err.message,
            "unknown action \"builtin/ech0\" (did you mean \"builtin/echo\"?)"
        );
        let err = parse_uses("echo").unwrap_err();
        assert!(
            err.message.contains("did you mean \"builtin/echo\""),
            "{}",
            err.message
        );
        assert!(
            parse_uses("pkg:x")
                .unwrap_err()
                .message
                .contains("no version")
        );
        assert!(
            parse_uses("pkg:x@latest")
                .unwrap_err()
                .message
                .contains("invalid package version")
        );
        assert!(
            parse_uses("pkg:X@1.0.0")
                .unwrap_err()
                .message
                .contains("invalid package name")
        );
    }

    #[test]
    fn input_kinds_check_values() {
        use serde_json::json;
        assert!(InputKind::Duration.check(&json!("30s")).is_ok());
        assert!(InputKind::Duration.check(&json!(30)).is_err());
        assert!(InputKind::StringList.check(&json!(["a", "b"])).is_ok());
        assert!(InputKind::StringList.check(&json!(["a", 1])).is_err());
        let err = InputKind::OneOf(&["sha256", "sha512"])
            .check(&json!("sha265"))
            .unwrap_err();
        assert!(err.contains("did you mean \"sha256\""), "{err}");
    }
}
