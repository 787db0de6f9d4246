//! Backup and restore with the real binary: a backup taken from a serving appliance while
//! executions are being submitted restores into a fresh directory, where every receipt, the
//! log and the audit chain verify, and an appliance started on it serves the same data
//! (executions, log, search). Only appliance-wide administrators take backups; a backup that
//! does not match its manifest, a restore into a non-empty directory, and a restore that
//! does not verify all fail and leave nothing behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::Value;

use crate::e2e::Killed;
use crate::e2e::read_summary;
use crate::golden::{demo, token};
use crate::support::{bin, cli, echo_manifest, free_port, openssl_keys};

fn get(url: &str, token: &str, path: &str) -> Value {
    let r = reqwest::blocking::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().unwrap()
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Every file of a backup archive.
fn files(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let file = std::fs::File::open(path).unwrap();
    maestro::archive::read(file, &maestro::archive::Limits::LARGE, |e| {
        let mut v = Vec::new();
        e.data.read_to_end(&mut v).unwrap();
        out.push((e.path, v));
        Ok(())
    })
    .unwrap();
    out
}

fn write_archive(path: &Path, files: &[(String, Vec<u8>)]) {
    let mut w = maestro::archive::Writer::new(std::fs::File::create(path).unwrap(), 1);
    for (name, data) in files {
        w.add(name, data).unwrap();
    }
    w.finish().unwrap();
}

/// Starts `maestro serve --data-dir DIR` (no demo flag: the restored demo layer is read
/// from the directory) and returns it with its URL.
fn serve(cwd: &Path, data_dir: &str) -> (Killed, String) {
    let port = free_port();
    let mut server = Killed(
        Command::new(bin())
            .args(["--output", "json", "serve", "--data-dir", data_dir])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .current_dir(cwd)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let summary = read_summary(server.0.stdout.take().unwrap());
    (server, summary["listening"].as_str().unwrap().to_owned())
}

#[test]
fn a_backup_taken_while_serving_restores_verified_and_serves_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (server, url, tokens) = demo(cwd, "");
    let admin = token(&tokens, "admin");
    let acme = token(&tokens, "acme-operator");

    // Submissions go on while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let submitted = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, submitted, url, acme) =
            (stop.clone(), submitted.clone(), url.clone(), acme.clone());
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(format!("{url}/api/v1/executions?wait=30s"))
                    .bearer_auth(&acme)
                    .header("content-type", "application/yaml")
                    .body(echo_manifest("during-backup", "eu-west"))
                    .send()
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201, "{}", r.text().unwrap());
                submitted.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while submitted.load(Ordering::Relaxed) < 3 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let env = [
        ("MAESTRO_URL", url.as_str()),
        ("MAESTRO_TOKEN", admin.as_str()),
    ];
    let (code, _, err) = cli(&["--output", "json", "backup", "b.tar.gz"], &env, cwd);
    assert_eq!(code, 0, "{err}");
    let written = json(&err);
    let during = submitted.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let manifest = &written["manifest"];
    let receipts = manifest["snapshot"]["tables"]["receipts"].as_u64().unwrap();
    let log_size = manifest["snapshot"]["log_size"].as_u64().unwrap();
    assert!(receipts >= 12 + 3, "{manifest}");
    assert_eq!(receipts, log_size, "every receipt is a leaf of the log");
    assert_eq!(manifest["keys"], true);
    assert!(written["sha256"].as_str().unwrap().starts_with("sha256:"));

    // What the archive holds: the manifest first, the store, the key, the demo layer and
    // trust, each as the manifest says.
    let archived = files(&cwd.join("b.tar.gz"));
    let names: Vec<&str> = archived.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "MANIFEST.json");
    for want in [
        "maestro.redb",
        "keys/appliance.pem",
        "demo.toml",
        "trust/root.layout",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("index/")), "{names:?}");

    // Tenant tokens and appliance-wide auditors may not take one; each refusal is audited.
    for name in ["acme-operator", "acme-viewer", "globex-auditor"] {
        let t = token(&tokens, name);
        let env = [("MAESTRO_URL", url.as_str()), ("MAESTRO_TOKEN", t.as_str())];
        let (code, _, err) = cli(&["backup", "refused.tar.gz"], &env, cwd);
        assert_eq!(code, 9, "{name}: {err}");
        assert!(
            !cwd.join("refused.tar.gz").exists() && !cwd.join("refused.tar.gz.partial").exists()
        );
    }
    let audit = get(&url, &admin, "/api/v1/audit?limit=1000");
    let taken: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "backup_taken")
        .collect();
    assert_eq!(taken.len(), 1, "{audit}");
    assert_eq!(taken[0]["detail"]["sha256"], written["sha256"]);
    let refusals = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "access_denied" && e["route"] == "GET /api/v1/backup")
        .count();
    assert_eq!(refusals, 3, "{audit}");
    // The backup file is owner-only, and so is the key inside it.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&cwd.join("b.tar.gz")), 0o600);
    let listing = Command::new("tar")
        .args(["tvzf", "b.tar.gz", "keys/appliance.pem"])
        .current_dir(cwd)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.starts_with("-rw-------"), "{listing}");
    // The local data directory is in use: the CLI says to use --server.
    let (code, _, err) = cli(
        &["backup", "local.tar.gz", "--data-dir", "maestro-data"],
        &[],
        cwd,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--server"), "{err}");
    drop(server);
    let staging: Vec<_> = std::fs::read_dir(cwd.join("maestro-data"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        staging.is_empty(),
        "left in the data directory: {staging:?}"
    );
    // A link in the data directory is refused by name, not silently left out.
    std::os::unix::fs::symlink("/etc/hostname", cwd.join("maestro-data/trust/linked.pub")).unwrap();
    let (code, _, err) = cli(
        &["backup", "linked.tar.gz", "--data-dir", "maestro-data"],
        &[],
        cwd,
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("linked.pub") && err.contains("link"), "{err}");
    assert!(!cwd.join("linked.tar.gz").exists() && !cwd.join("linked.tar.gz.partial").exists());
    std::fs::remove_file(cwd.join("maestro-data/trust/linked.pub")).unwrap();

    // Restore into a fresh directory: checked, then verified.
    let (code, out, err) = cli(
        &[
            "--output",
            "json",
            "restore",
            "b.tar.gz",
            "--data-dir",
            "restored",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    let restored = json(&out);
    let checks = restored["checks"].as_array().unwrap();
    let by_name = |n: &str| checks.iter().find(|c| c["name"] == n).unwrap().clone();
    // The restored store as backed up: restore runs nothing and writes nothing.
    assert_eq!(by_name("log")["checked"], log_size);
    assert_eq!(by_name("receipts")["checked"], receipts);
    assert!(by_name("audit")["checked"].as_u64().unwrap() > 0);
    assert!(checks.iter().all(|c| c["passed"] == true), "{checks:?}");
    let key = cwd.join("restored/keys/appliance.pem");
    assert_eq!(
        std::fs::read(&key).unwrap(),
        std::fs::read(cwd.join("maestro-data/keys/appliance.pem")).unwrap()
    );
    assert_eq!(mode(&key), 0o600);
    let names: Vec<_> = std::fs::read_dir(cwd.join("restored"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with('.')), "{names:?}");

    // A second restore into it is refused, and changes nothing.
    let before = std::fs::read(cwd.join("restored/maestro.redb")).unwrap();
    let (code, _, err) = cli(&["restore", "b.tar.gz", "--data-dir", "restored"], &[], cwd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(
        std::fs::read(cwd.join("restored/maestro.redb")).unwrap(),
        before
    );

    // The restored appliance serves the same data: the demo tokens, the log, the executions
    // of the snapshot, and the search index rebuilt from the store.
    // The original is gone: the restored appliance stands on its own (the demo layer's
    // trust files are the restored ones).
    std::fs::rename(cwd.join("maestro-data"), cwd.join("gone")).unwrap();
    // Its first start recovers what the backup caught queued or running (each such
    // execution ends with a receipt, which extends the log).
    let (server, url) = serve(cwd, "restored");
    // Recovered executions run on after the server answers: wait until none is left.
    for _ in 0..300 {
        let list = get(&url, &acme, "/api/v1/executions?limit=1000");
        let active = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "queued" || e["status"] == "running");
        if !active {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let log = get(&url, &admin, "/api/v1/log");
    let restored_size = log["checkpoint"]["size"].as_u64().unwrap();
    assert!(
        restored_size >= log_size && restored_size <= log_size + 8,
        "{restored_size} after {log_size}"
    );
    if restored_size == log_size {
        assert_eq!(
            log["checkpoint"]["note"],
            manifest["snapshot"]["checkpoint"]
        );
    }
    let list = get(&url, &acme, "/api/v1/executions?limit=1000");
    let backed_up = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "during-backup")
        .count() as u64;
    assert!(
        backed_up >= 3 && backed_up <= during + 1,
        "{backed_up} of {during}"
    );
    let mut found = 0;
    for _ in 0..100 {
        let hits = get(&url, &acme, "/api/v1/search?q=name:during-backup");
        found = hits["total"].as_u64().unwrap_or_default();
        if found == backed_up {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        found, backed_up,
        "the search index is rebuilt on the restored appliance"
    );
    // It goes on signing with the restored key, into the same log.
    let r = reqwest::blocking::Client::new()
        .post(format!("{url}/api/v1/executions?wait=30s"))
        .bearer_auth(&acme)
        .header("content-type", "application/yaml")
        .body(echo_manifest("after-restore", "eu-west"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let log = get(&url, &admin, "/api/v1/log");
    assert_eq!(
        log["checkpoint"]["size"].as_u64().unwrap(),
        restored_size + 1
    );
    drop(server);

    // The restored appliance backs up locally once stopped, and that backup checks.
    let (code, _, err) = cli(
        &[
            "backup",
            "local.tar.gz",
            "--data-dir",
            "restored",
            "--without-keys",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("left out"), "{err}");
    let (code, out, err) = cli(&["restore", "--check", "local.tar.gz"], &[], cwd);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !files(&cwd.join("local.tar.gz"))
            .iter()
            .any(|(n, _)| n.starts_with("keys/"))
    );
}

#[test]
fn a_backup_that_does_not_match_or_verify_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (server, url, tokens) = demo(cwd, "");
    let admin = token(&tokens, "admin");
    let env = [
        ("MAESTRO_URL", url.as_str()),
        ("MAESTRO_TOKEN", admin.as_str()),
    ];
    let (code, _, err) = cli(&["backup", "b.tar.gz", "--without-keys"], &env, cwd);
    assert_eq!(code, 0, "{err}");
    drop(server);
    let original = files(&cwd.join("b.tar.gz"));
    assert!(!original.iter().any(|(n, _)| n.starts_with("keys/")));

    // A store that is not the one the manifest lists.
    let mut tampered = original.clone();
    for (name, data) in tampered.iter_mut() {
        if name == "maestro.redb" {
            let at = data.len() / 2;
            data[at] ^= 1;
        }
    }
    write_archive(&cwd.join("tampered.tar.gz"), &tampered);
    // A file the manifest does not list.
    let mut extra = original.clone();
    extra.push(("zz-extra".into(), b"x".to_vec()));
    write_archive(&cwd.join("extra.tar.gz"), &extra);
    // A manifest missing.
    let headless: Vec<_> = original[1..].to_vec();
    write_archive(&cwd.join("headless.tar.gz"), &headless);
    // A manifest that says the log had another size: the files match, the data does not.
    let mut lying = original.clone();
    let mut m: Value = serde_json::from_slice(&lying[0].1).unwrap();
    m["snapshot"]["log_size"] = (m["snapshot"]["log_size"].as_u64().unwrap() + 1).into();
    lying[0].1 = serde_json::to_vec(&m).unwrap();
    write_archive(&cwd.join("lying.tar.gz"), &lying);
    let (code, _, err) = cli(
        &["restore", "lying.tar.gz", "--data-dir", "target"],
        &[],
        cwd,
    );
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("log: ") && err.contains("the backup recorded"),
        "{err}"
    );
    assert!(
        !cwd.join("target").exists(),
        "a failed verification left the target behind"
    );
    // A file the manifest lists, missing.
    let truncated: Vec<_> = original
        .iter()
        .filter(|(n, _)| n != "demo.toml")
        .cloned()
        .collect();
    write_archive(&cwd.join("truncated.tar.gz"), &truncated);
    std::fs::write(cwd.join("garbage.tar.gz"), b"not a backup").unwrap();

    for (file, says) in [
        ("tampered.tar.gz", "maestro.redb"),
        ("extra.tar.gz", "not listed in the manifest"),
        ("headless.tar.gz", "comes before MANIFEST.json"),
        (
            "truncated.tar.gz",
            "demo.toml is in the manifest but not in the archive",
        ),
        ("garbage.tar.gz", "tar.gz"),
    ] {
        let (code, _, err) = cli(&["restore", file, "--data-dir", "target"], &[], cwd);
        assert_eq!(code, 3, "{file}: {err}");
        assert!(err.contains(says), "{file}: {err}");
        assert!(
            !cwd.join("target").exists(),
            "{file} left the target behind"
        );
        let (code, _, err) = cli(&["restore", "--check", file], &[], cwd);
        assert_eq!(code, 3, "{file}: {err}");
    }
    let leftovers: Vec<String> = std::fs::read_dir(cwd)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".maestro-restore-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A backup that restores but does not verify under the trusted keys given (a key that
    // never signed here): refused, and the directory is left as it was.
    openssl_keys(cwd, &[("stranger", "ed25519")]);
    std::fs::write(
        cwd.join("strict.toml"),
        "[postrelease]\ntrusted_keys = [\"stranger.pub\"]\n",
    )
    .unwrap();
    // The root of an ext4 volume: its lost+found does not count and is left alone.
    std::fs::create_dir_all(cwd.join("empty/lost+found")).unwrap();
    let (code, _, err) = cli(
        &[
            "--config",
            "strict.toml",
            "restore",
            "b.tar.gz",
            "--data-dir",
            "empty",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("receipts"), "{err}");
    let left: Vec<_> = std::fs::read_dir(cwd.join("empty"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["lost+found"]);

    // The same backup restores without that setting; its first start makes a signing key.
    let (code, out, err) = cli(&["restore", "b.tar.gz", "--data-dir", "empty"], &[], cwd);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("the first start generates a new one"), "{out}");
    assert!(!cwd.join("empty/keys").exists());

    // With demo mode in the configuration, nothing is created in the target before the
    // restore (no demo layer of its own): the restored one is the backup's.
    std::fs::write(cwd.join("demo-on.toml"), "demo = true\n").unwrap();
    let (code, out, err) = cli(
        &[
            "--config",
            "demo-on.toml",
            "restore",
            "b.tar.gz",
            "--data-dir",
            "demo-target",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    // It is the backup's, its trust files named in their new place.
    let restored = std::fs::read_to_string(cwd.join("demo-target/demo.toml")).unwrap();
    let backed_up = &original.iter().find(|(n, _)| n == "demo.toml").unwrap().1;
    let backed_up = String::from_utf8(backed_up.clone()).unwrap();
    let root = std::path::absolute(cwd).unwrap();
    let (from, to) = (
        format!("{}/maestro-data/trust/", root.display()),
        format!("{}/demo-target/trust/", root.display()),
    );
    assert!(backed_up.contains(&from), "{backed_up}");
    assert_eq!(restored, backed_up.replace(&from, &to));
}
