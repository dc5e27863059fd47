//! Optional bearer-token auth. The token is the trimmed contents of
//! `--auth-token-file`; every route but `/health` requires it when set. Tokens are
//! compared in constant time. Without a token the server only listens on loopback
//! unless `insecure` says otherwise.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ServerError};
use super::{ServeConfig, Shared};

/// Reads the token and refuses a non-loopback listener without one (unless insecure).
pub(crate) fn load_token(cfg: &ServeConfig, addr: SocketAddr) -> Result<Option<Vec<u8>>, ServerError> {
    let token = match &cfg.auth_token_file {
        None => None,
        Some(path) => {
            let raw = std::fs::read(path)
                .map_err(|e| ServerError::io(format!("reading the auth token file {}", path.display()), e))?;
            let t = raw.trim_ascii().to_vec();
            if t.is_empty() {
                return Err(ServerError::Config(format!("auth token file {} is empty", path.display())));
            }
            Some(t)
        }
    };
    if token.is_none() && !addr.ip().is_loopback() && !cfg.insecure {
        return Err(ServerError::Config(format!(
            "refusing to listen on non-loopback address {addr} without --auth-token-file (pass --insecure to allow)"
        )));
    }
    Ok(token)
}

/// Middleware: 401 unless the request carries `Authorization: Bearer <token>`
/// (or `Token <token>`, which InfluxDB v2 clients send).
pub(crate) async fn require(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(want) = &st.token {
        let given = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(credential);
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), want)) {
            let msg = if given.is_none() { "missing bearer token" } else { "invalid bearer token" };
            let mut r = ApiError::new(StatusCode::UNAUTHORIZED, msg).into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(req).await
}

/// The credential of a `Bearer` or `Token` Authorization header (scheme is case-insensitive).
fn credential(h: &str) -> Option<&str> {
    let (scheme, rest) = h.trim().split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")).then(|| rest.trim())
}

/// Compares without an early exit, so the time taken does not tell how much of a
/// guess was right (only, at most, whether its length was).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens_and_parses_headers() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert_eq!(credential("Bearer abc"), Some("abc"));
        assert_eq!(credential("bearer  abc "), Some("abc"));
        assert_eq!(credential("Token abc"), Some("abc"));
        assert_eq!(credential("Basic abc"), None);
        assert_eq!(credential("Bearer"), None);
    }

    #[test]
    fn refuses_public_listener_without_token() {
        let public: SocketAddr = "0.0.0.0:9464".parse().unwrap();
        let cfg = ServeConfig::default();
        assert!(matches!(load_token(&cfg, public), Err(ServerError::Config(_))));
        assert!(load_token(&ServeConfig { insecure: true, ..ServeConfig::default() }, public).unwrap().is_none());
        assert!(load_token(&cfg, "127.0.0.1:1".parse().unwrap()).unwrap().is_none());
        assert!(load_token(&cfg, "[::1]:1".parse().unwrap()).unwrap().is_none());
    }
}
