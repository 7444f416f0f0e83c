//! The view format: what a service may ask domicile to draw for the
//! resident next to its JSON output, instead of showing them braces.
//!
//! A service's output may carry `"view"`, a list of blocks (headings, text,
//! figures, tables and charts). The app contract allows nothing else in it:
//! no HTML, no URLs, no styling, no code, and sizes are capped, so that a
//! view is data domicile draws itself (the web UI as SVG and tables, the CLI
//! as text) and never a way for an app to put its own content in the page or
//! lead the resident elsewhere. [`check_output`] is the host's gate: a run
//! whose view breaks a rule fails with a message that says where and why.
//! [`text::render`] draws a checked view for a terminal.

use domicile_manifest::is_hazard;
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;
pub mod text;

/// At most this many blocks in a view.
pub const MAX_BLOCKS: usize = 50;
/// Headings, labels, units, titles, column names, x labels and series names.
pub const MAX_SHORT_CHARS: usize = 120;
/// A text block (a paragraph).
pub const MAX_TEXT_CHARS: usize = 2000;
/// A text cell of a table.
pub const MAX_CELL_CHARS: usize = 200;
pub const MAX_TABLE_COLUMNS: usize = 16;
pub const MAX_TABLE_ROWS: usize = 500;
pub const MAX_CHART_SERIES: usize = 12;
/// A year of days, with room for a leap year and a day either side.
pub const MAX_CHART_POINTS: usize = 400;
/// Table cells and chart values of the whole view together.
pub const MAX_VALUES: usize = 20_000;

/// A checked view: the blocks in the order the app gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct View(pub Vec<Block>);

/// One block of a view; in JSON an object with exactly one of these keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Block {
    Heading(String),
    /// A paragraph; line breaks are kept.
    Text(String),
    Number(Figure),
    Table(Table),
    Chart(Chart),
}

/// A headline figure: "March so far: 207 kWh, +28 % on last year".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    pub label: String,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The change in percent against what `versus` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versus: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub columns: Vec<String>,
    /// Each row has one cell per column; `null` is an empty cell.
    pub rows: Vec<Vec<Option<Cell>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chart {
    pub kind: ChartKind,
    pub title: String,
    /// The labels of the x axis (days, months, categories).
    pub x: Vec<String>,
    pub series: Vec<Series>,
    /// The unit of the values (the y axis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChartKind {
    /// One bar per x label and series, side by side.
    Bar,
    Line,
    /// One bar per x label, its series stacked.
    StackedBar,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    pub name: String,
    /// One value per x label; `null` where there is none.
    pub values: Vec<Option<f64>>,
}

/// Why a view was refused: where in it, and what rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("its view is not valid at {at}: {problem} (see \"Views\" in docs/developer.md)")]
pub struct ViewError {
    /// A path into the output, like `view[3].chart.series[0].values`.
    pub at: String,
    pub problem: String,
}

/// Checks the view of a service's output, if it has one: `Ok(None)` when the
/// output carries no `"view"`.
pub fn check_output(output: &serde_json::Value) -> Result<Option<View>, ViewError> {
    let Some(view) = output.as_object().and_then(|o| o.get("view")) else {
        return Ok(None);
    };
    let blocks = view.as_array().ok_or_else(|| refuse("view", "it must be a list of blocks"))?;
    if blocks.len() > MAX_BLOCKS {
        return Err(refuse("view", format!("{} blocks; at most {MAX_BLOCKS}", blocks.len())));
    }
    let mut checked = Vec::with_capacity(blocks.len());
    let mut values = 0;
    for (i, block) in blocks.iter().enumerate() {
        let at = format!("view[{i}]");
        let block: Block = serde_path_to_error::deserialize(block).map_err(|e| {
            let inner = e.path().to_string();
            let at = if inner == "." { at.clone() } else { format!("{at}.{inner}") };
            refuse(&at, e.into_inner().to_string())
        })?;
        values += check_block(&block, &at)?;
        if values > MAX_VALUES {
            return Err(refuse(&at, format!("more than {MAX_VALUES} table cells and chart values in the view")));
        }
        checked.push(block);
    }
    Ok(Some(View(checked)))
}

/// Checks one block's sizes and strings; returns how many cells or values it has.
fn check_block(block: &Block, at: &str) -> Result<usize, ViewError> {
    match block {
        Block::Heading(heading) => short(heading, &format!("{at}.heading")).map(|()| 0),
        Block::Text(text) => prose(text, &format!("{at}.text"), MAX_TEXT_CHARS, true).map(|()| 0),
        Block::Number(figure) => {
            let at = format!("{at}.number");
            short(&figure.label, &format!("{at}.label"))?;
            optional_short(&figure.unit, &format!("{at}.unit"))?;
            optional_short(&figure.versus, &format!("{at}.versus"))?;
            if figure.versus.is_some() && figure.delta.is_none() {
                return Err(refuse(&at, "`versus` names what `delta` compares with, and there is no `delta`"));
            }
            Ok(1)
        }
        Block::Table(table) => {
            let at = format!("{at}.table");
            optional_short(&table.title, &format!("{at}.title"))?;
            if table.columns.is_empty() || table.columns.len() > MAX_TABLE_COLUMNS {
                return Err(refuse(
                    &format!("{at}.columns"),
                    format!("{} columns; a table has 1 to {MAX_TABLE_COLUMNS}", table.columns.len()),
                ));
            }
            for (c, column) in table.columns.iter().enumerate() {
                short(column, &format!("{at}.columns[{c}]"))?;
            }
            if table.rows.len() > MAX_TABLE_ROWS {
                return Err(refuse(
                    &format!("{at}.rows"),
                    format!("{} rows; at most {MAX_TABLE_ROWS}", table.rows.len()),
                ));
            }
            for (r, row) in table.rows.iter().enumerate() {
                if row.len() != table.columns.len() {
                    return Err(refuse(
                        &format!("{at}.rows[{r}]"),
                        format!("{} cells for {} columns", row.len(), table.columns.len()),
                    ));
                }
                for (c, cell) in row.iter().enumerate() {
                    if let Some(Cell::Text(text)) = cell {
                        prose(text, &format!("{at}.rows[{r}][{c}]"), MAX_CELL_CHARS, false)?;
                    }
                }
            }
            Ok(table.rows.len() * table.columns.len())
        }
        Block::Chart(chart) => {
            let at = format!("{at}.chart");
            short(&chart.title, &format!("{at}.title"))?;
            optional_short(&chart.unit, &format!("{at}.unit"))?;
            if chart.x.is_empty() || chart.x.len() > MAX_CHART_POINTS {
                return Err(refuse(
                    &format!("{at}.x"),
                    format!("{} x labels; a chart has 1 to {MAX_CHART_POINTS}", chart.x.len()),
                ));
            }
            for (i, label) in chart.x.iter().enumerate() {
                short(label, &format!("{at}.x[{i}]"))?;
            }
            if chart.series.is_empty() || chart.series.len() > MAX_CHART_SERIES {
                return Err(refuse(
                    &format!("{at}.series"),
                    format!("{} series; a chart has 1 to {MAX_CHART_SERIES}", chart.series.len()),
                ));
            }
            for (s, series) in chart.series.iter().enumerate() {
                short(&series.name, &format!("{at}.series[{s}].name"))?;
                if series.values.len() != chart.x.len() {
                    return Err(refuse(
                        &format!("{at}.series[{s}].values"),
                        format!("{} values for {} x labels", series.values.len(), chart.x.len()),
                    ));
                }
                if chart.kind == ChartKind::StackedBar && series.values.iter().flatten().any(|v| *v < 0.0) {
                    return Err(refuse(
                        &format!("{at}.series[{s}].values"),
                        "a stacked bar chart cannot stack negative values; use \"bar\"",
                    ));
                }
            }
            Ok(chart.series.len() * chart.x.len())
        }
    }
}

fn optional_short(text: &Option<String>, at: &str) -> Result<(), ViewError> {
    text.as_deref().map_or(Ok(()), |t| short(t, at))
}

fn short(text: &str, at: &str) -> Result<(), ViewError> {
    prose(text, at, MAX_SHORT_CHARS, false)
}

/// The rules of every string of a view: bounded, plain text, no links.
fn prose(text: &str, at: &str, max_chars: usize, line_breaks: bool) -> Result<(), ViewError> {
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(refuse(at, format!("{chars} characters; at most {max_chars}")));
    }
    if let Some(c) = text.chars().find(|&c| !(line_breaks && c == '\n') && is_hazard(c)) {
        return Err(refuse(at, format!("it contains U+{:04X}, a control or text-reordering character", c as u32)));
    }
    if looks_like_markup(text) {
        return Err(refuse(at, "it contains markup; a view is plain text (domicile draws it)"));
    }
    if looks_like_link(text) {
        return Err(refuse(at, "it contains a link; a view cannot send the resident elsewhere"));
    }
    Ok(())
}

/// A tag, comment or processing instruction: `<` followed by a letter, `/`,
/// `!` or `?`. A lone `<` ("< 5 kWh") is text.
fn looks_like_markup(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!' | b'?')))
}

fn looks_like_link(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("://") || lower.contains("www.") || lower.contains("javascript:") || lower.contains("mailto:")
}

fn refuse(at: &str, problem: impl Into<String>) -> ViewError {
    ViewError { at: at.to_owned(), problem: problem.into() }
}
