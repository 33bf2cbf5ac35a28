//! The one mapping from errors to HTTP responses. Messages are for API
//! users: they say what to fix and never carry internals or secret values.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::CoreError;
use coffer_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// The client was too slow (e.g. sending its body).
    #[error("{0}")]
    Timeout(String),
    /// The server is overloaded; retry.
    #[error("{0}")]
    Unavailable(String),
    /// A database Coffer manages (a target) failed; the message says how
    /// (never with a password).
    #[error("{0}")]
    Upstream(String),
    /// Internal failure: the detail goes to the server log only.
    #[error("internal error (request id in the server log)")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }

    /// Is this a refusal of the caller (audited as `denied`)?
    pub fn is_denial(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized(_) | ApiError::Forbidden(_) | ApiError::TooManyRequests(_)
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::Limit(what) => ApiError::Conflict(what),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<coffer_keys::KeyError> for ApiError {
    fn from(e: coffer_keys::KeyError) -> Self {
        use coffer_keys::KeyError;
        match e {
            KeyError::Invalid(_) | KeyError::Decrypt => ApiError::BadRequest(e.to_string()),
            // Outside the issuer's policy: the caller may not have it.
            KeyError::Denied(m) => ApiError::Forbidden(m),
            KeyError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl From<coffer_crypto::CryptoError> for ApiError {
    fn from(e: coffer_crypto::CryptoError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// JSON error body `{"error": "..."}` with the mapped status.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}
