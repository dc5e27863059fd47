//! Errors: `ServerError` for starting and stopping the server, `ApiError` for a
//! request, always answered as JSON `{"error": "...", ...}`.

use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::Error;

/// Why `run` or `serve` failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// The database failed to open or to close.
    Db(Error),
    /// A socket or runtime failure, with what the server was doing.
    Io { context: String, source: std::io::Error },
    /// A configuration the server refuses (e.g. no token on a public address).
    Config(String),
}

impl ServerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ServerError::Io { context: context.into(), source }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Db(e) => write!(f, "database: {e}"),
            ServerError::Io { context, source } => write!(f, "{context}: {source}"),
            ServerError::Config(m) => write!(f, "configuration: {m}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Db(e) => Some(e),
            ServerError::Io { source, .. } => Some(source),
            ServerError::Config(_) => None,
        }
    }
}

/// A failed request: a status and a message naming the problem, plus optional
/// extra JSON fields (e.g. the line number of a parse error).
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), extra: Map::new() }
    }

    /// Malformed input: bad JSON, protobuf, line protocol, timestamps, parameters.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// Well-formed input the engine refuses (invalid labels, limits on series).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// Prefixes the message with where the problem is (`series 3`, `line 7`).
    pub fn context(mut self, at: impl fmt::Display) -> Self {
        self.message = format!("{at}: {}", self.message);
        self
    }

    /// A blocking task that died (a panic in the engine): never the client's fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<Error> for ApiError {
    /// Input errors are the client's (422); a refused write (poisoned, closed, stalled) is 503;
    /// anything else the storage's (500).
    fn from(e: Error) -> Self {
        let status = if e.is_input_error() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else if matches!(e, Error::Poisoned { .. } | Error::Closed | Error::WriteStalled { .. }) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        if status.is_server_error() {
            log::error!("request failed on storage: {e}");
        }
        ApiError::new(status, e.to_string())
    }
}

/// The message of an error response, kept in its extensions for the request log
/// (`metrics::track`), which would otherwise have to parse the body.
#[derive(Clone)]
pub(crate) struct ErrorMessage(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let logged = ErrorMessage(self.message.clone());
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.message));
        body.extend(self.extra);
        let mut r = json_response(self.status, &Value::Object(body));
        r.extensions_mut().insert(logged);
        r
    }
}

/// A JSON response with the given status.
pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response {
    let bytes = serde_json::to_vec(v).unwrap_or_else(|_| b"{\"error\":\"unencodable response\"}".to_vec());
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Result of a handler.
pub(crate) type ApiResult<T = Response> = std::result::Result<T, ApiError>;
