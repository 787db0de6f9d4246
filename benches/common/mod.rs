//! What the HTTP load tools share: starting `maestro serve` (the binary built with the
//! bench) on a config file and waiting for its port, stopping it, and percentiles.

#![allow(dead_code)] // each bench uses a part of these helpers

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `maestro serve`; killed when dropped, with its temporary directory, if any.
pub struct Server {
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Resident memory of a process in bytes (`VmRSS`), if readable.
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fixed tokens, so a kept data directory works on the next run: the operators of acme and
/// globex, and acme's viewer.
pub const OPERATOR: [&str; 2] = [
    "mct_bench_acme_operator_0000000000000000000000000000000000000000000",
    "mct_bench_globex_operator_00000000000000000000000000000000000000000",
];
/// acme's viewer token.
pub const VIEWER: &str = "mct_bench_acme_viewer_000000000000000000000000000000000000000000000";

/// A bench appliance's config on `dir` and `port`: regions eu-west and us-east, no rate
/// limits, the tokens above; `places` declares the locations and tenants `[tenants.acme]`
/// and `[tenants.globex]`.
pub fn config(dir: &Path, port: u16, places: &str) -> String {
    let hash = maestro::app::tokens::hash_line;
    format!(
        r#"data_dir = "{data}"
listen = "127.0.0.1:{port}"
regions = ["eu-west", "us-east"]
[log]
level = "warn"
[limits]
runners = 256
global_rate = 1000000
global_burst = 1000000
tenant_rate = 1000000
tenant_burst = 1000000
queue_per_tenant = 1000000
{places}
[[tokens]]
name = "acme-operator"
sha256 = "{a}"
tenant = "acme"
roles = ["operator"]
[[tokens]]
name = "globex-operator"
sha256 = "{g}"
tenant = "globex"
roles = ["operator"]
[[tokens]]
name = "acme-viewer"
sha256 = "{v}"
tenant = "acme"
roles = ["viewer"]
"#,
        data = dir.display(),
        a = hash(OPERATOR[0]),
        g = hash(OPERATOR[1]),
        v = hash(VIEWER),
    )
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `maestro serve --config CONFIG` and waits up to `wait` for `port` to accept
/// connections; `dir` is removed when the server is dropped.
pub fn serve(config: &Path, port: u16, dir: Option<tempfile::TempDir>, wait: Duration) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_maestro"))
        .args(["--output", "json", "--config"])
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start maestro serve");
    let deadline = Instant::now() + wait;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, _dir: dir }
}

/// The `p` quantile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}
