//! The HTTP API (axum): routes in `router`, handlers per resource, errors in `error`,
//! authentication and the guard in `auth`. Only this module imports axum.

mod audit;
pub mod auth;
mod catalog;
pub mod console;
mod disclosure;
pub mod error;
mod executions;
pub(crate) mod golden;
mod log;
mod login;
mod meta;
mod postrelease;
pub mod probe;
mod reports;
mod residency;
pub mod router;
mod search;

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

pub use log::keys_of;

/// Serves the API on `listener` until `shutdown` resolves, then drains: stops accepting
/// submissions, lets running executions finish for up to `grace`.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let router = router::router(app.clone());
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    app.engine.shutdown(grace).await;
    result
}
