//! OpenID Connect bearer tokens: a JWT from the configured issuer becomes an [`Actor`] when
//! its signature verifies with one of the issuer's keys and its claims hold — issuer,
//! audience, `exp` and `nbf` with a small leeway, an algorithm from the allow-list (never
//! `none`, never HMAC, and never an algorithm the key was not made for).
//!
//! Keys come from the issuer (`jwks_uri` of its discovery document, or `oidc.jwks_url`) and
//! are cached for `oidc.jwks_cache_ttl`; a token naming a key id the cache does not hold
//! fetches them again (at most once per [`MIN_REFETCH`], so unknown ids cannot flood the
//! issuer). Air-gapped sites give `oidc.jwks_file`, re-read when it changes. After a key
//! rotation, tokens signed by a key the issuer no longer publishes are refused.
//!
//! When the issuer cannot be reached once the keys expire, the last keys stay in use for
//! `oidc.jwks_max_stale` longer (retried at most once per [`MIN_REFETCH`], each failure
//! logged and counted in `mc_oidc_stale_keys_total`), so an outage of the issuer does not lock everyone out at once.

use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::config::OidcConfig;
use crate::domain::actor::{Actor, Role};
use crate::domain::duration;
use crate::domain::ids::TenantId;

/// Least time between two fetches of the issuer's keys.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// Largest JWKS or discovery document read.
const MAX_DOCUMENT: usize = 1024 * 1024;

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("{0}")]
    Missing(String),
    /// Not an API token this appliance knows.
    #[error("the token is not valid")]
    UnknownToken,
    /// Not a well-formed JWT.
    #[error("the token is not a well-formed JWT: {0}")]
    Malformed(String),
    /// The header's algorithm is not on the allow-list.
    #[error("the token's algorithm {0:?} is not accepted")]
    AlgorithmNotAllowed(String),
    /// No key of the issuer has the token's key id.
    #[error("the token's signing key {0:?} is not one of the issuer's keys")]
    UnknownKey(String),
    /// The issuer's keys could not be fetched or read.
    #[error("the issuer's keys are unavailable: {0}")]
    KeysUnavailable(String),
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the token was not issued by the configured issuer")]
    WrongIssuer,
    /// `aud` does not name this appliance.
    #[error("the token's audience is not this appliance")]
    WrongAudience,
    /// A claim is missing or unusable.
    #[error("the token's claims are not usable: {0}")]
    BadClaims(String),
}

impl AuthError {
    /// A short label for metrics and audit events.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing(_) => "missing",
            AuthError::UnknownToken => "unknown_token",
            AuthError::Malformed(_) => "malformed",
            AuthError::AlgorithmNotAllowed(_) => "algorithm_not_allowed",
            AuthError::UnknownKey(_) => "unknown_key",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::WrongIssuer => "wrong_issuer",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::BadClaims(_) => "bad_claims",
        }
    }
}

/// Whether a bearer token has the shape of a JWT (three base64url parts).
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

enum Source {
    /// Fetched: the configured JWKS URL, or discovered from the issuer.
    Url(Option<String>),
    /// A local file.
    File(PathBuf),
}

struct Cache {
    keys: JwkSet,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
    /// When a refresh last failed (cleared by a successful one).
    failed: Option<Instant>,
    file_modified: Option<SystemTime>,
    jwks_uri: Option<String>,
}

/// The verifier of one issuer's tokens.
pub struct Oidc {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    ttl: Duration,
    max_stale: Duration,
    tenant_claim: String,
    roles_claim: String,
    source: Source,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Cache>,
    on_stale: Option<Box<dyn Fn() + Send + Sync>>,
    endpoints: tokio::sync::Mutex<Option<Endpoints>>,
}

/// The issuer's endpoints the console login uses (from its discovery document).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Where the browser is sent to log in.
    pub authorization: String,
    /// Where the code is redeemed.
    pub token: String,
    /// Where the browser may be sent to log out at the issuer (RP-initiated logout).
    pub end_session: Option<String>,
}

/// What the console sends to redeem an authorization code.
pub struct Redemption<'a> {
    /// The code from the callback.
    pub code: &'a str,
    /// The PKCE verifier of the login.
    pub verifier: &'a str,
    /// The redirect URI of the authorization request.
    pub redirect_uri: &'a str,
    /// The console's client id.
    pub client_id: &'a str,
    /// Its secret, for confidential clients.
    pub client_secret: Option<&'a str>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// Calls `f` each time a refresh fails while the last keys stay in use (a metric).
    pub fn on_stale_keys(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_stale = Some(Box::new(f));
        self
    }

    /// The verifier for `[oidc]`, or `None` when no issuer is configured.
    pub fn from_config(c: &OidcConfig) -> Result<Option<Self>, String> {
        let Some(issuer) = &c.issuer else {
            return Ok(None);
        };
        let algorithms = c
            .algorithms
            .iter()
            .map(|a| Algorithm::from_str(a).map_err(|_| format!("oidc.algorithms: unknown {a:?}")))
            .collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Some(Oidc {
            issuer: issuer.clone(),
            audience: c.audience.clone(),
            algorithms,
            leeway: duration::parse(&c.leeway)
                .map_err(|e| format!("oidc.leeway: {e}"))?
                .as_secs(),
            ttl: duration::parse(&c.jwks_cache_ttl)
                .map_err(|e| format!("oidc.jwks_cache_ttl: {e}"))?,
            max_stale: duration::parse(&c.jwks_max_stale)
                .map_err(|e| format!("oidc.jwks_max_stale: {e}"))?,
            tenant_claim: c.tenant_claim.clone(),
            roles_claim: c.roles_claim.clone(),
            source: match &c.jwks_file {
                Some(f) => Source::File(f.clone()),
                None => Source::Url(c.jwks_url.clone()),
            },
            http,
            cache: tokio::sync::Mutex::new(Cache {
                keys: JwkSet { keys: Vec::new() },
                fetched: None,
                attempted: None,
                failed: None,
                file_modified: None,
                jwks_uri: None,
            }),
            on_stale: None,
            endpoints: tokio::sync::Mutex::new(None),
        }))
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The actor of a JWT, if it verifies.
    pub async fn verify(&self, token: &str) -> Result<Actor, AuthError> {
        self.verify_for(token, &self.audience, None).await
    }

    /// The actor of an ID token from the console login: issued to `client_id` and carrying
    /// the login's `nonce`.
    pub async fn verify_id_token(
        &self,
        token: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<Actor, AuthError> {
        self.verify_for(token, client_id, Some(nonce)).await
    }

    /// The issuer's login endpoints (discovered once).
    pub async fn endpoints(&self) -> Result<Endpoints, AuthError> {
        let mut cached = self.endpoints.lock().await;
        if let Some(e) = cached.as_ref() {
            return Ok(e.clone());
        }
        let doc = self.discovery().await?;
        let field = |name: &str| doc[name].as_str().map(str::to_owned);
        let e = Endpoints {
            authorization: field("authorization_endpoint").ok_or_else(|| {
                AuthError::KeysUnavailable(
                    "the discovery document has no authorization_endpoint".into(),
                )
            })?,
            token: field("token_endpoint").ok_or_else(|| {
                AuthError::KeysUnavailable("the discovery document has no token_endpoint".into())
            })?,
            end_session: field("end_session_endpoint"),
        };
        *cached = Some(e.clone());
        Ok(e)
    }

    /// Redeems an authorization code at the token endpoint; returns the ID token.
    pub async fn redeem(&self, endpoint: &str, r: &Redemption<'_>) -> Result<String, AuthError> {
        let unavailable = |e: String| AuthError::KeysUnavailable(format!("{endpoint}: {e}"));
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", r.code),
            ("redirect_uri", r.redirect_uri),
            ("code_verifier", r.verifier),
        ];
        let mut request = self.http.post(endpoint);
        match r.client_secret {
            Some(secret) => request = request.basic_auth(r.client_id, Some(secret)),
            None => form.push(("client_id", r.client_id)),
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| unavailable(format!("HTTP {status}, not JSON: {e}")))?;
        if !status.is_success() {
            return Err(AuthError::BadClaims(format!(
                "the issuer refused the code: {} {}",
                body["error"].as_str().unwrap_or("error"),
                body["error_description"].as_str().unwrap_or("")
            )));
        }
        body["id_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AuthError::BadClaims("the token response has no id_token".into()))
    }

    async fn verify_for(
        &self,
        token: &str,
        audience: &str,
        nonce: Option<&str>,
    ) -> Result<Actor, AuthError> {
        let alg = header_algorithm(token)?;
        let algorithm = Algorithm::from_str(&alg)
            .ok()
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| AuthError::AlgorithmNotAllowed(alg.clone()))?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let key = self.key(header.kid.as_deref(), algorithm).await?;
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[audience]);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => AuthError::BadSignature,
                K::ExpiredSignature => AuthError::Expired,
                K::ImmatureSignature => AuthError::NotYetValid,
                K::InvalidIssuer => AuthError::WrongIssuer,
                K::InvalidAudience => AuthError::WrongAudience,
                K::MissingRequiredClaim(c) => AuthError::BadClaims(format!("{c} is missing")),
                K::InvalidAlgorithm => AuthError::AlgorithmNotAllowed(alg.clone()),
                _ => AuthError::Malformed(e.to_string()),
            }
        })?;
        if let Some(expected) = nonce
            && data.claims["nonce"].as_str() != Some(expected)
        {
            return Err(AuthError::BadClaims(
                "the ID token's nonce is not the one of this login".into(),
            ));
        }
        self.actor(&data.claims)
    }

    fn actor(&self, claims: &Value) -> Result<Actor, AuthError> {
        let sub = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| AuthError::BadClaims("sub is not a string".into()))?;
        let tenant = match claims.get(&self.tenant_claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(
                TenantId::new(t)
                    .map_err(|e| AuthError::BadClaims(format!("{}: {e}", self.tenant_claim)))?,
            ),
            Some(_) => {
                return Err(AuthError::BadClaims(format!(
                    "{} is not a string",
                    self.tenant_claim
                )));
            }
        };
        let names: Vec<&str> = match claims.get(&self.roles_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split_whitespace().collect(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            Some(_) => {
                return Err(AuthError::BadClaims(format!(
                    "{} is not a list of roles",
                    self.roles_claim
                )));
            }
        };
        let mut roles: Vec<Role> = names.into_iter().filter_map(Role::parse).collect();
        roles.sort();
        roles.dedup();
        Ok(Actor {
            subject: format!("oidc:{sub}"),
            tenant,
            roles,
        })
    }

    /// The decoding key for `kid` and `algorithm`, refreshing the key set when it is stale or
    /// does not hold the key.
    async fn key(&self, kid: Option<&str>, algorithm: Algorithm) -> Result<DecodingKey, AuthError> {
        let mut cache = self.cache.lock().await;
        let stale = cache.fetched.is_none_or(|t| t.elapsed() > self.ttl);
        let changed = self.file_changed(&cache);
        if stale || changed {
            // The last keys may serve a while longer when the issuer is unreachable.
            let usable = cache
                .fetched
                .is_some_and(|t| t.elapsed() <= self.ttl + self.max_stale);
            let may_retry = cache.failed.is_none_or(|t| t.elapsed() >= MIN_REFETCH);
            if changed || may_retry || !usable {
                let result = self.refresh(&mut cache).await;
                cache.failed = result.is_err().then(Instant::now);
                match result {
                    Ok(()) => {}
                    Err(e) if usable && !changed => {
                        tracing::warn!(issuer = %self.issuer, error = %e, "issuer keys could not be refreshed; the last keys stay in use within oidc.jwks_max_stale");
                        if let Some(f) = &self.on_stale {
                            f();
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if let Some(k) = select(&cache.keys, kid, algorithm)? {
            return Ok(k);
        }
        if cache.attempted.is_none_or(|t| t.elapsed() >= MIN_REFETCH) {
            self.refresh(&mut cache).await?;
            if let Some(k) = select(&cache.keys, kid, algorithm)? {
                return Ok(k);
            }
        }
        Err(AuthError::UnknownKey(kid.unwrap_or("").to_owned()))
    }

    fn file_changed(&self, cache: &Cache) -> bool {
        match &self.source {
            Source::File(path) => {
                std::fs::metadata(path).and_then(|m| m.modified()).ok() != cache.file_modified
            }
            Source::Url(_) => false,
        }
    }

    async fn refresh(&self, cache: &mut Cache) -> Result<(), AuthError> {
        cache.attempted = Some(Instant::now());
        let text = match &self.source {
            Source::File(path) => {
                cache.file_modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
                std::fs::read_to_string(path)
                    .map_err(|e| AuthError::KeysUnavailable(format!("{}: {e}", path.display())))?
            }
            Source::Url(configured) => {
                let uri = match (configured, &cache.jwks_uri) {
                    (Some(u), _) | (None, Some(u)) => u.clone(),
                    (None, None) => {
                        let uri = self.discover().await?;
                        cache.jwks_uri = Some(uri.clone());
                        uri
                    }
                };
                self.fetch(&uri).await?
            }
        };
        let keys: JwkSet = serde_json::from_str(&text)
            .map_err(|e| AuthError::KeysUnavailable(format!("the key set is not a JWKS: {e}")))?;
        tracing::info!(issuer = %self.issuer, keys = keys.keys.len(), "issuer keys loaded");
        cache.keys = keys;
        cache.fetched = Some(Instant::now());
        Ok(())
    }

    async fn discover(&self) -> Result<String, AuthError> {
        let doc = self.discovery().await?;
        doc["jwks_uri"].as_str().map(str::to_owned).ok_or_else(|| {
            AuthError::KeysUnavailable(format!(
                "{}/.well-known/openid-configuration has no jwks_uri",
                self.issuer.trim_end_matches('/')
            ))
        })
    }

    async fn discovery(&self) -> Result<Value, AuthError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let doc: Value = serde_json::from_str(&self.fetch(&url).await?).map_err(|e| {
            AuthError::KeysUnavailable(format!("{url}: not a discovery document: {e}"))
        })?;
        if doc["issuer"].as_str() != Some(self.issuer.as_str()) {
            return Err(AuthError::KeysUnavailable(format!(
                "{url} names issuer {}, not {}",
                doc["issuer"], self.issuer
            )));
        }
        Ok(doc)
    }

    async fn fetch(&self, url: &str) -> Result<String, AuthError> {
        let unavailable = |e: String| AuthError::KeysUnavailable(format!("{url}: {e}"));
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(e.to_string()))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT {
                return Err(unavailable(format!("larger than {MAX_DOCUMENT} bytes")));
            }
        }
        String::from_utf8(body).map_err(|_| unavailable("not UTF-8".into()))
    }
}

/// The header's `alg`, read before anything else so `none` and HMAC are refused by name.
/// Tokens an attacker could forge for `claims`: unsigned (`alg: none`), HMAC-signed with a
/// guessed secret, and ES256-signed by a key no issuer published. The isolation report
/// presents each and expects a refusal.
pub fn forged_tokens(claims: &Value) -> Vec<(&'static str, String)> {
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    let mut out = vec![(
        "an unsigned JWT (alg none)",
        format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
            b64(claims)
        ),
    )];
    let secret: [u8; 32] = rand::random();
    if let Ok(t) = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    ) {
        out.push(("a JWT signed with HMAC (HS256)", t));
    }
    let forged =
        crate::attest::keys::SigningKey::generate(crate::attest::keys::Algorithm::EcdsaP256)
            .and_then(|k| k.to_pem());
    let der = forged.ok().and_then(|pem| {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).ok()
    });
    if let Some(der) = der
        && let key = jsonwebtoken::EncodingKey::from_ec_der(&der)
        && let Ok(t) =
            jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::ES256), claims, &key)
    {
        out.push(("a JWT signed by a key the issuer never published", t));
    }
    out
}

fn header_algorithm(token: &str) -> Result<String, AuthError> {
    let header = token
        .split('.')
        .next()
        .ok_or_else(|| AuthError::Malformed("no header".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed("the header is not base64url".into()))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("the header is not JSON".into()))?;
    v["alg"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| AuthError::Malformed("the header has no alg".into()))
}

/// The key of `keys` with id `kid` (or the only key fit for `algorithm` when the token names
/// none), refusing keys not made for the algorithm.
fn select(
    keys: &JwkSet,
    kid: Option<&str>,
    algorithm: Algorithm,
) -> Result<Option<DecodingKey>, AuthError> {
    let fits = |jwk: &jsonwebtoken::jwk::Jwk| {
        let family_ok = matches!(
            (&jwk.algorithm, algorithm.family()),
            (
                AlgorithmParameters::RSA(_),
                jsonwebtoken::AlgorithmFamily::Rsa
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                jsonwebtoken::AlgorithmFamily::Ec
            ) | (
                AlgorithmParameters::OctetKeyPair(_),
                jsonwebtoken::AlgorithmFamily::Ed
            )
        );
        let alg_ok = jwk
            .common
            .key_algorithm
            .is_none_or(|a| a.to_string() == format!("{algorithm:?}"));
        let use_ok =
            !matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature);
        family_ok && alg_ok && use_ok
    };
    let jwk = match kid {
        Some(kid) => match keys.find(kid) {
            Some(j) if fits(j) => j,
            Some(_) => {
                return Err(AuthError::AlgorithmNotAllowed(format!(
                    "{algorithm:?} with key {kid:?}"
                )));
            }
            None => return Ok(None),
        },
        None => {
            let mut fit = keys.keys.iter().filter(|j| fits(j));
            match (fit.next(), fit.next()) {
                (Some(j), None) => j,
                (None, _) => return Ok(None),
                (Some(_), Some(_)) => {
                    return Err(AuthError::Malformed(
                        "the token names no key id (kid) and the issuer has several keys".into(),
                    ));
                }
            }
        }
    };
    DecodingKey::from_jwk(jwk)
        .map(Some)
        .map_err(|e| AuthError::KeysUnavailable(format!("key {:?}: {e}", jwk.common.key_id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::keys::{Algorithm as KeyAlg, SigningKey};
    use serde_json::json;

    const ISSUER: &str = "https://issuer.test";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An Ed25519 key and its public JWK.
    fn key(kid: &str) -> (SigningKey, Value) {
        let k = SigningKey::generate(KeyAlg::Ed25519).unwrap();
        let x = k.public().ed25519_raw().unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&x), "kid": kid, "alg": "EdDSA", "use": "sig"});
        (k, jwk)
    }

    fn sign(k: &SigningKey, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = k.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", b64(&sig))
    }

    fn now() -> i64 {
        jiff::Timestamp::now().as_second()
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "aud": "maestro", "sub": "alice", "exp": now() + 300,
               "tenant": "acme", "roles": ["operator", "unknown-role"]})
    }

    fn verifier(dir: &std::path::Path, jwks: &[&Value]) -> Oidc {
        let file = dir.join("jwks.json");
        std::fs::write(&file, json!({ "keys": jwks }).to_string()).unwrap();
        let c = OidcConfig {
            issuer: Some(ISSUER.into()),
            jwks_file: Some(file),
            leeway: "30s".into(),
            ..OidcConfig::default()
        };
        Oidc::from_config(&c).unwrap().unwrap()
    }

    #[tokio::test]
    async fn verifies_signature_issuer_audience_and_time_and_maps_claims() {
        let dir = tempfile::tempdir().unwrap();
        let (k, jwk) = key("k1");
        let o = verifier(dir.path(), &[&jwk]);
        let h = json!({"alg": "EdDSA", "kid": "k1", "typ": "JWT"});
        let actor = o.verify(&sign(&k, &h, &claims())).await.unwrap();
        assert_eq!(actor.subject, "oidc:alice");
        assert_eq!(actor.tenant.unwrap().as_str(), "acme");
        assert_eq!(actor.roles, vec![Role::Operator]);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            sign(&k, &h, &c)
        };
        let cases: Vec<(String, AuthError)> = vec![
            (with(&|c| c["exp"] = json!(now() - 120)), AuthError::Expired),
            (
                with(&|c| c["nbf"] = json!(now() + 120)),
                AuthError::NotYetValid,
            ),
            (
                with(&|c| c["iss"] = json!("https://evil.test")),
                AuthError::WrongIssuer,
            ),
            (
                with(&|c| c["aud"] = json!("other")),
                AuthError::WrongAudience,
            ),
            (
                with(&|c| c["tenant"] = json!("Not A Tenant")),
                AuthError::BadClaims(String::new()),
            ),
            (
                with(&|c| {
                    c.as_object_mut().unwrap().remove("sub");
                }),
                AuthError::BadClaims(String::new()),
            ),
        ];
        for (token, expected) in cases {
            let got = o.verify(&token).await.unwrap_err();
            assert_eq!(got.reason(), expected.reason(), "{got}");
        }
        // Within the leeway is still valid; an appliance-wide actor has no tenant claim.
        let mut c = claims();
        c["exp"] = json!(now() - 5);
        c.as_object_mut().unwrap().remove("tenant");
        let a = o.verify(&sign(&k, &h, &c)).await.unwrap();
        assert!(a.tenant.is_none());
    }

    #[tokio::test]
    async fn forged_tokens_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (k, jwk) = key("k1");
        let o = verifier(dir.path(), &[&jwk]);
        let h = json!({"alg": "EdDSA", "kid": "k1"});
        let good = sign(&k, &h, &claims());
        let parts: Vec<&str> = good.split('.').collect();
        // alg none, with and without a signature.
        let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(
            o.verify(&none).await.unwrap_err(),
            AuthError::AlgorithmNotAllowed("none".into())
        );
        // HMAC keyed with the public key (the classic confusion).
        let hs = format!(
            "{}.{}.{}",
            b64(br#"{"alg":"HS256","kid":"k1"}"#),
            parts[1],
            parts[2]
        );
        assert_eq!(
            o.verify(&hs).await.unwrap_err().reason(),
            "algorithm_not_allowed"
        );
        // An allowed algorithm the key was not made for.
        let rs = format!(
            "{}.{}.{}",
            b64(br#"{"alg":"RS256","kid":"k1"}"#),
            parts[1],
            parts[2]
        );
        assert_eq!(
            o.verify(&rs).await.unwrap_err().reason(),
            "algorithm_not_allowed"
        );
        // Tampered claims: another tenant under the same signature.
        let mut c = claims();
        c["tenant"] = json!("globex");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(c.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(
            o.verify(&tampered).await.unwrap_err(),
            AuthError::BadSignature
        );
        // Signed by a key the issuer does not publish, under its key id or another.
        let (other, _) = key("k1");
        assert_eq!(
            o.verify(&sign(&other, &h, &claims())).await.unwrap_err(),
            AuthError::BadSignature
        );
        let h2 = json!({"alg": "EdDSA", "kid": "k9"});
        assert_eq!(
            o.verify(&sign(&other, &h2, &claims())).await.unwrap_err(),
            AuthError::UnknownKey("k9".into())
        );
        // Garbage.
        for t in ["a.b.c", "..", "eyJhbGciOiJFZERTQSJ9..", &"x.".repeat(3)] {
            assert!(o.verify(t).await.is_err(), "{t}");
        }
    }

    #[tokio::test]
    async fn a_rotated_key_set_refuses_tokens_of_the_retired_key() {
        let dir = tempfile::tempdir().unwrap();
        let (old, old_jwk) = key("old");
        let o = verifier(dir.path(), &[&old_jwk]);
        let old_token = sign(&old, &json!({"alg": "EdDSA", "kid": "old"}), &claims());
        o.verify(&old_token).await.unwrap();
        // The site publishes the new key and retires the old one.
        std::thread::sleep(Duration::from_millis(20));
        let (new, new_jwk) = key("new");
        std::fs::write(
            dir.path().join("jwks.json"),
            json!({ "keys": [new_jwk] }).to_string(),
        )
        .unwrap();
        let new_token = sign(&new, &json!({"alg": "EdDSA", "kid": "new"}), &claims());
        o.verify(&new_token).await.unwrap();
        assert_eq!(
            o.verify(&old_token).await.unwrap_err(),
            AuthError::UnknownKey("old".into())
        );
    }
}
