//! Disclosure pack routes: a tenant's pack for one region, or one execution's. The pack is
//! built off the async runtime and sent while it is built, at the client's pace. A pack
//! whose first chunk never fills (one execution's, a small tenant's) is answered whole, with
//! its length and its SHA-256 (`X-Maestro-Pack-Sha256`) in headers; a larger one is sent
//! chunked with the same fields as trailers, for clients that ask for them (`TE: trailers`).
//! A pack that fails before its first chunk gets an error answer; one that fails later is
//! cut off (the chunked body never ends), never sent as if it were whole.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::auth::Caller;
use super::error::ApiError;
use crate::app::App;
use crate::app::disclosure::{DisclosureError, PackInfo, PackRequest};
use crate::domain::actor::{Access, TenantScope};
use crate::domain::disclosure::{Explain, MEDIA_TYPE};
use crate::domain::ids::{ExecutionId, TenantId};
use crate::domain::residency::Region;

/// What the guard calls a pack.
const KIND: &str = "disclosure";

/// Query of both pack routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackParams {
    /// The region (required).
    pub region: Option<String>,
    /// The tenant, for tokens not bound to one.
    pub tenant: Option<String>,
    /// Include artifact bytes.
    #[serde(default)]
    pub artifacts: bool,
    /// `denies` (default) or `all`: which decisions are explained rule by rule.
    pub explain: Option<String>,
}

impl PackParams {
    fn request(&self, execution: Option<ExecutionId>) -> Result<PackRequest, ApiError> {
        let region = self
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ApiError::bad_request("the query parameter region is required"))?;
        let explain = match self.explain.as_deref() {
            None => Explain::Denies,
            Some(e) => Explain::parse(e).ok_or_else(|| {
                ApiError::bad_request(format!("explain {e:?} is not one of denies, all"))
            })?,
        };
        Ok(PackRequest {
            region,
            execution,
            artifact_bytes: self.artifacts,
            explain,
        })
    }
}

/// `GET /api/v1/disclosure` (and `/api/disclosure`)
pub async fn tenant_pack(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(p): Query<PackParams>,
) -> Result<Response, ApiError> {
    let scope = caller
        .scope(&app, p.tenant.as_deref(), Access::Read, KIND, None)
        .await?;
    let req = p.request(None)?;
    pack_response(app, scope, req).await
}

/// `GET /api/executions/{id}/disclosure` (and under `/api/v1/`)
pub async fn execution_pack(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<PackParams>,
) -> Result<Response, ApiError> {
    let parsed = ExecutionId::new(&id).ok();
    let (scope, id) = caller
        .locate(&app, p.tenant.as_deref(), "execution", &id, |s| {
            match &parsed {
                Some(p) => app.engine.store().read()?.execution(s, p),
                None => Ok(None),
            }
            .map(|e| e.map(|e| e.id))
        })
        .await?;
    let req = p.request(Some(id))?;
    pack_response(app, scope, req).await
}

/// Bytes of compressed pack held before they go to the client as one chunk.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the builder and the connection.
const IN_FLIGHT: usize = 8;
const SHA256: HeaderName = HeaderName::from_static("x-maestro-pack-sha256");
const EXECUTIONS: HeaderName = HeaderName::from_static("x-maestro-pack-executions");

/// What the builder hands the answer.
enum Piece {
    /// The next chunk of a pack being sent.
    Chunk(Bytes),
    /// A pack built before its first chunk filled.
    Whole(Bytes, PackInfo),
    /// How a pack being sent ended.
    End(Result<PackInfo, DisclosureError>),
}

/// The builder's output: full chunks go to the answer as they fill, and wait while the
/// client is slow (the builder waits with them); a client gone away stops the build.
struct ChunkWriter {
    tx: mpsc::Sender<Piece>,
    buf: Vec<u8>,
    sent: bool,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<Piece>) -> Self {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            sent: false,
        }
    }

    fn send(&mut self, piece: Piece) -> std::io::Result<()> {
        self.tx.blocking_send(piece).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }

    /// Hands over what is left and how the build ended.
    fn finish(mut self, result: Result<PackInfo, DisclosureError>) {
        let rest = Bytes::from(std::mem::take(&mut self.buf));
        let _ = match result {
            Ok(info) if !self.sent => self.send(Piece::Whole(rest, info)),
            Ok(info) => self
                .send(Piece::Chunk(rest))
                .and_then(|()| self.send(Piece::End(Ok(info)))),
            Err(e) => self.send(Piece::End(Err(e))),
        };
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(Piece::Chunk(full.into()))?;
            self.sent = true;
        }
        Ok(bytes.len())
    }

    /// Chunks leave when full or at the end: the builder's flushes do not cut them short.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn pack_response(
    app: Arc<App>,
    scope: TenantScope,
    req: PackRequest,
) -> Result<Response, ApiError> {
    let name = match app.engine.config().residency.region(&req.region) {
        Region::Known(r) => format!("disclosure-{}-{r}.tar.gz", scope.tenant()),
        _ => format!("disclosure-{}.tar.gz", scope.tenant()),
    };
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let tenant = scope.tenant().clone();
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter::new(tx);
        let result = app.disclosure_pack(&scope, &req, &mut out);
        out.finish(result);
    });
    answer(rx, &name, tenant).await
}

/// The answer to the pack `rx` receives, whole or streamed, named `name`.
async fn answer(
    mut rx: mpsc::Receiver<Piece>,
    name: &str,
    tenant: TenantId,
) -> Result<Response, ApiError> {
    let mut resp = match rx.recv().await {
        None => return Err(ApiError::internal("the pack builder stopped")),
        Some(Piece::End(Ok(_))) => return Err(ApiError::internal("a pack ended before it began")),
        Some(Piece::End(Err(e))) => return Err(refusal(e)),
        Some(Piece::Whole(bytes, info)) => {
            tracing::info!(%tenant, region = %info.region, executions = info.executions, sha256 = %info.sha256, "disclosure pack");
            let mut resp = Body::from(bytes).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.bytes));
            h.extend(pack_fields(&info));
            resp
        }
        Some(Piece::Chunk(first)) => {
            let mut resp = Body::new(Streamed {
                first: Some(first),
                rx,
                tenant,
                ended: false,
            })
            .into_response();
            resp.headers_mut().insert(
                header::TRAILER,
                HeaderValue::from_static("x-maestro-pack-sha256, x-maestro-pack-executions"),
            );
            resp
        }
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The answer to a pack that could not be made.
fn refusal(e: DisclosureError) -> ApiError {
    match e {
        DisclosureError::UnknownRegion { .. } => ApiError::bad_request(e.to_string()),
        DisclosureError::NotFinal(_) | DisclosureError::OutsideRegion { .. } => ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_disclosable",
            e.to_string(),
        ),
        DisclosureError::NotFound(_) => ApiError::not_found(e.to_string()),
        other => ApiError::internal(other),
    }
}

/// The pack's digest and execution count, as headers or trailers.
fn pack_fields(info: &PackInfo) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&info.sha256.to_string()) {
        h.insert(SHA256, v);
    }
    h.insert(EXECUTIONS, HeaderValue::from(info.executions));
    h
}

/// The body of a pack sent while it is built: its chunks, then its fields as trailers,
/// or an error that cuts the connection if the build fails.
struct Streamed {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Piece>,
    tenant: TenantId,
    ended: bool,
}

impl HttpBody for Streamed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let piece = std::task::ready!(self.rx.poll_recv(cx));
        self.ended = !matches!(piece, Some(Piece::Chunk(_)));
        Poll::Ready(Some(match piece {
            Some(Piece::Chunk(bytes)) => Ok(Frame::data(bytes)),
            Some(Piece::End(Ok(info))) => {
                tracing::info!(tenant = %self.tenant, region = %info.region, executions = info.executions, sha256 = %info.sha256, "disclosure pack");
                Ok(Frame::trailers(pack_fields(&info)))
            }
            Some(Piece::End(Err(e))) => {
                tracing::error!(tenant = %self.tenant, error = %e, "disclosure pack failed while it was sent");
                Err(std::io::Error::other(e))
            }
            Some(Piece::Whole(..)) | None => {
                tracing::error!(tenant = %self.tenant, "the pack builder stopped while the pack was sent");
                Err(std::io::Error::other("the pack builder stopped"))
            }
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.first.is_none()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;
    use crate::domain::ids::Digest;

    fn info(bytes: &[u8]) -> PackInfo {
        PackInfo {
            sha256: Digest::of(bytes),
            bytes: bytes.len() as u64,
            executions: 7,
            files: 9,
            region: "eu-west".into(),
        }
    }

    /// Writes `bytes` through a [`ChunkWriter`] in small writes on a thread of its own,
    /// then ends with `result`, and answers.
    async fn build(
        bytes: Vec<u8>,
        result: impl FnOnce(&[u8]) -> Result<PackInfo, DisclosureError> + Send + 'static,
    ) -> (
        Result<Response, ApiError>,
        std::thread::JoinHandle<std::io::Result<()>>,
    ) {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let writer = std::thread::spawn(move || {
            let mut w = ChunkWriter::new(tx);
            for part in bytes.chunks(1000) {
                if let Err(e) = w.write_all(part) {
                    w.finish(Err(e.into()));
                    return Err(std::io::Error::other("stopped"));
                }
            }
            w.finish(result(&bytes));
            Ok(())
        });
        let tenant = TenantId::new("acme").unwrap();
        (answer(rx, "p.tar.gz", tenant).await, writer)
    }

    fn pack(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[tokio::test]
    async fn a_large_pack_is_streamed_with_its_digest_in_trailers() {
        let bytes = pack(CHUNK * 3 + 1234);
        let (resp, writer) = build(bytes.clone(), |b| Ok(info(b))).await;
        let resp = resp.unwrap();
        let h = resp.headers();
        assert!(h.get(header::CONTENT_LENGTH).is_none());
        assert!(h.get(SHA256).is_none());
        assert_eq!(
            h[header::TRAILER],
            "x-maestro-pack-sha256, x-maestro-pack-executions"
        );
        assert_eq!(h[header::CONTENT_TYPE], MEDIA_TYPE);
        let body = resp.into_body().collect().await.unwrap();
        let trailers = body.trailers().cloned().expect("trailers");
        assert_eq!(body.to_bytes(), bytes);
        assert_eq!(trailers[SHA256], Digest::of(&bytes).to_string());
        assert_eq!(trailers[EXECUTIONS], "7");
        writer.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_small_pack_is_answered_whole_with_its_length_and_digest() {
        let bytes = pack(CHUNK - 1);
        let (resp, writer) = build(bytes.clone(), |b| Ok(info(b))).await;
        let resp = resp.unwrap();
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_LENGTH], (CHUNK - 1).to_string());
        assert_eq!(h[SHA256], Digest::of(&bytes).to_string());
        assert_eq!(h[EXECUTIONS], "7");
        assert!(h.get(header::TRAILER).is_none());
        let body = resp.into_body().collect().await.unwrap();
        assert!(body.trailers().is_none());
        assert_eq!(body.to_bytes(), bytes);
        writer.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_pack_failing_before_its_first_chunk_gets_an_error_answer() {
        let (resp, _) = build(pack(1000), |_| {
            Err(DisclosureError::UnknownRegion {
                given: "mars".into(),
                resembles: None,
            })
        })
        .await;
        assert_eq!(resp.unwrap_err().status(), 400);
    }

    #[tokio::test]
    async fn a_pack_failing_while_it_is_sent_is_cut_off_not_ended() {
        let (resp, _) = build(pack(CHUNK * 2), |_| Err(corrupt_for_test())).await;
        let resp = resp.unwrap();
        assert!(resp.into_body().collect().await.is_err());
    }

    fn corrupt_for_test() -> DisclosureError {
        DisclosureError::from(std::io::Error::other("disk gone"))
    }

    #[tokio::test]
    async fn a_client_gone_away_stops_the_build() {
        let (resp, writer) = build(pack(CHUNK * 64), |b| Ok(info(b))).await;
        drop(resp);
        let stopped = tokio::task::spawn_blocking(move || writer.join().unwrap())
            .await
            .unwrap();
        assert!(stopped.is_err(), "the writer went on after the client left");
    }
}
