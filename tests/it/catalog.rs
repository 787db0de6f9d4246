//! The package catalog end to end with the real binary: `maestro package publish`,
//! `install` and `list` against a server that verifies every release under its layout.
//! Enforcing, unsigned, tampered, wrongly signed and expired releases are refused with what
//! failed, and audited; permissive, they are accepted with their failures recorded and
//! audited. A published version is never replaced, installation verifies again (a key
//! rotation makes it fail), only appliance-wide administrators publish, and a release
//! downloaded from the catalog verifies offline.

use serde_json::Value;

use crate::package::Site;
use crate::support::{Server, Tokens, config_text, free_port};

const PKG: &str = "dist/hello-1.0.0/hello-1.0.0.mpkg";

/// Starts `maestro serve` on `data` with this layout, trusted keys and enforcement.
fn serve(s: &Site, data: &str, layout: &str, keys: &[&str], enforce: bool) -> (Server, Tokens) {
    let port = free_port();
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("{:?}", s.path().join(k).display().to_string()))
        .collect();
    let extra = format!(
        "[supply_chain]\nlayout = {:?}\nlayout_keys = [{}]\n[features]\nintoto_verify_enforce = {enforce}\n",
        s.path().join(layout).display().to_string(),
        keys.join(", ")
    );
    let (text, tokens) = config_text(&s.path().join(data), &format!("127.0.0.1:{port}"), &extra);
    let config = format!("{data}.toml");
    s.write(&config, &text);
    (Server::start(&s.path().join(&config), port), tokens)
}

/// Sets the version of the hello package source: a package with two inputs, `who` and
/// `where` (the storage location its artifact goes to).
fn hello_version(s: &Site, version: &str, greeting: &str) {
    s.write(
        "src/hello/maestro.yaml",
        &format!(
            r#"name: hello
version: "{version}"
region: eu-west
tasks:
  - id: greet
    uses: builtin/echo
    with:
      message: "${{{{ inputs.who }}}}"
  - id: save
    uses: builtin/artifact
    with:
      name: greeting.txt
      location: "${{{{ inputs.where }}}}"
      content: "hello ${{{{ tasks.greet.outputs.message }}}}"
"#
        ),
    );
    s.write("src/hello/files/greeting.txt", greeting);
}

/// A manifest of tenant acme that runs hello@VERSION writing to LOCATION.
fn uses_hello(s: &Site, version: &str, location: &str) -> String {
    let name = format!("uses-hello-{version}-{location}.yaml");
    s.write(
        &name,
        &format!(
            r#"name: uses-hello
version: "1.0.0"
region: eu-west
tasks:
  - id: hello
    uses: pkg:hello@{version}
    with: {{who: acme, where: {location}}}
  - id: after
    uses: builtin/echo
    with: {{message: "${{{{ tasks.hello.outputs.tasks.greet.message }}}}"}}
"#
        ),
    );
    name
}

fn run(s: &Site, server: &Server, token: &str, file: &str) -> (i32, String) {
    s.maestro(&[
        "--output",
        "json",
        "run",
        "-w",
        file,
        "--server",
        &server.url,
        "--token",
        token,
    ])
}

/// Builds hello VERSION (with GREETING) into OUT, and signs it with KEY if given.
fn release(s: &Site, version: &str, greeting: &str, out: &str, key: Option<&str>) {
    hello_version(s, version, greeting);
    s.ok(&[
        "package",
        "build",
        "src/hello",
        "--key",
        "builder.pem",
        "--out-dir",
        out,
    ]);
    if let Some(key) = key {
        let archive = format!("{out}/hello-{version}/hello-{version}.mpkg");
        s.ok(&["package", "sign", &archive, "--key", key]);
    }
}

fn cat(s: &Site, server: &Server, token: &str, args: &[&str]) -> (i32, String) {
    let mut all = vec!["package"];
    all.extend(args);
    all.extend(["--server", &server.url, "--token", token]);
    s.maestro(&all)
}

fn audit(server: &Server, admin: &str) -> Vec<(String, Value)> {
    let page: Value = reqwest::blocking::Client::new()
        .get(format!("{}/api/v1/audit?limit=1000", server.url))
        .bearer_auth(admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["detail"].clone()))
        .collect()
}

fn of_kind<'a>(events: &'a [(String, Value)], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, d)| d)
        .collect()
}

#[test]
fn enforcing_catalog_publishes_only_what_verifies_and_never_replaces_a_version() {
    let s = Site::new();
    // The release, signed; and 1.1.0 unsigned, 1.2.0 signed by an intruder, 1.3.0 with its
    // archive swapped for another build's, 1.0.0 again with other contents.
    release(&s, "1.0.0", "hello\n", "dist", Some("signer.pem"));
    release(&s, "1.1.0", "hello\n", "dist", None);
    release(&s, "1.2.0", "hello\n", "dist", Some("intruder.pem"));
    release(&s, "1.3.0", "hello\n", "dist", Some("signer.pem"));
    release(&s, "1.3.0", "tampered\n", "other", None);
    std::fs::copy(
        s.path().join("other/hello-1.3.0/hello-1.3.0.mpkg"),
        s.path().join("dist/hello-1.3.0/hello-1.3.0.mpkg"),
    )
    .unwrap();
    release(&s, "1.0.0", "other contents\n", "other", Some("signer.pem"));

    let (server, t) = serve(&s, "data", "root.layout", &["owner.pub"], true);
    let admin = t.admin.as_str();

    // Published once; publishing the same release again changes nothing.
    let (code, out) = cat(&s, &server, admin, &["publish", PKG]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("published package hello@1.0.0 sha256:"),
        "{out}"
    );
    assert!(out.contains("published: verified by token:admin"), "{out}");
    let (code, out) = cat(&s, &server, admin, &["publish", PKG]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("already published, unchanged:"), "{out}");

    // Refused, exit 4, each with what failed.
    for (archive, expected) in [
        (
            "dist/hello-1.1.0/hello-1.1.0.mpkg",
            "link not found: step \"sign\"",
        ),
        (
            "dist/hello-1.2.0/hello-1.2.0.mpkg",
            "found 0\n  recorded: no verified sign link to compare with\n  provenance: provenance signature: signature: keyid",
        ),
        (
            "dist/hello-1.3.0/hello-1.3.0.mpkg",
            "recorded: hello-1.3.0.mpkg has sha256",
        ),
    ] {
        let (code, out) = cat(&s, &server, admin, &["publish", archive]);
        assert_eq!(code, 4, "{archive}: {out}");
        assert!(
            out.contains("does not verify, and intoto_verify_enforce refuses it:"),
            "{archive}: {out}"
        );
        assert!(
            out.contains(expected),
            "{archive}: expected {expected:?} in {out}"
        );
    }
    // Another archive under a published version: refused, whatever its signatures.
    let (code, out) = cat(
        &s,
        &server,
        admin,
        &["publish", "other/hello-1.0.0/hello-1.0.0.mpkg"],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("A published version is never replaced: publish a new version"),
        "{out}"
    );
    // A bundle is not a package.
    let (code, out) = s.maestro(&[
        "bundle",
        "publish",
        PKG,
        "--server",
        &server.url,
        "--token",
        admin,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("is a package: publish it with maestro package publish"),
        "{out}"
    );

    // Only appliance-wide administrators publish and install; every reader lists.
    let (code, out) = cat(&s, &server, &t.acme_operator, &["publish", PKG]);
    assert_eq!(code, 9, "{out}");
    assert!(
        out.contains("only appliance-wide administrators may publish catalog"),
        "{out}"
    );
    let (code, out) = cat(&s, &server, &t.globex_operator, &["install", "hello@1.0.0"]);
    assert_eq!(code, 9, "{out}");
    let (code, out) = cat(&s, &server, &t.acme_viewer, &["list"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("package hello@").count(), 1, "{out}");
    assert!(out.contains("package hello@1.0.0"), "{out}");
    assert!(!out.contains("installed:"), "{out}");

    // Published is not installed: manifests cannot use it yet.
    let manifest = uses_hello(&s, "1.0.0", "eu-bucket");
    let (code, out) = run(&s, &server, &t.acme_operator, &manifest);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("package \"hello@1.0.0\" is not in the catalog"),
        "{out}"
    );

    let (code, out) = cat(&s, &server, admin, &["install", "hello@1.0.0"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("installed: verified by token:admin"), "{out}");

    // Installed, it runs: its inputs from the task, its artifact the execution's, the
    // package's archive digest in the receipt.
    let digest = out.split_whitespace().nth(3).unwrap().to_owned();
    assert!(digest.starts_with("sha256:"), "{out}");
    let ran_ok = |out: &str| {
        let e: Value = serde_json::from_str(out).expect(out);
        let e = &e["execution"];
        assert_eq!(e["status"], "succeeded", "{e}");
        assert_eq!(
            e["tasks"][0]["outputs"]["package"]["digest"],
            digest.as_str()
        );
        assert_eq!(e["tasks"][1]["outputs"]["message"], "acme");
        assert_eq!(e["artifacts"][0]["task"], "hello/save");
        assert_eq!(e["artifacts"][0]["region"], "eu-west");
    };
    let (code, out) = run(&s, &server, &t.acme_operator, &manifest);
    assert_eq!(code, 0, "{out}");
    ran_ok(&out);
    // Where a package writes is decided at admission like the manifest's own tasks: acme
    // may not write to the us-east bucket, even through a package.
    let outside = uses_hello(&s, "1.0.0", "us-bucket");
    let (code, out) = run(&s, &server, &t.acme_operator, &outside);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("hello/save"), "{out}");
    // Exactly the package's inputs; only installed versions.
    let (code, out) = run(
        &s,
        &server,
        &t.acme_operator,
        &uses_hello(&s, "1.1.0", "eu-bucket"),
    );
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("installed versions: 1.0.0"), "{out}");
    s.write("typo.yaml", &s.read(&manifest).replace("who:", "whom:"));
    let (code, out) = run(&s, &server, &t.acme_operator, "typo.yaml");
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("unknown input for pkg:hello@1.0.0 (did you mean \"who\"?)"),
        "{out}"
    );
    let (code, out) = cat(&s, &server, admin, &["install", "hello@9.9.9"]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("package hello@9.9.9 is not in the catalog"),
        "{out}"
    );

    // What was published verifies offline, downloaded from the catalog.
    let bytes = reqwest::blocking::Client::new()
        .get(format!(
            "{}/api/v1/catalog/workflow-package/hello/1.0.0/release",
            server.url
        ))
        .bearer_auth(&t.globex_operator)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    std::fs::create_dir_all(s.path().join("downloaded")).unwrap();
    std::fs::write(s.path().join("release.tar.gz"), &bytes).unwrap();
    let (code, out) = s.run("tar", &["-xzf", "release.tar.gz", "-C", "downloaded"]);
    assert_eq!(code, 0, "{out}");
    s.ok(&[
        "package",
        "verify",
        "downloaded/hello-1.0.0.mpkg",
        "--layout",
        "root.layout",
        "--key",
        "owner.pub",
    ]);

    // The console's catalog page shows it to every tenant, with both verdicts.
    let html = reqwest::blocking::Client::new()
        .get(format!("{}/catalog", server.url))
        .bearer_auth(&t.globex_operator)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let row = html
        .split("hello<span class=\"muted\">@1.0.0")
        .nth(1)
        .expect(&html);
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(row.matches(">verified</span>").count(), 2, "{row}");
    assert!(
        !html.contains("1.1.0"),
        "refused releases are not in the catalog"
    );

    // Audited: three refusals, one publication, one installation, two role denials.
    let events = audit(&server, admin);
    let unverified = of_kind(&events, "supply_chain_unverified");
    assert_eq!(unverified.len(), 3, "{unverified:?}");
    assert!(
        unverified
            .iter()
            .all(|d| d["refused"] == true && d["action"] == "publish")
    );
    assert_eq!(unverified[0]["package"], "hello@1.1.0");
    let published = of_kind(&events, "package_published");
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["package"], "hello@1.0.0");
    assert_eq!(published[0]["verified"], true);
    assert_eq!(of_kind(&events, "package_installed").len(), 1);
    assert_eq!(of_kind(&events, "access_denied").len(), 2);

    // After a restart the installed package runs again.
    drop(server);
    let (server, t) = serve(&s, "data", "root.layout", &["owner.pub"], true);
    let (code, out) = run(&s, &server, &t.acme_operator, &manifest);
    assert_eq!(code, 0, "{out}");
    ran_ok(&out);
}

#[test]
fn permissive_catalog_records_failures_and_installation_verifies_again() {
    let s = Site::new();
    release(&s, "1.0.0", "hello\n", "dist", Some("signer.pem"));
    release(&s, "1.1.0", "hello\n", "dist", None);

    // Permissive: the unsigned release is accepted, with its failures, and audited.
    let (server, t) = serve(&s, "data", "root.layout", &["owner.pub"], false);
    let admin = t.admin.clone();
    let (code, out) = cat(
        &s,
        &server,
        &admin,
        &["publish", "dist/hello-1.1.0/hello-1.1.0.mpkg"],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("published: NOT verified"), "{out}");
    assert!(out.contains("link not found: step \"sign\""), "{out}");
    let (code, out) = cat(&s, &server, &admin, &["publish", PKG]);
    assert_eq!(code, 0, "{out}");
    // An archive that cannot be read is refused even here, and audited.
    std::fs::create_dir_all(s.path().join("broken")).unwrap();
    s.write("broken/hello-9.0.0.mpkg", "not an archive");
    let (code, out) = cat(&s, &server, &admin, &["publish", "broken/hello-9.0.0.mpkg"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("hello-9.0.0.mpkg: archive:"), "{out}");
    let events = audit(&server, &admin);
    let unverified = of_kind(&events, "supply_chain_unverified");
    assert_eq!(unverified.len(), 2);
    assert_eq!(unverified[0]["refused"], false);
    assert_eq!(unverified[1]["refused"], true);
    assert_eq!(of_kind(&events, "package_published").len(), 2);
    // Permissive, the unverified release installs too, and runs.
    let (code, out) = cat(&s, &server, &admin, &["install", "hello@1.1.0"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("installed: NOT verified"), "{out}");
    let (code, out) = cat(&s, &server, &admin, &["install", "hello@1.0.0"]);
    assert_eq!(code, 0, "{out}");
    let unsigned = uses_hello(&s, "1.1.0", "eu-bucket");
    let (code, out) = run(&s, &server, &t.acme_operator, &unsigned);
    assert_eq!(code, 0, "{out}");
    drop(server);

    // The trusted key rotates to one that did not sign the layout: installing verifies
    // again and is refused under enforcement; the rotation is audited.
    let (server, t) = serve(&s, "data", "root.layout", &["intruder.pub"], true);
    let (code, out) = cat(&s, &server, &t.admin, &["install", "hello@1.0.0"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("hello@1.0.0 does not verify"), "{out}");
    let events = audit(&server, &t.admin);
    assert_eq!(of_kind(&events, "supply_chain_keys_rotated").len(), 2);
    let last = of_kind(&events, "supply_chain_unverified");
    assert_eq!(last.last().unwrap()["action"], "install");
    // At start both installed packages were verified again and, failing, left out.
    let loads: Vec<_> = last.iter().filter(|d| d["action"] == "load").collect();
    assert_eq!(loads.len(), 2, "{last:?}");
    assert!(loads.iter().all(|d| d["refused"] == true));
    let (code, out) = run(
        &s,
        &server,
        &t.acme_operator,
        &uses_hello(&s, "1.0.0", "eu-bucket"),
    );
    assert_eq!(code, 3, "{out}");
    drop(server);

    // An expired layout: the release no longer verifies, to install or to publish.
    let (server, t) = serve(&s, "data", "expired.layout", &["owner.pub"], true);
    let (code, out) = cat(&s, &server, &t.admin, &["install", "hello@1.0.0"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("expired"), "{out}");
    release(&s, "1.2.0", "hello\n", "dist", Some("signer.pem"));
    let (code, out) = cat(
        &s,
        &server,
        &t.admin,
        &["publish", "dist/hello-1.2.0/hello-1.2.0.mpkg"],
    );
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("expired"), "{out}");
    drop(server);

    // Trusted again: it installs; the catalog kept both versions and their verdicts.
    let (server, t) = serve(&s, "data", "root.layout", &["owner.pub"], true);
    let (code, out) = cat(&s, &server, &t.admin, &["install", "hello@1.0.0"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cat(&s, &server, &t.acme_viewer, &["list", "--name", "hello"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("package hello@1.0.0"), "{out}");
    assert!(out.contains("package hello@1.1.0"), "{out}");
    // Under enforcement, an unverified entry does not install, and what was installed
    // while permissive no longer runs.
    let (code, out) = cat(&s, &server, &t.admin, &["install", "hello@1.1.0"]);
    assert_eq!(code, 4, "{out}");
    let (code, out) = run(&s, &server, &t.acme_operator, &unsigned);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("installed versions: 1.0.0"), "{out}");
    let (code, out) = run(
        &s,
        &server,
        &t.acme_operator,
        &uses_hello(&s, "1.0.0", "eu-bucket"),
    );
    assert_eq!(code, 0, "{out}");
}
