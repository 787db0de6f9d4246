//! Export of a receipt as a Sigstore bundle v0.3 (`application/vnd.dev.sigstore.bundle.v0.3+json`)
//! with a public-key hint and the DSSE envelope, so Sigstore verifiers can check it offline
//! with the appliance's public key.

use sigstore_protobuf_specs::dev::sigstore::bundle::v1::{
    Bundle, VerificationMaterial, bundle, verification_material,
};
use sigstore_protobuf_specs::dev::sigstore::common::v1::PublicKeyIdentifier;
use sigstore_protobuf_specs::io::intoto;

use super::AttestError;
use super::dsse::Envelope;

/// Media type of Sigstore bundles v0.3.
pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Builds the bundle JSON for an envelope with exactly one signature.
pub fn sigstore_bundle(envelope: &Envelope) -> Result<serde_json::Value, AttestError> {
    use base64::Engine as _;
    let [signature] = envelope.signatures.as_slice() else {
        return Err(AttestError::Format(format!(
            "a Sigstore bundle carries exactly one signature; the envelope has {}",
            envelope.signatures.len()
        )));
    };
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&signature.sig)
        .map_err(|e| AttestError::Format(format!("signature is not base64: {e}")))?;
    let bundle = Bundle {
        media_type: MEDIA_TYPE.into(),
        verification_material: Some(VerificationMaterial {
            tlog_entries: Vec::new(),
            timestamp_verification_data: None,
            content: Some(verification_material::Content::PublicKey(
                PublicKeyIdentifier {
                    hint: signature.keyid.clone(),
                },
            )),
        }),
        content: Some(bundle::Content::DsseEnvelope(intoto::Envelope {
            payload: envelope.payload_bytes()?,
            payload_type: envelope.payload_type.clone(),
            signatures: vec![intoto::Signature {
                sig,
                keyid: signature.keyid.clone(),
            }],
        })),
    };
    serde_json::to_value(&bundle).map_err(|e| AttestError::Format(format!("bundle encoding: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::dsse;
    use crate::attest::keys::{Algorithm, SigningKey};

    #[test]
    fn bundle_carries_hint_and_envelope() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let env = dsse::sign("application/vnd.in-toto+json", b"{\"a\":1}", &key).unwrap();
        let b = sigstore_bundle(&env).unwrap();
        assert_eq!(b["mediaType"], MEDIA_TYPE);
        assert_eq!(
            b["verificationMaterial"]["publicKey"]["hint"],
            key.public().keyid()
        );
        assert_eq!(b["dsseEnvelope"]["payload"], env.payload);
        assert_eq!(
            b["dsseEnvelope"]["payloadType"],
            "application/vnd.in-toto+json"
        );
        assert_eq!(
            b["dsseEnvelope"]["signatures"][0]["sig"],
            env.signatures[0].sig
        );
    }
}
