//! DSSE envelopes (Dead Simple Signing Envelope v1): pre-authentication encoding, signing
//! and verification against trusted keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::AttestError;
use super::keys::{PublicKey, SigningKey};

/// A DSSE envelope in its JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Base64 of the payload bytes.
    pub payload: String,
    /// Media type of the payload.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Signatures over the PAE of type and payload.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Key id of the signing key (securesystemslib convention).
    #[serde(default)]
    pub keyid: String,
    /// Base64 signature.
    pub sig: String,
}

/// DSSE v1 pre-authentication encoding: `DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Signs `payload` into an envelope with one signature.
pub fn sign(payload_type: &str, payload: &[u8], key: &SigningKey) -> Result<Envelope, AttestError> {
    let sig = key.sign(&pae(payload_type, payload))?;
    Ok(Envelope {
        payload: B64.encode(payload),
        payload_type: payload_type.to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: key.public().keyid().to_owned(),
            sig: B64.encode(sig),
        }],
    })
}

/// A verified envelope: its payload and the key that signed it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Decoded payload bytes.
    pub payload: Vec<u8>,
    /// Key id of the trusted key whose signature verified.
    pub keyid: String,
}

impl Envelope {
    /// Decodes the payload without checking signatures.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, AttestError> {
        B64.decode(&self.payload)
            .map_err(|e| AttestError::Format(format!("envelope payload is not base64: {e}")))
    }

    /// Verifies that at least one signature was made by one of `trusted` over this
    /// envelope's payload type and payload.
    pub fn verify(
        &self,
        expected_type: &str,
        trusted: &[PublicKey],
    ) -> Result<Verified, AttestError> {
        if self.payload_type != expected_type {
            return Err(AttestError::Format(format!(
                "payloadType is {:?}, expected {expected_type:?}",
                self.payload_type
            )));
        }
        let payload = self.payload_bytes()?;
        if self.signatures.is_empty() {
            return Err(AttestError::BadSignature(
                "the envelope has no signatures".into(),
            ));
        }
        let message = pae(&self.payload_type, &payload);
        let mut tried = Vec::new();
        for sig in &self.signatures {
            let Ok(raw) = B64.decode(&sig.sig) else {
                tried.push(format!(
                    "signature with keyid {:?} is not base64",
                    sig.keyid
                ));
                continue;
            };
            // A keyid names the key; an empty one means "try every trusted key".
            let candidates = trusted
                .iter()
                .filter(|k| sig.keyid.is_empty() || sig.keyid == k.keyid());
            let mut matched = false;
            for key in candidates {
                matched = true;
                if key.verify(&message, &raw).is_ok() {
                    return Ok(Verified {
                        payload,
                        keyid: key.keyid().to_owned(),
                    });
                }
                tried.push(format!("signature by {} does not verify", key.keyid()));
            }
            if !matched {
                tried.push(format!("keyid {:?} is not a trusted key", sig.keyid));
            }
        }
        Err(AttestError::BadSignature(tried.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::keys::Algorithm;

    #[test]
    fn pae_matches_the_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn envelopes_verify_only_with_the_right_key_and_payload() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let other = SigningKey::generate(Algorithm::EcdsaP256).unwrap();
        let env = sign("application/x", b"{}", &key).unwrap();
        let v = env
            .verify("application/x", &[key.public().clone()])
            .unwrap();
        assert_eq!(v.payload, b"{}");
        assert!(
            env.verify("application/y", &[key.public().clone()])
                .is_err()
        );
        let err = env
            .verify("application/x", &[other.public().clone()])
            .unwrap_err();
        assert!(err.to_string().contains("not a trusted key"), "{err}");
        let mut tampered = env.clone();
        tampered.payload = B64.encode(b"{\"x\":1}");
        assert!(
            tampered
                .verify("application/x", &[key.public().clone()])
                .is_err()
        );
        let mut anon = env.clone();
        anon.signatures[0].keyid.clear();
        assert!(
            anon.verify(
                "application/x",
                &[other.public().clone(), key.public().clone()]
            )
            .is_ok()
        );
    }
}
