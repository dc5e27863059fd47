//! `strata dashboard`: a terminal UI (ratatui + crossterm) over a data directory:
//! summary, alerts, per-metric sparklines, top series; refreshed every few seconds.

mod alert;
mod source;
mod view;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::Terminal;
use strata::Db;

use self::alert::Alert;
use super::{fail, open_existing, times, CliError, CliResult, DataDir};

/// A terminal dashboard: summary, alerts, sparklines, top series.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "A terminal dashboard over a data directory: a summary (series, samples, ingest rate, \
        disk, compression), threshold alerts coloured green / yellow / red, sparklines of one metric \
        (mean over its series) for the last hour and the last day, and the top series by sample rate. \
        It refreshes every --refresh; ←/→ or j/k switch the metric, r refreshes, q quits. The directory \
        is opened (and locked) for the dashboard's lifetime; --once prints one frame and exits.",
    after_help = "Examples:\n  strata dashboard --data ./data --alert 'cpu_usage_user>90' --alert 'cpu_usage_idle<10:5'\n  \
        strata dashboard --data ./data --once"
)]
pub struct Args {
    #[command(flatten)]
    data: DataDir,
    /// Threshold alert, repeatable: SELECTOR>CRIT, SELECTOR<CRIT, or SELECTOR>WARN:CRIT.
    #[arg(long = "alert", value_name = "RULE", value_parser = Alert::parse)]
    alerts: Vec<Alert>,
    /// Time between refreshes.
    #[arg(long, default_value = "5s", value_parser = times::parse_duration)]
    refresh: i64,
    /// Metric to show first.
    #[arg(long)]
    metric: Option<String>,
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
    let db = open_existing(&a.data.data)?;
    let dir = a.data.data.display().to_string();
    let first = db.series_per_value(strata::METRIC_NAME);
    let mut selected = match &a.metric {
        Some(m) => match first.iter().position(|(n, _)| n == m) {
            Some(i) => i,
            None => return fail(format!("no metric named {m:?} in {dir}")),
        },
        None => 0,
    };
    let refresh_secs = (a.refresh / 1000).max(1) as u64;
    if a.once {
        let snap = source::collect(&db, &dir, &a.alerts, selected, times::now_ms())?;
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
    let result = event_loop(&mut term, &db, &dir, &a.alerts, &mut selected, a.refresh as u64, refresh_secs);
    let restored = ratatui::try_restore();
    result?;
    restored.map_err(|e| CliError::new(format!("restoring the terminal: {e}")))
}

fn event_loop(
    term: &mut ratatui::DefaultTerminal,
    db: &Db,
    dir: &str,
    alerts: &[Alert],
    selected: &mut usize,
    refresh_ms: u64,
    refresh_secs: u64,
) -> CliResult {
    let io = |e: std::io::Error| CliError::new(format!("terminal: {e}"));
    let mut snap = source::collect(db, dir, alerts, *selected, times::now_ms())?;
    let mut last = Instant::now();
    loop {
        term.draw(|f| view::render(f, &snap, alerts, refresh_secs)).map_err(io)?;
        let wait = Duration::from_millis(refresh_ms).saturating_sub(last.elapsed());
        let mut refresh = wait.is_zero();
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
                    refresh = true;
                }
            }
        }
        if refresh {
            snap = source::collect(db, dir, alerts, *selected, times::now_ms())?;
            last = Instant::now();
        }
    }
}
