//! Shared test support: an in-process appliance with two tenants and tokens, request helpers
//! for the router, and a real `maestro serve` process on a loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use maestro::app::{App, tokens};
use maestro::config::{self, Config, Layer, Overrides};
use serde_json::Value;
use tower::ServiceExt as _;

/// Tokens of the test appliance.
pub struct Tokens {
    pub acme_operator: String,
    pub acme_viewer: String,
    pub globex_operator: String,
    pub acme_auditor: String,
    pub globex_auditor: String,
    pub admin: String,
}

/// The TOML of a test appliance with tenants acme (eu-west) and globex (eu-west, us-east).
pub fn config_text(data_dir: &Path, listen: &str, extra: &str) -> (String, Tokens) {
    let t = Tokens {
        acme_operator: tokens::generate(),
        acme_viewer: tokens::generate(),
        globex_operator: tokens::generate(),
        acme_auditor: tokens::generate(),
        globex_auditor: tokens::generate(),
        admin: tokens::generate(),
    };
    let text = format!(
        r#"data_dir = "{data}"
listen = "{listen}"
regions = ["eu-west", "us-east"]
[log]
level = "warn"
[locations.eu-bucket]
region = "eu-west"
[locations.us-bucket]
region = "us-east"
[tenants.acme]
allowed_regions = ["eu-west"]
[tenants.globex]
allowed_regions = ["eu-west", "us-east"]
[[tokens]]
name = "acme-operator"
sha256 = "{a}"
tenant = "acme"
roles = ["operator"]
[[tokens]]
name = "acme-viewer"
sha256 = "{v}"
tenant = "acme"
roles = ["viewer"]
[[tokens]]
name = "globex-operator"
sha256 = "{g}"
tenant = "globex"
roles = ["operator"]
[[tokens]]
name = "acme-auditor"
sha256 = "{aa}"
tenant = "acme"
roles = ["auditor"]
[[tokens]]
name = "globex-auditor"
sha256 = "{ga}"
tenant = "globex"
roles = ["auditor"]
[[tokens]]
name = "admin"
sha256 = "{x}"
roles = ["admin"]
{extra}
"#,
        data = data_dir.display(),
        a = tokens::hash_line(&t.acme_operator),
        v = tokens::hash_line(&t.acme_viewer),
        g = tokens::hash_line(&t.globex_operator),
        aa = tokens::hash_line(&t.acme_auditor),
        ga = tokens::hash_line(&t.globex_auditor),
        x = tokens::hash_line(&t.admin),
    );
    (text, t)
}

/// An in-process appliance and its router.
pub struct TestApp {
    pub app: Arc<App>,
    pub router: axum::Router,
    pub tokens: Tokens,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn new() -> TestApp {
        Self::with(|_| {}, "").await
    }

    pub async fn with(edit: impl FnOnce(&mut Config), extra: &str) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (text, tokens) = config_text(&dir.path().join("data"), "127.0.0.1:0", extra);
        let mut config = config::load(
            &[Layer {
                name: "test".into(),
                text: &text,
            }],
            &Default::default(),
            &Overrides::default(),
        )
        .unwrap();
        edit(&mut config);
        let app = Arc::new(App::start(config).await.unwrap());
        // As `maestro serve` does before readiness.
        if app.post_release_due() {
            let report = app.validate_post_release("start").await.unwrap();
            assert!(report.passed, "post-release validation: {report:?}");
        }
        let router = maestro::http::router::router(app.clone());
        TestApp {
            app,
            router,
            tokens,
            _dir: dir,
        }
    }

    /// Sends a request; returns status, headers and body (JSON when it parses, else a string).
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Resp {
            status,
            headers,
            json,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut b = Request::get(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let mut b = Request::post(path).header("content-type", "application/json");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        self.send(b.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub async fn post_yaml(&self, path: &str, token: &str, yaml: &str) -> Resp {
        let req = Request::post(path)
            .header("content-type", "application/yaml")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(yaml.to_owned()))
            .unwrap();
        self.send(req).await
    }

    /// Submits an embedded workflow and waits for it to finish.
    pub async fn run(&self, token: &str, workflow: &str) -> Value {
        let r = self
            .post_json(
                "/api/v1/executions?wait=30s",
                Some(token),
                &serde_json::json!({"workflow": workflow}),
            )
            .await;
        assert!(
            r.status == StatusCode::CREATED || r.status == StatusCode::FORBIDDEN,
            "{workflow}: {} {}",
            r.status,
            r.json
        );
        if r.status == StatusCode::FORBIDDEN {
            return r.json["execution"].clone();
        }
        r.json
    }

    pub async fn stop(self) {
        self.app.engine.shutdown(Duration::from_secs(5)).await;
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
}

/// A manifest as YAML with one echo task.
pub fn echo_manifest(name: &str, region: &str) -> String {
    format!(
        "name: {name}\nversion: \"1.0.0\"\nregion: {region}\ntasks:\n  - {{id: a, uses: builtin/echo, with: {{message: hi}}}}\n"
    )
}

/// The `maestro` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_maestro"))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `maestro serve` process; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Server {
    /// Starts `maestro serve --config CONFIG` and waits until /readyz answers 200.
    pub fn start(config: &Path, port: u16) -> Server {
        let child = Command::new(bin())
            .args(["--config"])
            .arg(config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut s = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).ok();
                }
                panic!("maestro serve exited with {status}: {err}");
            }
            if let Ok(r) = reqwest::blocking::get(format!("{}/readyz", self.url))
                && r.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "the server did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process with SIGKILL (no cleanup at all).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs the CLI; returns exit code, stdout, stderr.
pub fn cli(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("MAESTRO_URL")
        .env_remove("MAESTRO_TOKEN")
        .env_remove("MAESTRO_CONFIG")
        .envs(envs.iter().copied())
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The path of a program on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

/// Makes `NAME.pem` (PKCS#8) and `NAME.pub` (SPKI) in `dir` with openssl, for each
/// `(name, "ed25519" | "p256")`, as users of in-toto and Sigstore tools make keys.
pub fn openssl_keys(dir: &Path, keys: &[(&str, &str)]) {
    for (name, algorithm) in keys {
        let mut genpkey = Command::new("openssl");
        genpkey.arg("genpkey");
        if *algorithm == "ed25519" {
            genpkey.args(["-algorithm", "ed25519"]);
        } else {
            genpkey.args(["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
        }
        let pem = format!("{name}.pem");
        let ok = genpkey
            .args(["-out", &pem])
            .current_dir(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl genpkey {name}");
        let ok = Command::new("openssl")
            .args([
                "pkey",
                "-in",
                &pem,
                "-pubout",
                "-out",
                &format!("{name}.pub"),
            ])
            .current_dir(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl pkey {name}");
    }
}

/// A scratch directory for command-line tests: files in it, and the real binary and other
/// programs run in it.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// An empty directory, removed when dropped.
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (relative path).
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).unwrap();
    }

    /// Reads a file (relative path).
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap()
    }

    /// Runs a program here: exit code, standard output then standard error.
    pub fn run(&self, program: &str, args: &[&str]) -> (i32, String) {
        let out = Command::new(program)
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Runs `maestro` here: exit code, standard output then standard error.
    pub fn maestro(&self, args: &[&str]) -> (i32, String) {
        let (code, out, err) = cli(args, &[], self.path());
        (code, format!("{out}{err}"))
    }

    /// Runs `maestro` here and requires success; returns its output.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out) = self.maestro(args);
        assert_eq!(code, 0, "maestro {args:?}: {out}");
        out
    }

    /// Copies the files of directory `from` into `to` (created).
    pub fn copy_dir(&self, from: &str, to: &str) {
        std::fs::create_dir_all(self.path().join(to)).unwrap();
        for entry in std::fs::read_dir(self.path().join(from)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), self.path().join(to).join(entry.file_name())).unwrap();
        }
    }

    /// `DIR/NAME` of the first file in `dir` whose name starts with `prefix`.
    pub fn file_starting(&self, dir: &str, prefix: &str) -> String {
        let mut names: Vec<String> = std::fs::read_dir(self.path().join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        format!("{dir}/{}", names.first().expect("no such file"))
    }
}
