//! Fuzzes disclosure pack verification: any bytes give a report (valid or with failed
//! checks), never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maestro::app::disclosure::verify::verify;
use maestro::attest::keys::PublicKey;
use maestro::attest::receipt::Trust;

fn trust() -> &'static Trust {
    static TRUST: OnceLock<Trust> = OnceLock::new();
    TRUST.get_or_init(|| {
        let pem = include_str!("../../fixtures/conformance/receipts/key.pub.pem");
        Trust {
            keys: vec![PublicKey::from_pem(pem).expect("the vector key parses")],
            origin: None,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let report = verify(data, trust());
    assert!(!report.checks.is_empty());
});
