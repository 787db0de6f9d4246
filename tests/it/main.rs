//! The integration test binary: one crate, so the suite links once. Modules by concern.

mod api;
mod backup;
mod browser;
mod catalog;
mod chaos;
mod compat;
mod conformance;
mod console;
mod crash;
mod deploy;
mod disclosure;
mod e2e;
mod golden;
mod interop;
mod intoto;
mod isolation;
mod oidc;
mod package;
mod policy;
mod postrelease;
mod report;
mod residency;
mod routes;
mod support;
