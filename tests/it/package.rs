//! Workflow packages and policy bundles end to end with the real binary: deterministic
//! builds, signing, verification of the release directory under the repository's layout,
//! the same directory checked by the reference `in-toto-verify`, the SLSA provenance by
//! securesystemslib and its Sigstore bundle by `@sigstore/verify`; and every way a package
//! can be unsigned, tampered, expired or wrongly signed, each refused with its reason.

use std::path::{Path, PathBuf};

use crate::support::{Scratch, openssl_keys};

fn interop(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(path)
}

fn require(path: &Path, what: &str) {
    assert!(
        path.exists(),
        "{what} is not installed (scripts/test installs it)"
    );
}

/// A scratch directory with release keys (openssl), package and bundle sources, and two
/// layouts (valid, expired) made with `maestro attest layout`.
pub(crate) struct Site(Scratch);

impl std::ops::Deref for Site {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Site {
    pub(crate) fn new() -> Site {
        let s = Site(Scratch::new());
        openssl_keys(
            s.path(),
            &[
                ("owner", "ed25519"),
                ("builder", "ed25519"),
                ("signer", "p256"),
                ("intruder", "p256"),
            ],
        );
        std::fs::create_dir_all(s.path().join("src/hello/files")).unwrap();
        s.write(
            "src/hello/maestro.yaml",
            "name: hello\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - id: greet\n    \
             uses: builtin/echo\n    with:\n      message: hello\n",
        );
        s.write("src/hello/files/greeting.txt", "hello\n");
        std::fs::create_dir_all(s.path().join("src/policy")).unwrap();
        s.write(
            "src/policy/gate.rego",
            "package mc.gate\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.ok\n",
        );
        s.write("src/policy/data.json", "{\"limits\": {\"max\": 3}}\n");
        let template = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/provenance/INTOTO_LAYOUT.yaml"
        );
        for (out, extra) in [
            ("root.layout", None),
            ("expired.layout", Some("2020-01-01T00:00:00Z")),
        ] {
            let mut args = vec![
                "attest",
                "layout",
                "--template",
                template,
                "--key",
                "owner.pem",
                "--functionary",
                "builder=builder.pub",
                "--functionary",
                "signer=signer.pub",
                "--out",
                out,
            ];
            if let Some(expires) = extra {
                args.extend(["--expires", expires]);
            }
            s.ok(&args);
        }
        s
    }

    fn bundle_build(&self, version: &str) -> (i32, String) {
        self.maestro(&[
            "bundle",
            "build",
            "src/policy",
            "--name",
            "gate",
            "--version",
            version,
            "--key",
            "builder.pem",
        ])
    }

    fn verify(&self, archive: &str, layout: &str) -> (i32, String) {
        let noun = if archive.ends_with(".mbundle") {
            "bundle"
        } else {
            "package"
        };
        self.maestro(&[
            noun,
            "verify",
            archive,
            "--layout",
            layout,
            "--key",
            "owner.pub",
        ])
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path().join(name)).unwrap()
    }
}

const PKG: &str = "dist/hello-1.0.0/hello-1.0.0.mpkg";

#[test]
fn a_package_builds_reproducibly_signs_and_verifies_with_every_peer() {
    let s = Site::new();
    let out = s.ok(&["package", "build", "src/hello", "--key", "builder.pem"]);
    assert!(out.contains("package hello@1.0.0 sha256:"), "{out}");
    let first = s.bytes(PKG);
    s.ok(&[
        "package",
        "build",
        "src/hello",
        "--key",
        "builder.pem",
        "--out-dir",
        "again",
    ]);
    assert_eq!(
        first,
        s.bytes("again/hello-1.0.0/hello-1.0.0.mpkg"),
        "same input, same bytes"
    );

    // Built but not signed.
    let (code, out) = s.verify(PKG, "root.layout");
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("link not found: step \"sign\""), "{out}");

    s.ok(&["package", "sign", PKG, "--key", "signer.pem"]);
    let (code, out) = s.verify(PKG, "root.layout");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the package verifies"), "{out}");
    assert!(out.contains("pass  provenance"), "{out}");

    // The reference in-toto agrees on the release directory.
    let in_toto_verify = interop("intoto/.venv/bin/in-toto-verify");
    require(&in_toto_verify, "the reference in-toto");
    let (code, out) = s.run(
        in_toto_verify.to_str().unwrap(),
        &[
            "-l",
            "root.layout",
            "--verification-keys",
            "owner.pub",
            "--link-dir",
            "dist/hello-1.0.0",
        ],
    );
    assert_eq!(code, 0, "in-toto-verify: {out}");

    // securesystemslib verifies the provenance envelope; @sigstore/verify its bundle.
    let python = interop("intoto/.venv/bin/python");
    let script = interop("intoto/dsse_verify.py");
    let envelope = format!("{PKG}.intoto.jsonl");
    let (code, out) = s.run(
        python.to_str().unwrap(),
        &[script.to_str().unwrap(), &envelope, "signer.pub"],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "https://slsa.dev/provenance/v1"),
        "{out}"
    );
    let (code, out) = s.run(
        python.to_str().unwrap(),
        &[script.to_str().unwrap(), &envelope, "intruder.pub"],
    );
    assert_eq!(code, 1, "{out}");
    let node_harness = interop("sigstore/verify.mjs");
    require(
        &interop("sigstore/node_modules/@sigstore/verify"),
        "the Sigstore harness",
    );
    let bundle = format!("{PKG}.sigstore.json");
    let (code, out) = s.run(
        "node",
        &[node_harness.to_str().unwrap(), &bundle, "signer.pub"],
    );
    assert_eq!(code, 0, "@sigstore/verify: {out}");
    let (code, out) = s.run(
        "node",
        &[node_harness.to_str().unwrap(), &bundle, "intruder.pub"],
    );
    assert_eq!(code, 1, "@sigstore/verify with another key: {out}");

    // Expired layout.
    let (code, out) = s.verify(PKG, "expired.layout");
    assert_eq!(code, 4);
    assert!(out.contains("FAIL layout-expired"), "{out}");

    // The archive replaced by another build: the chain no longer covers it.
    s.copy_dir("dist/hello-1.0.0", "swapped/hello-1.0.0");
    s.write("src/hello/files/greeting.txt", "hello, world\n");
    s.ok(&[
        "package",
        "build",
        "src/hello",
        "--key",
        "builder.pem",
        "--out-dir",
        "other",
    ]);
    std::fs::copy(
        s.path().join("other/hello-1.0.0/hello-1.0.0.mpkg"),
        s.path().join("swapped/hello-1.0.0/hello-1.0.0.mpkg"),
    )
    .unwrap();
    let (code, out) = s.verify("swapped/hello-1.0.0/hello-1.0.0.mpkg", "root.layout");
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("FAIL  recorded") && out.contains("the sign step recorded"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  provenance") && out.contains("another digest"),
        "{out}"
    );

    // Signed by a key the layout does not allow.
    s.ok(&[
        "package",
        "sign",
        "other/hello-1.0.0/hello-1.0.0.mpkg",
        "--key",
        "intruder.pem",
    ]);
    let (code, out) = s.verify("other/hello-1.0.0/hello-1.0.0.mpkg", "root.layout");
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("none of which may sign step \"sign\""),
        "{out}"
    );
    assert!(out.contains("FAIL  provenance"), "{out}");

    // The provenance edited.
    s.copy_dir("dist/hello-1.0.0", "edited/hello-1.0.0");
    let path = s
        .path()
        .join("edited/hello-1.0.0/hello-1.0.0.mpkg.intoto.jsonl");
    let mut env: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let sig = env["signatures"][0]["sig"].as_str().unwrap().to_owned();
    env["signatures"][0]["sig"] = format!("A{}", &sig[1..]).into();
    std::fs::write(&path, env.to_string()).unwrap();
    let (code, out) = s.verify("edited/hello-1.0.0/hello-1.0.0.mpkg", "root.layout");
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("FAIL  recorded"), "{out}");
    assert!(out.contains("FAIL  provenance"), "{out}");
}

#[test]
fn a_policy_bundle_builds_signs_and_verifies() {
    let s = Site::new();
    let args = [
        "bundle",
        "build",
        "src/policy",
        "--name",
        "gate",
        "--version",
        "1.2.0",
        "--key",
        "builder.pem",
    ];
    let out = s.ok(&args);
    assert!(out.contains("policy bundle gate@1.2.0"), "{out}");
    let archive = "dist/gate-1.2.0/gate-1.2.0.mbundle";
    s.ok(&["bundle", "sign", archive, "--key", "signer.pem"]);
    let (code, out) = s.verify(archive, "root.layout");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("the policy bundle verifies"), "{out}");
    // A package archive is not a bundle.
    std::fs::copy(
        s.path().join(archive),
        s.path().join("dist/gate-1.2.0/gate-1.2.0.mpkg"),
    )
    .unwrap();
    let (code, out) = s.maestro(&[
        "package",
        "verify",
        "dist/gate-1.2.0/gate-1.2.0.mpkg",
        "--layout",
        "root.layout",
        "--key",
        "owner.pub",
    ]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("is a policy bundle, not a package"), "{out}");
}

#[test]
fn bad_sources_are_refused_with_the_reason() {
    let s = Site::new();
    // No manifest.
    std::fs::create_dir_all(s.path().join("empty")).unwrap();
    s.write("empty/readme.txt", "x");
    let (code, out) = s.maestro(&["package", "build", "empty", "--key", "builder.pem"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("needs maestro.yaml"), "{out}");
    // An invalid manifest: its problems are listed.
    s.write(
        "empty/maestro.yaml",
        "name: x\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - id: a\n    uses: builtin/ech0\n",
    );
    let (code, out) = s.maestro(&["package", "build", "empty", "--key", "builder.pem"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("did you mean \"builtin/echo\""), "{out}");
    // A policy that does not compile.
    s.write(
        "src/policy/broken.rego",
        "package mc.broken\n\nallow if {\n",
    );
    let (code, out) = s.bundle_build("1.0.0");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("does not compile"), "{out}");
    // A version that is not semantic; a symbolic link.
    std::fs::remove_file(s.path().join("src/policy/broken.rego")).unwrap();
    let (code, out) = s.bundle_build("1.0");
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not a semantic version"), "{out}");
    std::os::unix::fs::symlink("/etc/passwd", s.path().join("src/hello/files/passwd")).unwrap();
    let (code, out) = s.maestro(&["package", "build", "src/hello", "--key", "builder.pem"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("files/passwd: a symbolic link"), "{out}");
    assert!(!s.path().join("dist").exists(), "nothing was written");
}

/// Starts an appliance whose policies come from a signed bundle release.
async fn start_appliance(
    data: &Path,
    bundle: Option<PathBuf>,
    layout: PathBuf,
    keys: Vec<PathBuf>,
    enforce: bool,
) -> Result<maestro::app::App, String> {
    let (text, _) = crate::support::config_text(data, "127.0.0.1:0", "");
    let mut config = maestro::config::load(
        &[maestro::config::Layer {
            name: "test".into(),
            text: &text,
        }],
        &Default::default(),
        &Default::default(),
    )
    .unwrap();
    config.policy.bundle = bundle;
    config.supply_chain.layout = Some(layout);
    config.supply_chain.layout_keys = keys;
    config.features.intoto_verify_enforce = enforce;
    maestro::app::App::start(config)
        .await
        .map_err(|e| e.to_string())
}

async fn start_with_bundle(
    s: &Site,
    data: &str,
    bundle: &str,
    keys: &[&str],
    enforce: bool,
) -> Result<maestro::app::App, String> {
    let keys = keys.iter().map(|k| s.path().join(k)).collect();
    start_appliance(
        &s.path().join(data),
        Some(s.path().join(bundle)),
        s.path().join("root.layout"),
        keys,
        enforce,
    )
    .await
}

fn audit(app: &maestro::app::App) -> Vec<(String, serde_json::Value)> {
    app.engine
        .store()
        .read()
        .unwrap()
        .audit_all(None, 10_000)
        .unwrap()
        .into_iter()
        .map(|e| {
            let kind = serde_json::to_value(e.kind).unwrap();
            (kind.as_str().unwrap().to_owned(), e.detail)
        })
        .collect()
}

#[tokio::test]
async fn a_policy_bundle_becomes_active_only_after_verification() {
    let s = Site::new();
    // The embedded policies, as a signed bundle, so the appliance works with them.
    let rego = concat!(env!("CARGO_MANIFEST_DIR"), "/policy/rego");
    s.ok(&[
        "bundle",
        "build",
        rego,
        "--name",
        "baseline",
        "--version",
        "1.0.0",
        "--key",
        "builder.pem",
    ]);
    let signed = "dist/baseline-1.0.0/baseline-1.0.0.mbundle";
    s.ok(&["bundle", "sign", signed, "--key", "signer.pem"]);
    s.ok(&[
        "bundle",
        "build",
        rego,
        "--name",
        "baseline",
        "--version",
        "1.1.0",
        "--key",
        "builder.pem",
    ]);
    let unsigned = "dist/baseline-1.1.0/baseline-1.1.0.mbundle";

    // Enforcing: the signed bundle becomes active; its activation says it verified.
    let app = start_with_bundle(&s, "data", signed, &["owner.pub"], true)
        .await
        .unwrap();
    let events = audit(&app);
    let rotated = events
        .iter()
        .find(|(k, _)| k == "supply_chain_keys_rotated")
        .unwrap();
    assert_eq!(rotated.1["added"].as_array().unwrap().len(), 1);
    let activated = events
        .iter()
        .find(|(k, _)| k == "policy_activated")
        .unwrap();
    assert_eq!(activated.1["verified"], true, "{}", activated.1);
    assert!(
        activated.1["source"]
            .as_str()
            .unwrap()
            .starts_with("baseline@1.0.0")
    );
    let digest = app.engine.policies().digest();
    app.engine.shutdown(std::time::Duration::from_secs(5)).await;
    drop(app);

    // Enforcing: the unsigned one is refused, the appliance does not start, and it is audited.
    let err = start_with_bundle(&s, "data", unsigned, &["owner.pub"], true)
        .await
        .err()
        .unwrap();
    assert!(
        err.contains("does not verify") && err.contains("link not found: step \"sign\""),
        "{err}"
    );
    // Permissive: it is used, with an audited warning; a key rotation is audited too.
    let app = start_with_bundle(&s, "data", unsigned, &["owner.pub", "intruder.pub"], false)
        .await
        .unwrap();
    let events = audit(&app);
    let unverified: Vec<&serde_json::Value> = events
        .iter()
        .filter(|(k, _)| k == "supply_chain_unverified")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(unverified.len(), 2, "{unverified:?}");
    assert_eq!(unverified[0]["refused"], true);
    assert_eq!(unverified[1]["refused"], false);
    assert_eq!(unverified[1]["package"], "baseline@1.1.0");
    let rotations: Vec<_> = events
        .iter()
        .filter(|(k, _)| k == "supply_chain_keys_rotated")
        .collect();
    assert_eq!(rotations.len(), 2);
    assert_eq!(rotations[1].1["removed"].as_array().unwrap().len(), 0);
    assert_eq!(rotations[1].1["added"].as_array().unwrap().len(), 1);
    // The same policies, so the same digest: no new activation.
    assert_eq!(app.engine.policies().digest(), digest);
    app.engine.shutdown(std::time::Duration::from_secs(5)).await;
    drop(app);

    // From the catalog: published and installed, then named `catalog:NAME@VERSION`; it is
    // verified again when it becomes active.
    let keys = vec![s.path().join("owner.pub")];
    let layout = s.path().join("root.layout");
    let data = s.path().join("catalog-data");
    let app = start_appliance(&data, None, layout.clone(), keys.clone(), true)
        .await
        .unwrap();
    let release = maestro::app::package::Release::from_dir(&s.path().join(signed)).unwrap();
    let admin = maestro::domain::actor::Actor::system();
    app.publish(&admin, &release.to_tar().unwrap()).unwrap();
    app.engine.shutdown(std::time::Duration::from_secs(5)).await;
    drop(app);
    let from_catalog = Some(PathBuf::from("catalog:baseline@1.0.0"));
    let err = start_appliance(
        &data,
        from_catalog.clone(),
        layout.clone(),
        keys.clone(),
        true,
    )
    .await
    .err()
    .unwrap();
    assert!(
        err.contains("no policy bundle baseline@1.0.0 is installed"),
        "{err}"
    );
    let app = start_appliance(&data, None, layout.clone(), keys.clone(), true)
        .await
        .unwrap();
    app.install(
        &admin,
        maestro::domain::package::Kind::PolicyBundle,
        "baseline",
        "1.0.0",
    )
    .unwrap();
    app.engine.shutdown(std::time::Duration::from_secs(5)).await;
    drop(app);
    // Enforcing, it starts only if it verifies (the same policies as embedded, so the same
    // digest and no new activation); with a key that did not sign the layout it is refused.
    let intruder = vec![s.path().join("intruder.pub")];
    let err = start_appliance(&data, from_catalog.clone(), layout.clone(), intruder, true)
        .await
        .err()
        .unwrap();
    assert!(
        err.contains("policy.bundle baseline@1.0.0 (catalog) does not verify"),
        "{err}"
    );
    let app = start_appliance(&data, from_catalog, layout, keys, true)
        .await
        .unwrap();
    let unverified: Vec<_> = audit(&app)
        .into_iter()
        .filter(|(k, _)| k == "supply_chain_unverified")
        .collect();
    assert_eq!(
        unverified.len(),
        1,
        "only the intruder's start: {unverified:?}"
    );
    assert_eq!(unverified[0].1["action"], "activate");
    assert_eq!(app.engine.policies().digest(), digest);
}

#[tokio::test]
async fn the_shipped_policy_bundle_verifies_and_holds_the_embedded_policies() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("packages");
    let dir = tempfile::tempdir().unwrap();
    let app = start_appliance(
        dir.path(),
        Some(root.join("baseline-1.0.0/baseline-1.0.0.mbundle")),
        root.join("root.layout"),
        vec![root.join("keys/owner.pub")],
        true,
    )
    .await
    .unwrap();
    let active = app.engine.policies().bundle().files.clone();
    assert_eq!(
        active,
        maestro::policy::bundle::PolicyBundle::embedded().files
    );
    let activated = audit(&app)
        .into_iter()
        .find(|(k, _)| k == "policy_activated")
        .unwrap();
    assert_eq!(activated.1["verified"], true);
    app.engine.shutdown(std::time::Duration::from_secs(5)).await;
}
