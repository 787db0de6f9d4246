//! Action tests: each built-in produces exactly the outputs its catalog entry declares, and
//! refuses what it must (hosts, commands, locations, sizes).

use super::*;
use crate::domain::actions::{BUILTINS, builtin};
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn env(allowed_hosts: Vec<String>, exec_enabled: bool, work: PathBuf) -> ActionEnv {
    ActionEnv::new(
        HttpActionConfig {
            allowed_hosts,
            allow_self: false,
            timeout: "5s".into(),
            max_response_bytes: 64,
        },
        ExecActionConfig {
            enabled: exec_enabled,
            allowed_commands: vec!["echo".into(), "sh".into(), "cat".into()],
            timeout: "1s".into(),
            ..ExecActionConfig::default()
        },
        BTreeMap::from([("eu-bucket".to_string(), "eu-west".to_string())]),
        work,
        16,
        "http://127.0.0.1:7878".into(),
    )
    .unwrap()
}

async fn call(
    env: &ActionEnv,
    name: &str,
    input: Value,
    attempt: u32,
) -> Result<ActionResult, String> {
    let id = ExecutionId::generate();
    let tenant = TenantId::new("acme").unwrap();
    let ctx = ActionCtx {
        env,
        execution: &id,
        tenant: &tenant,
        task: "t",
        attempt,
    };
    run(builtin(name).unwrap(), input.as_object().unwrap(), &ctx).await
}

/// Serves one canned HTTP response on a loopback port and returns the port.
async fn one_shot_server(body: &'static str, status: u16) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        if let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    port
}

fn keys(r: &ActionResult) -> Vec<String> {
    let mut k: Vec<String> = r.outputs.keys().cloned().collect();
    k.sort();
    k
}

fn declared(name: &str) -> Vec<String> {
    let mut k: Vec<String> = builtin(name)
        .unwrap()
        .outputs
        .iter()
        .map(|s| s.to_string())
        .collect();
    k.sort();
    k
}

#[tokio::test]
async fn every_builtin_sets_exactly_its_declared_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let port = one_shot_server("{\"ok\":true}", 200).await;
    let env = env(
        vec![format!("127.0.0.1:{port}")],
        true,
        dir.path().to_owned(),
    );
    let inputs = [
        ("builtin/echo", json!({"message": {"a": 1}})),
        ("builtin/hash", json!({"data": "x", "algorithm": "sha512"})),
        ("builtin/sleep", json!({"duration": "1ms"})),
        ("builtin/fail", json!({"attempts": 0})),
        ("builtin/transform", json!({"input": "a", "op": "upper"})),
        (
            "builtin/artifact",
            json!({"name": "r.txt", "location": "eu-bucket", "content": "hello"}),
        ),
        (
            "builtin/http",
            json!({"url": format!("http://127.0.0.1:{port}/x")}),
        ),
        ("builtin/exec", json!({"command": ["echo", "hi"]})),
    ];
    assert_eq!(inputs.len(), BUILTINS.len());
    for (name, input) in inputs {
        let r = call(&env, name, input, 1)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(keys(&r), declared(name), "{name}");
    }
}

#[tokio::test]
async fn fail_fails_the_first_attempts_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(vec![], false, dir.path().to_owned());
    assert!(
        call(&env, "builtin/fail", json!({"attempts": 2}), 2)
            .await
            .is_err()
    );
    assert_eq!(
        call(&env, "builtin/fail", json!({"attempts": 2}), 3)
            .await
            .unwrap()
            .outputs["attempt"],
        3
    );
    let e = call(&env, "builtin/fail", json!({"message": "boom"}), 9)
        .await
        .unwrap_err();
    assert_eq!(e, "boom (attempt 9)");
}

#[tokio::test]
async fn artifacts_carry_their_location_region_and_respect_limits() {
    let dir = tempfile::tempdir().unwrap();
    let env = env(vec![], false, dir.path().to_owned());
    let r = call(
        &env,
        "builtin/artifact",
        json!({"name": "a", "location": "eu-bucket", "content": "aGk=", "encoding": "base64"}),
        1,
    )
    .await
    .unwrap();
    assert_eq!(r.artifacts[0].bytes, b"hi");
    assert_eq!(r.artifacts[0].meta.region, "eu-west");
    assert_eq!(r.artifacts[0].meta.digest, Digest::of(b"hi"));
    let e = call(
        &env,
        "builtin/artifact",
        json!({"name": "a", "location": "us", "content": "x"}),
        1,
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("unknown storage location \"us\" (configured: eu-bucket)"),
        "{e}"
    );
    let e = call(
        &env,
        "builtin/artifact",
        json!({"name": "a", "location": "eu-bucket", "content": "x".repeat(17)}),
        1,
    )
    .await
    .unwrap_err();
    assert!(e.contains("limit is 16"), "{e}");
    let e = call(
        &env,
        "builtin/artifact",
        json!({"name": "../x", "location": "eu-bucket", "content": "x"}),
        1,
    )
    .await
    .unwrap_err();
    assert!(e.contains("without '/'"), "{e}");
}

#[tokio::test]
async fn http_refuses_hosts_outside_the_allow_list_and_large_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let port = one_shot_server("{}", 200).await;
    let env1 = env(vec![], false, dir.path().to_owned());
    let e = call(
        &env1,
        "builtin/http",
        json!({"url": format!("http://127.0.0.1:{port}/")}),
        1,
    )
    .await
    .unwrap_err();
    assert!(e.contains("not in actions.http.allowed_hosts"), "{e}");
    let big = one_shot_server(
        "{\"data\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
        200,
    )
    .await;
    let env2 = env(vec!["127.0.0.1".into()], false, dir.path().to_owned());
    let e = call(
        &env2,
        "builtin/http",
        json!({"url": format!("http://127.0.0.1:{big}/")}),
        1,
    )
    .await
    .unwrap_err();
    assert!(e.contains("exceeds 64 bytes"), "{e}");
    let status = one_shot_server("{}", 503).await;
    let e = call(
        &env2,
        "builtin/http",
        json!({"url": format!("http://127.0.0.1:{status}/")}),
        1,
    )
    .await
    .unwrap_err();
    assert!(e.contains("answered 503"), "{e}");
    let e = call(
        &env2,
        "builtin/http",
        json!({"url": "file:///etc/passwd"}),
        1,
    )
    .await
    .unwrap_err();
    assert!(e.contains("scheme"), "{e}");
}

#[tokio::test]
async fn exec_is_off_by_default_allow_listed_and_timed_out() {
    let dir = tempfile::tempdir().unwrap();
    let off = env(vec![], false, dir.path().to_owned());
    assert!(
        call(&off, "builtin/exec", json!({"command": ["echo"]}), 1)
            .await
            .unwrap_err()
            .contains("disabled")
    );
    let on = env(vec![], true, dir.path().to_owned());
    let e = call(&on, "builtin/exec", json!({"command": ["ls"]}), 1)
        .await
        .unwrap_err();
    assert!(e.contains("not in actions.exec.allowed_commands"), "{e}");
    let r = call(
        &on,
        "builtin/exec",
        json!({"command": ["cat"], "stdin": "piped"}),
        1,
    )
    .await
    .unwrap();
    assert_eq!(r.outputs["stdout"], "piped");
    let r = call(
        &on,
        "builtin/exec",
        json!({"command": ["sh", "-c", "echo \"$HOME|$SECRET|$PATH\""], "env": {"SECRET": "s"}}),
        1,
    )
    .await
    .unwrap();
    let out = r.outputs["stdout"].as_str().unwrap();
    assert!(out.contains("|s|/usr/local/bin:/usr/bin:/bin"), "{out}");
    assert!(
        !out.contains("/root"),
        "the environment must be clean: {out}"
    );
    let started = std::time::Instant::now();
    let e = call(
        &on,
        "builtin/exec",
        json!({"command": ["sh", "-c", "sleep 30 & sleep 30"]}),
        1,
    )
    .await
    .unwrap_err();
    assert!(e.contains("timed out after 1s"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let e = call(
        &on,
        "builtin/exec",
        json!({"command": ["sh", "-c", "echo oops >&2; exit 3"]}),
        1,
    )
    .await
    .unwrap_err();
    assert_eq!(e, "command exited with status 3: oops");
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|d| {
        std::fs::read_dir(d.unwrap().path())
            .unwrap()
            .next()
            .is_none()
    }));
}
