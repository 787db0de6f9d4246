//! Package archives read back: what `open` refuses (missing or lying `package.json`, files
//! it does not list, entries outside `files/`), build determinism, and sign + verify in
//! process, including the layout's owner and the sign step's key.

use std::collections::BTreeMap;

use super::*;
use crate::attest::intoto::record::Template;
use crate::attest::keys::Algorithm;

fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = archive::Writer::new(Vec::new(), 6);
    let mut sorted = entries.to_vec();
    sorted.sort();
    for (path, data) in sorted {
        w.add(path, data).unwrap();
    }
    w.finish().unwrap()
}

fn meta(files: &[(&str, &[u8])]) -> Vec<u8> {
    let meta = PackageMeta {
        kind: Kind::WorkflowPackage,
        name: "hello".into(),
        version: "1.0.0".into(),
        files: files
            .iter()
            .map(|(p, b)| (p.to_string(), Digest::of(b)))
            .collect(),
        policy_digest: None,
    };
    serde_json::to_vec(&meta).unwrap()
}

const MANIFEST: &[u8] =
    b"name: hello\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - id: a\n    uses: builtin/echo\n    with:\n      message: hi\n";

#[test]
fn open_checks_the_archive_against_package_json() {
    let good_meta = meta(&[("maestro.yaml", MANIFEST)]);
    let ok = archive(&[
        ("files/maestro.yaml", MANIFEST),
        ("package.json", &good_meta),
    ]);
    assert_eq!(open(&ok).unwrap().meta.reference(), "hello@1.0.0");

    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            archive(&[("files/maestro.yaml", MANIFEST)]),
            "archive has no package.json",
        ),
        (
            archive(&[
                ("files/maestro.yaml", b"changed"),
                ("package.json", &good_meta),
            ]),
            "files/maestro.yaml has digest",
        ),
        (
            archive(&[
                ("files/maestro.yaml", MANIFEST),
                ("files/extra", b"x"),
                ("package.json", &good_meta),
            ]),
            "files/extra is in the archive but not in package.json",
        ),
        (
            archive(&[("package.json", &good_meta)]),
            "lists files/maestro.yaml, which the archive does not hold",
        ),
        (
            archive(&[
                ("files/maestro.yaml", MANIFEST),
                ("other.txt", b"x"),
                ("package.json", &good_meta),
            ]),
            "a package holds only package.json and files/",
        ),
        (
            archive(&[
                ("files/maestro.yaml", MANIFEST),
                ("package.json", b"{\"kind\": 1}"),
            ]),
            "package.json:",
        ),
        (
            archive(&[("files/x", b"x"), ("package.json", &meta(&[("x", b"x")]))]),
            "needs files/maestro.yaml",
        ),
        (b"not an archive".to_vec(), "archive:"),
    ];
    for (bytes, expected) in cases {
        let err = open(&bytes).unwrap_err().to_string();
        assert!(err.contains(expected), "expected {expected:?}, got {err:?}");
    }
}

#[test]
fn build_sign_verify_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("files")).unwrap();
    std::fs::write(src.join("maestro.yaml"), MANIFEST).unwrap();
    std::fs::write(src.join("files/a.txt"), "a").unwrap();
    let owner = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let builder = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let signer = SigningKey::generate(Algorithm::EcdsaP256).unwrap();

    let built = build(
        Kind::WorkflowPackage,
        &src,
        None,
        &builder,
        &dir.path().join("a"),
    )
    .unwrap();
    let again = build(
        Kind::WorkflowPackage,
        &src,
        None,
        &builder,
        &dir.path().join("b"),
    )
    .unwrap();
    assert_eq!(built.digest, again.digest);
    assert_eq!(
        built.meta.files.keys().collect::<Vec<_>>(),
        ["files/a.txt", "maestro.yaml"]
    );
    let wrong = build(
        Kind::WorkflowPackage,
        &src,
        Some(("hello", "2.0.0")),
        &builder,
        &dir.path().join("c"),
    );
    assert!(
        wrong
            .unwrap_err()
            .to_string()
            .contains("2.0.0 was asked for")
    );
    sign(&built.archive, &signer).unwrap();

    let template =
        Template::parse(include_str!("../../../docs/provenance/INTOTO_LAYOUT.yaml")).unwrap();
    let roles = BTreeMap::from([
        ("builder".to_owned(), vec![builder.public().clone()]),
        ("signer".to_owned(), vec![signer.public().clone()]),
    ]);
    let layout = template
        .layout(&roles, "2030-01-01T00:00:00Z".parse().unwrap())
        .unwrap();
    let layout = Document::sign(Body::Layout(layout), &owner, false).unwrap();
    let now = "2026-06-01T00:00:00Z".parse().unwrap();
    let report = verify(
        &built.archive,
        Kind::WorkflowPackage,
        &layout,
        &[owner.public().clone()],
        now,
    )
    .unwrap();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.checks.len(), 3);

    // The release travels as a tar of its directory and verifies the same in memory.
    let release = Release::from_dir(&built.archive).unwrap();
    assert_eq!(release.files.len(), 5, "{:?}", release.files.keys());
    let sent = Release::from_tar(&release.to_tar().unwrap()).unwrap();
    assert_eq!(sent, release);
    assert_eq!(
        sent.archive().unwrap(),
        ("hello-1.0.0.mpkg", Kind::WorkflowPackage)
    );
    let owners = [owner.public().clone()];
    let again = verify_release(
        &sent,
        "hello-1.0.0.mpkg",
        Kind::WorkflowPackage,
        &layout,
        &owners,
        now,
    );
    assert!(again.valid, "{again:?}");
    let mut partial = sent.clone();
    partial.files.remove("hello-1.0.0.mpkg.sigstore.json");
    let report = verify_release(
        &partial,
        "hello-1.0.0.mpkg",
        Kind::WorkflowPackage,
        &layout,
        &owners,
        now,
    );
    assert!(!report.valid);
    let mut two = sent.clone();
    two.files.insert("other-1.0.0.mbundle".into(), Vec::new());
    assert!(
        two.archive()
            .unwrap_err()
            .to_string()
            .contains("2 archives")
    );
    let nested = archive(&[("dir/x.link", b"{}"), ("hello-1.0.0.mpkg", b"")]);
    assert!(
        Release::from_tar(&nested)
            .unwrap_err()
            .to_string()
            .contains("files at its root only")
    );
    let report = verify(
        &built.archive,
        Kind::PolicyBundle,
        &layout,
        &[owner.public().clone()],
        now,
    )
    .unwrap();
    assert!(!report.valid);
    let archive = &report.checks[0];
    assert_eq!(archive.outcome, crate::attest::receipt::Outcome::Fail);
    assert!(
        archive.detail.contains("is a package, not a policy bundle"),
        "{report:?}"
    );
    let report = verify(
        &built.archive,
        Kind::WorkflowPackage,
        &layout,
        &[signer.public().clone()],
        now,
    )
    .unwrap();
    assert!(!report.valid);
    let checks: Vec<_> = report.intoto.failures.iter().map(|f| f.check).collect();
    assert_eq!(checks, [crate::attest::intoto::Check::LayoutSignature]);

    // A new build in the same release directory leaves no stale evidence behind.
    std::fs::write(src.join("files/a.txt"), "changed").unwrap();
    let rebuilt = build(
        Kind::WorkflowPackage,
        &src,
        None,
        &builder,
        &dir.path().join("a"),
    )
    .unwrap();
    assert_eq!(rebuilt.archive, built.archive);
    assert!(!provenance_path(&built.archive).exists());
    let owner_key = [owner.public().clone()];
    let report = verify(
        &built.archive,
        Kind::WorkflowPackage,
        &layout,
        &owner_key,
        now,
    )
    .unwrap();
    let failure = &report.intoto.failures[0];
    assert!(
        failure.message.starts_with("link not found: step \"sign\""),
        "{report:?}"
    );
}
