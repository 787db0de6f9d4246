//! The canonical JSON that in-toto signs and hashes (securesystemslib `encode_canonical`):
//! object keys sorted by code point, no whitespace, integers only, and only `"` and `\`
//! escaped in strings. No Unicode normalisation: the bytes are exactly those the reference
//! implementation computes for the same value.

use serde_json::Value;

/// Encodes `value` canonically, or says which number cannot be encoded.
pub fn encode(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    write(value, &mut out)?;
    Ok(out)
}

fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Err(format!(
                    "{n} is not an integer (canonical JSON has integers only)"
                ));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(key, out);
                out.push(b':');
                write(&map[key.as_str()], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_bytes() {
        // securesystemslib.formats.encode_canonical of the same value.
        let value: Value =
            serde_json::from_str(r#"{"b":[1,true,null],"a":"x\"\\\né","é":1,"Z":0}"#).unwrap();
        assert_eq!(
            encode(&value).unwrap(),
            "{\"Z\":0,\"a\":\"x\\\"\\\\\né\",\"b\":[1,true,null],\"é\":1}".as_bytes()
        );
    }

    #[test]
    fn keys_sort_by_code_point_and_strings_are_not_normalised() {
        // "e" + combining acute (not NFC) stays as written; "Z" < "a" < "é".
        let value = serde_json::json!({"é": 1, "e\u{301}": 2, "a": -3, "Z": [], "q\"": {}});
        let text = String::from_utf8(encode(&value).unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"Z\":[],\"a\":-3,\"e\u{301}\":2,\"q\\\"\":{},\"é\":1}"
        );
    }

    #[test]
    fn floats_are_refused() {
        let err = encode(&serde_json::json!({"x": 1.5})).unwrap_err();
        assert!(err.contains("1.5 is not an integer"), "{err}");
    }
}
