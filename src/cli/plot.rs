//! `strata query --plot`: an ASCII line chart of one or more series.
//!
//! Time maps to columns (each column shows the mean of its finite samples), values
//! to rows. Series get distinct glyphs; where two meet, the later one shows.

use std::fmt::Write as _;

use super::ops::ResultSeries;
use super::times::format_ts;

const GLYPHS: [char; 8] = ['*', '+', 'o', 'x', '#', '@', '%', '&'];
const Y_LABEL_WIDTH: usize = 10;

/// Renders the series over `[start, end]` into `width` × `height` characters of plot
/// area (plus axes and a legend).
pub fn render(series: &[ResultSeries], start: i64, end: i64, width: usize, height: usize) -> String {
    let (width, height) = (width.max(10), height.max(3));
    let span = (end as i128 - start as i128).max(1);
    // Column means per series.
    let cols: Vec<Vec<Option<f64>>> = series
        .iter()
        .map(|s| {
            let mut sum = vec![0.0f64; width];
            let mut n = vec![0u32; width];
            for p in s.samples.iter().filter(|p| p.value.is_finite() && p.ts >= start && p.ts <= end) {
                let c = ((p.ts as i128 - start as i128) * width as i128 / (span + 1)) as usize;
                let c = c.min(width - 1);
                sum[c] += p.value;
                n[c] += 1;
            }
            sum.iter().zip(&n).map(|(&s, &k)| (k > 0).then(|| s / f64::from(k))).collect()
        })
        .collect();
    let all = cols.iter().flatten().flatten();
    let (mut lo, mut hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return "(no finite values to plot)\n".into();
    }
    if hi - lo < f64::EPSILON * lo.abs().max(1.0) {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let mut grid = vec![vec![' '; width]; height];
    for (k, col) in cols.iter().enumerate() {
        let glyph = GLYPHS[k % GLYPHS.len()];
        for (c, v) in col.iter().enumerate() {
            if let Some(v) = v {
                let r = ((v - lo) / (hi - lo) * (height - 1) as f64).round() as usize;
                grid[height - 1 - r.min(height - 1)][c] = glyph;
            }
        }
    }
    let mut out = String::new();
    for (i, row) in grid.iter().enumerate() {
        let label = if i == 0 {
            short(hi)
        } else if i == height - 1 {
            short(lo)
        } else if i == height / 2 {
            short(lo + (hi - lo) * (height - 1 - i) as f64 / (height - 1) as f64)
        } else {
            String::new()
        };
        let _ = writeln!(out, "{label:>w$} |{}", row.iter().collect::<String>(), w = Y_LABEL_WIDTH);
    }
    let _ = writeln!(out, "{:>w$} +{}", "", "-".repeat(width), w = Y_LABEL_WIDTH);
    let (l, r) = (format_ts(start), format_ts(end));
    let gap = (width + 2).saturating_sub(l.len() + r.len()).max(1);
    let _ = writeln!(out, "{:>w$}{l}{}{r}", "", " ".repeat(gap), w = Y_LABEL_WIDTH);
    for (k, s) in series.iter().enumerate() {
        let _ = writeln!(out, "  {} {}", GLYPHS[k % GLYPHS.len()], s.labels);
    }
    if series.len() > GLYPHS.len() {
        let _ = writeln!(
            out,
            "  ({} series share {} glyphs; narrow the selector to tell them apart)",
            series.len(),
            GLYPHS.len()
        );
    }
    out
}

/// A value in at most 10 characters.
fn short(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if s.len() <= Y_LABEL_WIDTH {
        s
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use strata::{Labels, Sample};

    use super::*;

    #[test]
    fn draws_a_rising_line_with_axes_and_legend() {
        let s = ResultSeries {
            labels: Labels::metric("m", [("h", "a")]).unwrap(),
            samples: (0..100).map(|i| Sample::new(i * 1000, i as f64)).collect(),
        };
        let out = render(&[s], 0, 99_000, 50, 10);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 10 + 2 + 1);
        // 100 samples in 50 columns: each column shows the mean of two.
        assert!(lines[0].starts_with("      98.5 |") && lines[0].ends_with('*'), "{out}");
        assert!(lines[9].starts_with("       0.5 |*"), "{out}");
        assert!(lines[5].starts_with("   44.0556 |"), "{out}");
        assert!(lines[10].contains("+-----"));
        assert!(lines[11].contains("1970-01-01T00:00:00Z"));
        assert!(lines[12].contains("* m{h=\"a\"}"));
        assert_eq!(render(&[], 0, 1, 10, 3), "(no finite values to plot)\n");
    }
}
