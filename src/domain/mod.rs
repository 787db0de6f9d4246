//! The domain: identifiers, manifests and their validation, executions, actors and tenant
//! scopes, receipt statements. Pure data and logic: no IO, no outside services, and none of
//! the storage, HTTP, policy or signing crates.

pub mod actions;
pub mod actor;
pub mod audit;
pub mod disclosure;
pub mod duration;
pub mod execution;
pub mod expr;
pub mod golden;
pub mod ids;
pub mod manifest;
pub mod package;
pub mod receipt;
pub mod report;
pub mod residency;
pub mod search;
pub mod validate;
