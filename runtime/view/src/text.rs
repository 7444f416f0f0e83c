//! A checked view drawn as text for a terminal: aligned tables and
//! horizontal bar charts, `width` columns wide at most.

use std::fmt::Write;

use crate::{Block, Cell, Chart, ChartKind, Figure, Table, View};

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

/// Bars drawn left to right, one line per x label (and per series for a
/// plain bar or line chart with several series), the value after the bar.
fn render_chart(out: &mut String, chart: &Chart, width: usize) {
    let unit = chart.unit.as_deref();
    let _ = writeln!(out, "{}{}", chart.title, unit.map(|u| format!(" ({u})")).unwrap_or_default());
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
        for (s, series) in chart.series.iter().enumerate() {
            let shown_label = if s == 0 { label.as_str() } else { "" };
            let name = if several { format!("{}  ", pad(&series.name, name_width - 2, false)) } else { String::new() };
            let (bar, value) = match series.values[i] {
                Some(v) => ("█".repeat(scale(v)), number(v)),
                None => (String::new(), "–".to_owned()),
            };
            let _ = writeln!(out, "{} {name}│{bar} {value}", pad(shown_label, label_width, false));
        }
    }
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
