//! in-toto interoperability with the reference implementation (in-toto 3.1.0, installed by
//! `scripts/test` into `tests/interop/intoto/.venv`): layouts and links written by `maestro
//! attest` verify with `in-toto-verify`, links recorded with `in-toto-run` verify with
//! `maestro attest verify`, and every tampering is caught by both sides. Keys come from
//! openssl, as reference users make them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Scratch, cli, openssl_keys};

fn venv_bin(tool: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop/intoto/.venv/bin")
        .join(tool);
    assert!(
        path.exists(),
        "the reference in-toto is not installed: python3 -m venv tests/interop/intoto/.venv && \
         tests/interop/intoto/.venv/bin/pip install -r tests/interop/intoto/requirements.txt \
         (scripts/test does it)"
    );
    path
}

/// A scratch directory with openssl keys and a package to build and sign.
struct Site(Scratch);

impl std::ops::Deref for Site {
    type Target = Scratch;
    fn deref(&self) -> &Scratch {
        &self.0
    }
}

impl Site {
    fn new() -> Site {
        let site = Site(Scratch::new());
        openssl_keys(
            site.path(),
            &[
                ("owner", "ed25519"),
                ("owner-ec", "p256"),
                ("builder", "ed25519"),
                ("signer", "p256"),
                ("intruder", "ed25519"),
            ],
        );
        std::fs::create_dir_all(site.path().join("work/src/files")).unwrap();
        site.write("work/src/maestro.yaml", "name: hello\nversion: \"1.0.0\"\n");
        site.write("work/src/files/greeting.txt", "hello\n");
        site.write("work/hello-1.0.0.mpkg", "the archive");
        site.write("work/hello-1.0.0.mpkg.intoto.jsonl", "the signature");
        site
    }

    /// `maestro attest layout` from the repository's template.
    fn layout(&self, out: &str, owner: &str, extra: &[&str]) {
        let template = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/provenance/INTOTO_LAYOUT.yaml"
        );
        let key = format!("{owner}.pem");
        let mut args = vec![
            "attest",
            "layout",
            "--template",
            template,
            "--key",
            &key,
            "--functionary",
            "builder=builder.pub",
            "--functionary",
            "signer=signer.pub",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// `maestro attest link` for build and sign, into `dir`.
    fn maestro_links(&self, dir: &str, dsse: bool) {
        std::fs::create_dir_all(self.path().join(dir)).unwrap();
        let out_dir = format!("../{dir}");
        let mut build = vec![
            "attest",
            "link",
            "--step",
            "build",
            "--key",
            "../builder.pem",
            "--material",
            "src",
            "--product",
            "hello-1.0.0.mpkg",
            "--out-dir",
            &out_dir,
        ];
        let mut sign = vec![
            "attest",
            "link",
            "--step",
            "sign",
            "--key",
            "../signer.pem",
            "--material",
            "hello-1.0.0.mpkg",
            "--product",
            "hello-1.0.0.mpkg",
            "--product",
            "hello-1.0.0.mpkg.intoto.jsonl",
            "--out-dir",
            &out_dir,
        ];
        if dsse {
            build.push("--dsse");
            sign.push("--dsse");
        }
        let (code, out, err) = cli(&build, &[], &self.path().join("work"));
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = cli(&sign, &[], &self.path().join("work"));
        assert_eq!(code, 0, "{out}{err}");
    }

    /// `in-toto-run` for one step, recording without running (`-x`), into `dir`.
    fn reference_link(
        &self,
        dir: &str,
        step: &str,
        key: &str,
        materials: &[&str],
        products: &[&str],
        dsse: bool,
    ) {
        std::fs::create_dir_all(self.path().join(dir)).unwrap();
        let mut run = Command::new(venv_bin("in-toto-run"));
        run.args([
            "-n",
            step,
            "--signing-key",
            &format!("../{key}.pem"),
            "-d",
            &format!("../{dir}"),
            "-x",
        ]);
        if dsse {
            run.arg("--use-dsse");
        }
        run.arg("-m").args(materials).arg("-p").args(products);
        let out = run.current_dir(self.path().join("work")).output().unwrap();
        assert!(
            out.status.success(),
            "in-toto-run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Both verifiers on the same files: (in-toto-verify rc and stderr, maestro rc and output).
    fn verify_both(&self, layout: &str, key: &str, links: &str) -> ((i32, String), (i32, String)) {
        let out = Command::new(venv_bin("in-toto-verify"))
            .args([
                "-l",
                layout,
                "--verification-keys",
                &format!("{key}.pub"),
                "--link-dir",
                links,
            ])
            .current_dir(self.path())
            .output()
            .unwrap();
        let reference = (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        let key = format!("{key}.pub");
        let ours = self.maestro(&[
            "attest",
            "verify",
            "--layout",
            layout,
            "--key",
            &key,
            "--link-dir",
            links,
        ]);
        (reference, ours)
    }

    fn assert_both_pass(&self, layout: &str, key: &str, links: &str) {
        let (reference, ours) = self.verify_both(layout, key, links);
        assert_eq!(reference.0, 0, "in-toto-verify refused: {}", reference.1);
        assert_eq!(ours.0, 0, "maestro refused: {}", ours.1);
        assert!(ours.1.contains("the supply chain verifies"), "{}", ours.1);
    }

    /// Both sides refuse: the reference with `reference_error`, maestro with `ours`.
    fn assert_both_fail(
        &self,
        case: &str,
        layout: &str,
        key: &str,
        links: &str,
        reference_error: &str,
        ours: &str,
    ) {
        let (r, m) = self.verify_both(layout, key, links);
        assert_eq!(r.0, 1, "{case}: in-toto-verify should fail: {}", r.1);
        assert!(
            r.1.contains(reference_error),
            "{case}: in-toto-verify said: {}",
            r.1
        );
        assert_eq!(m.0, 4, "{case}: maestro should fail: {}", m.1);
        assert!(m.1.contains(ours), "{case}: maestro said: {}", m.1);
    }
}

#[test]
fn maestro_layouts_and_links_verify_with_in_toto_verify() {
    let s = Site::new();
    s.layout("root.layout", "owner", &[]);
    s.layout("root-ec-dsse.layout", "owner-ec", &["--dsse"]);
    s.maestro_links("links", false);
    s.maestro_links("links-dsse", true);
    s.assert_both_pass("root.layout", "owner", "links");
    s.assert_both_pass("root.layout", "owner", "links-dsse");
    s.assert_both_pass("root-ec-dsse.layout", "owner-ec", "links");

    // The archive replaced between build and sign.
    s.write("work/hello-1.0.0.mpkg", "another archive");
    s.copy_dir("links", "swapped");
    s.maestro_links("swapped-sign", false);
    std::fs::copy(
        s.path().join(s.file_starting("swapped-sign", "sign")),
        s.path().join(s.file_starting("swapped", "sign")),
    )
    .unwrap();
    s.write("work/hello-1.0.0.mpkg", "the archive");
    s.assert_both_fail(
        "archive swapped",
        "root.layout",
        "owner",
        "swapped",
        "RuleVerificationError: 'DISALLOW *' matched the following artifacts: ['hello-1.0.0.mpkg']",
        "FAIL rule: expected_materials of step \"sign\": 'DISALLOW *' matched the following artifacts: ['hello-1.0.0.mpkg']",
    );

    // A link's content edited after signing (classic and DSSE).
    s.copy_dir("links", "edited");
    let build = s.file_starting("edited", "build");
    let text = s.read(&build);
    let edited = text.replacen("\"hello-1.0.0.mpkg\"", "\"hello-2.0.0.mpkg\"", 1);
    assert_ne!(text, edited);
    s.write(&build, &edited);
    s.assert_both_fail(
        "classic link edited",
        "root.layout",
        "owner",
        "edited",
        "ThresholdVerificationError",
        "does not verify",
    );
    s.copy_dir("links-dsse", "edited-dsse");
    let sign = s.file_starting("edited-dsse", "sign");
    let mut envelope: serde_json::Value = serde_json::from_str(&s.read(&sign)).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload =
        String::from_utf8(b64.decode(envelope["payload"].as_str().unwrap()).unwrap()).unwrap();
    envelope["payload"] = b64
        .encode(payload.replacen("\"sha256\":\"", "\"sha256\":\"0", 1))
        .into();
    s.write(&sign, &envelope.to_string());
    s.assert_both_fail(
        "DSSE payload edited",
        "root.layout",
        "owner",
        "edited-dsse",
        "ThresholdVerificationError",
        "does not verify",
    );

    // A signature altered.
    s.copy_dir("links", "resigned");
    let sign = s.file_starting("resigned", "sign");
    let mut link: serde_json::Value = serde_json::from_str(&s.read(&sign)).unwrap();
    let sig = link["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &sig[..20],
        if &sig[20..21] == "0" { "1" } else { "0" }
    ) + &sig[21..];
    link["signatures"][0]["sig"] = flipped.into();
    s.write(&sign, &link.to_string());
    s.assert_both_fail(
        "signature altered",
        "root.layout",
        "owner",
        "resigned",
        "ThresholdVerificationError",
        "FAIL threshold",
    );

    // A link missing; a layout edited; the wrong layout key; an expired layout.
    s.copy_dir("links", "missing");
    std::fs::remove_file(s.path().join(s.file_starting("missing", "build"))).unwrap();
    s.assert_both_fail(
        "link missing",
        "root.layout",
        "owner",
        "missing",
        "LinkNotFoundError",
        "link not found: step \"build\"",
    );
    let layout = s.read("root.layout");
    s.write(
        "edited.layout",
        &layout.replacen("\"threshold\": 1", "\"threshold\": 2", 1),
    );
    s.assert_both_fail(
        "layout edited",
        "edited.layout",
        "owner",
        "links",
        "SignatureVerificationError",
        "FAIL layout-signature",
    );
    s.assert_both_fail(
        "wrong layout key",
        "root.layout",
        "intruder",
        "links",
        "No signature found for key",
        "no signature by key",
    );
    s.layout(
        "expired.layout",
        "owner",
        &["--expires", "2020-01-01T00:00:00Z"],
    );
    s.assert_both_fail(
        "expired",
        "expired.layout",
        "owner",
        "links",
        "LayoutExpiredError",
        "FAIL layout-expired",
    );
}

#[test]
fn in_toto_run_links_verify_with_maestro() {
    let s = Site::new();
    s.layout("root.layout", "owner", &[]);
    let sign_products = ["hello-1.0.0.mpkg", "hello-1.0.0.mpkg.intoto.jsonl"];
    s.reference_link(
        "ref",
        "build",
        "builder",
        &["src"],
        &["hello-1.0.0.mpkg"],
        false,
    );
    s.reference_link(
        "ref",
        "sign",
        "signer",
        &["hello-1.0.0.mpkg"],
        &sign_products,
        true,
    );
    s.assert_both_pass("root.layout", "owner", "ref");
    s.reference_link(
        "ref-dsse",
        "build",
        "builder",
        &["src"],
        &["hello-1.0.0.mpkg"],
        true,
    );
    s.reference_link(
        "ref-dsse",
        "sign",
        "signer",
        &["hello-1.0.0.mpkg"],
        &sign_products,
        false,
    );
    s.assert_both_pass("root.layout", "owner", "ref-dsse");

    // Signed after the archive changed.
    s.reference_link(
        "ref-swapped",
        "build",
        "builder",
        &["src"],
        &["hello-1.0.0.mpkg"],
        false,
    );
    s.write("work/hello-1.0.0.mpkg", "another archive");
    s.reference_link(
        "ref-swapped",
        "sign",
        "signer",
        &["hello-1.0.0.mpkg"],
        &sign_products,
        false,
    );
    s.write("work/hello-1.0.0.mpkg", "the archive");
    s.assert_both_fail(
        "archive swapped",
        "root.layout",
        "owner",
        "ref-swapped",
        "RuleVerificationError",
        "FAIL rule",
    );

    // A build step performed by a key the layout does not authorize, named as the builder's.
    s.reference_link(
        "ref-intruder",
        "build",
        "intruder",
        &["src"],
        &["hello-1.0.0.mpkg"],
        false,
    );
    let intruder = s.file_starting("ref-intruder", "build");
    let builder = s.file_starting("ref", "build");
    std::fs::rename(
        s.path().join(&intruder),
        s.path()
            .join("ref-intruder")
            .join(Path::new(&builder).file_name().unwrap()),
    )
    .unwrap();
    std::fs::copy(
        s.path().join(s.file_starting("ref", "sign")),
        s.path().join("ref-intruder").join(
            Path::new(&s.file_starting("ref", "sign"))
                .file_name()
                .unwrap(),
        ),
    )
    .unwrap();
    s.assert_both_fail(
        "intruder",
        "root.layout",
        "owner",
        "ref-intruder",
        "ThresholdVerificationError",
        "none of which may sign step \"build\"",
    );
}
