//! `maestro serve`: start the appliance.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use super::{Exit, Output, fail};
use crate::app::{self, App, demo};
use crate::config::Overrides;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (default: ./maestro-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Listen address (default: 127.0.0.1:7070).
    #[arg(long)]
    pub listen: Option<String>,
    /// Seed demo tenants, tokens and executions on first start.
    #[arg(long)]
    pub demo: bool,
    /// How long running executions may finish after a stop signal.
    #[arg(long, default_value = "10s")]
    pub grace: String,
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("stopping: draining running executions");
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(
    args: ServeArgs,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let grace = crate::domain::duration::parse(&args.grace)
        .map_err(|e| fail(Exit::Usage, format!("--grace: {e}")))?;
    let overrides = Overrides {
        data_dir: args.data_dir,
        listen: args.listen,
        demo: args.demo,
    };
    let resolved = app::resolve_config(config_file, &super::env_map(), &overrides)
        .map_err(|e| fail(Exit::Usage, e.to_string()))?;
    let mut config = resolved.config;
    crate::telemetry::init_tracing(&config.log.level, config.log.format);
    let addr = config.listen_addr();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| fail(Exit::Error, format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    // The address bound (port 0 picks one), as `appliance.url` gives it to tasks.
    config.listen = local.to_string();
    let data_dir = config.data_dir.clone();
    let app = Arc::new(App::start(config).await?);
    let mut seeded = 0;
    if resolved.demo.is_some() {
        seeded = demo::seed_executions(&app).await?;
    }
    let keys = crate::http::keys_of(&app);
    let url = format!("http://{local}");
    let summary = serde_json::json!({
        "listening": url,
        "data_dir": data_dir,
        "log_origin": keys.log_origin,
        "appliance_key": keys.keys[0].keyid,
        "recovered": {"resumed": app.recovery.resumed, "interrupted": app.recovery.interrupted},
        "demo_tokens": resolved.demo.as_ref().map(|c| &c.tokens),
        "demo_executions": seeded,
    });
    out.print(&summary, || {
        let mut s = format!(
            "maestro {} listening on {url}\n  data directory  {}\n  log origin      {}\n  appliance key   {}\n",
            env!("CARGO_PKG_VERSION"),
            data_dir.display(),
            keys.log_origin,
            keys.keys[0].keyid
        );
        if let Some(creds) = &resolved.demo {
            s.push_str(&format!(
                "\nDemo tenants acme and globex are ready with {seeded} executions.\nThese tokens are shown once; they are stored only as hashes in {}:\n",
                data_dir.join(demo::FILE).display()
            ));
            for t in &creds.tokens {
                s.push_str(&format!(
                    "  {:16} {:8} {}\n",
                    t.name,
                    t.tenant.as_deref().unwrap_or("(all)"),
                    t.token
                ));
            }
            s.push_str(&format!(
                "\nTry it from another terminal:\n  export MAESTRO_URL={url} MAESTRO_TOKEN={}\n  maestro run -w hello --receipt-out receipt.json\n  maestro verify-receipt receipt.json --key <(maestro keys show --pem)\n  maestro golden run    # the ten golden workflows, from their signed packages\n",
                creds.token("acme-operator").unwrap_or_default()
            ));
        }
        s
    });
    let goldens = app.spawn_golden_worker();
    // Readiness holds until this version is validated (red/black: the previous version
    // keeps serving meanwhile).
    if app.post_release_due() {
        let app = app.clone();
        tokio::spawn(async move {
            let _ = app.validate_post_release("start").await;
        });
    }
    let served = crate::http::serve(app, listener, stop_signal(), grace).await;
    if let Some(worker) = goldens {
        worker.abort();
    }
    served.map_err(|e| fail(Exit::Error, format!("server error: {e}")))?;
    Ok(Exit::Ok)
}

/// Arguments of `healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The appliance to ask (default: the configured listen address on this host).
    #[arg(long)]
    pub url: Option<String>,
    /// How long to wait for the answer.
    #[arg(long, default_value = "5s")]
    pub timeout: String,
}

/// Asks `/readyz` of the local appliance: exit 0 when ready, 1 otherwise (the contract
/// of a container health check; the image has no curl).
pub async fn healthcheck(
    args: HealthcheckArgs,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    // Every failure is 1 (a container runtime reserves 2), and nothing is written (no
    // demo layer is created).
    let timeout = crate::domain::duration::parse(&args.timeout)
        .map_err(|e| fail(Exit::Error, format!("--timeout: {e}")))?;
    let base = match args.url {
        Some(u) => u,
        None => {
            app::resolve_config_without_demo(config_file, &super::env_map(), &Overrides::default())
                .map_err(|e| fail(Exit::Error, e.to_string()))?
                .self_url()
        }
    };
    let url = format!("{}/readyz", base.trim_end_matches('/'));
    let answer = async {
        let r = reqwest::Client::builder()
            .timeout(timeout)
            .build()?
            .get(&url)
            .send()
            .await?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        Ok::<_, reqwest::Error>((status, body))
    }
    .await;
    let (ready, detail, body) = match answer {
        Ok((status, body)) => {
            let failing: Vec<String> = body["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| c["ok"] == false)
                .map(|c| {
                    format!(
                        "{}: {}",
                        c["name"].as_str().unwrap_or("?"),
                        c["detail"].as_str().unwrap_or("")
                    )
                })
                .collect();
            let detail = if status.is_success() {
                "ready".to_owned()
            } else if failing.is_empty() {
                format!("not ready ({status})")
            } else {
                format!("not ready: {}", failing.join("; "))
            };
            (status.is_success(), detail, body)
        }
        Err(e) => (
            false,
            format!("cannot reach {url}: {}", super::client::root_cause(&e)),
            serde_json::Value::Null,
        ),
    };
    out.print(
        &serde_json::json!({ "url": url, "ready": ready, "detail": detail, "readyz": body }),
        || format!("{url}: {detail}"),
    );
    Ok(if ready { Exit::Ok } else { Exit::Error })
}
