//! `builtin/exec`: runs an allow-listed program in a clean environment and a fresh work
//! directory, with a timeout. The program runs in its own process group, which is killed
//! whole on timeout or cancellation.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::ActionCtx;
use crate::domain::duration;

/// Kills the process group when dropped (timeout, cancellation) unless disarmed.
struct GroupGuard {
    pgid: Option<i32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg only sends a signal; a stale pgid fails with ESRCH.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

fn resolve_program(name: &str, path: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return (p.is_absolute() && p.is_file()).then_some(p);
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

async fn read_limited<R: tokio::io::AsyncRead + Unpin>(mut r: R, limit: usize) -> (String, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut truncated = false;
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(buf.len());
                if n > room {
                    truncated = true;
                }
                buf.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    (String::from_utf8_lossy(&buf).into_owned(), truncated)
}

/// Runs the command.
pub async fn run(input: &Map<String, Value>, ctx: &ActionCtx<'_>) -> Result<Value, String> {
    let cfg = &ctx.env.exec_config;
    if !cfg.enabled {
        return Err("builtin/exec is disabled on this appliance (actions.exec.enabled)".into());
    }
    let argv: Vec<String> = input
        .get("command")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let Some(program) = argv.first() else {
        return Err("command must name a program".into());
    };
    let allowed = cfg
        .allowed_commands
        .iter()
        .any(|c| c == "*" || c == program);
    if !allowed {
        return Err(format!(
            "{program:?} is not in actions.exec.allowed_commands"
        ));
    }
    let resolved = resolve_program(program, &cfg.path)
        .ok_or_else(|| format!("program {program:?} was not found on {}", cfg.path))?;
    let timeout =
        duration::parse(&cfg.timeout).map_err(|e| format!("actions.exec.timeout: {e}"))?;
    let work = ctx
        .env
        .work_root
        .join(ctx.execution.as_str())
        .join(format!("{}-{}", ctx.task, ctx.attempt));
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| format!("creating work directory {}: {e}", work.display()))?;
    let result = run_in(&resolved, &argv[1..], input, &work, ctx, timeout).await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

async fn run_in(
    program: &Path,
    args: &[String],
    input: &Map<String, Value>,
    work: &Path,
    ctx: &ActionCtx<'_>,
    timeout: std::time::Duration,
) -> Result<Value, String> {
    let cfg = &ctx.env.exec_config;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(work)
        .env_clear()
        .env("PATH", &cfg.path)
        .env("HOME", work)
        .env("MAESTRO_EXECUTION_ID", ctx.execution.as_str())
        .env("MAESTRO_TENANT", ctx.tenant.as_str())
        .env("MAESTRO_TASK", ctx.task)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    if let Some(Value::Object(env)) = input.get("env") {
        for (k, v) in env {
            let valid = !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !k.starts_with("MAESTRO_");
            if !valid {
                return Err(format!("environment variable name {k:?} is not allowed"));
            }
            cmd.env(k, v.as_str().unwrap_or_default());
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", program.display()))?;
    let mut guard = GroupGuard {
        pgid: child.id().map(|p| p as i32),
    };
    let stdin_text = input
        .get("stdin")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let limit = cfg.max_output_bytes;
    let work_fut = async {
        let writer = async move {
            let _ = stdin.write_all(stdin_text.as_bytes()).await;
            drop(stdin);
        };
        let (_, out, err, status) = tokio::join!(
            writer,
            read_limited(stdout, limit),
            read_limited(stderr, limit),
            child.wait()
        );
        (out, err, status)
    };
    let (out, err, status) = match tokio::time::timeout(timeout, work_fut).await {
        Ok(r) => r,
        Err(_) => {
            return Err(format!(
                "command timed out after {}",
                duration::format(timeout)
            ));
        }
    };
    let status = status.map_err(|e| format!("waiting for the command: {e}"))?;
    // The leader exited; kill stragglers left in its group.
    drop(std::mem::replace(&mut guard, GroupGuard { pgid: None }));
    let code = status.code().unwrap_or(-1);
    if !status.success() {
        let tail: String = err
            .0
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(format!(
            "command exited with status {code}: {}",
            tail.trim()
        ));
    }
    Ok(json!({
        "exit_code": code,
        "stdout": out.0,
        "stderr": err.0,
        "truncated": out.1 || err.1,
    }))
}
