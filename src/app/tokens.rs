//! API tokens: generation (shown once), SHA-256 hashes in config, and lookup of the actor a
//! bearer token stands for. Probe tokens (the isolation report's identities) live in memory
//! only while their [`ProbeToken`] does.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use rand::RngExt as _;
use sha2::{Digest as _, Sha256};

use crate::config::TokenConfig;
use crate::domain::actor::{Actor, Role};
use crate::domain::ids::TenantId;

/// Prefix of every token, so secret scanners can recognise them.
pub const PREFIX: &str = "mct_";

/// Maps token hashes to actors.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], Actor>,
    probes: Arc<RwLock<HashMap<[u8; 32], Actor>>>,
}

/// Prefix of probe actors' subjects; no configured token or issuer can produce it.
pub const PROBE_SUBJECT: &str = "probe:";

/// A token that authenticates as a probe actor until dropped.
pub struct ProbeToken {
    /// The bearer token.
    pub token: String,
    /// The actor it stands for.
    pub actor: Actor,
    hash: [u8; 32],
    probes: Arc<RwLock<HashMap<[u8; 32], Actor>>>,
}

impl Drop for ProbeToken {
    fn drop(&mut self) {
        self.probes.write().remove(&self.hash);
    }
}

/// `sha256:<hex>` of a token, as written in config.
pub fn hash_line(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// A fresh random token (256 bits).
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("{PREFIX}{}", hex::encode(bytes))
}

impl Tokens {
    /// Builds the table from validated config entries.
    pub fn from_config(entries: &[TokenConfig]) -> Self {
        let mut by_hash = HashMap::new();
        for t in entries {
            let mut h = [0u8; 32];
            let hex_part = t.sha256.strip_prefix("sha256:").unwrap_or(&t.sha256);
            if hex::decode_to_slice(hex_part.to_ascii_lowercase(), &mut h).is_err() {
                continue;
            }
            by_hash.insert(
                h,
                Actor {
                    subject: format!("token:{}", t.name),
                    tenant: t.tenant.as_deref().and_then(|x| TenantId::new(x).ok()),
                    roles: t.roles.clone(),
                },
            );
        }
        Tokens {
            by_hash,
            probes: Arc::default(),
        }
    }

    /// A fresh token for a probe actor (subject `probe:<name>`), valid until dropped.
    pub fn issue_probe(
        &self,
        name: &str,
        tenant: Option<TenantId>,
        roles: Vec<Role>,
    ) -> ProbeToken {
        let token = generate();
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let actor = Actor {
            subject: format!("{PROBE_SUBJECT}{name}"),
            tenant,
            roles,
        };
        self.probes.write().insert(hash, actor.clone());
        ProbeToken {
            token,
            actor,
            hash,
            probes: self.probes.clone(),
        }
    }

    /// The actor of a bearer token, if the token is known.
    pub fn authenticate(&self, token: &str) -> Option<Actor> {
        if token.len() > 512 {
            return None;
        }
        let h: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash
            .get(&h)
            .cloned()
            .or_else(|| self.probes.read().get(&h).cloned())
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// A config entry for a new token.
pub fn config_entry(name: &str, tenant: Option<&str>, roles: &[Role], token: &str) -> TokenConfig {
    TokenConfig {
        name: name.to_owned(),
        sha256: hash_line(token),
        tenant: tenant.map(str::to_owned),
        roles: roles.to_vec(),
    }
}

/// The `[[tokens]]` TOML entry of a token, for a config file.
pub fn toml_entry(entry: &TokenConfig) -> String {
    #[derive(serde::Serialize)]
    struct File<'a> {
        tokens: [&'a TokenConfig; 1],
    }
    toml::to_string(&File { tokens: [entry] }).expect("a token entry serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_by_hash_only() {
        let token = generate();
        assert!(token.starts_with(PREFIX) && token.len() == PREFIX.len() + 64);
        let entry = config_entry("ci", Some("acme"), &[Role::Operator], &token);
        assert!(!entry.sha256.contains(&token[PREFIX.len()..]));
        let tokens = Tokens::from_config(&[entry]);
        let actor = tokens.authenticate(&token).unwrap();
        assert_eq!(actor.subject, "token:ci");
        assert_eq!(actor.tenant.unwrap().as_str(), "acme");
        assert!(tokens.authenticate("mct_wrong").is_none());
        assert!(tokens.authenticate(&"x".repeat(10_000)).is_none());
        let probe = tokens.issue_probe("r/acme", None, vec![Role::Viewer]);
        let t = probe.token.clone();
        assert_eq!(tokens.authenticate(&t).unwrap().subject, "probe:r/acme");
        drop(probe);
        assert!(tokens.authenticate(&t).is_none());
        let text = toml_entry(&config_entry("ci", Some("acme"), &[Role::Operator], &token));
        let parsed: toml::Table = text.parse().unwrap();
        assert_eq!(parsed["tokens"][0]["roles"][0].as_str(), Some("operator"));
    }
}
