//! Talking to a running `strata serve` (`--url`, `--token-file`): the subcommands that
//! change a database use its admin API while the server holds the directory's lock.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{fail, CliError, CliResult};

/// Where a subcommand sends its request instead of opening `--data`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Target {
    /// A running server to talk to (e.g. http://127.0.0.1:9464) instead of opening --data.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// File holding the server's bearer token (with --url).
    #[arg(long, value_name = "FILE", alias = "auth-token-file", requires = "url")]
    pub token_file: Option<PathBuf>,
}

pub struct Remote {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

impl Remote {
    /// `None` when no `--url` was given.
    pub fn from(t: &Target) -> CliResult<Option<Remote>> {
        let Some(url) = &t.url else { return Ok(None) };
        let token = match &t.token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| CliError::new(format!("reading {}: {e}", p.display())))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Ok(Some(Remote { agent, base: url.trim_end_matches('/').to_string(), token }))
    }

    /// `GET path`, streamed: the body as a reader; a non-2xx answer is an error
    /// carrying the server's message.
    pub fn get_stream(&self, path: &str) -> CliResult<impl std::io::Read> {
        let url = format!("{}{path}", self.base);
        let mut r = self.agent.get(&url);
        if let Some(t) = &self.token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = r.call().map_err(|e| CliError::new(format!("GET {url}: {e}")))?;
        let status = resp.status().as_u16();
        if !(200..300).contains(&status) {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            return fail(format!("GET {url} answered {status}: {msg}"));
        }
        Ok(resp.into_body().into_reader())
    }

    /// `POST path` with a form-encoded body (as Prometheus's API takes it): the
    /// status and the body, whatever the status, for the caller to read.
    pub fn post_form(&self, path: &str, form: &str) -> CliResult<(u16, String)> {
        let url = format!("{}{path}", self.base);
        let mut r = self.agent.post(&url).header("Content-Type", "application/x-www-form-urlencoded");
        if let Some(t) = &self.token {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        let mut resp = r.send(form).map_err(|e| CliError::new(format!("POST {url}: {e}")))?;
        let status = resp.status().as_u16();
        Ok((status, resp.body_mut().read_to_string().unwrap_or_default()))
    }

    /// Sends one request; a non-2xx answer is an error carrying the server's message.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> CliResult<Value> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" { self.agent.get(&url) } else { self.agent.delete(&url) };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            _ => {
                let mut r = if method == "PUT" { self.agent.put(&url) } else { self.agent.post(&url) };
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                match body {
                    Some(b) => r.header("Content-Type", "application/json").send(b.to_string()),
                    None => r.send_empty(),
                }
            }
        };
        let mut resp = result.map_err(|e| CliError::new(format!("{method} {url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        if !(200..300).contains(&status) {
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.trim().to_string());
            return fail(format!("{method} {url} answered {status}: {msg}"));
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| CliError::new(format!("{method} {url}: the answer is not JSON: {e}")))
    }
}

/// Percent-encodes a query-string value.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
