//! Fuzzes bearer-token verification (the JWT header, claims and signature parsing) and the
//! issuer's key set (JWKS) it is checked against: every input is refused or accepted with a
//! reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maestro::app::oidc::Oidc;
use maestro::config::OidcConfig;

const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA"},{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k2"}]}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (token, jwks) = text.split_once('\u{0}').unwrap_or((text, JWKS));
    let path = std::env::temp_dir().join(format!("maestro-fuzz-jwks-{}.json", std::process::id()));
    if std::fs::write(&path, jwks).is_err() {
        return;
    }
    let config = OidcConfig {
        issuer: Some("https://issuer.test".into()),
        jwks_file: Some(path),
        algorithms: vec!["EdDSA".into(), "ES256".into(), "RS256".into()],
        ..OidcConfig::default()
    };
    let oidc = Oidc::from_config(&config).unwrap().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    if let Err(e) = rt.block_on(oidc.verify(token)) {
        assert!(!e.reason().is_empty());
    }
});
