//! Renders a [`Snapshot`] with ratatui: title, summary, alerts, the selected
//! metric's percentiles and sparklines (last hour, last day), top series, key help.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;

use super::alert::{Alert, Level};
use super::source::{MetricSummary, Snapshot};
use crate::cli::{human, times};

pub fn level_color(l: Level) -> Color {
    match l {
        Level::Ok => Color::Green,
        Level::Warning => Color::Yellow,
        Level::Critical => Color::Red,
        Level::NoData => Color::DarkGray,
    }
}

/// Draws the whole dashboard into the frame.
pub fn render(f: &mut Frame, snap: &Snapshot, alerts: &[Alert], refresh_secs: u64) {
    let alert_rows = snap.alerts.len().max(1) as u16 + 2;
    let [title, summary, alert_area, metric_area, spark_area, top_area, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(alert_rows),
        Constraint::Length(3),
        Constraint::Length(10),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());

    let data_to = times::format_ts(snap.window_end - 1);
    let stale = if snap.stale { " (data ends in the past)" } else { "" };
    let t = format!(" Strata dashboard — {} — data to {data_to}{stale} — refresh {refresh_secs}s ", snap.dir);
    f.render_widget(Paragraph::new(t).style(Style::new().add_modifier(Modifier::BOLD).fg(Color::Cyan)), title);

    let compression = match snap.bytes_per_sample {
        Some(b) => format!("{b:.2} B/sample ({:.1}×)", 16.0 / b),
        None => "n/a".into(),
    };
    let s = format!(
        "series {} │ samples {} │ rate {} │ disk {} │ compression {compression} │ head {} │ WAL {}",
        human::count(snap.series),
        human::count(snap.samples),
        human::rate(snap.rate),
        human::bytes(snap.disk_bytes),
        human::bytes(snap.head_bytes),
        human::bytes(snap.wal_bytes),
    );
    f.render_widget(Paragraph::new(s).block(Block::default().borders(Borders::ALL).title(" Summary ")), summary);

    render_alerts(f, snap, alert_area);
    render_metric_summary(f, snap, alerts, metric_area);
    render_sparklines(f, snap, alerts, spark_area);
    render_top(f, snap, top_area);

    let keys = " ←/→ or j/k: switch metric   r: refresh now   q: quit ";
    // A failed refresh takes the bottom line, in red, ahead of the key help.
    let line = match &snap.error {
        Some(e) => Line::from(vec![
            Span::styled(format!(" ⚠ {e} "), Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)),
            Span::styled(keys, Style::new().fg(Color::DarkGray)),
        ]),
        None => Line::from(Span::styled(keys, Style::new().fg(Color::DarkGray))),
    };
    f.render_widget(Paragraph::new(line), help);
}

fn render_alerts(f: &mut Frame, snap: &Snapshot, area: Rect) {
    let lines: Vec<Line> = if snap.alerts.is_empty() {
        vec![Line::from(Span::styled("no alerts configured (--alert 'metric>90')", Style::new().fg(Color::DarkGray)))]
    } else {
        snap.alerts
            .iter()
            .map(|a| {
                let (word, color) = match (a.level, &a.error) {
                    (_, Some(_)) => ("ERR ", Color::Magenta),
                    (Level::Ok, _) => ("OK  ", level_color(a.level)),
                    (Level::Warning, _) => ("WARN", level_color(a.level)),
                    (Level::Critical, _) => ("CRIT", level_color(a.level)),
                    (Level::NoData, _) => ("----", level_color(a.level)),
                };
                let detail = match (a.value, &a.series, &a.error) {
                    (_, _, Some(e)) => format!("  cannot evaluate: {e}"),
                    (Some(v), Some(s), _) => format!("  {} at {s}", num(v)),
                    (Some(v), None, _) => format!("  {}", num(v)),
                    _ => "  no data".into(),
                };
                Line::from(vec![
                    Span::styled(format!("● {word} "), Style::new().fg(color).add_modifier(Modifier::BOLD)),
                    Span::styled(a.text.clone(), Style::new().fg(color)),
                    Span::raw(detail),
                ])
            })
            .collect()
    };
    f.render_widget(Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" Alerts ")), area);
}

/// A value in at most 6 significant digits (whole below 10^15: `1234568`),
/// trailing zeros dropped: `95.05`, `0.125`, `512`, `1.5e-7`; `NaN`, `+Inf`,
/// `-Inf` as Prometheus writes them.
pub fn num(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let trim = |s: String| if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    let mag = v.abs().log10().floor() as i32;
    if !(-4..15).contains(&mag) {
        let s = format!("{v:.5e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{e}", trim(m.to_string()));
    }
    trim(format!("{v:.*}", (5 - mag).max(0) as usize))
}

/// The selected metric's count, min, avg, p50, p95, p99 and max over the
/// summary window, all its series together (coloured as its sparklines are).
fn render_metric_summary(f: &mut Frame, snap: &Snapshot, alerts: &[Alert], area: Rect) {
    let name = snap.selected_metric().unwrap_or("(no metrics)");
    let color = snap.metric_level(alerts, name).map_or(Color::Cyan, level_color);
    let (title, body) = match &snap.summary {
        Some(MetricSummary { window, series, stats: s }) => {
            let title = format!(" {name}: last {}, {series} series ", strata::text::duration::format_duration(*window));
            let body = if s.count == 0 {
                Line::from(Span::styled("no samples in this window", Style::new().fg(Color::DarkGray)))
            } else {
                let bold = Style::new().fg(color).add_modifier(Modifier::BOLD);
                let mut spans = vec![Span::raw(format!(
                    "count {} │ min {} │ avg {} │ ",
                    human::count(s.count),
                    num(s.min),
                    num(s.avg)
                ))];
                for (k, v) in [("p50", s.p50), ("p95", s.p95), ("p99", s.p99)] {
                    spans.push(Span::raw(format!("{k} ")));
                    spans.push(Span::styled(num(v), bold));
                    spans.push(Span::raw(" │ "));
                }
                spans.push(Span::raw(format!("max {}", num(s.max))));
                Line::from(spans)
            };
            (title, body)
        }
        None => {
            (format!(" {name} "), Line::from(Span::styled("no metric to summarise", Style::new().fg(Color::DarkGray))))
        }
    };
    f.render_widget(Paragraph::new(body).block(Block::default().borders(Borders::ALL).title(title)), area);
}

/// Resamples buckets to `width` columns: each column is the mean of the buckets
/// it covers (or repeats the bucket it falls in when there are more columns).
pub fn fit(v: &[Option<f64>], width: usize) -> Vec<Option<f64>> {
    let n = v.len();
    if n == 0 || width == 0 {
        return Vec::new();
    }
    (0..width)
        .map(|c| {
            let (a, b) = (c * n / width, ((c + 1) * n / width).max(c * n / width + 1));
            let (sum, k) = v[a..b.min(n)].iter().flatten().fold((0.0, 0u32), |(s, k), x| (s + x, k + 1));
            (k > 0).then(|| sum / f64::from(k))
        })
        .collect()
}

/// Scales bucket means to 1..=100 for the sparkline (absent buckets stay absent).
pub fn scale(v: &[Option<f64>]) -> (Vec<Option<u64>>, Option<(f64, f64)>) {
    let (lo, hi) = v.iter().flatten().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x)));
    if !lo.is_finite() {
        return (vec![None; v.len()], None);
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let bars = v.iter().map(|x| x.map(|x| 1 + ((x - lo) / span * 99.0).round() as u64)).collect();
    (bars, Some((lo, hi)))
}

fn render_sparklines(f: &mut Frame, snap: &Snapshot, alerts: &[Alert], area: Rect) {
    let name = snap.selected_metric().unwrap_or("(no metrics)");
    let color = snap.metric_level(alerts, name).map_or(Color::Cyan, level_color);
    let title = format!(" {name} ({}/{}) ", snap.selected + 1, snap.metrics.len().max(1));
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let [h_label, h_spark, d_label, d_spark] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(3), Constraint::Length(1), Constraint::Length(3)])
            .areas(inner);
    for (label_area, spark_area, data, what) in
        [(h_label, h_spark, &snap.hour, "last hour (1 min)"), (d_label, d_spark, &snap.day, "last day (15 min)")]
    {
        let (bars, range) = scale(&fit(data, usize::from(spark_area.width)));
        let last = data.iter().rev().flatten().next();
        let label = match (range, last) {
            (Some((lo, hi)), Some(l)) => format!("{what}: min {lo:.2}  max {hi:.2}  last {l:.2}"),
            _ => format!("{what}: no data"),
        };
        f.render_widget(Paragraph::new(label), label_area);
        f.render_widget(Sparkline::default().data(bars).max(100).style(Style::new().fg(color)), spark_area);
    }
}

fn render_top(f: &mut Frame, snap: &Snapshot, area: Rect) {
    let rows: Vec<Row> = snap
        .top
        .iter()
        .map(|t| Row::new(vec![t.series.clone(), format!("{:.2}/s", t.rate), format!("{:.2}", t.last)]))
        .collect();
    let table = Table::new(rows, [Constraint::Fill(1), Constraint::Length(10), Constraint::Length(12)])
        .header(Row::new(vec!["series", "rate", "last"]).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::default().borders(Borders::ALL).title(" Top series by rate (last 5 min) "));
    f.render_widget(table, area);
}

#[cfg(test)]
mod tests {
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::Terminal;

    use super::super::source::{AlertState, TopSeries};
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            dir: "./data".into(),
            window_end: 1_764_763_200_001,
            series: 1000,
            samples: 720_000,
            disk_bytes: 1 << 20,
            bytes_per_sample: Some(0.7),
            rate: 100.0,
            metrics: vec![("cpu_usage_idle".into(), 100), ("cpu_usage_user".into(), 100)],
            selected: 1,
            hour: (0..60).map(|i| Some(f64::from(i))).collect(),
            day: (0..96).map(|i| if i < 10 { None } else { Some(f64::from(i % 7)) }).collect(),
            top: vec![TopSeries { series: "cpu_usage_user{hostname=\"host_7\"}".into(), rate: 0.1, last: 93.5 }],
            alerts: vec![
                AlertState {
                    text: "cpu_usage_user>90".into(),
                    level: Level::Critical,
                    value: Some(93.5),
                    series: Some("cpu_usage_user{hostname=\"host_7\"}".into()),
                    error: None,
                },
                AlertState {
                    text: "cpu_usage_idle<5".into(),
                    level: Level::Ok,
                    value: Some(40.0),
                    series: None,
                    error: None,
                },
            ],
            ..Default::default()
        }
    }

    fn draw(snap: &Snapshot, alerts: &[Alert]) -> Buffer {
        let mut t = Terminal::new(TestBackend::new(110, 32)).unwrap();
        t.draw(|f| render(f, snap, alerts, 5)).unwrap();
        t.backend().buffer().clone()
    }

    fn row(b: &Buffer, y: u16) -> String {
        (0..b.area.width).map(|x| b[(x, y)].symbol().to_string()).collect()
    }

    fn find(b: &Buffer, text: &str) -> Option<(u16, u16)> {
        (0..b.area.height).find_map(|y| {
            let r = row(b, y);
            r.find(text).map(|byte| (r[..byte].chars().count() as u16, y))
        })
    }

    #[test]
    fn renders_title_summary_sparklines_and_alert_colours() {
        let alerts = vec![Alert::parse("cpu_usage_user>90").unwrap(), Alert::parse("cpu_usage_idle<5").unwrap()];
        let b = draw(&snapshot(), &alerts);
        assert!(row(&b, 0).starts_with(" Strata dashboard — ./data — data to 2025-12-03T12:00:00Z"), "{}", row(&b, 0));
        assert!(find(&b, "series 1,000 │ samples 720,000").is_some());
        assert!(find(&b, "0.70 B/sample (22.9×)").is_some());
        assert!(find(&b, " cpu_usage_user (2/2) ").is_some());
        assert!(find(&b, "last hour (1 min): min 0.00  max 59.00  last 59.00").is_some());

        // The hour sparkline rises left to right: its bottom row is full bars at the right.
        let (_, label_y) = find(&b, "last hour").unwrap();
        let bottom = row(&b, label_y + 3);
        assert!(bottom.contains('█') && bottom.chars().filter(|c| "▁▂▃▄▅▆▇█".contains(*c)).count() >= 100, "{bottom}");
        let top_row = row(&b, label_y + 1);
        assert!(top_row.trim_end_matches(['│', ' ']).ends_with('█'), "{top_row}");
        // The metric has a critical alert, so its sparkline is red.
        let (x, y) = (bottom.chars().position(|c| c == '█').unwrap() as u16, label_y + 3);
        assert_eq!(b[(x, y)].fg, Color::Red);

        // Alert lines are coloured by level.
        let (x, y) = find(&b, "● CRIT cpu_usage_user>90").unwrap();
        assert_eq!(b[(x, y)].fg, Color::Red);
        assert!(row(&b, y).contains("93.5 at cpu_usage_user{hostname=\"host_7\"}"));
        let (x, y) = find(&b, "● OK").unwrap();
        assert_eq!(b[(x, y)].fg, Color::Green);

        assert!(find(&b, "Top series by rate").is_some() && find(&b, "93.50").is_some());
        assert!(row(&b, 31).contains("q: quit"));
    }

    #[test]
    fn renders_an_empty_database() {
        let b = draw(&Snapshot { dir: "d".into(), ..Default::default() }, &[]);
        assert!(find(&b, "(no metrics) (1/1)").is_some());
        assert!(find(&b, "last hour (1 min): no data").is_some());
        assert!(find(&b, "no alerts configured").is_some());
        assert!(find(&b, "compression n/a").is_some());
    }

    #[test]
    fn shows_a_failed_refresh_on_the_bottom_line() {
        let snap = Snapshot { error: Some("cannot reach the server at http://h:1".into()), ..snapshot() };
        let b = draw(&snap, &[]);
        let (x, y) = find(&b, "⚠ cannot reach the server at http://h:1").unwrap();
        assert_eq!((y, b[(x, y)].fg), (31, Color::Red));
        assert!(row(&b, 31).contains("q: quit"));
        // The last good data stays up.
        assert!(find(&b, "series 1,000").is_some());
    }

    #[test]
    fn fits_buckets_to_the_width() {
        let v = [Some(1.0), None, Some(3.0), Some(5.0)];
        assert_eq!(fit(&v, 2), vec![Some(1.0), Some(4.0)]);
        assert_eq!(fit(&v, 8), vec![Some(1.0), Some(1.0), None, None, Some(3.0), Some(3.0), Some(5.0), Some(5.0)]);
        assert!(fit(&[], 5).is_empty());
    }

    #[test]
    fn scales_to_bars() {
        let (bars, r) = scale(&[Some(10.0), None, Some(20.0)]);
        assert_eq!((bars, r), (vec![Some(1), None, Some(100)], Some((10.0, 20.0))));
        assert_eq!(scale(&[Some(5.0)]).0, vec![Some(1)]);
    }
}
