//! The HTTP client of the CLI: JSON calls to a running server, with API errors mapped to
//! exit codes.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Exit, fail};

/// A client of one server.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:7070`).
    pub fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(fail(
                Exit::Usage,
                format!("--server {base:?} must start with http:// or https://"),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(360))
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("maestro-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client { base, token, http })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    /// Sends a request; returns the status and body, or the failure to reach the server.
    async fn raw(&self, r: reqwest::RequestBuilder) -> anyhow::Result<(u16, Vec<u8>)> {
        let response = r.send().await.map_err(|e| {
            fail(
                Exit::Unavailable,
                format!("cannot reach {}: {}", self.base, root_cause(&e)),
            )
        })?;
        let status = response.status().as_u16();
        Ok((status, response.bytes().await?.to_vec()))
    }

    /// Sends a request and decodes a JSON answer (any 2xx), mapping errors to exit codes.
    pub async fn send<T: DeserializeOwned>(
        &self,
        r: reqwest::RequestBuilder,
    ) -> anyhow::Result<(u16, T)> {
        let (status, bytes) = self.raw(r).await?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &bytes));
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                Exit::Error,
                format!(
                    "the server answered {status} with a body that is not the expected JSON: {e}"
                ),
            )
        })?;
        Ok((status, value))
    }

    /// GET a JSON document.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        Ok(self
            .send(self.request(reqwest::Method::GET, path).query(query))
            .await?
            .1)
    }

    /// GET a text document.
    pub async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let (status, bytes) = self.raw(self.request(reqwest::Method::GET, path)).await?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &bytes));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// GET a binary document.
    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let (status, bytes) = self.raw(self.request(reqwest::Method::GET, path)).await?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &bytes));
        }
        Ok(bytes.to_vec())
    }

    /// GET a file, streamed into `dest`; returns the response headers and trailers.
    pub async fn download(
        &self,
        path: &str,
        query: &[(&str, String)],
        dest: &mut impl std::io::Write,
    ) -> anyhow::Result<reqwest::header::HeaderMap> {
        // A large file (a pack, a backup) may take long to build and to send: no total
        // deadline, only the connect timeout. Fields the server only knows at the end (a
        // pack's digest) come as trailers, which it sends only to clients that ask.
        let response = self
            .request(reqwest::Method::GET, path)
            .query(query)
            .header(reqwest::header::TE, "trailers")
            .timeout(Duration::from_secs(7 * 24 * 3600))
            .send()
            .await
            .map_err(|e| {
                fail(
                    Exit::Unavailable,
                    format!("cannot reach {}: {}", self.base, root_cause(&e)),
                )
            })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = response.bytes().await?;
            return Err(api_error(status, &body));
        }
        let mut headers = response.headers().clone();
        let mut body = reqwest::Body::from(response);
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            let frame = frame.map_err(|e| {
                fail(
                    Exit::Unavailable,
                    format!(
                        "the download from {} was cut short: {}",
                        self.base,
                        root_cause(&e)
                    ),
                )
            })?;
            match frame.into_data() {
                Ok(chunk) => dest.write_all(&chunk)?,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        headers.extend(trailers);
                    }
                }
            }
        }
        dest.flush()?;
        Ok(headers)
    }

    /// POST with a body and content type.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        content_type: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, T)> {
        self.send(
            self.request(reqwest::Method::POST, path)
                .query(query)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body),
        )
        .await
    }
}

pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// An API error response turned into a failure with the matching exit code.
pub fn api_error(status: u16, body: &[u8]) -> anyhow::Error {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v["code"].as_str().unwrap_or("");
    let mut message = v["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
        format!(
            "the server answered {status}: {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>()
        )
    });
    if let Some(problems) = v["problems"].as_array()
        && problems.len() > 1
    {
        message = format!("the manifest has {} problems:", problems.len());
        for p in problems {
            let path = p["path"].as_str().unwrap_or("");
            let msg = p["message"].as_str().unwrap_or("");
            message.push_str(&format!(
                "\n  {}{msg}",
                if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}: ")
                }
            ));
            if let Some(h) = p["hint"].as_str() {
                message.push_str(&format!("\n      hint: {h}"));
            }
        }
    } else if let Some(h) = v["problems"][0]["hint"].as_str() {
        message.push_str(&format!("\n  hint: {h}"));
    }
    if let Some(failures) = v["failures"].as_array().filter(|f| !f.is_empty()) {
        // The message ends with the failures joined; list them one per line instead.
        let head = message
            .split_once(": ")
            .map_or(message.as_str(), |(h, _)| h);
        let mut lines = format!("{head}:");
        for f in failures {
            lines.push_str(&format!("\n  {}", f.as_str().unwrap_or_default()));
        }
        message = lines;
    }
    if let Some(secs) = v["retry_after_seconds"].as_u64() {
        message.push_str(&format!(" (retry after {secs}s)"));
    }
    let exit = match (status, code) {
        (_, "manifest_invalid") => Exit::Invalid,
        (_, "denied_by_policy") => Exit::Denied,
        (_, "supply_chain_unverified") => Exit::Unverified,
        (_, "release_invalid") => Exit::Invalid,
        (401, _) | (403, _) => Exit::Unauthorized,
        (404, _) => Exit::NotFound,
        (429, _) | (503, _) => Exit::Unavailable,
        (400..=499, _) => Exit::Usage,
        _ => Exit::Error,
    };
    fail(exit, message)
}
