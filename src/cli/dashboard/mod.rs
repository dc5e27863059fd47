//! `strata dashboard`: a terminal UI (ratatui + crossterm) over a data directory
//! or a running server: summary, alerts, the selected metric's percentiles and
//! sparklines, top series; refreshed every few seconds.

mod alert;
mod prom;
mod remote;
mod source;
#[cfg(test)]
mod tests;
mod view;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::Terminal;

use self::alert::Alert;
use self::remote::HttpSource;
use self::source::{Snapshot, Source};
use super::{fail, open_existing, times, CliError, CliResult};

/// A terminal dashboard: summary, alerts, sparklines, top series.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "A terminal dashboard over a data directory (--data) or a running server (--url): a \
        summary (series, samples, ingest rate, disk, compression), threshold alerts coloured green / \
        yellow / red (on the latest value of a selector, or on a PromQL expression such as \
        'p99(task_duration_seconds[5m]) > 5' or 'rate(errors_total[5m]) / rate(requests_total[5m]) > 0.1'), \
        count/min/avg/p50/p95/p99/max of one metric over --summary-window, sparklines of that metric \
        (mean over its series) for the last hour and the last day, and the top series by sample rate. It refreshes every --refresh; ←/→ or j/k switch the \
        metric, r refreshes, q quits. A directory is opened (and locked) for the dashboard's lifetime; \
        while `strata serve` holds it, use --url instead. If a refresh fails (server down, 401, 5xx) \
        the last frame stays up with the error on the bottom line, and the next refresh retries. \
        --once prints one frame and exits (exit 1 if collecting it fails).",
    after_help = "Examples:\n  strata dashboard --data ./data --alert 'cpu_usage_user>90' --alert 'cpu_usage_idle<10:5'\n  \
        strata dashboard --data ./data --metric task_duration_seconds --alert 'p99(task_duration_seconds[5m]) > 5' \
        --alert 'rate(errors_total[5m]) / rate(requests_total[5m]) > 0.05:0.1'\n  \
        strata dashboard --url http://127.0.0.1:9464 --token-file ./token\n  \
        strata dashboard --data ./data --once"
)]
pub struct Args {
    /// Data directory of the database [default: ./data].
    #[arg(long, value_name = "DIR", conflicts_with = "url")]
    data: Option<PathBuf>,
    /// Read from a running `strata serve` at this base URL instead, e.g. http://127.0.0.1:9464.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// File holding the server's bearer token (with --url).
    #[arg(long = "token-file", alias = "auth-token-file", value_name = "FILE", requires = "url")]
    auth_token_file: Option<PathBuf>,
    /// Threshold alert, repeatable: LEFT>CRIT, LEFT<CRIT, or LEFT>WARN:CRIT (also >=, <=), where LEFT
    /// is a series selector (its latest values) or a PromQL expression; pNN(x[5m]) stands for
    /// quantile_over_time(0.NN, x[5m]).
    #[arg(long = "alert", value_name = "RULE", value_parser = Alert::parse)]
    alerts: Vec<Alert>,
    /// Time between refreshes.
    #[arg(long, default_value = "5s", value_parser = times::parse_duration)]
    refresh: i64,
    /// Metric to show first.
    #[arg(long)]
    metric: Option<String>,
    /// How far back the selected metric's count/min/avg/p50/p95/p99/max reach.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = times::parse_duration)]
    summary_window: i64,
    /// Print one frame as text and exit (no terminal needed).
    #[arg(long)]
    once: bool,
    /// Width and height of the --once frame.
    #[arg(long, default_value = "120x40", value_parser = parse_size)]
    size: (u16, u16),
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (w, h) = s.split_once('x').ok_or("expected WIDTHxHEIGHT, e.g. 120x40")?;
    match (w.parse::<u16>(), h.parse::<u16>()) {
        (Ok(w), Ok(h)) if (40..=1000).contains(&w) && (20..=500).contains(&h) => Ok((w, h)),
        _ => Err("expected WIDTHxHEIGHT between 40x20 and 1000x500".into()),
    }
}

pub fn run(a: Args) -> CliResult {
    if a.refresh <= 0 {
        return fail("--refresh must be positive");
    }
    if a.summary_window <= 0 {
        return fail("--summary-window must be positive");
    }
    let mut src = match &a.url {
        Some(url) => Source::Remote(HttpSource::new(url, a.auth_token_file.as_deref())?),
        None => {
            let dir = a.data.clone().unwrap_or_else(|| PathBuf::from("./data"));
            Source::Local { db: open_existing(&dir)?, dir: dir.display().to_string() }
        }
    };
    let mut selected = match &a.metric {
        Some(m) => match src.metrics()?.iter().position(|(n, _)| n == m) {
            Some(i) => i,
            None => return fail(format!("no metric named {m:?} in {}", src.label())),
        },
        None => 0,
    };
    let refresh_secs = (a.refresh / 1000).max(1) as u64;
    if a.once {
        let snap = src.collect(&a.alerts, selected, a.summary_window, times::now_ms())?;
        let (w, h) = a.size;
        let mut t = Terminal::new(TestBackend::new(w, h)).map_err(|e| CliError::new(e.to_string()))?;
        t.draw(|f| view::render(f, &snap, &a.alerts, refresh_secs)).map_err(|e| CliError::new(e.to_string()))?;
        let buf = t.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            let line: String = (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let _ = std::io::stdout().lock().write_all(out.as_bytes());
        return Ok(());
    }
    if !std::io::stdout().is_terminal() {
        return fail("the dashboard needs a terminal; use --once to print one frame");
    }
    let mut term = ratatui::try_init().map_err(|e| CliError::new(format!("setting up the terminal: {e}")))?;
    let settings = Settings { alerts: &a.alerts, window: a.summary_window, refresh_ms: a.refresh as u64, refresh_secs };
    let result = event_loop(&mut term, &mut src, &settings, &mut selected);
    let restored = ratatui::try_restore();
    result?;
    restored.map_err(|e| CliError::new(format!("restoring the terminal: {e}")))
}

/// What the interactive loop keeps from the flags.
struct Settings<'a> {
    alerts: &'a [Alert],
    /// --summary-window, ms.
    window: i64,
    refresh_ms: u64,
    refresh_secs: u64,
}

/// A fresh snapshot, or the previous one carrying the error: a server that is
/// down or refuses us is shown on the status line, and the next refresh retries.
fn refresh(src: &mut Source, s: &Settings, selected: usize, prev: Snapshot) -> Snapshot {
    match src.collect(s.alerts, selected, s.window, times::now_ms()) {
        Ok(s) => s,
        Err(e) => Snapshot { error: Some(e.to_string()), ..prev },
    }
}

fn event_loop(term: &mut ratatui::DefaultTerminal, src: &mut Source, s: &Settings, selected: &mut usize) -> CliResult {
    let io = |e: std::io::Error| CliError::new(format!("terminal: {e}"));
    let empty = Snapshot { dir: src.label().to_string(), window_end: times::now_ms() + 1, ..Default::default() };
    let mut snap = refresh(src, s, *selected, empty);
    let mut last = Instant::now();
    loop {
        term.draw(|f| view::render(f, &snap, s.alerts, s.refresh_secs)).map_err(io)?;
        let wait = Duration::from_millis(s.refresh_ms).saturating_sub(last.elapsed());
        let mut again = wait.is_zero();
        if event::poll(wait).map_err(io)? {
            if let Event::Key(k) = event::read().map_err(io)? {
                if k.kind == KeyEventKind::Press {
                    let n = snap.metrics.len().max(1);
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Right | KeyCode::Char('j') => *selected = (snap.selected + 1) % n,
                        KeyCode::Left | KeyCode::Char('k') => *selected = (snap.selected + n - 1) % n,
                        KeyCode::Char('r') => {}
                        _ => continue,
                    }
                    again = true;
                }
            }
        }
        if again {
            snap = refresh(src, s, *selected, snap);
            last = Instant::now();
        }
    }
}
