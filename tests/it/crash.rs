//! Crash test: `kill -9` the real server repeatedly while clients submit. After each restart,
//! every acknowledged execution is present, nothing stays queued or running, every receipt
//! verifies, and the log is consistent with every checkpoint seen before.
//!
//! `MAESTRO_CRASH_CYCLES` sets the number of kills (default 5).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maestro::attest::keys::PublicKey;
use maestro::attest::receipt::{self, Trust};
use maestro::tlog;
use rand::RngExt as _;
use serde_json::{Value, json};

use crate::support::{Server, config_text, free_port};

const SLOW: &str = r#"{"manifest":{"name":"slow","version":"1.0.0","region":"eu-west","tasks":[{"id":"a","uses":"builtin/sleep","with":{"duration":"300ms"}},{"id":"b","uses":"builtin/echo","needs":["a"],"with":{"message":"done"}}]}}"#;

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Checkpoint {
    size: u64,
    root: tlog::Hash,
}

fn latest_checkpoint(
    c: &reqwest::blocking::Client,
    url: &str,
    key: &PublicKey,
    origin: &str,
) -> Option<Checkpoint> {
    let r = c.get(format!("{url}/api/v1/log/checkpoint")).send().ok()?;
    if r.status() != 200 {
        return None;
    }
    let note = r.text().ok()?;
    let cp = tlog::open_checkpoint(&note, &key.note_verifier(origin))
        .expect("checkpoints are signed by the appliance key");
    Some(Checkpoint {
        size: cp.size,
        root: cp.root,
    })
}

/// Submits until `stop` is set; records every acknowledged execution id.
fn submitter(
    url: String,
    token: String,
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let c = client();
    let mut rng = rand::rng();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let body = if rng.random_range(0..4) == 0 {
            SLOW.to_owned()
        } else {
            json!({"workflow": "hello"}).to_string()
        };
        let wait = if rng.random_range(0..3) == 0 {
            "?wait=5s"
        } else {
            ""
        };
        let Ok(r) = c
            .post(format!("{url}/api/v1/executions{wait}"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
        else {
            continue;
        };
        let status = r.status().as_u16();
        // Only a complete 2xx answer is an acknowledgement.
        let Ok(v) = r.json::<Value>() else { continue };
        if status == 201 || status == 202 {
            acked
                .lock()
                .unwrap()
                .push(v["id"].as_str().unwrap().to_owned());
        }
    }
}

fn check_invariants(
    c: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    acked: &[String],
    checkpoints: &[Checkpoint],
    key: &PublicKey,
    origin: &str,
) {
    // Nothing stays queued or running: wait for the resumed work to finish.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut active = 0;
        for status in ["queued", "running"] {
            let v: Value = c
                .get(format!(
                    "{url}/api/v1/executions?status={status}&limit=1000"
                ))
                .bearer_auth(token)
                .send()
                .unwrap()
                .json()
                .unwrap();
            active += v["items"].as_array().unwrap().len();
        }
        if active == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{active} executions stay queued or running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let trust = Trust {
        keys: vec![key.clone()],
        origin: Some(origin.to_owned()),
    };
    for id in acked {
        let r = c
            .get(format!("{url}/api/v1/executions/{id}"))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged execution {id} is missing");
        let e: Value = r.json().unwrap();
        let status = e["status"].as_str().unwrap();
        assert!(
            ["succeeded", "interrupted"].contains(&status),
            "{id} is {status}"
        );
        let receipt = c
            .get(format!("{url}/api/v1/executions/{id}/receipt"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        let report = receipt::verify(&receipt, &trust);
        assert!(report.valid, "receipt of {id}: {report:#?}");
    }
    let Some(now) = latest_checkpoint(c, url, key, origin) else {
        assert!(
            acked.is_empty() && checkpoints.is_empty(),
            "the log lost its checkpoints"
        );
        return;
    };
    for old in checkpoints {
        let p: Value = c
            .get(format!(
                "{url}/api/v1/log/consistency?from={}&to={}",
                old.size, now.size
            ))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let hashes: Vec<tlog::Hash> = p["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| tlog::parse_hex_hash(h.as_str().unwrap()).unwrap())
            .collect();
        tlog::verify_consistency(&hashes, old.size, old.root, now.size, now.root).unwrap_or_else(
            |e| {
                panic!(
                    "log of size {} is not consistent with the checkpoint of size {}: {e}",
                    now.size, old.size
                )
            },
        );
    }
}

#[test]
fn acknowledged_work_survives_kill_9() {
    let cycles: usize = std::env::var("MAESTRO_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (text, tokens) = config_text(&dir.path().join("data"), &format!("127.0.0.1:{port}"), "");
    let config = dir.path().join("maestro.toml");
    std::fs::write(&config, text).unwrap();
    let token = tokens.acme_operator.clone();
    let c = client();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    let mut key_pem: Option<String> = None;
    let mut rng = rand::rng();
    for cycle in 0..=cycles {
        let mut server = Server::start(&config, port);
        let keys: Value = c
            .get(format!("{}/api/v1/keys", server.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let pem = keys["keys"][0]["pem"].as_str().unwrap().to_owned();
        if let Some(previous) = &key_pem {
            assert_eq!(previous, &pem, "the appliance key changed across a restart");
        }
        key_pem = Some(pem.clone());
        let key = PublicKey::from_pem(&pem).unwrap();
        let origin = keys["log_origin"].as_str().unwrap().to_owned();
        let snapshot = acked.lock().unwrap().clone();
        check_invariants(
            &c,
            &server.url,
            &token,
            &snapshot,
            &checkpoints,
            &key,
            &origin,
        );
        if cycle == cycles {
            assert!(
                snapshot.len() > 50,
                "too little work was acknowledged ({}) to mean anything",
                snapshot.len()
            );
            let interrupted: Value = c
                .get(format!(
                    "{}/api/v1/executions?status=interrupted&limit=1000",
                    server.url
                ))
                .bearer_auth(&token)
                .send()
                .unwrap()
                .json()
                .unwrap();
            eprintln!(
                "crash test: {cycles} kills, {} acknowledged executions present and verified, {} sealed as interrupted, {} checkpoints consistent",
                snapshot.len(),
                interrupted["items"].as_array().unwrap().len(),
                checkpoints.len()
            );
            break;
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (url, token, acked, stop) = (
                    server.url.clone(),
                    token.clone(),
                    acked.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || submitter(url, token, acked, stop))
            })
            .collect();
        let run_for = Duration::from_millis(rng.random_range(700..1500));
        let started = Instant::now();
        while started.elapsed() < run_for {
            if let Some(cp) = latest_checkpoint(&c, &server.url, &key, &origin) {
                checkpoints.push(cp);
            }
            std::thread::sleep(Duration::from_millis(150));
        }
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
    }
}
