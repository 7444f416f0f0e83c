//! Views: what domicile draws for the resident next to a service's output
//! (the web UI as charts and tables, `domicile run` as text). A service puts
//! one under the `"view"` key of its JSON output:
//!
//! ```ignore
//! use domicile_sdk::view::{Chart, View};
//! let view = View::new()
//!     .heading("Electricity")
//!     .number_with_delta("March so far", 207.0, "kWh", 28.0, "last year")
//!     .chart(Chart::bar("Energy per day", "kWh", days).series("kWh", values));
//! domicile_sdk::view::output(&report, view) // the report's fields, and "view"
//! ```
//!
//! The host checks every view (see "Views" in docs/developer.md): plain text only
//! (no markup, no links, no control characters), short strings, at most 50
//! blocks, 400 x labels and 12 series per chart, 500 rows and 16 columns
//! per table, and one value per x label in every series. A run whose view
//! breaks a rule fails with a message that says where.

use serde::Serialize;

/// A service's output: `data` (a struct or map, serialised to a JSON
/// object) with `view` under its `"view"` key.
pub fn output<T: Serialize>(data: &T, view: View) -> Result<String, String> {
    let mut output = serde_json::to_value(data).map_err(|e| e.to_string())?;
    let object = output.as_object_mut().ok_or("a service's output with a view must be a JSON object")?;
    object.insert("view".into(), serde_json::to_value(view).map_err(|e| e.to_string())?);
    Ok(output.to_string())
}

/// Text that comes from data (a bank label, a payee, a category the
/// resident typed) made fit for a view, whose rules it could break by
/// chance: control and text-reordering characters are dropped, markup and
/// links are defused with look-alike characters (`<b` becomes `‹b`,
/// `https://x` becomes `https:⁄⁄x`, `www.x` becomes `www․x`), so they read
/// the same but are neither markup nor links, and the text is cut to the
/// 120 characters of the shortest strings of a view.
pub fn quote(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|&c| {
            !(c.is_control()
                || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
                    | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'))
        })
        .collect();
    let mut out = String::with_capacity(kept.len());
    let mut chars = kept.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        if c == '<' && next.is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')) {
            out.push('‹');
        } else if c == '/' && next == Some('/') && out.ends_with(':') {
            out.push_str("⁄⁄");
            chars.next();
        } else if c == '.' && out.to_ascii_lowercase().ends_with("www") {
            out.push('․');
        } else if c == ':' && ["javascript", "mailto"].iter().any(|s| out.to_ascii_lowercase().ends_with(s)) {
            out.push('꞉');
        } else {
            out.push(c);
        }
    }
    if out.chars().count() > 120 {
        out = out.chars().take(119).chain(['…']).collect();
    }
    out
}

/// The blocks of a view, in the order they are shown.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct View(Vec<Block>);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Block {
    Heading(String),
    Text(String),
    Number(Figure),
    Table(Table),
    Chart(Chart),
}

#[derive(Debug, Clone, Serialize)]
struct Figure {
    label: String,
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    versus: Option<String>,
}

impl View {
    pub fn new() -> View {
        View::default()
    }

    pub fn heading(mut self, heading: impl Into<String>) -> View {
        self.0.push(Block::Heading(heading.into()));
        self
    }

    /// A paragraph; line breaks are kept.
    pub fn text(mut self, text: impl Into<String>) -> View {
        self.0.push(Block::Text(text.into()));
        self
    }

    /// A headline figure: "Spent in March: 1 234.5 EUR".
    pub fn number(mut self, label: impl Into<String>, value: f64, unit: impl Into<String>) -> View {
        let unit = Some(unit.into()).filter(|u: &String| !u.is_empty());
        self.0.push(Block::Number(Figure { label: label.into(), value, unit, delta: None, versus: None }));
        self
    }

    /// A headline figure with its change in percent against `versus`:
    /// "March so far: 207 kWh (+28 % on last year)".
    pub fn number_with_delta(
        mut self,
        label: impl Into<String>,
        value: f64,
        unit: impl Into<String>,
        delta_pct: f64,
        versus: impl Into<String>,
    ) -> View {
        let unit = Some(unit.into()).filter(|u: &String| !u.is_empty());
        let figure = Figure { label: label.into(), value, unit, delta: Some(delta_pct), versus: Some(versus.into()) };
        self.0.push(Block::Number(figure));
        self
    }

    pub fn table(mut self, table: Table) -> View {
        self.0.push(Block::Table(table));
        self
    }

    pub fn chart(mut self, chart: Chart) -> View {
        self.0.push(Block::Chart(chart));
        self
    }
}

/// A table: named columns, rows of cells (text, numbers or empty).
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

/// One cell of a [`Table`]: `"food".into()`, `412.5.into()`, `Cell::Empty`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Number(f64),
    Text(String),
    Empty,
}

impl From<f64> for Cell {
    fn from(n: f64) -> Cell {
        Cell::Number(n)
    }
}
impl From<&str> for Cell {
    fn from(t: &str) -> Cell {
        Cell::Text(t.to_owned())
    }
}
impl From<String> for Cell {
    fn from(t: String) -> Cell {
        Cell::Text(t)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(c: Option<T>) -> Cell {
        c.map_or(Cell::Empty, Into::into)
    }
}

impl Table {
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Table {
        Table { title: None, columns: columns.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    pub fn titled(mut self, title: impl Into<String>) -> Table {
        self.title = Some(title.into());
        self
    }

    /// Adds a row, one cell per column.
    pub fn row(mut self, cells: impl IntoIterator<Item = Cell>) -> Table {
        self.rows.push(cells.into_iter().collect());
        self
    }
}

/// The most series a chart may have.
pub const MAX_SERIES: usize = 12;

/// A chart of one or more series over the same x labels.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    kind: &'static str,
    title: String,
    x: Vec<String>,
    series: Vec<Series>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Series {
    name: String,
    values: Vec<Option<f64>>,
}

impl Chart {
    /// Bars side by side, one per x label and series.
    pub fn bar<S: Into<String>>(title: impl Into<String>, unit: &str, x: impl IntoIterator<Item = S>) -> Chart {
        Chart::of("bar", title, unit, x)
    }

    pub fn line<S: Into<String>>(title: impl Into<String>, unit: &str, x: impl IntoIterator<Item = S>) -> Chart {
        Chart::of("line", title, unit, x)
    }

    /// One bar per x label with the series stacked (values must not be negative).
    pub fn stacked_bar<S: Into<String>>(title: impl Into<String>, unit: &str, x: impl IntoIterator<Item = S>) -> Chart {
        Chart::of("stacked-bar", title, unit, x)
    }

    fn of<S: Into<String>>(
        kind: &'static str,
        title: impl Into<String>,
        unit: &str,
        x: impl IntoIterator<Item = S>,
    ) -> Chart {
        let unit = Some(unit.to_owned()).filter(|u| !u.is_empty());
        Chart { kind, title: title.into(), x: x.into_iter().map(Into::into).collect(), series: Vec::new(), unit }
    }

    /// Adds many series, the largest (by sum) first. A chart shows at most
    /// 12: beyond 11, the smaller ones are summed into one series named
    /// "N other {kind}" (`kind`: "categories", "modes", ...).
    pub fn top_series(mut self, mut series: Vec<(String, Vec<Option<f64>>)>, kind: &str) -> Chart {
        let total = |values: &[Option<f64>]| values.iter().flatten().sum::<f64>();
        series.sort_by(|(a_name, a), (b_name, b)| total(b).total_cmp(&total(a)).then(a_name.cmp(b_name)));
        let rest = if series.len() > MAX_SERIES { series.split_off(MAX_SERIES - 1) } else { Vec::new() };
        for (name, values) in series {
            self = self.series(name, values);
        }
        if !rest.is_empty() {
            let summed = (0..self.x.len()).map(|i| {
                let values: Vec<f64> = rest.iter().filter_map(|(_, v)| v.get(i).copied().flatten()).collect();
                (!values.is_empty()).then(|| (values.iter().sum::<f64>() * 1000.0).round() / 1000.0)
            });
            self = self.series(format!("{} other {kind}", rest.len()), summed.collect::<Vec<_>>());
        }
        self
    }

    /// Adds a series: one value per x label, `None` where there is none.
    pub fn series<V: Into<Option<f64>>>(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Chart {
        self.series.push(Series { name: name.into(), values: values.into_iter().map(Into::into).collect() });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_data_keeps_its_look_and_loses_its_markup_and_links() {
        assert_eq!(quote("PRLV SEPA FREE MOBILE"), "PRLV SEPA FREE MOBILE");
        assert_eq!(quote("CB WWW.SNCF-CONNECT.COM"), "CB WWW․SNCF-CONNECT.COM");
        assert_eq!(quote("see https://x.example/a"), "see https:⁄⁄x.example/a");
        assert_eq!(quote("<script>x</script> < 5"), "‹script>x‹/script> < 5");
        assert_eq!(quote("JavaScript:alert(1)"), "JavaScript꞉alert(1)");
        assert_eq!(quote("a\u{202E}b\nc"), "abc");
        assert_eq!(quote(&"x".repeat(200)).chars().count(), 120);
    }

    #[test]
    fn beyond_twelve_series_the_smallest_are_summed() {
        let series = (1..=14).map(|n| (format!("s{n:02}"), vec![Some(n as f64), None])).collect();
        let chart = Chart::bar("t", "", ["a", "b"]).top_series(series, "things");
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), MAX_SERIES);
        assert_eq!((names[0], names[10], names[11]), ("s14", "s04", "3 other things"));
        assert_eq!(chart.series[11].values, vec![Some(6.0), None]);
    }

    #[test]
    fn a_view_serialises_to_the_documented_format() {
        let view = View::new()
            .heading("March")
            .number_with_delta("So far", 207.0, "kWh", 28.0, "last year")
            .number("Days", 12.0, "")
            .table(Table::new(["category", "EUR"]).row(["food".into(), 412.5.into()]).row(["rent".into(), Cell::Empty]))
            .chart(
                Chart::stacked_bar("CO2", "kg", ["Jan", "Feb"])
                    .series("car", [Some(2.0), None])
                    .series("bus", [1.0, 3.0]),
            );
        assert_eq!(
            serde_json::to_value(&view).unwrap(),
            serde_json::json!([
                { "heading": "March" },
                { "number": { "label": "So far", "value": 207.0, "unit": "kWh", "delta": 28.0, "versus": "last year" } },
                { "number": { "label": "Days", "value": 12.0 } },
                { "table": { "columns": ["category", "EUR"], "rows": [["food", 412.5], ["rent", null]] } },
                { "chart": { "kind": "stacked-bar", "title": "CO2", "unit": "kg", "x": ["Jan", "Feb"],
                    "series": [{ "name": "car", "values": [2.0, null] }, { "name": "bus", "values": [1.0, 3.0] }] } },
            ])
        );
    }
}
