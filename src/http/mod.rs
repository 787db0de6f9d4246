//! The HTTP API (axum): routes in `router`, handlers per resource, errors in `error`,
//! authentication and the guard in `auth`. Only this module imports axum.

mod audit;
pub mod auth;
mod backup;
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

/// A body streaming `file` from where it stands (a temporary file, read once).
fn file_body(file: std::fs::File) -> axum::body::Body {
    use tokio::io::AsyncReadExt as _;
    let chunks = futures::stream::unfold(tokio::fs::File::from_std(file), |mut f| async move {
        let mut buf = vec![0u8; 256 << 10];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    axum::body::Body::from_stream(chunks)
}
