//! Health spending: what your care cost, what was paid back and what was
//! left for you, per month and kind of care.
//!
//! Reads `io.domicile.health.care` documents, only `date`, `kind`,
//! `status`, `currency`, `billed`, `reimbursed` and `remaining`: the
//! manifest asks for nothing else, so diagnoses, practitioners' names and
//! insurers stay out of its reach. Amounts are added up per currency and
//! never across currencies; cares whose export stated no currency are
//! counted apart. A care still pending (billed, no payer's decision yet)
//! is counted apart too, as what may still be left to pay. The input may
//! narrow the period: `{"year": 2026}`.

use std::collections::BTreeMap;

use domicile_sdk::round;
use domicile_sdk::view::{quote, Cell, Chart, Table, View};
use serde::{Deserialize, Serialize};

domicile_sdk::generate!("service", "../../wit");

/// How amounts of a care whose export stated no currency are listed.
pub const UNSTATED: &str = "unstated";

#[derive(Deserialize)]
pub struct Fields {
    pub date: String,
    pub kind: String,
    pub status: String,
    pub currency: Option<String>,
    pub billed: Option<f64>,
    pub reimbursed: Option<f64>,
    pub remaining: Option<f64>,
}

#[derive(Serialize, Default, Clone, Copy, PartialEq, Debug)]
pub struct Sums {
    pub cares: u64,
    pub billed: f64,
    pub reimbursed: f64,
    pub remaining: f64,
}

impl Sums {
    fn add(&mut self, care: &Fields) {
        self.cares += 1;
        self.billed += care.billed.unwrap_or(0.0);
        self.reimbursed += care.reimbursed.unwrap_or(0.0);
        self.remaining += care.remaining.unwrap_or(0.0);
    }

    fn rounded(self) -> Sums {
        Sums {
            billed: round(self.billed, 2),
            reimbursed: round(self.reimbursed, 2),
            remaining: round(self.remaining, 2),
            ..self
        }
    }
}

#[derive(Serialize, Default, Debug)]
pub struct Pending {
    pub cares: u64,
    pub billed: f64,
}

/// What one currency's cares add up to.
#[derive(Serialize, Default, Debug)]
pub struct Spending {
    pub total: Sums,
    pub per_kind: BTreeMap<String, Sums>,
    /// Per month (`2026-03`), per kind.
    pub months: BTreeMap<String, BTreeMap<String, Sums>>,
    pub pending: Pending,
}

/// Adds up settled cares per currency, month and kind; pending ones apart.
pub fn spending(
    cares: impl IntoIterator<Item = Fields>,
    year: Option<i32>,
) -> Result<BTreeMap<String, Spending>, String> {
    let mut per_currency: BTreeMap<String, Spending> = BTreeMap::new();
    for care in cares {
        let month =
            care.date.get(..7).ok_or_else(|| format!("a care has the malformed date `{}`", quote(&care.date)))?;
        if year.is_some_and(|y| !month.starts_with(&format!("{y:04}-"))) {
            continue;
        }
        let s = per_currency.entry(care.currency.clone().unwrap_or_else(|| UNSTATED.to_owned())).or_default();
        if care.status == "pending" {
            s.pending.cares += 1;
            s.pending.billed += care.billed.unwrap_or(0.0);
            continue;
        }
        s.total.add(&care);
        s.per_kind.entry(care.kind.clone()).or_default().add(&care);
        s.months.entry(month.to_owned()).or_default().entry(care.kind.clone()).or_default().add(&care);
    }
    for s in per_currency.values_mut() {
        s.total = s.total.rounded();
        s.per_kind.values_mut().for_each(|k| *k = k.rounded());
        s.months.values_mut().flat_map(|m| m.values_mut()).for_each(|k| *k = k.rounded());
        s.pending.billed = round(s.pending.billed, 2);
    }
    Ok(per_currency)
}

/// The spending drawn, in the currency with the most cares: what was left
/// for the person, per month stacked by kind of care, and per kind what
/// was billed, paid back and left; other currencies and pending cares in
/// words.
pub fn view_of(per_currency: &BTreeMap<String, Spending>) -> View {
    let mut view = View::new().heading("Health spending");
    let main = per_currency.iter().filter(|(c, _)| c.as_str() != UNSTATED).max_by(|(a, x), (b, y)| {
        (x.total.cares + x.pending.cares).cmp(&(y.total.cares + y.pending.cares)).then(b.cmp(a))
    });
    let Some((currency, s)) = main else {
        return view.text("No care with a stated currency to show.");
    };
    view = view
        .number("Left for you to pay", s.total.remaining, currency)
        .number("Paid back by your insurers", s.total.reimbursed, currency)
        .number("Billed", s.total.billed, currency);
    let series = kinds(s)
        .map(|kind| (quote(kind), s.months.values().map(|m| m.get(kind).map(|k| k.remaining)).collect()))
        .collect();
    view = view.chart(
        Chart::stacked_bar("Left for you per month and kind of care", currency, s.months.keys().cloned())
            .top_series(series, "kinds"),
    );
    let mut table = Table::new(["kind of care", "cares", "billed", "paid back", "left for you", "paid back %"])
        .titled(format!("Per kind of care ({currency})"));
    for kind in kinds(s) {
        let k = s.per_kind[kind];
        let share: Cell = (k.billed > 0.0).then(|| round(k.reimbursed / k.billed * 100.0, 1)).into();
        table = table.row([
            quote(kind).into(),
            (k.cares as f64).into(),
            k.billed.into(),
            k.reimbursed.into(),
            k.remaining.into(),
            share,
        ]);
    }
    view = view.table(table);
    if s.pending.cares > 0 {
        view = view.text(format!(
            "{} care(s) billed {} {currency} wait for your insurers' decision: not counted above.",
            s.pending.cares, s.pending.billed
        ));
    }
    let others: Vec<String> = per_currency
        .iter()
        .filter(|(c, _)| *c != currency)
        .map(|(c, o)| {
            let what = if c == UNSTATED { "a currency the export does not state" } else { c.as_str() };
            format!(
                "{} care(s) in {what}: {} left for you of {} billed",
                o.total.cares, o.total.remaining, o.total.billed
            )
        })
        .collect();
    if !others.is_empty() {
        view = view.text(format!("Not added to the figures above (another currency): {}.", others.join("; ")));
    }
    view
}

/// The kinds of care with the most left to pay first.
fn kinds(s: &Spending) -> impl Iterator<Item = &String> {
    let mut kinds: Vec<&String> = s.per_kind.keys().collect();
    kinds.sort_by(|a, b| s.per_kind[*b].remaining.total_cmp(&s.per_kind[*a].remaining).then(a.cmp(b)));
    kinds.into_iter()
}

#[cfg(target_arch = "wasm32")]
mod component {
    use super::*;
    use domicile_sdk::data;

    const CARE: &str = "io.domicile.health.care";

    #[derive(Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct Input {
        year: Option<i32>,
    }

    struct HealthSpending;

    impl Guest for HealthSpending {
        fn run(input: String) -> Result<String, String> {
            let input: Input = domicile_sdk::input(&input)?;
            let mut cares = Vec::new();
            for item in data::query::<Fields>(CARE, &serde_json::json!({})).map_err(|e| e.to_string())? {
                cares.push(item.map_err(|e| e.to_string())?.1);
            }
            if cares.is_empty() {
                return Err("no care to add up: import a health export (FHIR) first".into());
            }
            let per_currency = spending(cares, input.year)?;
            let view = view_of(&per_currency);
            domicile_sdk::view::output(&serde_json::json!({ "currencies": per_currency }), view)
        }
    }

    export!(HealthSpending);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn care(date: &str, kind: &str, currency: Option<&str>, amounts: Option<(f64, f64)>) -> Fields {
        Fields {
            date: date.into(),
            kind: kind.into(),
            status: if amounts.is_some() { "settled" } else { "pending" }.into(),
            currency: currency.map(str::to_owned),
            billed: Some(amounts.map_or(48.39, |a| a.0)),
            reimbursed: amounts.map(|a| a.1),
            remaining: amounts.map(|a| (a.0 - a.1).max(0.0)),
        }
    }

    #[test]
    fn currencies_are_never_added_together_and_pending_cares_are_apart() {
        let per_currency = spending(
            [
                care("2026-01-12", "consultation", Some("EUR"), Some((30.0, 29.0))),
                care("2026-01-20", "consultation", Some("EUR"), Some((25.0, 16.5))),
                care("2026-02-03", "dental", Some("EUR"), Some((120.0, 76.87))),
                care("2026-03-20", "consultation", Some("CHF"), Some((150.0, 25.0))),
                care("2026-03-28", "pharmacy", None, Some((12.5, 8.13))),
                care("2026-03-25", "paramedical", Some("EUR"), None),
                care("2025-12-30", "dental", Some("EUR"), Some((10.0, 0.0))),
            ],
            Some(2026),
        )
        .unwrap();
        let eur = &per_currency["EUR"];
        assert_eq!(eur.total, Sums { cares: 3, billed: 175.0, reimbursed: 122.37, remaining: 52.63 });
        assert_eq!(eur.months["2026-01"]["consultation"].remaining, 9.5);
        assert_eq!((eur.pending.cares, eur.pending.billed), (1, 48.39));
        assert_eq!(per_currency["CHF"].total.remaining, 125.0);
        assert_eq!(per_currency[UNSTATED].total.remaining, 4.37);

        let view = serde_json::to_value(view_of(&per_currency)).unwrap();
        assert_eq!(view[1]["number"]["value"], 52.63);
        assert_eq!(view[1]["number"]["unit"], "EUR");
        let chart = &view[4]["chart"];
        assert_eq!(chart["x"], serde_json::json!(["2026-01", "2026-02"]));
        assert_eq!(chart["series"][0]["name"], "dental", "the kind with the most left first");
        let words = view.to_string();
        assert!(words.contains("1 care(s) billed 48.39 EUR wait"), "{words}");
        assert!(words.contains("1 care(s) in CHF: 125 left for you of 150 billed"), "{words}");
        assert!(words.contains("1 care(s) in a currency the export does not state: 4.37 left"), "{words}");
    }
}
