//! Signing and attestation: appliance keys (via sigstore), DSSE envelopes, the receipt file
//! format and its offline verification, Sigstore bundle export, and in-toto layouts and links.
//!
//! Only this module imports `sigstore`, `sigstore_protobuf_specs` and `olpc-cjson`.

pub mod bundle;
pub mod dsse;
pub mod intoto;
pub mod keys;
pub mod receipt;
pub mod slsa;

/// What went wrong with keys, envelopes or receipts.
#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    /// A key could not be generated, read, parsed or used.
    #[error("key: {0}")]
    Key(String),
    /// A signature did not verify.
    #[error("signature: {0}")]
    BadSignature(String),
    /// An envelope or bundle is malformed.
    #[error("format: {0}")]
    Format(String),
}
