//! Post-release validation bench with the real binary: the time from starting `maestro serve
//! --demo` on an empty directory (demo tenants and runs seeded, goldens installed) to the
//! archived evidence of the start's validation and to `/readyz`; then, with `--data-dir DIR
//! --config FILE` (e.g. the disclosure bench's store of 130,000 executions), `maestro
//! validate post-release` over that store, timed, with its peak resident memory.
//!
//! `cargo bench --bench postrelease -- [--config FILE]`

use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Reads the JSON summary `serve --output json` prints at start.
fn summary(stdout: std::process::ChildStdout) -> Value {
    let mut reader = std::io::BufReader::new(stdout);
    let (mut text, mut depth) = (String::new(), 0i32);
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "serve ended: {text}"
        );
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        text.push_str(&line);
        if depth == 0 && text.trim_end().ends_with('}') {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

fn demo_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["--output", "json", "serve", "--demo", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = summary(child.stdout.take().unwrap());
    let serving = started.elapsed();
    let admin = s["demo_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "admin")
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    let report: Value = loop {
        let r = client
            .get(format!("{url}/api/v1/postrelease"))
            .bearer_auth(&admin)
            .send()
            .unwrap();
        if r.status().is_success() {
            break r.json().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no evidence");
        std::thread::sleep(Duration::from_millis(5));
    };
    let evidence = started.elapsed();
    while !client
        .get(format!("{url}/readyz"))
        .send()
        .unwrap()
        .status()
        .is_success()
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let ready = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "demo start: serving after {:.2} s, evidence archived after {:.2} s, ready after {:.2} s (validation {} ms, passed {})",
        serving.as_secs_f64(),
        evidence.as_secs_f64(),
        ready.as_secs_f64(),
        report["millis"],
        report["passed"]
    );
    print_checks(&report);
}

fn existing_store(config: &str) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args([
            "--output",
            "json",
            "--config",
            config,
            "validate",
            "post-release",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0u64;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(common::rss(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    let report: Value = serde_json::from_str(&out).unwrap();
    println!(
        "validate post-release over {config}: {:.1} s wall, validation {} ms, passed {}, peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        report["millis"],
        report["passed"],
        peak >> 20
    );
    print_checks(&report);
}

/// One line per check of a report.
fn print_checks(report: &Value) {
    for c in report["checks"].as_array().unwrap() {
        println!(
            "  {:<10} {:>7} checked in {:>6} ms",
            c["name"].as_str().unwrap(),
            c["checked"],
            c["millis"]
        );
    }
}

fn main() {
    demo_start();
    if let Some(config) = arg("--config") {
        existing_store(&config);
    }
}
