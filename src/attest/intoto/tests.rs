//! in-toto verification against metadata written by the reference implementation
//! (`fixtures/intoto/reference/`, made with in-toto 3.1.0) and against chains this module
//! records and signs itself, including every kind of tampering.

use std::collections::BTreeMap;
use std::path::Path;

use super::record::{Template, link, link_file_name, record_artifacts};
use super::*;
use crate::attest::keys::{Algorithm, PublicKey, SigningKey};

const REF: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/intoto/reference");

fn ref_key(name: &str) -> PublicKey {
    PublicKey::from_pem(&std::fs::read_to_string(format!("{REF}/keys/{name}.pub")).unwrap())
        .unwrap()
}

fn ref_doc(path: &str) -> Document {
    Document::parse(&std::fs::read(format!("{REF}/{path}")).unwrap()).unwrap()
}

fn ref_links(paths: &[&str]) -> Vec<LinkFile> {
    paths
        .iter()
        .map(|p| LinkFile {
            source: p.to_string(),
            document: Document::parse(&std::fs::read(format!("{REF}/links/{p}")).unwrap()),
        })
        .collect()
}

fn now() -> jiff::Timestamp {
    "2026-06-01T00:00:00Z".parse().unwrap()
}

fn checks(v: &Verification) -> Vec<Check> {
    v.failures.iter().map(|f| f.check).collect()
}

#[test]
fn reference_chains_verify() {
    for (layout, keys, links) in [
        (
            "strict",
            &["owner"][..],
            ["classic/build.da9b5e1b.link", "classic/sign.a12b03a0.link"],
        ),
        (
            "strict",
            &["owner"][..],
            ["dsse/build.da9b5e1b.link", "dsse/sign.a12b03a0.link"],
        ),
        (
            "strict-ec",
            &["owner-ec"][..],
            ["classic/build.da9b5e1b.link", "dsse/sign.a12b03a0.link"],
        ),
        (
            "strict-dsse",
            &["owner"][..],
            ["dsse/build.da9b5e1b.link", "classic/sign.a12b03a0.link"],
        ),
        (
            "strict-two-owners",
            &["owner", "owner-ec"][..],
            ["classic/build.da9b5e1b.link", "classic/sign.a12b03a0.link"],
        ),
    ] {
        let keys: Vec<PublicKey> = keys.iter().map(|k| ref_key(k)).collect();
        let v = verify(
            &ref_doc(&format!("layouts/{layout}.layout")),
            &keys,
            &ref_links(&links),
            now(),
        );
        assert!(v.valid, "{layout} {links:?}: {}", v.text());
        assert_eq!(v.steps.len(), 2);
        assert_eq!(
            v.steps[0].signed_by,
            vec![ref_key("builder").keyid().to_owned()]
        );
    }
}

#[test]
fn reference_threshold_two_needs_both_builders() {
    let owner = [ref_key("owner")];
    let layout = ref_doc("layouts/threshold2.layout");
    let both = ref_links(&[
        "classic/build.da9b5e1b.link",
        "classic/build.b7cc098d.link",
        "classic/sign.a12b03a0.link",
    ]);
    assert!(verify(&layout, &owner, &both, now()).valid);
    let one = ref_links(&["classic/build.da9b5e1b.link", "classic/sign.a12b03a0.link"]);
    let v = verify(&layout, &owner, &one, now());
    assert_eq!(checks(&v), vec![Check::Threshold], "{}", v.text());
    assert!(
        v.failures[0]
            .message
            .contains("requires at least 2 link(s)")
    );
}

#[test]
fn reference_tampering_is_caught() {
    let owner = [ref_key("owner")];
    let strict = ref_doc("layouts/strict.layout");
    // The archive changed between build and sign.
    let v = verify(
        &strict,
        &owner,
        &ref_links(&[
            "tampered/build.da9b5e1b.link",
            "tampered/sign.a12b03a0.link",
        ]),
        now(),
    );
    assert_eq!(checks(&v), vec![Check::Rule, Check::Rule], "{}", v.text());
    assert_eq!(
        v.failures[0].message,
        "expected_materials of step \"sign\": 'DISALLOW *' matched the following artifacts: \
         ['hello-1.0.0.tar.gz']"
    );
    assert!(
        v.failures[0]
            .detail
            .iter()
            .any(|l| l.starts_with("hello-1.0.0.tar.gz: ")
                && l.contains("differs from build's products")),
        "{}",
        v.text()
    );
    // The sprint plan's layout as written accepts it: it is refused as not strict.
    let v = verify(
        &ref_doc("layouts/plan.layout"),
        &owner,
        &ref_links(&[
            "tampered/build.da9b5e1b.link",
            "tampered/sign.a12b03a0.link",
        ]),
        now(),
    );
    assert!(!v.valid);
    assert!(v.failures.iter().all(|f| f.check == Check::Layout));
    assert!(
        v.text().contains("does not end with [\"DISALLOW\", \"*\"]"),
        "{}",
        v.text()
    );
    // Another key than the layout's.
    let v = verify(&strict, &[ref_key("intruder")], &[], now());
    assert_eq!(checks(&v), vec![Check::LayoutSignature]);
    assert!(v.failures[0].message.contains("no signature by key"));
    // An intruder's build link.
    let v = verify(
        &strict,
        &owner,
        &ref_links(&["intruder/build.572bd8a3.link", "classic/sign.a12b03a0.link"]),
        now(),
    );
    assert_eq!(checks(&v), vec![Check::Threshold], "{}", v.text());
    assert!(v.failures[0].detail[0].contains("none of which may sign step \"build\""));
    // A link recorded for a step the layout does not have.
    let v = verify(
        &strict,
        &owner,
        &ref_links(&["misnamed/bild.da9b5e1b.link", "classic/sign.a12b03a0.link"]),
        now(),
    );
    assert_eq!(
        checks(&v),
        vec![Check::Link, Check::Threshold],
        "{}",
        v.text()
    );
    assert!(
        v.failures[1]
            .message
            .starts_with("link not found: step \"build\"")
    );
    // Expired, and with an inspection.
    let links = ref_links(&["classic/build.da9b5e1b.link", "classic/sign.a12b03a0.link"]);
    let v = verify(&ref_doc("layouts/expired.layout"), &owner, &links, now());
    assert_eq!(checks(&v), vec![Check::LayoutExpired]);
    let v = verify(&ref_doc("layouts/inspect.layout"), &owner, &links, now());
    assert_eq!(checks(&v), vec![Check::Layout]);
    assert!(v.failures[0].message.contains("inspections"));
}

#[test]
fn edited_reference_metadata_is_caught() {
    let owner = [ref_key("owner")];
    let strict = ref_doc("layouts/strict.layout");
    let build =
        std::fs::read_to_string(format!("{REF}/links/classic/build.da9b5e1b.link")).unwrap();
    let sign = ref_links(&["classic/sign.a12b03a0.link"]).remove(0);
    // A product hash edited in the signed body.
    let edited = build.replacen("\"sha256\": \"2", "\"sha256\": \"3", 1);
    assert_ne!(edited, build);
    let v = verify(
        &strict,
        &owner,
        &[
            LinkFile {
                source: "build.da9b5e1b.link".into(),
                document: Document::parse(edited.as_bytes()),
            },
            sign.clone(),
        ],
        now(),
    );
    assert_eq!(checks(&v), vec![Check::Threshold], "{}", v.text());
    assert!(
        v.failures[0].detail[0].contains("does not verify"),
        "{}",
        v.text()
    );
    // The layout edited: its signature no longer verifies.
    let layout_text = std::fs::read_to_string(format!("{REF}/layouts/strict.layout")).unwrap();
    let edited = layout_text.replacen("\"threshold\": 1", "\"threshold\": 2", 1);
    let v = verify(
        &Document::parse(edited.as_bytes()).unwrap(),
        &owner,
        &[],
        now(),
    );
    assert_eq!(checks(&v), vec![Check::LayoutSignature]);
    assert!(v.failures[0].message.contains("does not verify"));
    // Unknown fields and broken JSON are named.
    let extra = build.replacen("\"_type\": \"link\"", "\"_type\": \"link\", \"x\": 1", 1);
    let err = Document::parse(extra.as_bytes()).unwrap_err();
    assert!(err.contains("unknown field `x`"), "{err}");
    let err =
        Document::parse(b"{\"signed\": {\"_type\": \"link\"}, \"signatures\": []}").unwrap_err();
    assert!(err.contains("missing field"), "{err}");
    assert!(
        Document::parse(b"[1]")
            .unwrap_err()
            .contains("expected a JSON object")
    );
    assert!(Document::parse(b"{").unwrap_err().starts_with("not JSON"));
}

/// A chain made here: keys, the repository's layout template, two recorded links.
struct Chain {
    dir: tempfile::TempDir,
    owner: SigningKey,
    builder: SigningKey,
    signer: SigningKey,
}

impl Chain {
    fn new() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src/files")).unwrap();
        std::fs::write(dir.path().join("src/maestro.yaml"), "name: hello\n").unwrap();
        std::fs::write(dir.path().join("src/files/greeting.txt"), "hello\n").unwrap();
        std::fs::write(dir.path().join("hello-1.0.0.mpkg"), "archive bytes").unwrap();
        Chain {
            dir,
            owner: SigningKey::generate(Algorithm::Ed25519).unwrap(),
            builder: SigningKey::generate(Algorithm::Ed25519).unwrap(),
            signer: SigningKey::generate(Algorithm::EcdsaP256).unwrap(),
        }
    }

    fn layout(&self, dsse: bool) -> Document {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/provenance/INTOTO_LAYOUT.yaml"
        ))
        .unwrap();
        let roles = BTreeMap::from([
            ("builder".to_owned(), vec![self.builder.public().clone()]),
            ("signer".to_owned(), vec![self.signer.public().clone()]),
        ]);
        let layout = Template::parse(&text)
            .unwrap()
            .layout(&roles, "2030-01-01T00:00:00Z".parse().unwrap())
            .unwrap();
        Document::sign(Body::Layout(layout), &self.owner, dsse).unwrap()
    }

    fn record(&self, step: &str, key: &SigningKey, m: &[&str], p: &[&str], dsse: bool) -> LinkFile {
        let base = self.dir.path();
        let paths = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let link = link(
            step,
            record_artifacts(base, &paths(m)).unwrap(),
            record_artifacts(base, &paths(p)).unwrap(),
            vec!["maestro".into(), "package".into(), step.into()],
        );
        let doc = Document::sign(Body::Link(link), key, dsse).unwrap();
        // Through the file form, as a verifier reads it.
        LinkFile {
            source: link_file_name(step, key.public().keyid()),
            document: Document::parse(doc.to_json().as_bytes()),
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn a_recorded_chain_verifies_and_every_tampering_fails() {
    for dsse in [false, true] {
        let c = Chain::new();
        let layout = Document::parse(c.layout(dsse).to_json().as_bytes()).unwrap();
        let owner = [c.owner.public().clone()];
        let build = c.record("build", &c.builder, &["src"], &["hello-1.0.0.mpkg"], dsse);
        std::fs::write(c.path("hello-1.0.0.mpkg.intoto.jsonl"), "sig").unwrap();
        let sign = c.record(
            "sign",
            &c.signer,
            &["hello-1.0.0.mpkg"],
            &["hello-1.0.0.mpkg", "hello-1.0.0.mpkg.intoto.jsonl"],
            dsse,
        );
        let v = verify(&layout, &owner, &[build.clone(), sign.clone()], now());
        assert!(v.valid, "{}", v.text());
        assert!(v.warnings.is_empty(), "{:?}", v.warnings);

        // The archive replaced between build and sign.
        std::fs::write(c.path("hello-1.0.0.mpkg"), "other bytes").unwrap();
        let forged = c.record(
            "sign",
            &c.signer,
            &["hello-1.0.0.mpkg"],
            &["hello-1.0.0.mpkg", "hello-1.0.0.mpkg.intoto.jsonl"],
            dsse,
        );
        let v = verify(&layout, &owner, &[build.clone(), forged], now());
        assert_eq!(checks(&v), vec![Check::Rule, Check::Rule], "{}", v.text());

        // A stray product of the build step.
        std::fs::write(c.path("extra.bin"), "x").unwrap();
        let loose = c.record(
            "build",
            &c.builder,
            &["src"],
            &["hello-1.0.0.mpkg", "extra.bin"],
            dsse,
        );
        let v = verify(&layout, &owner, &[loose, sign.clone()], now());
        assert!(
            v.failures
                .iter()
                .any(|f| f.message.contains("['extra.bin']")),
            "{}",
            v.text()
        );

        // Links swapped between functionaries, one missing, one twice.
        let wrong = c.record("build", &c.signer, &["src"], &["hello-1.0.0.mpkg"], dsse);
        let v = verify(&layout, &owner, &[wrong, sign.clone()], now());
        assert_eq!(checks(&v), vec![Check::Threshold]);
        let v = verify(&layout, &owner, std::slice::from_ref(&build), now());
        assert_eq!(checks(&v), vec![Check::Threshold]);
        assert!(
            v.failures[0]
                .message
                .contains("link not found: step \"sign\"")
        );
        let v = verify(
            &layout,
            &owner,
            &[build.clone(), build.clone(), sign.clone()],
            now(),
        );
        assert_eq!(checks(&v), vec![Check::Link]);

        // A layout signed by another key, and an expired one.
        let v = verify(
            &layout,
            &[c.builder.public().clone()],
            &[build.clone(), sign.clone()],
            now(),
        );
        assert_eq!(checks(&v), vec![Check::LayoutSignature]);
        let later = "2030-01-01T00:00:00Z".parse().unwrap();
        let v = verify(&layout, &owner, &[build, sign], later);
        assert_eq!(
            checks(&v),
            vec![Check::LayoutExpired],
            "expiry at exactly now is expired"
        );
    }
}

#[test]
fn templates_that_are_not_strict_or_lack_keys_are_refused() {
    let c = Chain::new();
    let text = "readme: x\nsteps:\n  - name: build\n    functionaries: [builder]\n    \
                expected_materials: [[ALLOW, \"*\"]]\n    expected_products: [[CREATE, \"*\"], [DISALLOW, \"*\"]]\n";
    let roles = BTreeMap::from([("builder".to_owned(), vec![c.builder.public().clone()])]);
    let when = "2030-01-01T00:00:00Z".parse().unwrap();
    let failures = Template::parse(text)
        .unwrap()
        .layout(&roles, when)
        .unwrap_err();
    assert!(
        failures[0]
            .message
            .contains("expected_materials does not end with"),
        "{failures:?}"
    );
    let failures = Template::parse(text)
        .unwrap()
        .layout(&BTreeMap::new(), when)
        .unwrap_err();
    assert!(
        failures[0]
            .message
            .contains("functionary \"builder\", whose key was not given")
    );
    let err = Template::parse("readme: x\nsteps: []\nextra: 1\n").unwrap_err();
    assert!(err.contains("extra"), "{err}");
}

#[test]
fn artifacts_are_recorded_like_in_toto_run() {
    let c = Chain::new();
    std::fs::write(c.path("src/build.1234abcd.link"), "{}").unwrap();
    std::fs::create_dir_all(c.path("src/.git")).unwrap();
    std::fs::write(c.path("src/.git/HEAD"), "x").unwrap();
    let recorded = record_artifacts(c.dir.path(), &["./src/".into()]).unwrap();
    let paths: Vec<&str> = recorded.keys().map(String::as_str).collect();
    assert_eq!(paths, ["src/files/greeting.txt", "src/maestro.yaml"]);
    use sha2::Digest as _;
    assert_eq!(
        recorded["src/maestro.yaml"]["sha256"],
        hex::encode(sha2::Sha256::digest(b"name: hello\n"))
    );
    assert!(
        record_artifacts(c.dir.path(), &["../x".into()])
            .unwrap_err()
            .contains("..")
    );
    assert!(record_artifacts(c.dir.path(), &["missing".into()]).is_err());
    assert!(record_artifacts(Path::new("/nonexistent"), &["a".into()]).is_err());
}
