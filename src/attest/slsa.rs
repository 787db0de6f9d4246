//! SLSA provenance v1 for packages and policy bundles: the in-toto Statement v1 whose subject
//! is the archive and whose predicate says how it was built (build type, the parameters,
//! every source file as a resolved dependency, the builder), signed as a DSSE envelope and
//! verified against the keys allowed to sign.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dsse::{self, Envelope};
use super::keys::{PublicKey, SigningKey};

/// `_type` of in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance v1 predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// The DSSE payload type of in-toto statements.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// What `buildType` means: `docs/provenance.md`, "SLSA provenance".
pub const BUILD_TYPE: &str = "https://maestro-conductor.dev/package/build/v1";
/// The builder's id.
pub const BUILDER_ID: &str = "https://maestro-conductor.dev/maestro";

/// A statement subject or resolved dependency: a name and its digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// Name (subject) or path (dependency).
    pub name: String,
    /// Algorithm → lowercase hex.
    pub digest: BTreeMap<String, String>,
}

impl Resource {
    /// A resource with a SHA-256 digest.
    pub fn sha256(name: &str, hex: &str) -> Resource {
        Resource {
            name: name.to_owned(),
            digest: BTreeMap::from([("sha256".to_owned(), hex.to_owned())]),
        }
    }
}

/// The parts of a provenance statement a verifier checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// What was built.
    pub subjects: Vec<Resource>,
    /// The build's external parameters.
    pub external_parameters: Value,
    /// The sources.
    pub dependencies: Vec<Resource>,
    /// Who built it.
    pub builder_id: String,
}

/// The statement for `subject`, built with `parameters` from `dependencies`.
pub fn statement(subject: Resource, parameters: Value, dependencies: &[Resource]) -> Value {
    serde_json::json!({
        "_type": STATEMENT_TYPE,
        "subject": [subject],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": parameters,
                "internalParameters": {"maestroVersion": env!("CARGO_PKG_VERSION")},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"maestro": env!("CARGO_PKG_VERSION")}},
            },
        },
    })
}

/// Signs a statement into a DSSE envelope.
pub fn sign(statement: &Value, key: &SigningKey) -> Result<Envelope, String> {
    let payload = serde_json::to_vec(statement).map_err(|e| e.to_string())?;
    dsse::sign(PAYLOAD_TYPE, &payload, key).map_err(|e| e.to_string())
}

/// Verifies an envelope made by one of `keys` and reads its provenance; says what is wrong.
pub fn verify(envelope: &Envelope, keys: &[PublicKey]) -> Result<(Provenance, String), String> {
    if envelope.signatures.iter().any(|s| s.keyid.is_empty()) {
        return Err("a provenance signature has no keyid".into());
    }
    let verified = envelope
        .verify(PAYLOAD_TYPE, keys)
        .map_err(|e| format!("provenance signature: {e}"))?;
    let statement: Value = serde_json::from_slice(&verified.payload)
        .map_err(|e| format!("provenance payload is not JSON: {e}"))?;
    let text = |pointer: &str| statement.pointer(pointer).and_then(Value::as_str);
    if text("/_type") != Some(STATEMENT_TYPE) {
        return Err(format!("provenance _type is not {STATEMENT_TYPE}"));
    }
    if text("/predicateType") != Some(PREDICATE_TYPE) {
        return Err(format!("provenance predicateType is not {PREDICATE_TYPE}"));
    }
    if text("/predicate/buildDefinition/buildType") != Some(BUILD_TYPE) {
        return Err(format!("provenance buildType is not {BUILD_TYPE}"));
    }
    let resources = |pointer: &str| -> Result<Vec<Resource>, String> {
        serde_json::from_value(statement.pointer(pointer).cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("provenance {pointer}: {e}"))
    };
    let subjects = resources("/subject")?;
    if subjects.is_empty() {
        return Err("provenance has no subject".into());
    }
    let provenance = Provenance {
        subjects,
        external_parameters: statement
            .pointer("/predicate/buildDefinition/externalParameters")
            .cloned()
            .ok_or("provenance has no externalParameters")?,
        dependencies: resources("/predicate/buildDefinition/resolvedDependencies")?,
        builder_id: text("/predicate/runDetails/builder/id")
            .ok_or("provenance has no runDetails.builder.id")?
            .to_owned(),
    };
    Ok((provenance, verified.keyid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::keys::Algorithm;

    #[test]
    fn signed_provenance_verifies_only_with_its_key_and_intact() {
        let key = SigningKey::generate(Algorithm::EcdsaP256).unwrap();
        let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let stmt = statement(
            Resource::sha256("hello-1.0.0.mpkg", &"a".repeat(64)),
            serde_json::json!({"name": "hello"}),
            &[Resource::sha256("maestro.yaml", &"b".repeat(64))],
        );
        let env = sign(&stmt, &key).unwrap();
        let (p, keyid) = verify(&env, &[other.public().clone(), key.public().clone()]).unwrap();
        assert_eq!(keyid, key.public().keyid());
        assert_eq!(p.subjects[0].name, "hello-1.0.0.mpkg");
        assert_eq!(p.dependencies[0].digest["sha256"], "b".repeat(64));
        assert_eq!(p.builder_id, BUILDER_ID);
        assert!(verify(&env, &[other.public().clone()]).is_err());
        let mut edited = env.clone();
        let tampered = serde_json::to_vec(&serde_json::json!({"_type": STATEMENT_TYPE})).unwrap();
        use base64::Engine as _;
        edited.payload = base64::engine::general_purpose::STANDARD.encode(tampered);
        assert!(
            verify(&edited, &[key.public().clone()])
                .unwrap_err()
                .contains("signature")
        );
    }
}
