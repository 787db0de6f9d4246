//! in-toto metadata as the reference implementation (in-toto 3.x, securesystemslib 1.x)
//! writes it: layouts, steps, links and keys with their exact field sets, inside a classic
//! metablock (hex signatures over canonical JSON) or a DSSE envelope (the bare layout or
//! link as payload). Parsing refuses unknown and missing fields with the path of the fault.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE as B64_URL};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cjson;
use super::rules::Artifacts;
use crate::attest::dsse;
use crate::attest::keys::{PublicKey, SigningKey};

/// The DSSE payload type of in-toto layouts and links.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A link: what one step read (materials) and left (products), signed by its functionary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Always `link`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// The step this link is evidence for.
    pub name: String,
    /// Path → hashes of what the step read.
    pub materials: Artifacts,
    /// Path → hashes of what the step left.
    pub products: Artifacts,
    /// Return value and output of the command, when one ran.
    pub byproducts: serde_json::Map<String, Value>,
    /// The command the step ran.
    pub command: Vec<String>,
    /// Environment details (empty as the reference writes it).
    pub environment: serde_json::Map<String, Value>,
}

/// A public key as a layout lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// securesystemslib key id.
    pub keyid: String,
    /// `ed25519` or `ecdsa`.
    pub keytype: String,
    /// The key material.
    pub keyval: KeyVal,
    /// `ed25519` or `ecdsa-sha2-nistp256`.
    pub scheme: String,
}

/// The `keyval` of a key entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyVal {
    /// Hex of the raw Ed25519 key, or the SPKI PEM of an ECDSA key.
    pub public: String,
}

impl KeyEntry {
    /// The entry of a public key.
    pub fn of(key: &PublicKey) -> Result<KeyEntry, String> {
        let mut value = key.securesystemslib_key();
        if let Value::Object(map) = &mut value {
            map.insert("keyid".into(), Value::String(key.keyid().to_owned()));
        }
        serde_json::from_value(value).map_err(|e| format!("key entry: {e}"))
    }

    /// The key this entry describes; its key id must be the one computed from the key.
    pub fn public_key(&self) -> Result<PublicKey, String> {
        let key = match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => {
                let raw = hex::decode(&self.keyval.public)
                    .ok()
                    .filter(|raw| raw.len() == 32)
                    .ok_or("keyval.public is not 64 hex digits of an Ed25519 key")?;
                let mut der = vec![
                    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
                ];
                der.extend_from_slice(&raw);
                PublicKey::from_der(&der).map_err(|e| e.to_string())?
            }
            ("ecdsa", "ecdsa-sha2-nistp256") => {
                PublicKey::from_pem(&self.keyval.public).map_err(|e| e.to_string())?
            }
            (keytype, scheme) => {
                return Err(format!(
                    "unsupported key type {keytype:?} with scheme {scheme:?} (ed25519/ed25519 or \
                     ecdsa/ecdsa-sha2-nistp256)"
                ));
            }
        };
        if key.keyid() != self.keyid {
            return Err(format!(
                "keyid {} does not belong to the key, whose keyid is {}",
                self.keyid,
                key.keyid()
            ));
        }
        Ok(key)
    }
}

/// One step of a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Always `step`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// Unique name; links carry it.
    pub name: String,
    /// Rules over the link's materials.
    pub expected_materials: Vec<Vec<String>>,
    /// Rules over the link's products.
    pub expected_products: Vec<Vec<String>>,
    /// Key ids allowed to sign this step's links.
    pub pubkeys: Vec<String>,
    /// The command the step is expected to run (a warning when it differs).
    pub expected_command: Vec<String>,
    /// How many distinct functionaries must sign agreeing links.
    pub threshold: i64,
}

/// A layout: the steps of a supply chain, who may perform them, and the artifact rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Always `layout`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// Expiry, `YYYY-MM-DDTHH:MM:SSZ`.
    pub expires: String,
    /// Inspections (commands run by the verifier); must be empty here.
    pub inspect: Vec<Value>,
    /// Functionary keys by key id.
    pub keys: BTreeMap<String, KeyEntry>,
    /// Free text.
    pub readme: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// The body of a metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A layout.
    Layout(Layout),
    /// A link.
    Link(Link),
}

impl Body {
    fn to_value(&self) -> Value {
        match self {
            Body::Layout(l) => serde_json::to_value(l),
            Body::Link(l) => serde_json::to_value(l),
        }
        .unwrap_or(Value::Null)
    }
}

/// How a document is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Container {
    /// Classic: `(keyid, hex sig)` pairs over the canonical JSON of `signed`.
    Metablock(Vec<(String, String)>),
    /// DSSE: the envelope's payload is the body.
    Dsse(dsse::Envelope),
}

/// A parsed, not yet verified, metadata file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The layout or link.
    pub body: Body,
    container: Container,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metablock {
    signatures: Vec<MetablockSignature>,
    signed: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetablockSignature {
    keyid: String,
    sig: String,
}

/// Parses a value with serde, naming the path of the first fault.
fn typed<T: serde::de::DeserializeOwned>(value: Value, what: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            format!("{what}: {}", e.inner())
        } else {
            format!("{what} at {path}: {}", e.inner())
        }
    })
}

fn body_of(value: Value) -> Result<Body, String> {
    let kind = value
        .get("_type")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or("the signed body has no \"_type\" (expected \"layout\" or \"link\")")?;
    match kind.as_str() {
        "layout" => Ok(Body::Layout(typed(value, "layout")?)),
        "link" => Ok(Body::Link(typed(value, "link")?)),
        other => Err(format!(
            "\"_type\" is {other:?}; expected \"layout\" or \"link\""
        )),
    }
}

impl Document {
    /// Parses a metadata file (classic metablock or DSSE envelope).
    pub fn parse(bytes: &[u8]) -> Result<Document, String> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(map) = &value else {
            return Err("not in-toto metadata: expected a JSON object".into());
        };
        if map.contains_key("payload") {
            let envelope: dsse::Envelope = typed(value, "DSSE envelope")?;
            if envelope.payload_type != PAYLOAD_TYPE {
                return Err(format!(
                    "DSSE payloadType is {:?}, expected {PAYLOAD_TYPE:?}",
                    envelope.payload_type
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, sig) in envelope.signatures.iter().enumerate() {
                if sig.keyid.is_empty() {
                    return Err(format!("DSSE signature {i} has no keyid"));
                }
                if !seen.insert(&sig.keyid) {
                    return Err(format!(
                        "DSSE envelope has two signatures by keyid {}",
                        sig.keyid
                    ));
                }
            }
            let payload = decode_b64(&envelope.payload).ok_or("DSSE payload is not base64")?;
            let body: Value = serde_json::from_slice(&payload)
                .map_err(|e| format!("DSSE payload is not JSON: {e}"))?;
            Ok(Document {
                body: body_of(body)?,
                container: Container::Dsse(envelope),
            })
        } else if map.contains_key("signed") {
            let block: Metablock = typed(value, "metablock")?;
            let signed_text = cjson::encode(&block.signed)?;
            let body = body_of(block.signed)?;
            // The body must re-encode to the bytes that were signed: no field was dropped.
            if cjson::encode(&body.to_value())? != signed_text {
                return Err("the signed body does not re-encode to the same canonical JSON".into());
            }
            Ok(Document {
                body,
                container: Container::Metablock(
                    block
                        .signatures
                        .into_iter()
                        .map(|s| (s.keyid, s.sig))
                        .collect(),
                ),
            })
        } else {
            Err(
                "not in-toto metadata: expected \"signed\" (metablock) or \"payload\" (DSSE)"
                    .into(),
            )
        }
    }

    /// Whether the document is a DSSE envelope.
    pub fn is_dsse(&self) -> bool {
        matches!(self.container, Container::Dsse(_))
    }

    /// Key ids named by the document's signatures.
    pub fn signature_keyids(&self) -> Vec<String> {
        match &self.container {
            Container::Metablock(sigs) => sigs.iter().map(|(k, _)| k.clone()).collect(),
            Container::Dsse(env) => env.signatures.iter().map(|s| s.keyid.clone()).collect(),
        }
    }

    /// Checks the signature made by `key`: the first one carrying its key id, as the
    /// reference does. Says what is wrong otherwise.
    pub fn verify_signature(&self, key: &PublicKey) -> Result<(), String> {
        let keyid = key.keyid();
        match &self.container {
            Container::Metablock(sigs) => {
                let (_, sig) = sigs
                    .iter()
                    .find(|(k, _)| k == keyid)
                    .ok_or_else(|| format!("no signature by key {keyid}"))?;
                let raw = hex::decode(sig)
                    .map_err(|_| format!("the signature by key {keyid} is not hex"))?;
                let message = cjson::encode(&self.body.to_value())?;
                key.verify(&message, &raw)
                    .map_err(|_| format!("the signature by key {keyid} does not verify"))
            }
            Container::Dsse(env) => {
                let sig = env
                    .signatures
                    .iter()
                    .find(|s| s.keyid == keyid)
                    .ok_or_else(|| format!("no signature by key {keyid}"))?;
                let raw = decode_b64(&sig.sig)
                    .ok_or_else(|| format!("the signature by key {keyid} is not base64"))?;
                let payload = decode_b64(&env.payload).unwrap_or_default();
                key.verify(&dsse::pae(&env.payload_type, &payload), &raw)
                    .map_err(|_| format!("the signature by key {keyid} does not verify"))
            }
        }
    }

    /// Signs a body with one key, as a classic metablock or a DSSE envelope.
    pub fn sign(body: Body, key: &SigningKey, use_dsse: bool) -> Result<Document, String> {
        let value = body.to_value();
        let container = if use_dsse {
            let payload = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
            Container::Dsse(dsse::sign(PAYLOAD_TYPE, &payload, key).map_err(|e| e.to_string())?)
        } else {
            let sig = key
                .sign(&cjson::encode(&value)?)
                .map_err(|e| e.to_string())?;
            Container::Metablock(vec![(key.public().keyid().to_owned(), hex::encode(sig))])
        };
        Ok(Document { body, container })
    }

    /// The file form: pretty JSON with sorted keys.
    pub fn to_json(&self) -> String {
        let value = match &self.container {
            Container::Metablock(sigs) => serde_json::json!({
                "signatures": sigs
                    .iter()
                    .map(|(keyid, sig)| serde_json::json!({"keyid": keyid, "sig": sig}))
                    .collect::<Vec<_>>(),
                "signed": sorted(self.body.to_value()),
            }),
            Container::Dsse(env) => serde_json::to_value(env).unwrap_or(Value::Null),
        };
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The same value with object keys in sorted order (serde_json here keeps insertion order).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Standard base64, then the URL-safe alphabet, as securesystemslib accepts both.
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).or_else(|_| B64_URL.decode(text)).ok()
}
