//! Load against a real server over HTTP on 127.0.0.1: throughput of durable, signed, logged
//! single-task executions, and latency percentiles at a fixed offered rate.
//!
//! `cargo bench --bench load -- [--rate 1000] [--duration 20s] [--clients 64] [--server URL --token T]`
//! `cargo bench --bench load -- --noisy [--quota 50] [--duration 20s]`
//!
//! Without `--server`, it starts `maestro serve` (the binary built with this bench) on a fresh
//! data directory with one tenant, and stops it at the end. Phases:
//! 1. closed loop: `--clients` clients each submit and wait for the receipt (`?wait=60s`),
//!    for `--duration`; reports sealed executions per second;
//! 2. open loop at `--rate` per second, async submissions: latency from sending the request to
//!    the 202 (the execution is durable: accepted and group-committed);
//! 3. open loop at `--rate` per second with `?wait=60s`: latency from sending the request to
//!    the answer carrying the receipt (durable, signed, logged).
//!
//! With `--noisy`, the fairness run instead: tenants `steady` and `noisy`, each limited to
//! `--quota` submissions per second (burst the same). `steady` submits at half its quota and
//! waits for each receipt, first alone (the baseline), then while `noisy` floods at 10x its
//! quota; it reports `steady`'s latency both times and their p99 ratio, and how `noisy` was
//! answered (202 accepted, 429 with `Retry-After`).
//!
//! The load generator shares the machine's cores with the server; figures are for both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

mod common;
use common::{Server, percentile};

const MANIFEST: &str = r#"{"manifest":{"name":"hello","version":"1.0.0","region":"eu-west","tasks":[{"id":"greet","uses":"builtin/echo","with":{"message":"hello"}}]}}"#;

struct Args {
    noisy: bool,
    quota: u64,
    rate: u64,
    duration: Duration,
    clients: usize,
    server: Option<String>,
    token: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        noisy: false,
        quota: 50,
        rate: 1000,
        duration: Duration::from_secs(20),
        clients: 64,
        server: None,
        token: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let val = || argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--noisy" => {
                a.noisy = true;
                i += 1;
                continue;
            }
            "--quota" => a.quota = val().parse().expect("--quota N"),
            "--rate" => a.rate = val().parse().expect("--rate N"),
            "--duration" => {
                a.duration = maestro::domain::duration::parse(&val()).expect("--duration like 20s")
            }
            "--clients" => a.clients = val().parse().expect("--clients N"),
            "--server" => a.server = Some(val()),
            "--token" => a.token = Some(val()),
            // cargo bench passes --bench; ignore anything else.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Starts `maestro serve` with these tenants (name, per-tenant quota or unlimited); returns
/// an operator token per tenant.
fn start_server(tenants: &[(&str, Option<u64>)]) -> (Server, String, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = common::free_port();
    let mut config = format!(
        r#"data_dir = "{data}"
listen = "127.0.0.1:{port}"
[log]
level = "warn"
[limits]
runners = 256
global_rate = 1000000
global_burst = 1000000
tenant_rate = 1000000
tenant_burst = 1000000
queue_per_tenant = 1000000
"#,
        data = dir.path().join("data").display(),
    );
    let mut tokens = Vec::new();
    for (name, quota) in tenants {
        let token = maestro::app::tokens::generate();
        config.push_str(&format!("[tenants.{name}]\n"));
        if let Some(q) = quota {
            config.push_str(&format!("rate = {q}\nburst = {q}\n"));
        }
        config.push_str(&format!(
            "[[tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\ntenant = \"{name}\"\nroles = [\"operator\"]\n",
            maestro::app::tokens::hash_line(&token)
        ));
        tokens.push(token);
    }
    let config_path = dir.path().join("maestro.toml");
    std::fs::write(&config_path, config).unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let server = common::serve(&config_path, port, Some(dir), Duration::from_secs(60));
    (server, url, tokens)
}

fn report(name: &str, mut lat: Vec<Duration>, errors: usize, elapsed: Duration) {
    lat.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:44} n={:6} errors={errors:4} rate={:8.0}/s  p50={:7.2}ms p90={:7.2}ms p99={:7.2}ms max={:7.2}ms",
        lat.len(),
        lat.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
    );
}

async fn submit(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    wait: bool,
) -> Result<(), String> {
    let target = if wait {
        format!("{url}/api/v1/executions?wait=60s")
    } else {
        format!("{url}/api/v1/executions")
    };
    let r = client
        .post(target)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(MANIFEST)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    match (wait, status) {
        (true, 201) => {
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            if v["receipt"].is_object() {
                Ok(())
            } else {
                Err("final execution without a receipt".into())
            }
        }
        (false, 202) => Ok(()),
        (_, s) => Err(format!("status {s}: {}", String::from_utf8_lossy(&body))),
    }
}

async fn closed_loop(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    clients: usize,
    duration: Duration,
) {
    let lat = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, token, lat, errors) = (
            client.clone(),
            url.to_owned(),
            token.to_owned(),
            lat.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < duration {
                let t = Instant::now();
                match submit(&client, &url, &token, true).await {
                    Ok(()) => lat.lock().push(t.elapsed()),
                    Err(e) => {
                        *errors.lock() += 1;
                        eprintln!("error: {e}");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let lat = std::mem::take(&mut *lat.lock());
    let errors = *errors.lock();
    report(
        &format!("closed loop, {clients} clients, submit+receipt"),
        lat,
        errors,
        elapsed,
    );
}

/// Submits at `rate` per second for `duration`; returns each latency (from when the request
/// was due) and the number of errors.
async fn open_loop_latencies(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    rate: u64,
    duration: Duration,
    wait: bool,
) -> (Vec<Duration>, usize) {
    let lat = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, token, lat, errors) = (
            client.clone(),
            url.to_owned(),
            token.to_owned(),
            lat.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Latency counts from when the request was due, so a slow generator is not
            // hidden (no coordinated omission).
            match submit(&client, &url, &token, wait).await {
                Ok(()) => lat.lock().push(due.elapsed()),
                Err(e) => {
                    *errors.lock() += 1;
                    eprintln!("error: {e}");
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let lat = std::mem::take(&mut *lat.lock());
    let errors = *errors.lock();
    (lat, errors)
}

async fn open_loop(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    rate: u64,
    duration: Duration,
    wait: bool,
) {
    let start = Instant::now();
    let (lat, errors) = open_loop_latencies(client, url, token, rate, duration, wait).await;
    let elapsed = start.elapsed();
    let name = if wait {
        format!("open loop {rate}/s, submit to receipt durable")
    } else {
        format!("open loop {rate}/s, submit to accepted (durable)")
    };
    report(&name, lat, errors, elapsed);
}

/// A flood of async submissions at `rate` per second: counts of 202, of 429 with
/// `Retry-After`, of 429 without it, and of anything else.
async fn flood(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    rate: u64,
    duration: Duration,
) -> [usize; 4] {
    let counts = Arc::new(Mutex::new([0usize; 4]));
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut i = 0u64;
    while start.elapsed() < duration {
        tokio::time::sleep_until((start + interval.mul_f64(i as f64)).into()).await;
        i += 1;
        let (client, url, token, counts) = (
            client.clone(),
            url.to_owned(),
            token.to_owned(),
            counts.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(format!("{url}/api/v1/executions"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(MANIFEST)
                .send()
                .await;
            let slot = match r {
                Ok(r) if r.status().as_u16() == 202 => 0,
                Ok(r) if r.status().as_u16() == 429 && r.headers().contains_key("retry-after") => 1,
                Ok(r) if r.status().as_u16() == 429 => 2,
                _ => 3,
            };
            counts.lock()[slot] += 1;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    *counts.lock()
}

/// The fairness run (`--noisy`).
async fn noisy_neighbour(client: &reqwest::Client, url: &str, tokens: &[String], args: &Args) {
    let (steady, noisy) = (&tokens[0], &tokens[1]);
    let rate = (args.quota / 2).max(1);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "server {url}; quota {}/s per tenant; steady at {rate}/s (submit to receipt), noisy at {}/s; {} per phase",
        args.quota,
        args.quota * 10,
        maestro::domain::duration::format(args.duration)
    );
    let start = Instant::now();
    let (mut solo, solo_err) =
        open_loop_latencies(client, url, steady, rate, args.duration, true).await;
    report("steady alone", solo.clone(), solo_err, start.elapsed());
    // Let the steady tenant's bucket refill before the second phase.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start = Instant::now();
    let ((mut busy, busy_err), counts) = tokio::join!(
        open_loop_latencies(client, url, steady, rate, args.duration, true),
        flood(client, url, noisy, args.quota * 10, args.duration),
    );
    report(
        "steady while noisy floods at 10x quota",
        busy.clone(),
        busy_err,
        start.elapsed(),
    );
    solo.sort();
    busy.sort();
    let (p99_solo, p99_busy) = (percentile(&solo, 0.99), percentile(&busy, 0.99));
    println!(
        "noisy: {} accepted (202), {} refused 429 with Retry-After, {} 429 without, {} other",
        counts[0], counts[1], counts[2], counts[3]
    );
    println!(
        "steady p99 under the flood / alone: {:.2} ms / {:.2} ms = {:.2}x (p50 {:.2} / {:.2} ms); steady errors {} / {}",
        ms(p99_busy),
        ms(p99_solo),
        p99_busy.as_secs_f64() / p99_solo.as_secs_f64().max(1e-9),
        ms(percentile(&busy, 0.5)),
        ms(percentile(&solo, 0.5)),
        busy_err,
        solo_err,
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The load generator's HTTP client: many idle connections, long answers allowed.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

fn main() {
    let args = parse_args();
    if args.noisy {
        let (server, url, tokens) =
            start_server(&[("steady", Some(args.quota)), ("noisy", Some(args.quota))]);
        runtime().block_on(async {
            let client = client();
            for t in &tokens {
                for _ in 0..20 {
                    submit(&client, &url, t, true)
                        .await
                        .expect("warm-up request");
                    tokio::time::sleep(Duration::from_millis(1000 / args.quota.max(1))).await;
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            noisy_neighbour(&client, &url, &tokens, &args).await;
        });
        drop(server);
        return;
    }
    let (server, url, token) = match (&args.server, &args.token) {
        (Some(s), Some(t)) => (None, s.clone(), t.clone()),
        (Some(_), None) => panic!("--server needs --token"),
        _ => {
            let (s, u, mut t) = start_server(&[("load", None)]);
            (Some(s), u, t.remove(0))
        }
    };
    runtime().block_on(async {
        let client = client();
        // Warm up: first requests create the tenant chain, caches, connections.
        for _ in 0..200 {
            submit(&client, &url, &token, true)
                .await
                .expect("warm-up request");
        }
        println!(
            "server {url}; {} per phase",
            maestro::domain::duration::format(args.duration)
        );
        closed_loop(&client, &url, &token, args.clients, args.duration).await;
        open_loop(&client, &url, &token, args.rate, args.duration, false).await;
        open_loop(&client, &url, &token, args.rate, args.duration, true).await;
        if std::env::var_os("LOAD_SHOW_METRICS").is_some() {
            let text = client
                .get(format!("{url}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            for line in text
                .lines()
                .filter(|l| l.starts_with("mc_commit") || l.starts_with("mc_submit"))
            {
                println!("{line}");
            }
        }
    });
    drop(server);
}
