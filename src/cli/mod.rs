//! The command line: argument definitions, dispatch, output format and exit codes. Commands
//! talk to a running server (`--server`, `MAESTRO_URL`) or work on the local data directory.

mod attest;
mod backup;
mod client;
mod disclosure;
mod drill;
mod golden;
mod index;
mod inspect;
mod output;
mod package;
mod partial;
mod policy;
mod postrelease;
mod report;
mod residency;
mod run;
mod serve;
mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use output::Output;

/// Exit codes (documented in the README and `docs/cli.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// An unexpected error (IO, server error, corrupt data).
    Error = 1,
    /// Bad usage (arguments, missing trusted key, bad config).
    Usage = 2,
    /// The manifest is invalid.
    Invalid = 3,
    /// A receipt did not verify.
    Unverified = 4,
    /// Not found.
    NotFound = 5,
    /// Denied by admission policy.
    Denied = 6,
    /// The execution ran and failed (or was interrupted).
    Failed = 7,
    /// The server is unreachable, busy (429) or unavailable (503); retry later.
    Unavailable = 8,
    /// Missing, invalid or insufficient credentials.
    Unauthorized = 9,
}

/// An error that decides the exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub exit: Exit,
    /// What to print.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A failure with an exit code.
pub fn fail(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    Failure {
        exit,
        message: message.into(),
    }
    .into()
}

/// Maestro Conductor: runs multi-tenant workflows and proves what it did.
#[derive(Debug, Parser)]
#[command(name = "maestro", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Output format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "MAESTRO_OUTPUT"
    )]
    pub output: Format,
    /// Configuration file (default: ./maestro.toml if it exists).
    #[arg(long, global = true, env = "MAESTRO_CONFIG")]
    pub config: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// Where a client command works: a server, or the local data directory.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// Talk to this server (e.g. http://127.0.0.1:7070) instead of the local data directory.
    #[arg(long, env = "MAESTRO_URL")]
    pub server: Option<String>,
    /// API token for --server.
    #[arg(long, env = "MAESTRO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Local data directory (without --server).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Tenant (required for appliance-wide tokens and multi-tenant local data).
    #[arg(long)]
    pub tenant: Option<String>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the appliance (HTTP API on --listen, data in --data-dir).
    Serve(serve::ServeArgs),
    /// Ask /readyz of the local appliance: exit 0 when ready, 1 otherwise (for a container
    /// health check).
    Healthcheck(serve::HealthcheckArgs),
    /// Run a workflow (embedded name or manifest file) and print the execution with its
    /// receipt.
    Run(run::RunArgs),
    /// Verify a receipt file offline: signature, statement, predicate, checkpoint, log
    /// inclusion.
    VerifyReceipt(verify::VerifyArgs),
    /// Validate a manifest file and list every problem; `maestro validate post-release`
    /// runs post-release validation now.
    Validate(run::ValidateArgs),
    /// List and inspect executions.
    #[command(subcommand)]
    Executions(inspect::ExecutionsCommand),
    /// Show the public keys that verify receipts and checkpoints.
    #[command(subcommand)]
    Keys(inspect::KeysCommand),
    /// The transparency log: checkpoint and consistency proofs.
    #[command(subcommand)]
    Log(inspect::LogCommand),
    /// Evaluate, test and explain Rego policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Read and verify the hash-linked audit log; run the residency auditor and handle its
    /// violations.
    #[command(subcommand)]
    Audit(policy::AuditCommand),
    /// Reports on the live appliance: the tenant isolation report.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Create API tokens.
    #[command(subcommand)]
    Token(inspect::TokenCommand),
    /// The search index of a local data directory: rebuild it, or see how far it is.
    #[command(subcommand)]
    Index(index::IndexCommand),
    /// Search executions, receipts and decisions by digest, id, status, task, deny reason or
    /// free text.
    Search(index::SearchArgs),
    /// Disclosure packs: a tenant's evidence for one region, and their offline
    /// verification.
    #[command(subcommand)]
    Disclosure(disclosure::DisclosureCommand),
    /// Rehearse failures on a throw-away appliance: a mis-tagged bucket, the residency
    /// corpus.
    #[command(subcommand)]
    Drill(drill::DrillCommand),
    /// Workflow packages: build (deterministic archive and in-toto link), sign (SLSA
    /// provenance), verify under the in-toto layout.
    #[command(subcommand)]
    Package(package::PackageCommand),
    /// Policy bundles: build, sign and verify, as packages.
    #[command(subcommand)]
    Bundle(package::BundleCommand),
    /// The golden workflows: install their signed packages, run them against their
    /// expectations, show the last run of each.
    #[command(subcommand)]
    Golden(golden::GoldenCommand),
    /// Supply-chain attestations: sign in-toto layouts, record links, verify a layout with
    /// its links.
    #[command(subcommand)]
    Attest(attest::AttestCommand),
    /// Write a consistent backup of the data directory (store, signing key, trust), from a
    /// serving appliance (--server, admin token) or a local data directory.
    Backup(backup::BackupArgs),
    /// Restore a backup into a new data directory and verify every receipt, the log and the
    /// audit chain.
    Restore(backup::RestoreArgs),
    /// Print the JSON Schema of Manifest v1.
    Schema,
    /// Print the version.
    Version,
}

/// The process environment as a map (the config loader is pure over it).
pub fn env_map() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Runs a parsed command; returns the exit code for success paths that are not 0 (a failed
/// execution, an invalid receipt).
pub async fn dispatch(cli: Cli) -> anyhow::Result<Exit> {
    let out = Output::new(cli.output);
    match cli.command {
        Command::Serve(args) => serve::run(args, cli.config.as_deref(), &out).await,
        Command::Healthcheck(args) => serve::healthcheck(args, cli.config.as_deref(), &out).await,
        Command::Run(args) => run::run(args, cli.config.as_deref(), &out).await,
        Command::VerifyReceipt(args) => verify::run(args, cli.config.as_deref(), &out),
        Command::Validate(args) => run::validate(args, cli.config.as_deref(), &out).await,
        Command::Executions(c) => inspect::executions(c, cli.config.as_deref(), &out).await,
        Command::Keys(c) => inspect::keys(c, cli.config.as_deref(), &out).await,
        Command::Log(c) => inspect::log(c, cli.config.as_deref(), &out).await,
        Command::Token(c) => inspect::token(c, &out),
        Command::Index(c) => index::index(c, cli.config.as_deref(), &out),
        Command::Search(args) => index::search(args, cli.config.as_deref(), &out).await,
        Command::Report(c) => report::report(c, cli.config.as_deref(), &out).await,
        Command::Policy(c) => policy::policy(c, cli.config.as_deref(), &out).await,
        Command::Audit(c) => policy::audit(c, cli.config.as_deref(), &out).await,
        Command::Disclosure(c) => disclosure::disclosure(c, cli.config.as_deref(), &out).await,
        Command::Drill(c) => drill::drill(c, &out).await,
        Command::Attest(c) => attest::attest(c, &out),
        Command::Package(c) => package::package(c, &out).await,
        Command::Bundle(c) => package::bundle(c, &out).await,
        Command::Golden(c) => golden::golden(c, cli.config.as_deref(), &out).await,
        Command::Backup(args) => backup::backup(args, cli.config.as_deref(), &out).await,
        Command::Restore(args) => backup::restore(args, cli.config.as_deref(), &out).await,
        Command::Schema => {
            out.json_always(&crate::domain::manifest::json_schema());
            Ok(Exit::Ok)
        }
        Command::Version => {
            let v = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "store_schema_version": crate::store::SCHEMA_VERSION,
            });
            out.print(&v, || format!("maestro {}", env!("CARGO_PKG_VERSION")));
            Ok(Exit::Ok)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_command_is_well_formed() {
        // clap checks argument definitions only when a command is used; check them all.
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
