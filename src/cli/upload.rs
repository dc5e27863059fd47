//! `strata export --to URL`: the export streamed as the body of one POST, through
//! a pipe, so nothing larger than the pipe's buffer is held.

use std::io::{PipeReader, PipeWriter};
use std::thread::JoinHandle;
use std::time::Duration;

use super::export::Format;
use super::{CliError, CliResult};

pub struct Upload {
    url: String,
    thread: JoinHandle<Result<(u16, String), String>>,
}

impl Upload {
    /// Starts the request; the export is written to the returned pipe.
    pub fn start(url: &str, format: Format, gzip: bool, headers: &[String]) -> CliResult<(PipeWriter, Upload)> {
        if !url.starts_with("http://") {
            return Err(CliError::new(format!("--to {url}: only http:// URLs are supported")));
        }
        let mut extra = Vec::new();
        for h in headers {
            let (k, v) = h
                .split_once(':')
                .ok_or_else(|| CliError::new(format!("--to-header {h:?}: expected \"Name: value\"")))?;
            extra.push((k.trim().to_string(), v.trim().to_string()));
        }
        let (reader, writer) = std::io::pipe().map_err(|e| CliError::new(format!("creating a pipe: {e}")))?;
        let content_type = match format {
            Format::Json => "application/x-ndjson",
            Format::Csv => "text/csv",
            Format::Prometheus => "text/plain; version=0.0.4",
            Format::Openmetrics => "application/openmetrics-text; version=1.0.0",
            Format::Parquet => "application/vnd.apache.parquet",
        };
        let target = url.to_string();
        let thread = std::thread::spawn(move || send(&target, content_type, gzip, &extra, reader));
        Ok((writer, Upload { url: url.to_string(), thread }))
    }

    /// Waits for the answer. `complete` says whether the whole export was written; a
    /// target that stopped reading early is an error even if it answered 2xx.
    pub fn finish(self, complete: bool) -> CliResult {
        let answer =
            self.thread.join().map_err(|_| CliError::new(format!("POST {}: the sender panicked", self.url)))?;
        let (status, body) = answer.map_err(|e| CliError::new(format!("POST {}: {e}", self.url)))?;
        if !(200..300).contains(&status) {
            return Err(CliError::new(format!("POST {} answered {status}: {}", self.url, body.trim())));
        }
        if !complete {
            return Err(CliError::new(format!("POST {} answered {status} before the whole export was sent", self.url)));
        }
        Ok(())
    }
}

fn send(
    url: &str,
    content_type: &str,
    gzip: bool,
    headers: &[(String, String)],
    mut body: PipeReader,
) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut r = agent.post(url).header("Content-Type", content_type);
    if gzip {
        r = r.header("Content-Encoding", "gzip");
    }
    for (k, v) in headers {
        r = r.header(k.as_str(), v.as_str());
    }
    let mut resp = r.send(ureq::SendBody::from_reader(&mut body)).map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.body_mut().read_to_string().unwrap_or_default()))
}
