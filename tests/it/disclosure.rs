//! Disclosure packs end to end: the tenant and region filter both ways (nothing of another
//! tenant or region in, everything of this tenant and region in), byte-for-byte determinism
//! while other tenants and regions keep running, offline verification catching tampering
//! and untrusted keys, clear refusals, the CLI against a real server checked again with
//! public tools only, and a large pack sent while it is built, its digest in trailers.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tower::ServiceExt as _;

use crate::support::{Server, TestApp, cli, config_text, echo_manifest, free_port, which};
use maestro::app::disclosure::verify::verify;
use maestro::archive::{self, Limits};
use maestro::attest::receipt::Trust;

/// Writes an artifact to `location` in a run of `region`.
fn writer(name: &str, region: &str, location: &str) -> String {
    format!(
        "name: {name}\nversion: \"1.0.0\"\nregion: {region}\ntasks:\n  - {{id: save, uses: builtin/artifact, with: {{name: {name}.txt, location: {location}, content: secret-{name}}}}}\n"
    )
}

/// The artifact's location is computed at run time, so admission lets it write abroad.
const ABROAD: &str = r#"name: abroad
version: "1.0.0"
region: eu-west
tasks:
  - {id: pick, uses: builtin/echo, with: {message: us-bucket}}
  - {id: home, uses: builtin/artifact, with: {name: home.txt, location: eu-bucket, content: home}}
  - id: away
    uses: builtin/artifact
    needs: [pick]
    with: {name: away.txt, location: "${{ tasks.pick.outputs.message }}", content: away}
"#;

async fn submit(t: &TestApp, token: &str, yaml: &str) -> Value {
    let r = t
        .post_yaml("/api/v1/executions?wait=30s", token, yaml)
        .await;
    let e = match r.json.get("execution") {
        Some(e) if r.status == 403 => e.clone(),
        _ => r.json,
    };
    assert!(e["receipt"].is_object(), "{e}");
    e
}

/// GET returning status, headers and raw bytes.
async fn get_bytes(t: &TestApp, path: &str, token: &str) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = t.router.clone().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 256 << 20)
        .await
        .unwrap()
        .to_vec();
    (status, headers, bytes)
}

fn files(pack: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    archive::read(pack, &Limits::LARGE, |e| {
        let mut b = Vec::new();
        e.data.read_to_end(&mut b)?;
        out.push((e.path, b));
        Ok(())
    })
    .unwrap();
    out
}

/// Execution ids of a pack.
fn ids(pack: &[u8]) -> BTreeSet<String> {
    files(pack)
        .iter()
        .filter_map(|(p, _)| {
            p.strip_prefix("data/executions/")?
                .split('/')
                .next()
                .map(str::to_owned)
        })
        .collect()
}

fn trust(t: &TestApp) -> Trust {
    Trust {
        keys: vec![t.app.engine.signing().appliance.public().clone()],
        origin: Some(t.app.engine.signing().origin.clone()),
    }
}

#[tokio::test]
async fn packs_hold_exactly_the_tenant_and_region_are_deterministic_and_verify() {
    let t = TestApp::new().await;
    let acme = t.tokens.acme_operator.clone();
    let globex = t.tokens.globex_operator.clone();
    let a_echo = submit(&t, &acme, &echo_manifest("a-echo", "eu-west")).await;
    let a_file = submit(&t, &acme, &writer("a-file", "eu-west", "eu-bucket")).await;
    let a_abroad = submit(&t, &acme, ABROAD).await;
    let a_denied = submit(&t, &acme, &echo_manifest("a-denied", "us-east")).await;
    assert_eq!(a_denied["status"], "denied");
    let g_eu = submit(&t, &globex, &writer("g-eu", "eu-west", "eu-bucket")).await;
    let g_us = submit(&t, &globex, &writer("g-us", "us-east", "us-bucket")).await;
    let id = |e: &Value| e["id"].as_str().unwrap().to_owned();

    let viewer = t.tokens.acme_viewer.clone();
    let (status, headers, eu) = get_bytes(&t, "/api/v1/disclosure?region=eu-west", &viewer).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&eu));
    assert_eq!(headers["content-type"], "application/gzip");
    let sha = headers["x-maestro-pack-sha256"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(sha, maestro::domain::ids::Digest::of(&eu).to_string());

    // Both ways: every acme run of eu-west is in, nothing else is.
    assert_eq!(
        ids(&eu),
        BTreeSet::from([id(&a_echo), id(&a_file), id(&a_abroad)])
    );
    let everything: Vec<u8> = files(&eu)
        .into_iter()
        .flat_map(|(p, b)| [p.into_bytes(), b].concat())
        .collect();
    let text = String::from_utf8_lossy(&everything);
    for other in [id(&g_eu), id(&g_us), id(&a_denied)] {
        assert!(
            !text.contains(&other),
            "{other} leaked into acme's eu-west pack"
        );
    }
    assert!(!text.contains("globex"), "globex named in acme's pack");
    assert!(!text.contains("secret-g-"), "globex content in acme's pack");
    // The run that wrote abroad: its eu artifact is in, the us one withheld.
    let abroad: Value = serde_json::from_slice(
        &files(&eu)
            .into_iter()
            .find(|(p, _)| p == &format!("data/executions/{}/execution.json", id(&a_abroad)))
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(abroad["withheldArtifacts"], 1, "{abroad}");
    let names: Vec<&str> = abroad["execution"]["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["home.txt"]);

    // acme's us-east pack: the denied run (it ran there) and the run that wrote there.
    let (_, _, us) = get_bytes(&t, "/api/v1/disclosure?region=us-east", &viewer).await;
    assert_eq!(ids(&us), BTreeSet::from([id(&a_denied), id(&a_abroad)]));
    let denied_decisions: Value = serde_json::from_slice(
        &files(&us)
            .into_iter()
            .find(|(p, _)| p == &format!("data/executions/{}/decisions.json", id(&a_denied)))
            .unwrap()
            .1,
    )
    .unwrap();
    let explained = denied_decisions
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["decision"]["allow"] == false)
        .unwrap();
    assert_eq!(
        explained["explanation"]["matches_recorded"], true,
        "{explained}"
    );
    assert!(
        !explained["explanation"]["explanation"]["rules"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Verified offline, with the appliance key.
    let report = verify(&eu[..], &trust(&t));
    assert!(report.valid, "{report:?}");
    assert_eq!(report.executions, 3);
    assert!(verify(&us[..], &trust(&t)).valid);

    // Deterministic: again, and after other tenants and regions moved on.
    let (_, _, again) = get_bytes(&t, "/api/v1/disclosure?region=eu-west", &viewer).await;
    assert_eq!(again, eu);
    submit(&t, &globex, &writer("g-later", "eu-west", "eu-bucket")).await;
    submit(&t, &acme, &echo_manifest("a-later-us", "us-east")).await;
    let (_, _, later) = get_bytes(&t, "/api/v1/disclosure?region=eu-west", &viewer).await;
    assert_eq!(later, eu, "the eu-west pack changed when nothing of it did");
    // Until acme runs in eu-west again.
    submit(&t, &acme, &echo_manifest("a-later-eu", "eu-west")).await;
    let (_, _, grown) = get_bytes(&t, "/api/v1/disclosure?region=eu-west", &viewer).await;
    assert_eq!(ids(&grown).len(), 4);

    // globex sees its own eu-west data only, through its token or the tenant parameter.
    let (s, _, g) = get_bytes(&t, "/api/v1/disclosure?region=eu-west", &globex).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&g).len(), 2);
    let (s, _, g2) = get_bytes(&t, "/api/v1/disclosure?region=eu-west&tenant=acme", &globex).await;
    assert_eq!(s, 404, "{}", String::from_utf8_lossy(&g2));

    // One execution's pack, the sprint plan's path; another tenant's id is not found.
    let path = format!(
        "/api/executions/{}/disclosure?region=eu-west&artifacts=true",
        id(&a_file)
    );
    let (s, _, one) = get_bytes(&t, &path, &viewer).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&one), BTreeSet::from([id(&a_file)]));
    assert!(
        files(&one)
            .iter()
            .any(|(p, b)| p.contains("/artifacts/") && b == b"secret-a-file")
    );
    assert!(verify(&one[..], &trust(&t)).valid);
    let (s, _, _) = get_bytes(
        &t,
        &format!("/api/executions/{}/disclosure?region=eu-west", id(&g_eu)),
        &viewer,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, body) = get_bytes(
        &t,
        &format!("/api/executions/{}/disclosure?region=us-east", id(&a_file)),
        &viewer,
    )
    .await;
    assert_eq!(s, 409, "{}", String::from_utf8_lossy(&body));

    // Refusals say what is wrong.
    for (q, want) in [
        ("", "region is required"),
        ("?region=mars", "not a declared region"),
        ("?region=EU-West", "did you mean \\\"eu-west\\\""),
        ("?region=eu-west&explain=some", "explain"),
        ("?region=eu-west&bogus=1", "bogus"),
    ] {
        let (s, _, body) = get_bytes(&t, &format!("/api/v1/disclosure{q}"), &viewer).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(s, 400, "{q}: {body}");
        assert!(body.contains(want), "{q}: {body}");
    }
    t.stop().await;
}

/// Rewrites one file of a pack (keeping everything else), as a tamperer would.
fn tamper(pack: &[u8], path: &str, edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut w = archive::Writer::new(Vec::new(), 1);
    for (p, mut b) in files(pack) {
        if p == path {
            edit(&mut b);
        }
        w.add(&p, &b).unwrap();
    }
    w.finish().unwrap()
}

#[tokio::test]
async fn verification_catches_tampering_and_untrusted_keys() {
    let t = TestApp::new().await;
    let e = submit(
        &t,
        &t.tokens.acme_operator,
        &writer("w", "eu-west", "eu-bucket"),
    )
    .await;
    let (_, _, pack) = get_bytes(
        &t,
        "/api/v1/disclosure?region=eu-west",
        &t.tokens.acme_viewer,
    )
    .await;
    assert!(verify(&pack[..], &trust(&t)).valid);
    let failed = |bytes: &[u8], trust: &Trust| -> Vec<String> {
        let r = verify(bytes, trust);
        assert!(!r.valid);
        r.checks
            .iter()
            .filter(|c| c.outcome == maestro::attest::receipt::Outcome::Fail)
            .map(|c| c.name.clone())
            .collect()
    };
    let dir = format!("data/executions/{}", e["id"].as_str().unwrap());
    // A record edited: its digest no longer matches the index.
    let edited = tamper(&pack, &format!("{dir}/execution.json"), |b| {
        let s = String::from_utf8(b.clone())
            .unwrap()
            .replace("succeeded", "failed");
        *b = s.into_bytes();
    });
    assert!(failed(&edited, &trust(&t)).contains(&"index".to_owned()));
    // The index edited to match: its signature no longer names it.
    let reindexed = {
        let fs = files(&edited);
        let mut lines = String::new();
        for (p, b) in fs.iter().filter(|(p, _)| p.starts_with("data/")) {
            lines.push_str(&maestro::domain::disclosure::index_line(
                &maestro::domain::ids::Digest::of(b),
                p,
            ));
        }
        tamper(&edited, "index.sha256", |b| *b = lines.clone().into_bytes())
    };
    assert_eq!(failed(&reindexed, &trust(&t)), ["signature"]);
    // Another key.
    let other =
        maestro::attest::keys::SigningKey::generate(maestro::attest::keys::Algorithm::Ed25519)
            .unwrap();
    let stranger = Trust {
        keys: vec![other.public().clone()],
        origin: None,
    };
    assert!(failed(&pack, &stranger).contains(&"signature".to_owned()));
    // A file added, a file removed.
    let mut w = archive::Writer::new(Vec::new(), 1);
    for (p, b) in files(&pack) {
        if p == "data/keys.json" {
            w.add("data/extra.txt", b"x").unwrap();
        }
        w.add(&p, &b).unwrap();
    }
    assert!(failed(&w.finish().unwrap(), &trust(&t)).contains(&"index".to_owned()));
    // Not an archive at all.
    assert!(failed(b"garbage", &trust(&t)).contains(&"archive".to_owned()));
    t.stop().await;
}

/// Runs of globex in us-east in the server test: enough for a pack over one chunk.
const ECHOES: u64 = 240;

/// GETs `url` with `token` over a real connection, asking for trailers if `te`: the
/// headers, the body and the trailers.
fn get_streamed(
    url: &str,
    token: &str,
    te: bool,
) -> (
    reqwest::header::HeaderMap,
    Vec<u8>,
    Option<reqwest::header::HeaderMap>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut req = reqwest::Client::new().get(url).bearer_auth(token);
        if te {
            req = req.header("te", "trailers");
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let headers = resp.headers().clone();
        let body = http_body_util::BodyExt::collect(reqwest::Body::from(resp))
            .await
            .unwrap();
        let trailers = body.trailers().cloned();
        (headers, body.to_bytes().to_vec(), trailers)
    })
}

#[test]
fn the_cli_packs_from_a_server_and_public_tools_verify_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (text, tokens) = config_text(&dir.path().join("data"), &format!("127.0.0.1:{port}"), "");
    let config = dir.path().join("maestro.toml");
    std::fs::write(&config, text).unwrap();
    let server = Server::start(&config, port);
    let url = server.url.clone();
    let c = reqwest::blocking::Client::new();
    for i in 0..3 {
        let r = c
            .post(format!("{url}/api/v1/executions?wait=30s"))
            .bearer_auth(&tokens.acme_operator)
            .header("content-type", "application/yaml")
            .body(writer(&format!("w{i}"), "eu-west", "eu-bucket"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    // Another tenant's region with enough runs that its pack no longer fits one chunk.
    std::thread::scope(|s| {
        for k in 0..4 {
            let (c, url, token) = (&c, &url, &tokens.globex_operator);
            s.spawn(move || {
                for i in 0..ECHOES / 4 {
                    let r = c
                        .post(format!("{url}/api/v1/executions?wait=30s"))
                        .bearer_auth(token)
                        .header("content-type", "application/yaml")
                        .body(echo_manifest(&format!("e{k}-{i}"), "us-east"))
                        .send()
                        .unwrap();
                    assert_eq!(r.status(), 201);
                }
            });
        }
    });
    let cwd = dir.path();
    let env = [
        ("MAESTRO_URL", url.as_str()),
        ("MAESTRO_TOKEN", tokens.acme_viewer.as_str()),
    ];
    let (code, out, err) = cli(
        &[
            "--output",
            "json",
            "disclosure",
            "pack",
            "--region",
            "eu-west",
            "--out",
            "eu.tar.gz",
        ],
        &env,
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["executions"], 3);

    // A large pack is sent while it is built: no length, its digest and count as trailers
    // to a client that asks for them (the CLI does, and checks the digest), the same bytes
    // without them to one that does not.
    let globex = [
        ("MAESTRO_URL", url.as_str()),
        ("MAESTRO_TOKEN", tokens.globex_operator.as_str()),
    ];
    let args = [
        "--output",
        "json",
        "disclosure",
        "pack",
        "--region",
        "us-east",
    ];
    let (code, out, err) = cli(&[&args[..], &["--out", "us.tar.gz"]].concat(), &globex, cwd);
    assert_eq!(code, 0, "{out}{err}");
    let us: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(us["executions"], ECHOES);
    let pack = std::fs::read(cwd.join("us.tar.gz")).unwrap();
    assert!(
        pack.len() > 256 << 10,
        "{} bytes: too small to stream",
        pack.len()
    );
    assert_eq!(
        us["sha256"],
        maestro::domain::ids::Digest::of(&pack).to_string()
    );
    let pack_url = format!("{url}/api/v1/disclosure?region=us-east");
    let (headers, body, trailers) = get_streamed(&pack_url, &tokens.globex_operator, true);
    assert!(headers.get("content-length").is_none(), "{headers:?}");
    assert!(
        headers.get("x-maestro-pack-sha256").is_none(),
        "{headers:?}"
    );
    assert_eq!(body, pack);
    let trailers = trailers.expect("trailers to a client that asked for them");
    assert_eq!(
        trailers["x-maestro-pack-sha256"],
        us["sha256"].as_str().unwrap()
    );
    assert_eq!(trailers["x-maestro-pack-executions"], ECHOES.to_string());
    let (_, body, trailers) = get_streamed(&pack_url, &tokens.globex_operator, false);
    assert_eq!(body, pack);
    assert!(trailers.is_none(), "{trailers:?}");

    let (code, pem, err) = cli(&["keys", "show", "--pem", "--server", &url], &env, cwd);
    assert_eq!(code, 0, "{err}");
    std::fs::write(cwd.join("key.pem"), &pem).unwrap();
    let (code, out, err) = cli(
        &[
            "--output",
            "json",
            "disclosure",
            "verify",
            "eu.tar.gz",
            "--key",
            "key.pem",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["executions"], 3);
    // A missing region is a usage error; an unknown one names the problem.
    let (code, _, err) = cli(
        &[
            "disclosure",
            "pack",
            "--region",
            "mars",
            "--out",
            "x.tar.gz",
        ],
        &env,
        cwd,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a declared region"), "{err}");
    assert!(!cwd.join("x.tar.gz").exists() && !cwd.join("x.tar.gz.partial").exists());
    drop(server);

    // With the server stopped: the same pack from the data directory, byte for byte.
    let (code, out, err) = cli(
        &[
            "--config",
            config.to_str().unwrap(),
            "--output",
            "json",
            "disclosure",
            "pack",
            "--region",
            "eu-west",
            "--tenant",
            "acme",
            "--out",
            "local.tar.gz",
        ],
        &[],
        cwd,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(cwd.join("local.tar.gz")).unwrap(),
        std::fs::read(cwd.join("eu.tar.gz")).unwrap()
    );

    // Public tools only.
    if which("openssl").is_some() && which("python3").is_some() && which("sha256sum").is_some() {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scripts/verify-disclosure-without-maestro");
        let out = std::process::Command::new(&script)
            .arg(cwd.join("eu.tar.gz"))
            .arg(cwd.join("key.pem"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("PASS"));
    }
}

/// A one-request HTTP server on a free loopback port answering `response` (raw HTTP/1.1);
/// returns its URL and the request it read.
fn answer_once(response: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "the client closed before its request ended");
            request.extend_from_slice(&buf[..n]);
        }
        conn.write_all(response).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (url, handle)
}

/// The CLI keeps no pack whose bytes do not match the digest the server announced, nor one
/// whose transfer was cut short: it fails, says why, and leaves no file behind.
#[test]
fn the_cli_keeps_no_pack_that_does_not_match_its_announced_digest_or_was_cut_short() {
    let wrong_digest: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/gzip\r\n\
transfer-encoding: chunked\r\ntrailer: x-maestro-pack-sha256, x-maestro-pack-executions\r\n\r\n\
5\r\nhello\r\n0\r\nx-maestro-pack-sha256: sha256:0000000000000000000000000000000000000000000000000000000000000000\r\n\
x-maestro-pack-executions: 1\r\n\r\n";
    let cut_short: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/gzip\r\n\
transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
    for (response, code, says) in [
        (wrong_digest, 1, "the server announced sha256:0000"),
        (cut_short, 8, "cut short"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (url, server) = answer_once(response);
        let env = [("MAESTRO_URL", url.as_str()), ("MAESTRO_TOKEN", "mct_x")];
        let args = [
            "disclosure",
            "pack",
            "--region",
            "eu-west",
            "--out",
            "p.tar.gz",
        ];
        let (got, out, err) = cli(&args, &env, dir.path());
        let request = server.join().unwrap().to_ascii_lowercase();
        assert!(request.contains("te: trailers"), "{request}");
        assert_eq!(got, code, "{out}{err}");
        assert!(err.contains(says), "{err} should say {says}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
