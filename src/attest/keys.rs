//! Signing and verification keys: Ed25519 (default) or ECDSA P-256, generated at first start
//! (PKCS#8 PEM, file mode 0600) or loaded from a file; key ids in the securesystemslib /
//! in-toto convention; checkpoint-note signing with the same key.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sigstore::crypto::signing_key::SigStoreKeyPair;
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, Signature, SigningScheme};

use super::AttestError;
use crate::tlog;

/// Signature algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256, ASN.1 DER signatures.
    EcdsaP256,
}

impl Algorithm {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
        }
    }

    fn scheme(self) -> SigningScheme {
        match self {
            Algorithm::Ed25519 => SigningScheme::ED25519,
            Algorithm::EcdsaP256 => SigningScheme::ECDSA_P256_SHA256_ASN1,
        }
    }
}

const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A public key with everything verifiers need to refer to it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    algorithm: Algorithm,
    spki_der: Vec<u8>,
    pem: String,
    keyid: String,
    verifier: CosignVerificationKey,
}

impl PublicKey {
    /// Parses a PEM (`PUBLIC KEY`) public key.
    pub fn from_pem(pem: &str) -> Result<Self, AttestError> {
        let parsed = pem_block(pem)?;
        Self::from_der(&parsed)
    }

    /// Parses a DER SubjectPublicKeyInfo.
    pub fn from_der(der: &[u8]) -> Result<Self, AttestError> {
        let verifier = CosignVerificationKey::try_from_der(der)
            .map_err(|e| AttestError::Key(format!("not a supported public key: {e}")))?;
        let algorithm = match &verifier {
            CosignVerificationKey::ED25519(_) => Algorithm::Ed25519,
            CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_) => Algorithm::EcdsaP256,
            _ => {
                return Err(AttestError::Key(
                    "unsupported key type: use ed25519 or ecdsa-p256".into(),
                ));
            }
        };
        let pem = to_pem("PUBLIC KEY", der);
        let keyid = securesystemslib_keyid(algorithm, der, &pem)?;
        Ok(PublicKey {
            algorithm,
            spki_der: der.to_vec(),
            pem,
            keyid,
            verifier,
        })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// PEM text.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// Key id: hex SHA-256 of the OLPC canonical JSON of the securesystemslib key
    /// (`keytype`, `scheme`, `keyval`), as in-toto and DSSE tooling compute it.
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The raw 32-byte Ed25519 key, for Ed25519 keys.
    pub fn ed25519_raw(&self) -> Option<[u8; 32]> {
        (self.algorithm == Algorithm::Ed25519
            && self.spki_der.len() == 44
            && self.spki_der.starts_with(&ED25519_SPKI_PREFIX))
        .then(|| {
            let mut raw = [0u8; 32];
            raw.copy_from_slice(&self.spki_der[12..]);
            raw
        })
    }

    /// The securesystemslib key object (`keytype`, `scheme`, `keyval`).
    pub fn securesystemslib_key(&self) -> serde_json::Value {
        key_object(self.algorithm, &self.spki_der, &self.pem)
    }

    /// Checks a signature over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), AttestError> {
        self.verifier
            .verify_signature(Signature::Raw(sig), msg)
            .map_err(|_| {
                AttestError::BadSignature(format!(
                    "signature does not verify with key {}",
                    self.keyid
                ))
            })
    }

    /// The signed-note key id of this key for the given key name.
    pub fn note_key_id(&self, name: &str) -> u32 {
        match self.ed25519_raw() {
            Some(raw) => tlog::ed25519_note_key_id(name, &raw),
            None => tlog::ecdsa_note_key_id(&self.spki_der),
        }
    }

    /// A checkpoint verifier for this key under a key name (the log origin).
    pub fn note_verifier(&self, name: &str) -> NoteKey<'_> {
        NoteKey {
            name: name.to_owned(),
            key: self,
        }
    }
}

/// A [`PublicKey`] bound to a signed-note key name.
pub struct NoteKey<'a> {
    name: String,
    key: &'a PublicKey,
}

impl tlog::NoteVerifier for NoteKey<'_> {
    fn key_name(&self) -> &str {
        &self.name
    }
    fn note_key_id(&self) -> u32 {
        self.key.note_key_id(&self.name)
    }
    fn verify_note(&self, text: &[u8], sig: &[u8]) -> bool {
        self.key.verify(text, sig).is_ok()
    }
}

fn key_object(algorithm: Algorithm, der: &[u8], pem: &str) -> serde_json::Value {
    match algorithm {
        Algorithm::Ed25519 => serde_json::json!({
            "keytype": "ed25519",
            "scheme": "ed25519",
            "keyval": {"public": hex::encode(&der[der.len().saturating_sub(32)..])},
        }),
        Algorithm::EcdsaP256 => serde_json::json!({
            "keytype": "ecdsa",
            "scheme": "ecdsa-sha2-nistp256",
            "keyval": {"public": pem},
        }),
    }
}

fn securesystemslib_keyid(
    algorithm: Algorithm,
    der: &[u8],
    pem: &str,
) -> Result<String, AttestError> {
    use serde::Serialize as _;
    let value = key_object(algorithm, der, pem);
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .map_err(|e| AttestError::Key(format!("canonical key encoding: {e}")))?;
    Ok(hex::encode(Sha256::digest(&buf)))
}

fn to_pem(tag: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

fn pem_block(pem: &str) -> Result<Vec<u8>, AttestError> {
    use base64::Engine as _;
    let begin = pem.find("-----BEGIN ").ok_or_else(|| {
        AttestError::Key("no PEM block (expected -----BEGIN PUBLIC KEY-----)".into())
    })?;
    let rest = &pem[begin..];
    let header_end = rest
        .find("-----\n")
        .or_else(|| rest.find("-----\r\n"))
        .ok_or_else(|| AttestError::Key("malformed PEM header".into()))?;
    let label = &rest["-----BEGIN ".len()..header_end];
    if label != "PUBLIC KEY" {
        return Err(AttestError::Key(format!(
            "expected a PUBLIC KEY PEM block, found {label:?}"
        )));
    }
    let body_start = header_end + 5;
    let end = rest
        .find("-----END ")
        .ok_or_else(|| AttestError::Key("PEM block has no END line".into()))?;
    if end < body_start {
        return Err(AttestError::Key("malformed PEM block".into()));
    }
    let body: String = rest[body_start..end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| AttestError::Key(format!("PEM body is not base64: {e}")))
}

/// A private signing key.
pub struct SigningKey {
    signer: SigStoreSigner,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("keyid", &self.public.keyid)
            .field("algorithm", &self.public.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate(algorithm: Algorithm) -> Result<Self, AttestError> {
        let signer = algorithm.scheme().create_signer().map_err(|e| {
            AttestError::Key(format!("generating a {} key: {e}", algorithm.as_str()))
        })?;
        Self::from_signer(signer)
    }

    fn from_signer(signer: SigStoreSigner) -> Result<Self, AttestError> {
        let pair = signer
            .to_sigstore_keypair()
            .map_err(|e| AttestError::Key(e.to_string()))?;
        let der = pair
            .public_key_to_der()
            .map_err(|e| AttestError::Key(e.to_string()))?;
        let public = PublicKey::from_der(&der)?;
        Ok(SigningKey { signer, public })
    }

    /// Parses a PKCS#8 PEM private key (Ed25519 or ECDSA P-256).
    pub fn from_pem(pem: &str) -> Result<Self, AttestError> {
        let pair = SigStoreKeyPair::from_pem(pem.as_bytes()).map_err(|e| {
            AttestError::Key(format!(
                "not a PKCS#8 PEM private key of a supported type (ed25519, ecdsa-p256): {e}"
            ))
        })?;
        let scheme = match &pair {
            SigStoreKeyPair::ED25519(_) => SigningScheme::ED25519,
            SigStoreKeyPair::ECDSA(_) => SigningScheme::ECDSA_P256_SHA256_ASN1,
            SigStoreKeyPair::RSA(_) => {
                return Err(AttestError::Key(
                    "RSA keys are not supported: use ed25519 or ecdsa-p256".into(),
                ));
            }
        };
        let signer = pair
            .to_sigstore_signer(&scheme)
            .map_err(|e| AttestError::Key(format!("unsupported private key: {e}")))?;
        Self::from_signer(signer)
    }

    /// PKCS#8 PEM of the private key.
    pub fn to_pem(&self) -> Result<String, AttestError> {
        let pair = self
            .signer
            .to_sigstore_keypair()
            .map_err(|e| AttestError::Key(e.to_string()))?;
        pair.private_key_to_pem()
            .map(|z| z.to_string())
            .map_err(|e| AttestError::Key(e.to_string()))
    }

    /// Loads the key at `path`, or generates one there (mode 0600) if the file does not exist.
    /// Returns the key and whether it was created.
    pub fn load_or_generate(
        path: &Path,
        algorithm: Algorithm,
    ) -> Result<(Self, bool), AttestError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private_mode(path)?;
                let key = Self::from_pem(&text)
                    .map_err(|e| AttestError::Key(format!("{}: {e}", path.display())))?;
                Ok((key, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate(algorithm)?;
                write_private(path, key.to_pem()?.as_bytes())?;
                Ok((key, true))
            }
            Err(e) => Err(AttestError::Key(format!("reading {}: {e}", path.display()))),
        }
    }

    /// Loads a key file that must exist.
    pub fn load(path: &Path) -> Result<Self, AttestError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AttestError::Key(format!("reading {}: {e}", path.display())))?;
        check_private_mode(path)?;
        Self::from_pem(&text).map_err(|e| AttestError::Key(format!("{}: {e}", path.display())))
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, AttestError> {
        self.signer
            .sign(msg)
            .map_err(|e| AttestError::Key(format!("signing failed: {e}")))
    }

    /// A checkpoint signer under a key name (the log origin).
    pub fn note_signer<'a>(&'a self, name: &'a str) -> NoteSigningKey<'a> {
        NoteSigningKey { name, key: self }
    }
}

/// A [`SigningKey`] bound to a signed-note key name.
pub struct NoteSigningKey<'a> {
    name: &'a str,
    key: &'a SigningKey,
}

impl tlog::NoteSigner for NoteSigningKey<'_> {
    fn key_name(&self) -> &str {
        self.name
    }
    fn note_key_id(&self) -> u32 {
        self.key.public.note_key_id(self.name)
    }
    fn sign_note(&self, text: &[u8]) -> Result<Vec<u8>, String> {
        self.key.sign(text).map_err(|e| e.to_string())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AttestError> {
    use std::io::Write as _;
    let err = |e: std::io::Error| AttestError::Key(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    Ok(())
}

fn check_private_mode(path: &Path) -> Result<(), AttestError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path)
            .map_err(|e| AttestError::Key(format!("reading {}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AttestError::Key(format!(
                "{} is readable by other users (mode {mode:o}); run chmod 600 on it",
                path.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_and_verify_for_both_algorithms() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
            let key = SigningKey::generate(alg).unwrap();
            let sig = key.sign(b"msg").unwrap();
            key.public().verify(b"msg", &sig).unwrap();
            assert!(key.public().verify(b"other", &sig).is_err());
            let back = SigningKey::from_pem(&key.to_pem().unwrap()).unwrap();
            assert_eq!(back.public().keyid(), key.public().keyid());
            let public = PublicKey::from_pem(key.public().pem()).unwrap();
            assert_eq!(public.algorithm(), alg);
            assert_eq!(public.keyid().len(), 64);
            assert_eq!(public.ed25519_raw().is_some(), alg == Algorithm::Ed25519);
        }
    }

    #[test]
    fn key_files_are_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/appliance.pem");
        let (a, created) = SigningKey::load_or_generate(&path, Algorithm::Ed25519).unwrap();
        assert!(created);
        let (b, created) = SigningKey::load_or_generate(&path, Algorithm::EcdsaP256).unwrap();
        assert!(!created);
        assert_eq!(a.public().keyid(), b.public().keyid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = SigningKey::load(&path).unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn bad_key_material_is_refused_clearly() {
        assert!(SigningKey::from_pem("nonsense").is_err());
        assert!(
            PublicKey::from_pem("nonsense")
                .unwrap_err()
                .to_string()
                .contains("no PEM block")
        );
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let err = PublicKey::from_pem(&key.to_pem().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a PUBLIC KEY"), "{err}");
    }

    #[test]
    fn checkpoints_sign_with_real_keys() {
        for alg in [Algorithm::Ed25519, Algorithm::EcdsaP256] {
            let key = SigningKey::generate(alg).unwrap();
            let cp = tlog::Checkpoint {
                origin: "maestro.test/log".into(),
                size: 3,
                root: [1; 32],
            };
            let note = tlog::sign_checkpoint(&cp, &key.note_signer("maestro.test/log")).unwrap();
            let opened =
                tlog::open_checkpoint(&note, &key.public().note_verifier("maestro.test/log"))
                    .unwrap();
            assert_eq!(opened, cp);
            let other = SigningKey::generate(alg).unwrap();
            assert!(
                tlog::open_checkpoint(&note, &other.public().note_verifier("maestro.test/log"))
                    .is_err()
            );
        }
    }
}
