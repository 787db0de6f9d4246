//! Fuzzes in-toto metadata and verification: any bytes as a layout (signed by the reference
//! fixture's owner key) with the reference links, and any bytes as a link under the reference
//! layout, give a verification report, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maestro::attest::intoto::{Document, LinkFile, verify};
use maestro::attest::keys::PublicKey;

const OWNER: &str = include_str!("../../fixtures/intoto/reference/keys/owner.pub");
const LAYOUT: &[u8] = include_bytes!("../../fixtures/intoto/reference/layouts/strict.layout");
const SIGN: &[u8] = include_bytes!("../../fixtures/intoto/reference/links/classic/sign.a12b03a0.link");

fuzz_target!(|data: &[u8]| {
    let owner = [PublicKey::from_pem(OWNER).expect("the fixture key parses")];
    let now = jiff::Timestamp::UNIX_EPOCH;
    let sign = LinkFile {
        source: "sign.a12b03a0.link".into(),
        document: Document::parse(SIGN),
    };
    let fuzzed = LinkFile {
        source: "build.da9b5e1b.link".into(),
        document: Document::parse(data),
    };
    if let Ok(layout) = Document::parse(data) {
        let _ = verify(&layout, &owner, std::slice::from_ref(&sign), now).text();
    }
    let layout = Document::parse(LAYOUT).expect("the fixture layout parses");
    let report = verify(&layout, &owner, &[fuzzed, sign], now);
    let _ = report.text();
});
