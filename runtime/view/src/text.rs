//! A checked view drawn as text for a terminal: aligned tables and
//! horizontal bar charts, `width` columns wide at most.

use std::fmt::Write;

use crate::{Block, Cell, Chart, ChartKind, Figure, Table, View};

/// Beyond this many x labels, a bar or line chart is drawn as sparklines
/// (a character per label) rather than a line per label.
const MAX_BAR_LINES: usize = 31;
/// Eight heights of a sparkline character, lowest first.
const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// The narrowest bar area drawn, whatever the labels take.
const MIN_BAR: usize = 10;
/// What each series of a stacked bar is drawn with: one fill per series a
/// chart may have.
const FILLS: [char; crate::MAX_CHART_SERIES] = ['█', '▓', '▒', '░', '#', '=', '+', '*', 'o', 'x', '~', ':'];

pub fn render(view: &View, width: usize) -> String {
    let mut out = String::new();
    for (i, block) in view.0.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match block {
            Block::Heading(heading) => {
                let _ = writeln!(out, "{heading}\n{}", "=".repeat(heading.chars().count()));
            }
            Block::Text(text) => {
                let _ = writeln!(out, "{text}");
            }
            Block::Number(figure) => {
                let _ = writeln!(out, "{}", figure_line(figure));
            }
            Block::Table(table) => render_table(&mut out, table),
            Block::Chart(chart) => render_chart(&mut out, chart, width),
        }
    }
    out
}

fn figure_line(figure: &Figure) -> String {
    let mut line = format!("{}: {}", figure.label, with_unit(figure.value, figure.unit.as_deref()));
    if let Some(delta) = figure.delta {
        let _ = write!(line, " ({}{} %", if delta > 0.0 { "+" } else { "" }, number(delta));
        if let Some(versus) = &figure.versus {
            let _ = write!(line, " on {versus}");
        }
        line.push(')');
    }
    line
}

fn render_table(out: &mut String, table: &Table) {
    if let Some(title) = &table.title {
        let _ = writeln!(out, "{title}");
    }
    let cells: Vec<Vec<(String, bool)>> = table
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Some(Cell::Number(n)) => (number(*n), true),
                    Some(Cell::Text(t)) => (t.clone(), false),
                    None => (String::new(), false),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..table.columns.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].0.chars().count())
                .chain([table.columns[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // A column of numbers is right-aligned, header included.
    let numeric: Vec<bool> = (0..table.columns.len())
        .map(|c| cells.iter().any(|row| row[c].1) && cells.iter().all(|row| row[c].1 || row[c].0.is_empty()))
        .collect();
    let line = |out: &mut String, row: Vec<(String, bool)>| {
        let mut text = String::new();
        for (c, (cell, right)) in row.iter().enumerate() {
            if c > 0 {
                text.push_str("  ");
            }
            text.push_str(&pad(cell, widths[c], *right));
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, table.columns.iter().zip(&numeric).map(|(c, n)| (c.clone(), *n)).collect());
    line(out, widths.iter().map(|w| ("-".repeat(*w), false)).collect());
    for row in cells {
        line(out, row.into_iter().zip(&numeric).map(|((text, _), n)| (text, *n)).collect());
    }
}

/// Bars drawn left to right, one line per x label (and per series with a
/// value there, for a plain bar or line chart with several), the value
/// after the bar.
fn render_chart(out: &mut String, chart: &Chart, width: usize) {
    let unit = chart.unit.as_deref();
    let _ = writeln!(out, "{}{}", chart.title, unit.map(|u| format!(" ({u})")).unwrap_or_default());
    if chart.x.len() > MAX_BAR_LINES && chart.kind != ChartKind::StackedBar {
        return render_sparklines(out, chart, width);
    }
    let stacked = chart.kind == ChartKind::StackedBar;
    let several = chart.series.len() > 1;
    let totals: Vec<f64> =
        (0..chart.x.len()).map(|i| chart.series.iter().filter_map(|s| s.values[i]).sum::<f64>()).collect();
    let largest = if stacked {
        totals.iter().fold(0f64, |m, v| m.max(v.abs()))
    } else {
        chart.series.iter().flat_map(|s| s.values.iter().flatten()).fold(0f64, |m, v| m.max(v.abs()))
    };
    let label_width = chart.x.iter().map(|x| x.chars().count()).max().unwrap_or(0);
    let name_width = if several && !stacked {
        chart.series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0) + 2
    } else {
        0
    };
    let bar_width = width.saturating_sub(label_width + name_width + 14).max(MIN_BAR);
    let scale = |v: f64| if largest > 0.0 { (v.abs() / largest * bar_width as f64).round() as usize } else { 0 };
    if stacked && several {
        // The legend, wrapped to the width.
        let mut line = String::new();
        for (s, series) in chart.series.iter().enumerate() {
            let entry = format!("{} {}", FILLS[s % FILLS.len()], series.name);
            if !line.is_empty() && line.chars().count() + 3 + entry.chars().count() > width {
                let _ = writeln!(out, "{line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push_str("   ");
            }
            line.push_str(&entry);
        }
        let _ = writeln!(out, "{line}");
    }
    for (i, label) in chart.x.iter().enumerate() {
        if stacked {
            let bar: String = chart
                .series
                .iter()
                .enumerate()
                .map(|(s, series)| FILLS[s % FILLS.len()].to_string().repeat(scale(series.values[i].unwrap_or(0.0))))
                .collect();
            let _ = writeln!(out, "{} │{bar} {}", pad(label, label_width, false), number(totals[i]));
            continue;
        }
        // A series without a value here is left out, unless none has one.
        let any = chart.series.iter().any(|s| s.values[i].is_some());
        let mut first = true;
        for series in chart.series.iter().filter(|s| !any || s.values[i].is_some()) {
            let shown_label = if std::mem::take(&mut first) { label.as_str() } else { "" };
            let name = if several { format!("{}  ", pad(&series.name, name_width - 2, false)) } else { String::new() };
            let (bar, value) = match series.values[i] {
                Some(v) => ("█".repeat(scale(v)), number(v)),
                None => (String::new(), "–".to_owned()),
            };
            let _ = writeln!(out, "{} {name}│{bar} {value}", pad(shown_label, label_width, false));
        }
    }
}

/// A long chart: per series, a character per x label whose height says the
/// value (a space where there is none), in rows that start and end with
/// their first and last labels; then the scale.
fn render_sparklines(out: &mut String, chart: &Chart, width: usize) {
    let values = chart.series.iter().flat_map(|s| s.values.iter().flatten());
    let (low, high) = values.fold((0f64, 0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if high > low { high - low } else { 1.0 };
    let label_width = chart.x.iter().map(|x| x.chars().count()).max().unwrap_or(0);
    let per_row = width.saturating_sub(2 * label_width + 2).max(MIN_BAR);
    for series in &chart.series {
        if chart.series.len() > 1 {
            let _ = writeln!(out, "{}:", series.name);
        }
        for start in (0..chart.x.len()).step_by(per_row) {
            let end = (start + per_row).min(chart.x.len());
            let marks: String = series.values[start..end]
                .iter()
                .map(|v| match v {
                    Some(v) => LEVELS[(((v - low) / span) * (LEVELS.len() - 1) as f64).round() as usize],
                    None => ' ',
                })
                .collect();
            let _ = writeln!(out, "{} {marks} {}", pad(&chart.x[start], label_width, false), chart.x[end - 1]);
        }
    }
    let unit = chart.unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
    let _ = writeln!(out, "(from {} to {}{unit}; one character per label)", number(low), number(high));
}

fn with_unit(value: f64, unit: Option<&str>) -> String {
    match unit {
        Some(unit) => format!("{} {unit}", number(value)),
        None => number(value),
    }
}

/// A figure for people: at most two decimals, none when it is whole.
pub fn number(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    let text = format!("{rounded:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn pad(text: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(text.chars().count()));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}
