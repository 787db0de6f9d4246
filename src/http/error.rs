//! API errors: every error response is JSON with a stable `code`, a `message` and, where it
//! applies, the validation `problems`, a retry time or the recorded execution. A 500 says
//! nothing internal; the log has the details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::execution::Execution;
use crate::domain::validate::Problem;
use crate::engine::{EngineError, SubmitError};
use crate::store::StoreError;

/// The JSON body of every error.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// Stable machine code, e.g. `manifest_invalid`, `not_found`, `rate_limited`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// Every validation problem, for `manifest_invalid`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// Seconds to wait before retrying, for `rate_limited` and `queue_full`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// What failed, for `supply_chain_unverified`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// The recorded execution, for `denied_by_policy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<Box<Execution>>,
}

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Box<ErrorBody>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.body.code, self.body.message)
    }
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: Box::new(ErrorBody {
                code: code.into(),
                message: message.into(),
                problems: Vec::new(),
                failures: Vec::new(),
                retry_after_seconds: None,
                execution: None,
            }),
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`. Used alike for missing objects and other tenants' objects.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 400 `manifest_invalid` with every problem.
    pub fn manifest_invalid(problems: Vec<Problem>) -> Self {
        let first = problems.first().map(|p| p.to_string()).unwrap_or_default();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "manifest_invalid",
            if problems.len() == 1 {
                format!("the manifest is invalid: {first}")
            } else {
                format!(
                    "the manifest has {} problems; the first: {first}",
                    problems.len()
                )
            },
        );
        e.body.problems = problems;
        e
    }

    /// 422 `supply_chain_unverified`, with every failure.
    pub fn unverified(message: impl Into<String>, failures: Vec<String>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "supply_chain_unverified",
            message,
        );
        e.body.failures = failures;
        e
    }

    /// 403 `denied_by_policy` with the recorded execution.
    pub fn denied(exec: Execution) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "denied_by_policy",
            exec.error
                .clone()
                .unwrap_or_else(|| "denied by policy".into()),
        );
        e.body.execution = Some(Box::new(exec));
        e
    }

    /// 503 `not_recorded`: an outcome that must be recorded could not be, so nothing is
    /// served.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "not recorded");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_recorded",
            "the access could not be recorded durably, so it was not served; retry later",
        )
    }

    /// 500 `internal`, logging the cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the appliance log has details",
        )
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.body.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.body.retry_after_seconds;
        let mut response = (self.status, axum::Json(*self.body)).into_response();
        if let Some(secs) = retry
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(m) => ApiError::bad_request(m),
            other => ApiError::internal(other),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(m) => ApiError::bad_request(m),
            EngineError::Store(s) => s.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let retry = |secs: std::time::Duration| secs.as_secs_f64().ceil().max(1.0) as u64;
        match e {
            SubmitError::UnknownTenant(t) => ApiError::not_found(format!("tenant {t} not found")),
            SubmitError::RateLimited { scope, retry_after } => {
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "the {scope} submission rate limit is exceeded; retry after the Retry-After seconds"
                    ),
                );
                err.body.retry_after_seconds = Some(retry(retry_after));
                err
            }
            SubmitError::QueueFull {
                tenant,
                limit,
                retry_after,
            } => {
                let mut err = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "queue_full",
                    format!(
                        "the queue of tenant {tenant} is full ({limit} executions); retry later"
                    ),
                );
                err.body.retry_after_seconds = Some(retry(retry_after));
                err
            }
            SubmitError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the appliance is shutting down; retry against the next instance",
            ),
            SubmitError::Commit(c) => {
                tracing::error!(error = %c, "submission not recorded");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_recorded",
                    "the execution could not be recorded durably and was not accepted; retry later",
                )
            }
        }
    }
}
