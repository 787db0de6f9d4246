//! The console and search under load against a real server holding many executions.
//!
//! `cargo bench --bench console -- [--executions 1000000] [--clients 32] [--duration 20s] [--data-dir DIR] [--only PHASE]`
//!
//! It starts `maestro serve` (the binary built with this bench) with tenants `acme` (nine
//! runs in ten) and `globex`, and seeds it over HTTP with `--executions` executions: echo and
//! hash runs, runs writing an artifact to a region-tagged location, failing runs and runs the
//! admission policy denies. With `--data-dir`, the data directory is kept and reused: seeding
//! only tops it up to `--executions`. Once every execution is final and the search index has
//! caught up, `--clients` clients (acme's viewer token) each request pages in a closed loop for
//! `--duration` per phase:
//!
//! 1. `/executions` (the first page, and filtered by status);
//! 2. `/executions/{id}` of 2,000 executions spread over the history (verified receipt,
//!    inclusion proof, every decision replayed and explained; the replays are cached after the
//!    first view), then of 20,000 (ten times what the replay cache keeps: mostly uncached);
//! 3. `/search` with field and free-text queries (`status:failed task:boom`,
//!    `reason:action_disabled`, `uses:builtin/artifact region:eu-west`, `greeting`);
//! 4. `/search` by receipt digest, full and as a 12-digit prefix.
//!
//! It prints p50/p95/p99 per phase, and the server's own `mc_console_view_ms` per page. The
//! load generator shares the machine's cores with the server; figures are for both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

mod common;
use common::{OPERATOR, Server, VIEWER, percentile};
use serde_json::{Value, json};

struct Args {
    executions: u64,
    clients: usize,
    duration: Duration,
    data_dir: Option<std::path::PathBuf>,
    only: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        executions: 1_000_000,
        clients: 32,
        duration: Duration::from_secs(20),
        data_dir: None,
        only: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let val = || argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--executions" => a.executions = val().parse().expect("--executions N"),
            "--clients" => a.clients = val().parse().expect("--clients N"),
            "--duration" => {
                a.duration = maestro::domain::duration::parse(&val()).expect("--duration like 20s")
            }
            "--data-dir" => a.data_dir = Some(val().into()),
            "--only" => a.only = Some(val()),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn start_server(data_dir: Option<&std::path::Path>) -> (Server, String) {
    let temp = match data_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().expect("temp dir")),
    };
    let dir = data_dir
        .map(|d| d.to_path_buf())
        .unwrap_or_else(|| temp.as_ref().unwrap().path().join("data"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let config = common::config(
        &dir,
        port,
        "[locations.eu-bucket]\nregion = \"eu-west\"\n[tenants.acme]\n[tenants.globex]",
    );
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, config).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let server = common::serve(&config_path, port, temp, Duration::from_secs(600));
    (server, url)
}

/// The i-th seeded manifest: the mix of kinds described above.
fn manifest(i: u64) -> Value {
    let task = |id: &str, uses: &str, with: Value| json!({"id": id, "uses": uses, "with": with});
    let tasks = match i % 20 {
        0 => vec![task(
            "boom",
            "builtin/fail",
            json!({"message": format!("planned failure {i}")}),
        )],
        1 => vec![task("shell", "builtin/exec", json!({"command": ["true"]}))],
        2..=5 => vec![
            task(
                "greet",
                "builtin/echo",
                json!({"message": format!("greeting {i}")}),
            ),
            json!({"id": "save", "uses": "builtin/artifact", "needs": ["greet"], "with": {
                "name": "greeting.txt", "location": "eu-bucket",
                "content": "${{ tasks.greet.outputs.message }}"}}),
        ],
        _ => vec![
            task(
                "greet",
                "builtin/echo",
                json!({"message": format!("greeting {i}")}),
            ),
            json!({"id": "digest", "uses": "builtin/hash", "needs": ["greet"],
                "with": {"data": "${{ tasks.greet.outputs.message }}"}}),
        ],
    };
    json!({"manifest": {"name": format!("job-{}", i % 50), "version": "1.0.0", "region": "eu-west", "tasks": tasks}})
}

/// `GET url` as JSON, with a bearer token when given.
async fn get_json(client: &reqwest::Client, url: &str, token: Option<&str>) -> Value {
    let mut r = client.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap().json().await.unwrap()
}

async fn count(client: &reqwest::Client, url: &str) -> (u64, u64) {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sum = |prefix: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    (sum("mc_index_documents"), sum("mc_index_lag_changes"))
}

async fn seed(client: &reqwest::Client, url: &str, target: u64) {
    // Every execution ends with a receipt in the log: its size is what the store holds.
    let log = get_json(client, &format!("{url}/api/v1/log"), None).await;
    let have = log["checkpoint"]["size"].as_u64().unwrap_or(0);
    if have >= target {
        println!("data directory already holds {have} executions; waiting for the index…");
        let started = Instant::now();
        while count(client, url).await.0 < have {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        println!("index ready in {:.0} s", started.elapsed().as_secs_f64());
        return;
    }
    let todo = target - have;
    println!("seeding {todo} executions over HTTP…");
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(have));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let client = client.clone();
        let url = url.to_owned();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= target {
                    return;
                }
                let token = if i % 10 == 9 {
                    OPERATOR[1]
                } else {
                    OPERATOR[0]
                };
                loop {
                    match client
                        .post(format!("{url}/api/v1/executions"))
                        .bearer_auth(token)
                        .json(&manifest(i))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().as_u16() == 202 || r.status().as_u16() == 403 => break,
                        Ok(r) if r.status().as_u16() == 429 || r.status().as_u16() == 503 => {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Ok(r) => panic!(
                            "seeding: {} {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        ),
                        Err(e) => panic!("seeding: {e}"),
                    }
                }
                if i.is_multiple_of(50_000) && i > have {
                    println!(
                        "  {i} submitted, {:.0}/s",
                        (i - have) as f64 / started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "submitted {todo} in {:.0} s ({:.0}/s); waiting for the runs and the index…",
        started.elapsed().as_secs_f64(),
        todo as f64 / started.elapsed().as_secs_f64()
    );
    loop {
        let (docs, lag) = count(client, url).await;
        let queued = get_json(
            client,
            &format!("{url}/api/v1/search?q=status%3Aqueued&limit=1"),
            Some(OPERATOR[0]),
        )
        .await;
        if docs >= target && lag == 0 && queued["total"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!("seeded in {:.0} s", started.elapsed().as_secs_f64());
}

/// `clients` clients request `paths` (round robin from a shared counter) for `duration`.
async fn phase(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    paths: Arc<Vec<String>>,
    clients: usize,
    duration: Duration,
) {
    let lat = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, paths, lat, errors, next) = (
            client.clone(),
            url.to_owned(),
            paths.clone(),
            lat.clone(),
            errors.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < duration {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = &paths[i % paths.len()];
                let t = Instant::now();
                let ok = match client
                    .get(format!("{url}{path}"))
                    .bearer_auth(VIEWER)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    lat.lock().push(t.elapsed());
                } else {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut lat = std::mem::take(&mut *lat.lock());
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:34} n={:6} errors={:3} {:6.0}/s  p50={:6.2}ms p95={:6.2}ms p99={:6.2}ms",
        lat.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        lat.len() as f64 / started.elapsed().as_secs_f64(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.95)),
        ms(percentile(&lat, 0.99)),
    );
}

fn main() {
    let args = parse_args();
    let (server, url) = start_server(args.data_dir.as_deref());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap();
            seed(&client, &url, args.executions).await;
            // How long after its durable answer a new execution is found by id, 50 times.
            let mut lags = Vec::new();
            for i in 0..50u64 {
                let e: Value = client
                    .post(format!("{url}/api/v1/executions"))
                    .bearer_auth(OPERATOR[0])
                    .json(&manifest(1_000_000_000 + i * 20 + 7))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let id = e["id"].as_str().unwrap().to_owned();
                let t = Instant::now();
                loop {
                    let r = get_json(
                        &client,
                        &format!("{url}/api/v1/search?q={id}"),
                        Some(VIEWER),
                    )
                    .await;
                    if r["total"] == 1 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                lags.push(t.elapsed());
            }
            lags.sort();
            println!(
                "searchable after the durable answer: p50 {:.0} ms, max {:.0} ms (50 executions)",
                percentile(&lags, 0.5).as_secs_f64() * 1000.0,
                lags.last().unwrap().as_secs_f64() * 1000.0
            );
            // A sample of acme's executions and receipt digests to request.
            let mut ids = Vec::new();
            let mut digests = Vec::new();
            let mut cursor: Option<String> = None;
            while ids.len() < 20_000 {
                let after = cursor
                    .as_deref()
                    .map(|c| format!("&cursor={c}"))
                    .unwrap_or_default();
                let page = get_json(
                    &client,
                    &format!("{url}/api/v1/executions?limit=1000{after}"),
                    Some(VIEWER),
                )
                .await;
                for e in page["items"].as_array().unwrap() {
                    ids.push(e["id"].as_str().unwrap().to_owned());
                    if let Some(d) = e["receipt_digest"].as_str() {
                        digests.push(d.to_owned());
                    }
                }
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            // Spread the sample over the whole history.
            let stride = (ids.len() / 2000).max(1);
            let pick =
                |v: &[String]| -> Vec<String> { v.iter().step_by(stride).cloned().collect() };
            // Every one of the 20,000 for the uncached detail phase: 40,000 decisions, ten
            // times what the replay cache keeps.
            let all_details: Vec<String> = ids.iter().map(|i| format!("/executions/{i}")).collect();
            let (ids, digests) = (pick(&ids), pick(&digests));
            println!(
                "server {url}; {} clients; {} per phase; {} executions sampled",
                args.clients,
                maestro::domain::duration::format(args.duration),
                ids.len()
            );
            let enc = |s: &str| -> String {
                s.bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() {
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect()
            };
            let lists = vec![
                "/executions".to_owned(),
                "/executions?status=failed".into(),
                "/executions?status=succeeded".into(),
                "/executions?status=denied".into(),
            ];
            let details: Vec<String> = ids.iter().map(|i| format!("/executions/{i}")).collect();
            let searches: Vec<String> = [
                "status:failed task:boom",
                "reason:action_disabled",
                "uses:builtin/artifact region:eu-west",
                "greeting",
                "name:job-7 status:succeeded",
                "\"planned failure\"",
            ]
            .iter()
            .map(|q| format!("/search?q={}", enc(q)))
            .collect();
            let by_digest: Vec<String> = digests
                .iter()
                .flat_map(|d| {
                    [
                        format!("/search?q={}", enc(d)),
                        format!("/search?q={}", enc(&d[..7 + 12])),
                    ]
                })
                .collect();
            for (name, paths) in [
                ("/executions", lists),
                ("/executions/{id}", details),
                (
                    "/executions/{id} (20,000 ids, replays mostly uncached)",
                    all_details,
                ),
                ("/search (fields, free text)", searches),
                ("/search (digest, full and prefix)", by_digest),
            ] {
                if args
                    .only
                    .as_ref()
                    .is_some_and(|o| !name.contains(o.as_str()))
                {
                    continue;
                }
                phase(
                    &client,
                    &url,
                    name,
                    Arc::new(paths),
                    args.clients,
                    args.duration,
                )
                .await;
            }
            let text = client
                .get(format!("{url}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            for line in text.lines().filter(|l| {
                l.starts_with("mc_console_view_ms_sum") || l.starts_with("mc_console_view_ms_count")
            }) {
                println!("{line}");
            }
        });
    drop(server);
}
