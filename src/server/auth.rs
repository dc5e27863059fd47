//! Optional bearer-token auth. The token is the trimmed contents of
//! `--auth-token-file`; every route but `/health`, `/ping` and `/api/v2/health`
//! requires it when set. It is accepted where clients put it: `Authorization: Bearer`
//! or `Token` (InfluxDB 2), the password of `Authorization: Basic` (Prometheus
//! `basic_auth`, Telegraf's `influxdb` output), or the `p` query parameter (InfluxDB
//! 1.x's `u`/`p`); user names are not checked. Tokens are compared in constant time.
//! Without a token the server only listens on loopback unless `insecure` says otherwise.

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

/// Middleware: 401 unless the request carries the token (see the module comment).
pub(crate) async fn require(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(want) = &st.token {
        let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let given = match header {
            Some(h) => credential(h),
            None => req.uri().query().and_then(password_param),
        };
        if !given.as_deref().is_some_and(|g| constant_time_eq(g.as_bytes(), want)) {
            let msg = if given.is_none() { "missing bearer token" } else { "invalid bearer token" };
            let mut r = ApiError::new(StatusCode::UNAUTHORIZED, msg).into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    next.run(req).await
}

/// The credential of a `Bearer`, `Token` or `Basic` Authorization header (the
/// scheme is case-insensitive; of Basic, the password).
fn credential(h: &str) -> Option<String> {
    let (scheme, rest) = h.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
        return (!rest.is_empty()).then(|| rest.to_string());
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
    let (_user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(password.to_string())
}

/// The `p` parameter of a query string (InfluxDB 1.x clients' `?u=…&p=…`).
fn password_param(query: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == "p").map(|(_, v)| v)
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
        assert_eq!(credential("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(credential("bearer  abc ").as_deref(), Some("abc"));
        assert_eq!(credential("Token abc").as_deref(), Some("abc"));
        // "user:s3cret" and ":s3cret"
        assert_eq!(credential("Basic dXNlcjpzM2NyZXQ=").as_deref(), Some("s3cret"));
        assert_eq!(credential("basic OnMzY3JldA==").as_deref(), Some("s3cret"));
        assert_eq!(credential("Basic abc"), None);
        assert_eq!(credential("Basic dXNlcg=="), None, "no colon: no password");
        assert_eq!(credential("Bearer"), None);
        assert_eq!(credential("Digest abc"), None);
        assert_eq!(password_param("db=t&u=me&p=a%20b").as_deref(), Some("a b"));
        assert_eq!(password_param("db=t&u=me"), None);
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
