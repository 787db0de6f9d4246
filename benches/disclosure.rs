//! Disclosure pack bench against a real `maestro serve`: seeds one tenant-region with
//! `--executions` runs (default 100,000: echo, hash, artifact-writing, failing and denied
//! runs) beside noise of another region and another tenant, then downloads the tenant's
//! packs over HTTP, timing each and sampling the server's resident memory, a small pack
//! (the other region, a tenth of the size) first: memory that does not grow with the pack
//! size shows as the same peak for both once the store's cache is warm. Checks that the same request gives the same bytes,
//! and times the offline verification of the big pack.
//!
//! `cargo bench --bench disclosure --features isal -- [--executions N] [--data-dir DIR] [--only seed]`
//! (without `--features isal`, the server's packs are deflated by zlib-rs).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::{OPERATOR, VIEWER};
use serde_json::{Value, json};
use sha2::Digest as _;

/// Locations of both regions; acme may use both, globex only eu-west.
const PLACES: &str = r#"[locations.eu-bucket]
region = "eu-west"
[locations.us-bucket]
region = "us-east"
[tenants.acme]
allowed_regions = ["eu-west", "us-east"]
[tenants.globex]
allowed_regions = ["eu-west"]"#;

/// The i-th seeded submission: (token, manifest). One in 100 acme runs is denied (it names
/// a location of the other region), one in 20 fails, one in 5 writes an artifact.
fn submission(i: u64, main: u64) -> (&'static str, Value) {
    let (token, region, bucket) = if i < main {
        (OPERATOR[0], "eu-west", "eu-bucket")
    } else if i < main + main / 10 {
        (OPERATOR[0], "us-east", "us-bucket")
    } else {
        (OPERATOR[1], "eu-west", "eu-bucket")
    };
    let echo = json!({"id": "greet", "uses": "builtin/echo", "with": {"message": format!("greeting {i}")}});
    let tasks = match i % 100 {
        0 => vec![json!({"id": "save", "uses": "builtin/artifact", "with": {
            "name": "x.txt", "location": if bucket == "eu-bucket" { "us-bucket" } else { "eu-bucket" },
            "content": "denied"}})],
        n if n % 20 == 1 => vec![
            json!({"id": "boom", "uses": "builtin/fail", "with": {"message": format!("planned failure {i}")}}),
        ],
        n if n % 5 == 2 => vec![
            echo,
            json!({"id": "save", "uses": "builtin/artifact", "needs": ["greet"], "with": {
                "name": "greeting.txt", "location": bucket,
                "content": "${{ tasks.greet.outputs.message }}"}}),
        ],
        _ => vec![
            echo,
            json!({"id": "digest", "uses": "builtin/hash", "needs": ["greet"],
                "with": {"data": "${{ tasks.greet.outputs.message }}"}}),
        ],
    };
    (
        token,
        json!({"manifest": {"name": format!("job-{}", i % 50), "version": "1.0.0", "region": region, "tasks": tasks}}),
    )
}

async fn log_size(client: &reqwest::Client, url: &str) -> u64 {
    let v: Value = client
        .get(format!("{url}/api/v1/log"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["checkpoint"]["size"].as_u64().unwrap_or(0)
}

async fn seed(client: &reqwest::Client, url: &str, main: u64) {
    let total = main + main / 10 + main / 5;
    let have = log_size(client, url).await;
    if have >= total {
        println!("data directory already holds {have} executions");
        return;
    }
    println!("seeding {} executions over HTTP…", total - have);
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(have));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let (token, body) = submission(i, main);
                loop {
                    let r = client
                        .post(format!("{url}/api/v1/executions"))
                        .bearer_auth(token)
                        .json(&body)
                        .send()
                        .await
                        .expect("seeding");
                    match r.status().as_u16() {
                        202 | 403 => break,
                        429 | 503 => tokio::time::sleep(Duration::from_millis(50)).await,
                        s => panic!("seeding: {s} {}", r.text().await.unwrap_or_default()),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    while log_size(client, url).await < total {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "seeded {} in {:.0} s",
        total - have,
        started.elapsed().as_secs_f64()
    );
}

struct Download {
    secs: f64,
    bytes: u64,
    sha256: String,
    executions: String,
    peak_rss: u64,
}

/// Downloads a pack into a file while sampling the server's memory.
async fn download(
    client: &reqwest::Client,
    url: &str,
    region: &str,
    pid: u32,
    out: &std::path::Path,
) -> Download {
    let sampling = Arc::new(AtomicBool::new(true));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (sampling, peak) = (sampling.clone(), peak.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Some(r) = common::rss(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let resp = client
        .get(format!("{url}/api/v1/disclosure?region={region}"))
        .bearer_auth(VIEWER)
        .header("te", "trailers")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{region}");
    // A large pack is sent while it is built, its digest and count in trailers.
    let mut fields = resp.headers().clone();
    let mut body = reqwest::Body::from(resp);
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut hasher = sha2::Sha256::new();
    let mut bytes = 0u64;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        match frame.unwrap().into_data() {
            Ok(chunk) => {
                hasher.update(&chunk);
                bytes += chunk.len() as u64;
                file.write_all(&chunk).unwrap();
            }
            Err(frame) => fields.extend(frame.into_trailers().unwrap()),
        }
    }
    file.flush().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let sha256 = hex::encode(hasher.finalize());
    let field = |name: &str| fields[name].to_str().unwrap().to_owned();
    assert_eq!(field("x-maestro-pack-sha256"), format!("sha256:{sha256}"));
    let executions = field("x-maestro-pack-executions");
    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    Download {
        secs,
        bytes,
        sha256,
        executions,
        peak_rss: peak.load(Ordering::Relaxed),
    }
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1).cloned())
    };
    let main_n: u64 = arg("--executions").map_or(100_000, |v| v.parse().expect("--executions N"));
    let temp = tempfile::tempdir().unwrap();
    let dir = arg("--data-dir")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().join("data"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, common::config(&dir, port, PLACES)).unwrap();
    let server = common::serve(&config_path, port, None, Duration::from_secs(600));
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    seed(&client, &url, main_n).await;
    if arg("--only").as_deref() == Some("seed") {
        return;
    }
    let pid = server.pid();
    println!(
        "server RSS before packs: {} MB",
        common::rss(pid).unwrap_or(0) >> 20
    );
    let out = temp.path();
    for (label, region) in [
        ("small (us-east)", "us-east"),
        ("big (eu-west)", "eu-west"),
        ("big again", "eu-west"),
        ("small again", "us-east"),
    ] {
        let d = download(
            &client,
            &url,
            region,
            pid,
            &out.join(format!("{region}.tar.gz")),
        )
        .await;
        println!(
            "{label}: {} executions, {:.1} MB in {:.2} s, server peak RSS {} MB, sha256 {}",
            d.executions,
            d.bytes as f64 / 1e6,
            d.secs,
            d.peak_rss >> 20,
            &d.sha256[..16]
        );
    }
    let first = std::fs::read(out.join("eu-west.tar.gz")).unwrap();
    let started = Instant::now();
    let keys: Value = client
        .get(format!("{url}/api/v1/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trust = maestro::attest::receipt::Trust {
        keys: keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                maestro::attest::keys::PublicKey::from_pem(k["pem"].as_str().unwrap()).unwrap()
            })
            .collect(),
        origin: None,
    };
    let report = maestro::app::disclosure::verify::verify(&first[..], &trust);
    println!(
        "offline verification of the big pack: {} in {:.1} s",
        if report.valid { "valid" } else { "INVALID" },
        started.elapsed().as_secs_f64()
    );
    assert!(report.valid, "{:?}", report.checks);
}
