//! Maestro Conductor: one binary that runs multi-tenant workflows and proves what it did.
//!
//! Code map (lower layers never import higher ones):
//! - [`domain`]: identifiers, Manifest v1 and its validation, executions, actors and tenant
//!   scopes, receipt statements. Pure: no IO.
pub mod app;
pub mod archive;
pub mod attest;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod pdf;
pub mod policy;
pub mod search;
pub mod store;
pub mod telemetry;
pub mod tlog;
