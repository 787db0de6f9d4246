//! `builtin/transform`: small, deterministic value transformations.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::Digest as _;

use super::{opt_str, str_input};

fn text(input: &Value) -> Result<&str, String> {
    input
        .as_str()
        .ok_or_else(|| format!("this operation needs a string input, got {input}"))
}

/// Applies `op` to `input`.
pub fn run(args: &Map<String, Value>) -> Result<Value, String> {
    let input = args.get("input").ok_or("input \"input\" is missing")?;
    let op = str_input(args, "op")?;
    Ok(match op {
        "upper" => Value::String(text(input)?.to_uppercase()),
        "lower" => Value::String(text(input)?.to_lowercase()),
        "trim" => Value::String(text(input)?.trim().to_owned()),
        "reverse" => match input {
            Value::Array(items) => Value::Array(items.iter().rev().cloned().collect()),
            other => Value::String(text(other)?.chars().rev().collect()),
        },
        "length" => Value::from(match input {
            Value::Array(items) => items.len(),
            Value::Object(map) => map.len(),
            other => text(other)?.chars().count(),
        }),
        "base64_encode" => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(text(input)?))
        }
        "base64_decode" => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text(input)?)
                .map_err(|e| format!("input is not base64: {e}"))?;
            Value::String(
                String::from_utf8(bytes)
                    .map_err(|_| "decoded bytes are not UTF-8 text".to_string())?,
            )
        }
        "sha256" => {
            let bytes = match input {
                Value::String(s) => s.as_bytes().to_vec(),
                other => serde_json_canonicalizer::to_vec(other).map_err(|e| e.to_string())?,
            };
            Value::String(format!(
                "sha256:{}",
                hex::encode(sha2::Sha256::digest(&bytes))
            ))
        }
        "json_pointer" => {
            let pointer = opt_str(args, "pointer")?
                .ok_or("json_pointer needs a pointer input, e.g. /items/0")?;
            input
                .pointer(pointer)
                .cloned()
                .ok_or_else(|| format!("nothing at JSON pointer {pointer:?}"))?
        }
        "concat" => {
            let sep = opt_str(args, "separator")?.unwrap_or("");
            let items = input.as_array().ok_or("concat needs a list input")?;
            let parts: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            Value::String(parts.join(sep))
        }
        "split" => {
            let sep = opt_str(args, "separator")?.ok_or("split needs a separator input")?;
            if sep.is_empty() {
                return Err("split needs a non-empty separator".into());
            }
            Value::Array(
                text(input)?
                    .split(sep)
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            )
        }
        "replace" => {
            let from = opt_str(args, "from")?.ok_or("replace needs a from input")?;
            if from.is_empty() {
                return Err("replace needs a non-empty from input".into());
            }
            let to = opt_str(args, "to")?.unwrap_or("");
            Value::String(text(input)?.replace(from, to))
        }
        "to_json" => Value::String(serde_json::to_string(input).map_err(|e| e.to_string())?),
        "from_json" => {
            serde_json::from_str(text(input)?).map_err(|e| format!("input is not JSON: {e}"))?
        }
        other => return Err(format!("unknown operation {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actions::TRANSFORM_OPS;
    use serde_json::json;

    fn t(input: Value, op: &str, extra: Value) -> Result<Value, String> {
        let mut args = json!({"input": input, "op": op});
        if let Value::Object(m) = extra {
            args.as_object_mut().unwrap().extend(m);
        }
        run(args.as_object().unwrap())
    }

    #[test]
    fn every_operation_works() {
        let cases = [
            (json!("Hi"), "upper", json!({}), json!("HI")),
            (json!("Hi"), "lower", json!({}), json!("hi")),
            (json!("  x "), "trim", json!({}), json!("x")),
            (json!("abc"), "reverse", json!({}), json!("cba")),
            (json!([1, 2]), "reverse", json!({}), json!([2, 1])),
            (json!("héllo"), "length", json!({}), json!(5)),
            (json!("hi"), "base64_encode", json!({}), json!("aGk=")),
            (json!("aGk="), "base64_decode", json!({}), json!("hi")),
            (
                json!("hello"),
                "sha256",
                json!({}),
                json!("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            ),
            (
                json!({"a": [5, 6]}),
                "json_pointer",
                json!({"pointer": "/a/1"}),
                json!(6),
            ),
            (
                json!(["a", 1, true]),
                "concat",
                json!({"separator": "-"}),
                json!("a-1-true"),
            ),
            (
                json!("a,b"),
                "split",
                json!({"separator": ","}),
                json!(["a", "b"]),
            ),
            (
                json!("a-b-a"),
                "replace",
                json!({"from": "a", "to": "x"}),
                json!("x-b-x"),
            ),
            (json!({"k": 1}), "to_json", json!({}), json!("{\"k\":1}")),
            (json!("{\"k\":1}"), "from_json", json!({}), json!({"k": 1})),
        ];
        let mut covered: Vec<&str> = Vec::new();
        for (input, op, extra, expected) in cases {
            assert_eq!(t(input, op, extra).unwrap(), expected, "{op}");
            covered.push(op);
        }
        for op in TRANSFORM_OPS {
            assert!(covered.contains(op), "operation {op} has no test");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(
            t(json!(1), "upper", json!({}))
                .unwrap_err()
                .contains("string input")
        );
        assert!(
            t(json!({}), "json_pointer", json!({"pointer": "/x"}))
                .unwrap_err()
                .contains("nothing at")
        );
        assert!(
            t(json!("x"), "split", json!({}))
                .unwrap_err()
                .contains("separator")
        );
        assert!(
            t(json!("%%"), "base64_decode", json!({}))
                .unwrap_err()
                .contains("base64")
        );
    }
}
