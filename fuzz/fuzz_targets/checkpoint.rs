//! Fuzzes checkpoint and key parsing: signed notes, checkpoint bodies, PEM public keys and
//! inclusion-proof checks on arbitrary input, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maestro::attest::keys::PublicKey;
use maestro::tlog;

fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| PublicKey::from_pem(include_str!("../../fixtures/conformance/receipts/key.pub.pem")).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = tlog::open_checkpoint(text, &key().note_verifier("maestro.conformance/log"));
    let _ = tlog::parse_body(text.as_bytes());
    let _ = PublicKey::from_pem(text);
    if data.len() >= 48 {
        let size = u64::from_le_bytes(data[0..8].try_into().unwrap());
        let index = u64::from_le_bytes(data[8..16].try_into().unwrap());
        let proof: Vec<tlog::Hash> = data[16..].chunks_exact(32).map(|c| c.try_into().unwrap()).collect();
        let _ = tlog::verify_inclusion(&proof, size, [0; 32], index, [1; 32]);
        let _ = tlog::verify_consistency(&proof, index, [0; 32], size, [1; 32]);
    }
});
