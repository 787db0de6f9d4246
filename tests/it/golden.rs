//! The golden workflows end to end with the real binary: a demo appliance publishes and
//! installs the ten signed golden packages (and greeter, which one uses) at first start,
//! verified under the shipped layout; `maestro run -w golden/NAME` runs each from the
//! catalog; `maestro golden run` checks all ten against their expectations; the scheduled
//! worker runs them too; `/metrics`, the API and the console show the last run of each; a
//! red golden is reported, exported and kept across a restart. An appliance without the
//! goldens says how to install them, and `maestro golden install` does.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::e2e::{Killed, read_summary};
use crate::support::{bin, cli, config_text, free_port};

/// Starts `serve --demo` in `dir` with `config` layered over the demo layer; returns the
/// process, its URL and the demo tokens by name.
pub fn demo(dir: &std::path::Path, config: &str) -> (Killed, String, Value) {
    std::fs::write(dir.join("extra.toml"), config).unwrap();
    let port = free_port();
    let mut server = Killed(
        Command::new(bin())
            .args([
                "--config",
                "extra.toml",
                "--output",
                "json",
                "serve",
                "--demo",
            ])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let summary = read_summary(server.0.stdout.take().unwrap());
    let url = summary["listening"].as_str().unwrap().to_owned();
    (server, url, summary["demo_tokens"].clone())
}

pub fn token(tokens: &Value, name: &str) -> String {
    tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .map(|t| t["token"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no demo token {name} (tokens are printed on first start only)"))
}

fn metric(url: &str, name: &str, golden: &str) -> Option<f64> {
    let text = reqwest::blocking::get(format!("{url}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(&format!("golden=\"{golden}\"")))
        .filter(|l| name != "mc_golden_runs_total" || l.contains("result=\"passed\""))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn api(url: &str, token: &str, path: &str) -> Value {
    reqwest::blocking::Client::new()
        .get(format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

const GOLDENS: [(&str, i32); 10] = [
    ("artifacts", 0),
    ("fan-out-fan-in", 0),
    ("hello", 0),
    ("http", 0),
    ("policy-deny", 6),
    ("residency-deny", 6),
    ("retry-transient", 0),
    ("timeout", 7),
    ("transform-chain", 0),
    ("uses-package", 0),
];

#[test]
fn demo_installs_signed_goldens_runs_them_against_expectations_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let (server, url, tokens) = demo(cwd, "[golden]\ninterval = \"2s\"\n");
    let acme = token(&tokens, "acme-operator");
    let admin = token(&tokens, "admin");
    let globex = token(&tokens, "globex-auditor");
    let env = [
        ("MAESTRO_URL", url.as_str()),
        ("MAESTRO_TOKEN", acme.as_str()),
    ];

    // Installed at first start, each verified under the shipped layout.
    let (code, out, err) = cli(
        &["--output", "json", "package", "list", "--token", &admin],
        &env,
        cwd,
    );
    assert_eq!(code, 0, "{err}");
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 11, "{out}");
    for e in &list {
        assert_eq!(e["published"]["verified"], true, "{e}");
        assert_eq!(e["installed"]["verified"], true, "{e}");
        assert_eq!(e["installed"]["by"], "system:golden", "{e}");
    }

    // Each golden runs from its package with `run -w golden/NAME`, with the exit code of
    // its expected end.
    for (name, code) in GOLDENS {
        let (got, out, err) = cli(
            &["--output", "json", "run", "-w", &format!("golden/{name}")],
            &env,
            cwd,
        );
        assert_eq!(got, code, "golden/{name}: {out}{err}");
        if code == 0 {
            let run: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(run["execution"]["manifest"]["name"], name, "{out}");
        }
    }
    let (code, out, _) = cli(
        &["--output", "json", "run", "-w", "golden/uses-package"],
        &env,
        cwd,
    );
    assert_eq!(code, 0);
    let run: Value = serde_json::from_str(&out).unwrap();
    let greeter = &run["execution"]["tasks"][0]["outputs"];
    assert_eq!(greeter["package"]["name"], "greeter");
    assert_eq!(greeter["tasks"]["greet"]["value"], "hello, the auditors");
    let (code, _, err) = cli(&["run", "-w", "golden/nope"], &env, cwd);
    assert_eq!(code, 5, "{err}");

    // All ten against their expectations.
    let (code, out, err) = cli(&["--output", "json", "golden", "run"], &env, cwd);
    assert_eq!(code, 0, "{out}{err}");
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["passed"], true, "{out}");
    let runs = result["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 10);
    for r in runs {
        assert_eq!(r["passed"], true, "{r}");
        assert_eq!(r["tenant"], "acme");
        assert!(r["execution"].as_str().unwrap().starts_with("ex_"), "{r}");
    }
    // Canary runs: marked synthetic.
    let first = runs[0]["execution"].as_str().unwrap();
    let exec = api(&url, &acme, &format!("/api/v1/executions/{first}"));
    assert_eq!(exec["canary"], true, "{exec}");
    // Only some, by name; an unknown name is refused.
    let (code, out, _) = cli(&["golden", "run", "hello", "timeout"], &env, cwd);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" ok ")).count(),
        2,
        "{out}"
    );
    assert_eq!(cli(&["golden", "run", "nope"], &env, cwd).0, 5);

    // The scheduled worker (every 2 s here) runs them as well.
    let before = metric(&url, "mc_golden_runs_total", "hello").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&url, "mc_golden_runs_total", "hello").unwrap() <= before {
        assert!(Instant::now() < deadline, "no scheduled golden run");
        std::thread::sleep(Duration::from_millis(200));
    }
    for (name, _) in GOLDENS {
        assert_eq!(
            metric(&url, "mc_golden_last_passed", name),
            Some(1.0),
            "{name}"
        );
        assert!(metric(&url, "mc_golden_last_run_timestamp_seconds", name).unwrap() > 1.7e9);
    }

    // The API: appliance-wide callers see each run's execution; tenant callers of another
    // tenant see the verdicts only.
    let all = api(&url, &admin, "/api/v1/goldens");
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 10, "{all}");
    for g in items {
        assert_eq!(g["installed"], true, "{g}");
        assert_eq!(g["last"]["passed"], true, "{g}");
        assert_eq!(g["last"]["tenant"], "acme", "{g}");
    }
    let theirs = api(&url, &globex, "/api/v1/goldens");
    for g in theirs["items"].as_array().unwrap() {
        assert!(g["last"].get("execution").is_none(), "{g}");
        assert_eq!(g["last"]["tenant"], "", "{g}");
    }
    // The console page lists them.
    let page = reqwest::blocking::Client::new()
        .get(format!("{url}/goldens"))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .text()
        .unwrap();
    for (name, _) in GOLDENS {
        assert!(page.contains(name), "{name} missing from the console page");
    }
    drop(server);

    // Without actions.http.allow_self the http golden is red: reported, exported, and
    // still shown after a restart.
    let (server, url, _) = demo(cwd, "[actions.http]\nallow_self = false\n");
    let (code, out, _) = cli(
        &["golden", "run", "http", "--token", &acme],
        &[("MAESTRO_URL", &url)],
        cwd,
    );
    assert_eq!(code, 7, "{out}");
    assert!(out.contains("RED"), "{out}");
    assert!(out.contains("actions.http.allowed_hosts"), "{out}");
    assert_eq!(metric(&url, "mc_golden_last_passed", "http"), Some(0.0));
    drop(server);
    let (code, out, err) = cli(&["--output", "json", "golden", "list"], &[], cwd);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let http = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "http")
        .unwrap();
    assert_eq!(http["last"]["passed"], false, "{http}");
    let (_server, url, _) = demo(cwd, "");
    assert_eq!(metric(&url, "mc_golden_last_passed", "http"), Some(0.0));
    assert_eq!(metric(&url, "mc_golden_last_passed", "hello"), Some(1.0));
}

#[test]
fn an_appliance_without_goldens_says_how_to_install_them_and_golden_install_does() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (text, tokens) = config_text(&dir.path().join("data"), &format!("127.0.0.1:{port}"), "");
    std::fs::write(dir.path().join("maestro.toml"), text).unwrap();
    let server = crate::support::Server::start(&dir.path().join("maestro.toml"), port);
    let env = [
        ("MAESTRO_URL", server.url.as_str()),
        ("MAESTRO_TOKEN", tokens.acme_operator.as_str()),
    ];
    let (code, _, err) = cli(&["run", "-w", "golden/hello"], &env, dir.path());
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("maestro golden install"), "{err}");
    // The embedded source still runs.
    assert_eq!(cli(&["run", "-w", "hello"], &env, dir.path()).0, 0);
    // Another archive published first as hello@1.0.0 is not the golden: it runs as a
    // package of its own, never as golden/hello, and the shipped archive cannot replace it.
    let key =
        maestro::attest::keys::SigningKey::generate(maestro::attest::keys::Algorithm::Ed25519)
            .unwrap();
    std::fs::write(dir.path().join("builder.pem"), key.to_pem().unwrap()).unwrap();
    std::fs::set_permissions(
        dir.path().join("builder.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("impostor")).unwrap();
    std::fs::write(
        dir.path().join("impostor/maestro.yaml"),
        "name: hello\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - {id: greet, uses: builtin/echo, with: {message: not the golden}}\n",
    )
    .unwrap();
    let admin_env = [
        ("MAESTRO_URL", server.url.as_str()),
        ("MAESTRO_TOKEN", tokens.admin.as_str()),
    ];
    for args in [
        &[
            "package",
            "build",
            "impostor",
            "--key",
            "builder.pem",
            "--out-dir",
            "dist",
        ][..],
        &["package", "publish", "dist/hello-1.0.0/hello-1.0.0.mpkg"],
        &["package", "install", "hello@1.0.0"],
    ] {
        let (code, out, err) = cli(args, &admin_env, dir.path());
        assert_eq!(code, 0, "{args:?}: {out}{err}");
    }
    let (code, _, err) = cli(&["run", "-w", "golden/hello"], &env, dir.path());
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("the archive this binary ships"), "{err}");
    // Tenant operators cannot install; the appliance admin can. No layout is configured
    // here, so the releases are accepted unverified (permissive) and say so.
    let (code, _, err) = cli(&["golden", "install"], &env, dir.path());
    assert_eq!(code, 9, "{err}");
    assert!(err.contains("appliance-wide administrators"), "{err}");
    let (code, out, err) = cli(
        &["golden", "install", "--token", &tokens.admin],
        &env,
        dir.path(),
    );
    assert_eq!(code, 4, "{out}{err}");
    assert_eq!(out.matches("installed, NOT verified").count(), 10, "{out}");
    assert!(out.contains("hello@1.0.0"), "{out}");
    assert!(out.contains("never replaced"), "{out}");
    assert_eq!(cli(&["run", "-w", "golden/hello"], &env, dir.path()).0, 5);
    assert_eq!(cli(&["run", "-w", "golden/timeout"], &env, dir.path()).0, 7);
    // Installing again changes nothing (the impostor still holds hello@1.0.0).
    let (code, out, _) = cli(
        &["golden", "install", "--token", &tokens.admin],
        &env,
        dir.path(),
    );
    assert_eq!(code, 4, "{out}");
    assert_eq!(out.matches("installed, NOT verified").count(), 10, "{out}");
}
