//! `strata serve --forward-to URL`: the remote-write targets, from flags,
//! `STRATA_FORWARD_*` variables, or a config file's `forward_*` keys and
//! `[[forward]]` tables.
//!
//! The `--forward-*` options apply to every `--forward-to` URL. Targets that need
//! different options are `[[forward]]` tables in the config file, one per target,
//! with the same keys without the `forward_` prefix (`url`, `name`, `selector`,
//! `headers`, `basic_auth`, `shards`, `batch_samples`, `max_backlog_bytes`,
//! `metadata_interval`).

use std::time::Duration;

use strata::forward::ForwardConfig;

use super::settings::parse_bytes;

/// Forwarding settings from one source; empty or `None` = this source does not say.
#[derive(clap::Args, Debug, Default, Clone)]
#[command(next_help_heading = "Remote-write forwarding (docs/SERVER.md, \"Forwarding\")")]
pub struct ForwardSettings {
    /// Forward every acknowledged sample to this Prometheus remote-write URL
    /// (repeatable); `http://user:pass@host/...` sends basic auth.
    #[arg(long = "forward-to", value_name = "URL")]
    pub to: Vec<String>,
    /// Forward only series matching this selector, e.g. '{job="node"}'.
    #[arg(long = "forward-selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// A header sent with every forward request, 'Name: value' (repeatable).
    #[arg(long = "forward-header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// Basic auth for the forward targets, 'user:password'.
    #[arg(long = "forward-basic-auth", value_name = "USER:PASS")]
    pub basic_auth: Option<String>,
    /// Parallel connections per target [default: 4].
    #[arg(long = "forward-shards", value_name = "N")]
    pub shards: Option<usize>,
    /// Most samples per forward request [default: 5000].
    #[arg(long = "forward-batch-samples", value_name = "N")]
    pub batch_samples: Option<usize>,
    /// WAL bytes kept for a target that is down, beyond what the database keeps anyway;
    /// past it the oldest are released and counted as dropped [default: 1GiB].
    #[arg(long = "forward-max-backlog-bytes", value_name = "BYTES", value_parser = parse_bytes)]
    pub max_backlog_bytes: Option<usize>,
    /// How often metric metadata (type, help, unit) is sent again; it is also sent at
    /// start and on every change. 0 sends none [default: 1m].
    #[arg(long = "forward-metadata-interval", value_name = "DURATION", value_parser = interval)]
    pub metadata_interval: Option<Duration>,
    /// `[[forward]]` tables of the config file.
    #[arg(skip)]
    pub tables: Vec<ForwardConfig>,
}

impl ForwardSettings {
    pub fn or(self, lower: ForwardSettings) -> ForwardSettings {
        let pick = |a: Vec<String>, b: Vec<String>| if a.is_empty() { b } else { a };
        ForwardSettings {
            to: pick(self.to, lower.to),
            selector: self.selector.or(lower.selector),
            headers: pick(self.headers, lower.headers),
            basic_auth: self.basic_auth.or(lower.basic_auth),
            shards: self.shards.or(lower.shards),
            batch_samples: self.batch_samples.or(lower.batch_samples),
            max_backlog_bytes: self.max_backlog_bytes.or(lower.max_backlog_bytes),
            metadata_interval: self.metadata_interval.or(lower.metadata_interval),
            tables: if self.tables.is_empty() { lower.tables } else { self.tables },
        }
    }

    /// Sets one `forward_*` key from a variable or the file (lists as one string:
    /// URLs separated by spaces, headers by newlines).
    pub fn set(&mut self, key: &str, v: &str) -> Result<bool, String> {
        match key {
            "forward_to" => self.to = v.split_whitespace().map(str::to_string).collect(),
            "forward_selector" => self.selector = Some(v.to_string()),
            "forward_headers" => {
                self.headers = v.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
            }
            "forward_basic_auth" => self.basic_auth = Some(v.to_string()),
            "forward_shards" => self.shards = Some(count(v)?),
            "forward_batch_samples" => self.batch_samples = Some(count(v)?),
            "forward_max_backlog_bytes" => self.max_backlog_bytes = Some(parse_bytes(v)?),
            "forward_metadata_interval" => self.metadata_interval = Some(interval(v)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Every target: one per `--forward-to` URL with the `--forward-*` options, then
    /// the config file's tables.
    pub fn resolve(&self) -> Result<Vec<ForwardConfig>, String> {
        let mut out = Vec::new();
        for url in &self.to {
            let mut c = ForwardConfig::new(url.clone());
            if let Some(s) = &self.selector {
                c.selector = selector(s)?;
            }
            for h in &self.headers {
                c.headers.push(header(h)?);
            }
            if let Some(a) = &self.basic_auth {
                c.basic_auth = Some(basic_auth(a));
            }
            c.shards = self.shards.unwrap_or(c.shards);
            c.batch_samples = self.batch_samples.unwrap_or(c.batch_samples);
            c.max_backlog_bytes = self.max_backlog_bytes.map_or(c.max_backlog_bytes, |b| b as u64);
            c.metadata_interval = self.metadata_interval.unwrap_or(c.metadata_interval);
            out.push(c);
        }
        out.extend(self.tables.iter().cloned());
        for c in &out {
            c.id().map_err(|e| e.to_string())?;
            c.target().map_err(|e| e.to_string())?;
        }
        let mut ids: Vec<String> = out.iter().filter_map(|c| c.id().ok()).collect();
        ids.sort();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two forward targets share the name {}: give each a different url or name", w[0]));
        }
        Ok(out)
    }
}

/// A `[[forward]]` table of the config file.
pub fn table(t: &toml_edit::Table) -> Result<ForwardConfig, String> {
    let s = |k: &str| -> Result<Option<String>, String> {
        match t.get(k) {
            None => Ok(None),
            Some(i) => i.as_str().map(|v| Some(v.to_string())).ok_or_else(|| format!("`{k}` must be a string")),
        }
    };
    let n = |k: &str| -> Result<Option<u64>, String> {
        match t.get(k) {
            None => Ok(None),
            Some(i) => match (i.as_integer(), i.as_str()) {
                (Some(v), _) if v > 0 => Ok(Some(v as u64)),
                (_, Some(v)) => parse_bytes(v).map(|b| Some(b as u64)),
                _ => Err(format!("`{k}` must be a positive number")),
            },
        }
    };
    const KEYS: [&str; 9] = [
        "url",
        "name",
        "selector",
        "headers",
        "basic_auth",
        "shards",
        "batch_samples",
        "max_backlog_bytes",
        "metadata_interval",
    ];
    if let Some((k, _)) = t.iter().find(|(k, _)| !KEYS.contains(k)) {
        return Err(format!("unknown key `{k}`; a [[forward]] table takes {}", KEYS.join(", ")));
    }
    let url = s("url")?.ok_or("a [[forward]] table needs `url`")?;
    let mut c = ForwardConfig::new(url);
    c.name = s("name")?;
    if let Some(sel) = s("selector")? {
        c.selector = selector(&sel)?;
    }
    if let Some(h) = t.get("headers") {
        let arr = h.as_array().ok_or("`headers` must be a list of \"Name: value\" strings")?;
        for v in arr.iter() {
            c.headers.push(header(v.as_str().ok_or("`headers` must be a list of strings")?)?);
        }
    }
    if let Some(a) = s("basic_auth")? {
        c.basic_auth = Some(basic_auth(&a));
    }
    c.shards = n("shards")?.map_or(c.shards, |v| v as usize);
    c.batch_samples = n("batch_samples")?.map_or(c.batch_samples, |v| v as usize);
    c.max_backlog_bytes = n("max_backlog_bytes")?.unwrap_or(c.max_backlog_bytes);
    if let Some(i) = s("metadata_interval")? {
        c.metadata_interval = interval(&i)?;
    }
    Ok(c)
}

/// A duration such as `30s` or `1m`; `0` turns metadata off.
fn interval(v: &str) -> Result<Duration, String> {
    match strata::text::duration::parse_duration(v) {
        Ok(ms) if ms >= 0 => Ok(Duration::from_millis(ms as u64)),
        Ok(_) => Err(format!("expected a duration such as 1m or 0, got {v:?}")),
        Err(e) => Err(format!("forward metadata interval: {e}")),
    }
}

fn count(v: &str) -> Result<usize, String> {
    match v.trim().replace('_', "").parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a positive whole number, got {v:?}")),
    }
}

fn selector(s: &str) -> Result<Vec<strata::Matcher>, String> {
    strata::text::selector::parse_selector(s).map_err(|e| format!("forward selector {s:?}: {e}"))
}

fn header(h: &str) -> Result<(String, String), String> {
    let (k, v) = h.split_once(':').ok_or_else(|| format!("forward header {h:?}: expected 'Name: value'"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

fn basic_auth(a: &str) -> (String, String) {
    let (u, p) = a.split_once(':').unwrap_or((a, ""));
    (u.to_string(), p.to_string())
}
