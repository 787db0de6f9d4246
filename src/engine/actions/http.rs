//! `builtin/http`: one request to an allow-listed host. No redirects are followed, bodies
//! are size-limited, and the response is digested.

use serde_json::{Map, Value, json};
use sha2::Digest as _;

use super::{ActionCtx, str_input};

/// Whether `host` (and `port`) is allowed by entries `host` (any port) or `host:port`.
pub fn host_allowed(allowed: &[String], host: &str, port: Option<u16>) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    allowed.iter().any(|entry| {
        let entry = entry.to_ascii_lowercase();
        let (h, p) = if let Some(rest) = entry.strip_prefix('[') {
            // [v6]:port or [v6]
            match rest.split_once(']') {
                Some((h, tail)) => (h.to_owned(), tail.strip_prefix(':').map(str::to_owned)),
                None => return false,
            }
        } else {
            match entry.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_owned(), Some(p.to_owned())),
                _ => (entry.clone(), None),
            }
        };
        h == host
            && match p {
                None => true,
                Some(p) => p.parse::<u16>().ok().is_some() && p.parse::<u16>().ok() == port,
            }
    })
}

/// Performs the request.
pub async fn run(input: &Map<String, Value>, ctx: &ActionCtx<'_>) -> Result<Value, String> {
    let url_text = str_input(input, "url")?;
    let url =
        reqwest::Url::parse(url_text).map_err(|e| format!("invalid url {url_text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "url scheme {:?} is not allowed (use http or https)",
            url.scheme()
        ));
    }
    let host = url.host_str().ok_or("url has no host")?;
    if !host_allowed(
        &ctx.env.http_config.allowed_hosts,
        host,
        url.port_or_known_default(),
    ) {
        return Err(format!(
            "host {host:?} is not in actions.http.allowed_hosts ({})",
            if ctx.env.http_config.allowed_hosts.is_empty() {
                "empty".to_string()
            } else {
                ctx.env.http_config.allowed_hosts.join(", ")
            }
        ));
    }
    let method_text = input.get("method").and_then(Value::as_str).unwrap_or("GET");
    let method = reqwest::Method::from_bytes(method_text.as_bytes())
        .map_err(|_| format!("invalid method {method_text:?}"))?;
    let mut request = ctx.env.http.request(method, url.clone());
    if let Some(Value::Object(headers)) = input.get("headers") {
        for (k, v) in headers {
            let v = v
                .as_str()
                .ok_or_else(|| format!("header {k:?} must be a string"))?;
            request = request.header(k.as_str(), v);
        }
    }
    request = request
        .header("x-maestro-execution", ctx.execution.as_str())
        .header("x-maestro-tenant", ctx.tenant.as_str());
    match input.get("body") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => request = request.body(s.clone()),
        Some(other) => request = request.json(other),
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("request to {url} failed: {e}"))?;
    let status = response.status().as_u16();
    let limit = ctx.env.http_config.max_response_bytes;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the response: {e}"))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!(
                "response body exceeds {limit} bytes (actions.http.max_response_bytes)"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let expected = input.get("expect_status").and_then(Value::as_u64);
    let ok = match expected {
        Some(e) => u64::from(status) == e,
        None => (200..300).contains(&status),
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    if !ok {
        let snippet: String = text.chars().take(200).collect();
        return Err(format!(
            "{url} answered {status}{}: {snippet}",
            expected
                .map(|e| format!(" (expected {e})"))
                .unwrap_or_default()
        ));
    }
    let json_body = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    Ok(json!({
        "status": status,
        "body": text,
        "body_digest": format!("sha256:{}", hex::encode(sha2::Sha256::digest(&body))),
        "json": json_body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matching() {
        let allowed = vec![
            "api.internal".to_string(),
            "127.0.0.1:8080".to_string(),
            "[::1]:9000".to_string(),
        ];
        assert!(host_allowed(&allowed, "api.internal", Some(443)));
        assert!(host_allowed(&allowed, "API.internal", Some(80)));
        assert!(host_allowed(&allowed, "127.0.0.1", Some(8080)));
        assert!(!host_allowed(&allowed, "127.0.0.1", Some(8081)));
        assert!(host_allowed(&allowed, "[::1]", Some(9000)));
        assert!(!host_allowed(&allowed, "api.internal.evil.com", Some(443)));
        assert!(!host_allowed(&[], "api.internal", Some(443)));
        assert!(!host_allowed(&["[::1".to_string()], "::1", Some(1)));
    }
}
