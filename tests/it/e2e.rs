//! End to end with the real binary on 127.0.0.1: `serve --demo`, the CLI against it, the
//! embedded mode, offline verification, documented exit codes, clean shutdown on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{bin, cli, free_port};

/// Reads the pretty-printed JSON summary `serve --output json` prints at start.
pub fn read_summary(stdout: std::process::ChildStdout) -> Value {
    let mut reader = BufReader::new(stdout);
    let mut text = String::new();
    let mut depth = 0i32;
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "serve ended before printing its summary: {text}"
        );
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        text.push_str(&line);
        if depth == 0 && text.trim_end().ends_with('}') {
            break;
        }
    }
    serde_json::from_str(&text).unwrap()
}

#[test]
fn demo_server_cli_and_offline_verification() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Killed(
        Command::new(bin())
            .args(["--output", "json", "serve", "--demo", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let summary = read_summary(server.0.stdout.take().unwrap());
    let url = summary["listening"].as_str().unwrap().to_owned();
    assert_eq!(summary["demo_executions"], 12);
    let token = summary["demo_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "acme-operator")
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let env = [
        ("MAESTRO_URL", url.as_str()),
        ("MAESTRO_TOKEN", token.as_str()),
    ];
    let cwd = dir.path();

    let (code, out, err) = cli(
        &["run", "-w", "hello", "--receipt-out", "r.json"],
        &env,
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("succeeded"), "{out}");
    let (code, keys, _) = cli(&["keys", "show", "--output", "json"], &env, cwd);
    assert_eq!(code, 0);
    std::fs::write(cwd.join("keys.json"), &keys).unwrap();
    let (code, pem, _) = cli(&["keys", "show", "--pem"], &env, cwd);
    assert_eq!(code, 0);
    std::fs::write(cwd.join("appliance.pem"), &pem).unwrap();
    // Offline: no server variables at all.
    let (code, out, err) = cli(
        &["verify-receipt", "r.json", "--keys", "keys.json"],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is valid"));
    let (code, out, _) = cli(
        &[
            "verify-receipt",
            "r.json",
            "--key",
            "appliance.pem",
            "--output",
            "json",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["valid"], true);
    // Tampered receipt: exit 4 and the failing check named.
    let mut receipt: Value =
        serde_json::from_str(&std::fs::read_to_string(cwd.join("r.json")).unwrap()).unwrap();
    receipt["logEntry"]["logIndex"] =
        Value::from(receipt["logEntry"]["logIndex"].as_u64().unwrap() + 1);
    std::fs::write(cwd.join("bad.json"), receipt.to_string()).unwrap();
    let (code, out, _) = cli(
        &["verify-receipt", "bad.json", "--key", "appliance.pem"],
        &[],
        cwd,
    );
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("FAIL  inclusion"), "{out}");
    // Elsewhere, with no key and no local data directory, there is nothing to trust.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(cwd.join("r.json"), elsewhere.path().join("r.json")).unwrap();
    let (code, _, err) = cli(&["verify-receipt", "r.json"], &[], elsewhere.path());
    assert_eq!(code, 2, "no key given: {err}");
    assert!(err.contains("no trusted key"), "{err}");

    // Exit codes of runs.
    assert_eq!(cli(&["run", "-w", "policy-deny"], &env, cwd).0, 6);
    assert_eq!(cli(&["run", "-w", "timeout"], &env, cwd).0, 7);
    std::fs::write(
        cwd.join("bad.yaml"),
        "name: x\nversion: 1\nregion: eu-west\ntasks: []\n",
    )
    .unwrap();
    let (code, _, err) = cli(&["run", "-w", "bad.yaml"], &env, cwd);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("version: expected a string"), "{err}");
    assert_eq!(cli(&["run", "-w", "no-such-workflow"], &env, cwd).0, 5);
    let bad_token = [("MAESTRO_URL", url.as_str()), ("MAESTRO_TOKEN", "mct_nope")];
    assert_eq!(cli(&["executions", "list"], &bad_token, cwd).0, 9);

    // Lists and details through the server.
    let (code, out, _) = cli(&["executions", "list", "--output", "json"], &env, cwd);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let (code, out, _) = cli(&["executions", "show", &id], &env, cwd);
    assert_eq!(code, 0);
    assert!(out.contains(&id));
    assert_eq!(
        cli(
            &["executions", "show", "ex_01aaaaaaaaaaaaaaaaaaaaaaaa"],
            &env,
            cwd
        )
        .0,
        5
    );
    let (code, note, _) = cli(&["log", "checkpoint"], &env, cwd);
    assert_eq!(code, 0);
    assert!(note.contains('\u{2014}'));

    // SIGTERM: the server drains and exits 0; then it is unreachable (exit 8).
    // SAFETY: signalling a child process we own.
    unsafe {
        libc::kill(server.0.id() as i32, libc::SIGTERM);
    }
    let status = wait_with_timeout(&mut server.0, Duration::from_secs(20));
    assert_eq!(status, Some(0), "serve should exit cleanly on SIGTERM");
    assert_eq!(cli(&["executions", "list"], &env, cwd).0, 8);

    // The data directory now works embedded, without a server, with its demo tenants.
    let (code, out, err) = cli(&["executions", "list", "--tenant", "acme"], &[], cwd);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hello@1.0.0"));
    let (code, out, err) = cli(
        &[
            "run",
            "-w",
            "hello",
            "--tenant",
            "globex",
            "--receipt-out",
            "local.json",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = cli(&["verify-receipt", "local.json"], &[], cwd);
    assert_eq!(code, 0, "local keys are trusted by default: {out}{err}");
}

/// A child process killed when the test ends, even by a failed assertion.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_with_timeout(child: &mut std::process::Child, timeout: Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn embedded_runs_need_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (code, out, err) = cli(
        &[
            "run",
            "-w",
            "fan-out-fan-in",
            "--output",
            "json",
            "--receipt-out",
            "r.json",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["execution"]["tenant"], "default");
    assert_eq!(v["execution"]["status"], "succeeded");
    assert_eq!(
        v["receipt"]["mediaType"],
        "application/vnd.maestro.receipt.v1+json"
    );
    assert!(cwd.join("maestro-data/maestro.redb").exists());
    let (code, _, _) = cli(&["verify-receipt", "r.json"], &[], cwd);
    assert_eq!(code, 0);
    let (code, out, _) = cli(&["run", "-w", "list"], &[], cwd);
    assert_eq!(code, 0);
    assert!(out.contains("hello"));
    // The local commands read the same `default` tenant the local run wrote.
    let id = v["execution"]["id"].as_str().unwrap();
    let (code, out, err) = cli(&["search", id, "--output", "json"], &[], cwd);
    assert_eq!(code, 0, "{out}{err}");
    let found: Value = serde_json::from_str(&out).unwrap();
    assert!(
        found["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["id"] == id),
        "{found}"
    );
    let (code, out, err) = cli(&["executions", "show", id, "--output", "json"], &[], cwd);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn other_commands_and_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (code, out, _) = cli(&["version", "--output", "json"], &[], cwd);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["version"],
        env!("CARGO_PKG_VERSION")
    );
    let (code, out, _) = cli(&["schema"], &[], cwd);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        maestro::domain::manifest::json_schema()
    );
    std::fs::write(
        cwd.join("ok.yaml"),
        crate::support::echo_manifest("ok", "eu-west"),
    )
    .unwrap();
    assert_eq!(cli(&["validate", "ok.yaml"], &[], cwd).0, 0);
    std::fs::write(cwd.join("bad.yaml"), "name: x\n").unwrap();
    let (code, _, err) = cli(&["validate", "bad.yaml"], &[], cwd);
    assert_eq!(code, 3);
    assert!(err.contains("missing required field \"version\""), "{err}");
    let (code, out, _) = cli(
        &[
            "token", "new", "--name", "ci", "--tenant", "acme", "--role", "operator",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0);
    assert!(out.contains("[[tokens]]") && out.contains("sha256:"));
    assert_eq!(
        cli(
            &["token", "new", "--name", "x", "--role", "viewer"],
            &[],
            cwd
        )
        .0,
        2
    );
    assert_eq!(cli(&["no-such-command"], &[], cwd).0, 2);
    assert_eq!(cli(&["run"], &[], cwd).0, 2);
    // Bad configuration is a usage error that names the key.
    std::fs::write(cwd.join("maestro.toml"), "[limits]\nrunerrs = 1\n").unwrap();
    let (code, _, err) = cli(&["run", "-w", "hello"], &[], cwd);
    assert_eq!(code, 2);
    assert!(err.contains("runerrs"), "{err}");
}
