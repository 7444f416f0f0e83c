//! Budget: where your money goes, from your bank operations.
//!
//! Reads `io.domicile.bank.operation` documents (only `date`, `amount` and
//! `label`) and puts each operation in a category by the first rule whose
//! text the label contains (case does not matter): the input's rules first,
//! `{"rules": [{"contains": "BIOCOOP", "category": "food"}]}`, then the
//! built-in ones below, which know common French merchants. Credits that
//! match no rule are `income`; debits that match none are `other`.
//!
//! The result gives, per month, what was spent per category and the income,
//! and the mobility budget (fuel, public transport, parking) on its own,
//! and a view of it: spending per category and month as a chart and a table.
//! Run by its weekly schedule, it also leaves a notification with what was
//! spent in the seven days before the schedule's slot.

use std::collections::BTreeMap;

use domicile_sdk::time::Date;
use domicile_sdk::view::{quote, Cell, Chart, Table, View};
use domicile_sdk::{data, round};
use serde::{Deserialize, Serialize};

domicile_sdk::generate!("service", "../../wit");

const OPERATION: &str = "io.domicile.bank.operation";

/// (label contains, category). Order matters: the first match wins.
pub const RULES: [(&str, &str); 30] = [
    ("SALAIRE", "income"),
    ("CAF ", "income"),
    ("LOYER", "housing"),
    ("EDF", "energy"),
    ("ENGIE", "energy"),
    ("TOTALENERGIES", "fuel"),
    ("TOTAL ACCESS", "fuel"),
    ("ESSO", "fuel"),
    ("SHELL", "fuel"),
    ("STATION ", "fuel"),
    ("NAOLIB", "transit"),
    ("TAN ", "transit"),
    ("SNCF", "transit"),
    ("TER ", "transit"),
    ("BICLOO", "transit"),
    ("PARKING", "parking"),
    ("INDIGO", "parking"),
    ("CARREFOUR", "food"),
    ("LECLERC", "food"),
    ("LIDL", "food"),
    ("MONOPRIX", "food"),
    ("BIOCOOP", "food"),
    ("BOULANGERIE", "food"),
    ("MARCHE", "food"),
    ("PHARMACIE", "health"),
    ("DOCTEUR", "health"),
    ("CINEMA", "leisure"),
    ("FNAC", "leisure"),
    ("FREE MOBILE", "telecom"),
    ("ORANGE", "telecom"),
];

/// The categories that make up the mobility budget.
pub const MOBILITY: [&str; 3] = ["fuel", "transit", "parking"];

#[derive(Deserialize)]
struct Fields {
    date: String,
    amount: f64,
    label: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    rules: Vec<Rule>,
    /// Set when the weekly schedule started the run.
    trigger: Option<domicile_sdk::Trigger>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    contains: String,
    category: String,
}

#[derive(Serialize, Default)]
struct Month {
    spent: BTreeMap<String, f64>,
    income: f64,
    operations: u64,
}

#[derive(Serialize, Default)]
struct Mobility {
    fuel: f64,
    transit: f64,
    parking: f64,
    total: f64,
}

#[derive(Serialize)]
struct Report {
    months: BTreeMap<String, Month>,
    mobility: BTreeMap<String, Mobility>,
    /// Labels of the debits no rule matched, with how many there were: a hint for new rules.
    uncategorised: BTreeMap<String, u64>,
}

fn cents(x: f64) -> f64 {
    round(x, 2)
}

struct Budget;

impl Guest for Budget {
    fn run(input: String) -> Result<String, String> {
        let input: Input = domicile_sdk::input(&input)?;
        let rules: Vec<(String, String)> = input
            .rules
            .into_iter()
            .map(|r| (r.contains.to_uppercase(), r.category))
            .chain(RULES.iter().map(|(c, k)| (c.to_string(), k.to_string())))
            .collect();
        let mut months: BTreeMap<String, Month> = BTreeMap::new();
        let mut mobility: BTreeMap<String, Mobility> = BTreeMap::new();
        let mut uncategorised: BTreeMap<String, u64> = BTreeMap::new();
        // The week before a schedule's slot, for the weekly summary.
        let week = match &input.trigger {
            Some(domicile_sdk::Trigger::Schedule { slot, .. }) => {
                let end = Date::parse(slot.get(..10).unwrap_or_default()).ok_or("the trigger's slot is not a date")?;
                Some((end.add_days(-7), end))
            }
            _ => None,
        };
        let (mut week_spent, mut week_operations) = (0.0, 0);
        for item in data::query::<Fields>(OPERATION, &serde_json::json!({})).map_err(|e| e.to_string())? {
            let (_, op) = item.map_err(|e| e.to_string())?;
            if let (Some((from, to)), Some(day)) = (week, Date::parse(&op.date)) {
                if day >= from && day < to && op.amount < 0.0 {
                    week_spent -= op.amount;
                    week_operations += 1;
                }
            }
            let month_key = op.date.get(0..7).ok_or("an operation has a malformed date")?.to_owned();
            let label = format!("{} ", op.label.to_uppercase());
            let category = rules.iter().find(|(text, _)| label.contains(text.as_str())).map(|(_, c)| c.as_str());
            let month = months.entry(month_key.clone()).or_default();
            month.operations += 1;
            match (category, op.amount >= 0.0) {
                (Some("income"), _) | (None, true) => month.income += op.amount,
                (Some(category), _) => {
                    *month.spent.entry(category.to_owned()).or_default() -= op.amount;
                    if MOBILITY.contains(&category) {
                        let m = mobility.entry(month_key).or_default();
                        match category {
                            "fuel" => m.fuel -= op.amount,
                            "transit" => m.transit -= op.amount,
                            _ => m.parking -= op.amount,
                        }
                        m.total -= op.amount;
                    }
                }
                (None, false) => {
                    *month.spent.entry("other".to_owned()).or_default() -= op.amount;
                    *uncategorised.entry(op.label.clone()).or_default() += 1;
                }
            }
        }
        for month in months.values_mut() {
            month.income = cents(month.income);
            month.spent.values_mut().for_each(|v| *v = cents(*v));
        }
        for m in mobility.values_mut() {
            (m.fuel, m.transit, m.parking, m.total) =
                (cents(m.fuel), cents(m.transit), cents(m.parking), cents(m.total));
        }
        if let Some((from, to)) = week {
            let body = format!(
                "{} EUR spent in {week_operations} operation(s) from {from} to {}",
                cents(week_spent),
                to.add_days(-1)
            );
            domicile_sdk::notify("Your week's spending", &body).map_err(|e| e.to_string())?;
        }
        let report = Report { months, mobility, uncategorised };
        domicile_sdk::view::output(&report, view_of(&report))
    }
}

/// The table shows the last months only (a table has at most 16 columns).
const TABLE_MONTHS: usize = 6;

/// The report drawn: the latest month's spending against the month before,
/// spending per category and month as a chart and a table, and the
/// mobility budget.
fn view_of(report: &Report) -> View {
    let mut view = View::new().heading("Budget");
    let spent = |m: &Month| cents(m.spent.values().sum::<f64>());
    let mut latest = report.months.iter().rev();
    if let Some((key, month)) = latest.next() {
        view = match latest.next().map(|(_, before)| spent(before)).filter(|b| *b > 0.0) {
            Some(before) => view.number_with_delta(
                format!("Spent in {key}"),
                spent(month),
                "EUR",
                round((spent(month) - before) / before * 100.0, 1),
                "the month before",
            ),
            None => view.number(format!("Spent in {key}"), spent(month), "EUR"),
        };
        view = view.number(format!("Income in {key}"), month.income, "EUR");
    }
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    for (category, amount) in report.months.values().flat_map(|m| &m.spent) {
        *totals.entry(category).or_default() += amount;
    }
    let mut categories: Vec<&str> = totals.keys().copied().collect();
    categories.sort_by(|a, b| totals[b].total_cmp(&totals[a]).then(a.cmp(b)));
    if !categories.is_empty() {
        // Refunds can make a category negative, which bars cannot stack.
        let negative = report.months.values().flat_map(|m| m.spent.values()).any(|v| *v < 0.0);
        let x = report.months.keys().cloned();
        let chart = if negative {
            Chart::bar("Spending per category and month", "EUR", x)
        } else {
            Chart::stacked_bar("Spending per category and month", "EUR", x)
        };
        let series = categories
            .iter()
            .map(|c| (quote(c), report.months.values().map(|m| m.spent.get(*c).copied()).collect()))
            .collect();
        view = view.chart(chart.top_series(series, "categories"));

        let months: Vec<&String> = report.months.keys().rev().take(TABLE_MONTHS).rev().collect();
        let mut table =
            Table::new(std::iter::once("category".to_owned()).chain(months.iter().map(|m| format!("{m} EUR"))))
                .titled("Spent per category");
        for category in &categories {
            let row = std::iter::once(Cell::from(quote(category)))
                .chain(months.iter().map(|m| report.months[*m].spent.get(*category).copied().into()));
            table = table.row(row);
        }
        view = view.table(table);
    }
    if let Some((key, m)) = report.mobility.iter().next_back() {
        view = view.text(format!(
            "Mobility in {key}: {} EUR (fuel {}, public transport {}, parking {}).",
            m.total, m.fuel, m.transit, m.parking
        ));
    }
    view
}

export!(Budget);
