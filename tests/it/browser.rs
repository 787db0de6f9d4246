//! The console end to end in real headless Chromium (`tests/interop/console/e2e.mjs`,
//! playwright-core and Debian's chromium, JavaScript off) against a real `maestro serve` and
//! a real OpenID provider (`oidc-provider`): log in with code + PKCE, list, filter, open an
//! execution, search by digest and by deny reason, find another tenant's data nowhere, log
//! out, log in as the other tenant.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::oidc::{Provider, gen_keys};
use crate::support::{Server, config_text, free_port};

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/console")
}

fn submit(url: &str, token: &str, workflow: &str) -> Value {
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/executions?wait=30s"))
        .bearer_auth(token)
        .json(&json!({"workflow": workflow}))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap();
    match status {
        201 => body,
        403 => body["execution"].clone(),
        s => panic!("{workflow}: {s} {body}"),
    }
}

#[test]
fn a_person_uses_the_console_in_a_real_browser_with_a_real_openid_provider() {
    assert!(
        harness().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci` in tests/interop/console (scripts/test does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("op-keys.json");
    gen_keys(&keys);
    let provider = Provider::start(free_port(), &keys, 600);
    let port = free_port();
    let (text, tokens) = config_text(
        &dir.path().join("data"),
        &format!("127.0.0.1:{port}"),
        &format!(
            "[oidc]\nissuer = \"{}\"\nclient_id = \"maestro-console\"\n",
            provider.issuer
        ),
    );
    let config = dir.path().join("maestro.toml");
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config, port);
    let a = submit(&server.url, &tokens.acme_operator, "artifacts");
    let denied = submit(&server.url, &tokens.acme_operator, "policy-deny");
    let g = submit(&server.url, &tokens.globex_operator, "hello");
    assert_eq!(denied["status"], "denied");
    let input = json!({
        "base": server.url,
        "shots": PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-e2e"),
        "acme": {
            "exec": a["id"],
            "artifact": a["artifacts"][0]["digest"],
            "receipt": a["receipt"]["digest"],
            "denied": denied["id"],
            "reason": denied["decisions"].as_array().unwrap().iter()
                .flat_map(|d| d["reasons"].as_array().unwrap().iter())
                .map(|r| r["code"].clone()).next().unwrap(),
        },
        "globex": {"exec": g["id"], "receipt": g["receipt"]["digest"]},
    });
    let out = Command::new("node")
        .arg(harness().join("e2e.mjs"))
        .env("E2E", input.to_string())
        .current_dir(harness())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in [
        "log in with the OpenID provider",
        "search by digest",
        "search by deny reason",
        "another tenant's data is nowhere",
        "a globex user sees globex's data",
        "no CSP violation",
    ] {
        assert!(stdout.contains(&format!("ok {step}")), "{step}: {stdout}");
    }
    drop(server);
    drop(provider);
}
