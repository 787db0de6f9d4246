//! Fuzzes configuration loading (TOML and environment values): errors name a layer and a
//! problem, never a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use maestro::config::{Layer, Overrides, load};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (file, env_value) = text.split_once('\u{0}').unwrap_or((text, ""));
    let env = BTreeMap::from([("MAESTRO_LIMITS__RUNNERS".to_string(), env_value.to_string())]);
    let _ = load(&[Layer { name: "fuzz".into(), text: file }], &env, &Overrides::default());
    if let Err(e) = load(&[Layer { name: "fuzz".into(), text: file }], &BTreeMap::new(), &Overrides::default()) {
        assert!(!e.origin.is_empty() && !e.message.is_empty());
    }
});
