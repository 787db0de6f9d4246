//! `maestro index rebuild|status` (the search index of a local data directory) and
//! `maestro search QUERY` (through a server, or on a local data directory).

use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::client::Client;
use super::inspect::{open_local, tenant_query};
use super::{Exit, Output, Target, fail};
use crate::domain::actor::{Access, TenantScope};
use crate::domain::ids::TenantId;
use crate::domain::search::{self, Results};
use crate::search::SearchIndex;

/// `maestro index …`
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Recreate the search index of a data directory from its store (the appliance must be
    /// stopped; a running appliance keeps its index caught up itself).
    Rebuild {
        /// Where.
        #[command(flatten)]
        target: Target,
    },
    /// How far the search index of a data directory is behind its store.
    Status {
        /// Where.
        #[command(flatten)]
        target: Target,
    },
}

/// `maestro search QUERY`
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query, e.g. `sha256:9f86d081`, `status:failed task:fetch`,
    /// `reason:http_host_not_allowed` (docs/search.md).
    #[arg(default_value = "")]
    pub query: String,
    /// Where.
    #[command(flatten)]
    pub target: Target,
    /// Page size (1-100).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

fn local_index(
    target: &Target,
    config_file: Option<&Path>,
) -> anyhow::Result<(super::inspect::Local, SearchIndex)> {
    if target.server.is_some() {
        return Err(fail(
            Exit::Usage,
            "the index commands work on a local data directory (--data-dir); a running server keeps its index caught up itself",
        ));
    }
    let local = open_local(target, config_file)?;
    let index = SearchIndex::open(&local.config.index_dir())
        .map_err(|e| fail(Exit::Error, e.to_string()))?;
    Ok((local, index))
}

/// `maestro index …`
pub fn index(cmd: IndexCommand, config_file: Option<&Path>, out: &Output) -> anyhow::Result<Exit> {
    match cmd {
        IndexCommand::Rebuild { target } => {
            let (local, index) = local_index(&target, config_file)?;
            let bar = if out.is_json() {
                ProgressBar::hidden()
            } else {
                ProgressBar::new(0)
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} indexing [{bar:40}] {pos}/{len} objects ({per_sec}, {eta} left)",
                )
                .map_err(|e| fail(Exit::Error, e.to_string()))?
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            let started = std::time::Instant::now();
            let read = index
                .rebuild(&local.store, |done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .map_err(|e| fail(Exit::Error, e.to_string()))?;
            bar.finish_and_clear();
            let state = index.state();
            let v = serde_json::json!({
                "objects_read": read,
                "documents": state.documents,
                "through_change": state.through,
                "seconds": started.elapsed().as_secs_f64(),
            });
            out.print(&v, || {
                format!(
                    "rebuilt the search index of {}: {read} objects read, {} documents, in {:.1} s",
                    local.config.data_dir.display(),
                    state.documents,
                    started.elapsed().as_secs_f64()
                )
            });
            Ok(Exit::Ok)
        }
        IndexCommand::Status { target } => {
            let (local, index) = local_index(&target, config_file)?;
            let state = index.state();
            let last = local.store.read()?.last_change()?;
            let behind = state.behind(last);
            let v = serde_json::json!({
                "documents": state.documents,
                "through_change": state.through,
                "last_change": last,
                "behind": behind,
            });
            out.print(&v, || {
                format!(
                    "{} documents; {behind} changes behind the store{}",
                    state.documents,
                    if behind > 0 {
                        " (caught up when the appliance starts, or run `maestro index rebuild`)"
                    } else {
                        ""
                    }
                )
            });
            Ok(Exit::Ok)
        }
    }
}

fn results_text(r: &Results) -> String {
    if r.hits.is_empty() {
        return "no match".into();
    }
    let mut s = format!(
        "{}{} match{}\n",
        if r.total_exact { "" } else { "more than " },
        r.total,
        if r.total == 1 { "" } else { "es" }
    );
    for h in &r.hits {
        s.push_str(&format!(
            "{:<30} {:<8} {:<11} {:<24} {}\n",
            h.id,
            h.tenant,
            h.status,
            format!(
                "{}{}",
                h.name,
                h.version
                    .as_deref()
                    .map(|v| format!("@{v}"))
                    .unwrap_or_default()
            ),
            h.summary.as_deref().or(h.receipt.as_deref()).unwrap_or("")
        ));
    }
    if let Some(c) = &r.next_cursor {
        s.push_str(&format!("more: --cursor {c}\n"));
    }
    s
}

/// `maestro search …`
pub async fn search(
    args: SearchArgs,
    config_file: Option<&Path>,
    out: &Output,
) -> anyhow::Result<Exit> {
    let results: Results = match &args.target.server {
        Some(server) => {
            let client = Client::new(server, args.target.token.clone())?;
            let mut q = tenant_query(&args.target);
            q.push(("q", args.query.clone()));
            q.push(("limit", args.limit.to_string()));
            if let Some(c) = &args.cursor {
                q.push(("cursor", c.clone()));
            }
            client.get("/api/v1/search", &q).await?
        }
        None => {
            let query = search::parse(&args.query).map_err(|e| fail(Exit::Usage, e.to_string()))?;
            let (local, index) = local_index(&args.target, config_file)?;
            index
                .catch_up(&local.store)
                .map_err(|e| fail(Exit::Error, e.to_string()))?;
            let scopes = super::inspect::local_tenants(&args.target, &local.config)
                .iter()
                .map(|t| {
                    TenantId::new(t)
                        .map(|id| TenantScope::system(id, Access::Read))
                        .map_err(|e| fail(Exit::Usage, e.to_string()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let offset = match &args.cursor {
                Some(c) => c.parse().map_err(|_| {
                    fail(Exit::Usage, format!("--cursor {c:?} is not a next_cursor"))
                })?,
                None => 0,
            };
            index
                .search(&scopes, &query, args.limit, offset)
                .map_err(|e| fail(Exit::Error, e.to_string()))?
        }
    };
    out.print(&results, || results_text(&results));
    Ok(if results.hits.is_empty() {
        Exit::NotFound
    } else {
        Exit::Ok
    })
}
