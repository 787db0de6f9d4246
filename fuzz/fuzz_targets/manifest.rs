//! Fuzzes manifest parsing and validation (YAML and JSON): any input gives a manifest or
//! problems, never a panic; a valid manifest's digest is stable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maestro::domain::validate::{self, Context};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(v) = validate::load(text, &Context::default()) {
        let again = validate::validate(v.document.clone(), &Context::default()).expect("a valid document stays valid");
        assert_eq!(again.digest, v.digest);
        let deps = validate::dependencies(&v.manifest);
        assert_eq!(deps.len(), v.manifest.tasks.len());
    }
});
