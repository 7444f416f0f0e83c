//! Sustainable mobility allowance: declares to your employer, through the
//! Mon Compte Mobilité platform, the days you cycled each month, if and
//! when you approve it.
//!
//! Employers in France may pay their staff a "forfait mobilités durables"
//! for commuting by bike, and ask them to declare its use. This app reads
//! `io.domicile.mobility.trip` documents, and only their `date` and `mode`:
//! no distance, no time, no place reaches the app. It counts, for each
//! month of one year, the days with at least one bike trip, and asks,
//! through `egress`, to send that declaration. The request waits in your
//! outbox, where you see the exact payload before approving or denying it.
//!
//! Input (all optional): `{"year": 2026, "destination": "..."}`; the year
//! defaults to that of your latest bike trip, and the destination must be
//! one the manifest declares.

use std::collections::{BTreeMap, BTreeSet};

use domicile_sdk::time::Date;
use domicile_sdk::view::{quote, Table, View};
use domicile_sdk::{data, egress};
use serde::{Deserialize, Serialize};

domicile_sdk::generate!("service", "../../wit");

const TRIP: &str = "io.domicile.mobility.trip";
pub const PLATFORM: &str = "https://moncomptemobilite.example/api/forfait-mobilites-durables";
const PURPOSE: &str = "The days you cycled in each month of the year, declared to your employer for the \
     sustainable mobility allowance";

#[derive(Deserialize)]
struct Fields {
    date: String,
    mode: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Input {
    year: Option<i64>,
    destination: Option<String>,
}

#[derive(Serialize)]
struct Month {
    bike_days: usize,
}

/// What the employer receives: nothing but days per month.
#[derive(Serialize)]
struct Declaration {
    declaration: &'static str,
    year: i64,
    months: BTreeMap<String, Month>,
}

struct Allowance;

impl Guest for Allowance {
    fn run(input: String) -> Result<String, String> {
        let input: Input = domicile_sdk::input(&input)?;
        let mut bike_days: BTreeSet<Date> = BTreeSet::new();
        for item in data::query::<Fields>(TRIP, &serde_json::json!({"mode": "bike"})).map_err(|e| e.to_string())? {
            let (_, trip) = item.map_err(|e| e.to_string())?;
            // The host applies the selector; the check keeps the count right whatever it returns.
            if trip.mode == "bike" {
                bike_days.insert(Date::parse(&trip.date).ok_or("a trip has a malformed date")?);
            }
        }
        let year = match input.year {
            Some(year) => year,
            None => bike_days.last().ok_or("no bike trips to declare: import your GPS tracks first")?.year,
        };
        let mut months: BTreeMap<String, Month> = BTreeMap::new();
        for day in bike_days.iter().filter(|d| d.year == year) {
            months.entry(day.month_key()).or_insert(Month { bike_days: 0 }).bike_days += 1;
        }
        if months.is_empty() {
            return Err(format!("no bike trips in {year} to declare"));
        }
        let declaration = Declaration { declaration: "forfait-mobilites-durables", year, months };
        let destination = input.destination.as_deref().unwrap_or(PLATFORM);
        let id = egress::request(destination, &declaration, PURPOSE).map_err(|e| e.to_string())?;
        let report = serde_json::json!({
            "outbox_id": id,
            "destination": destination,
            "payload": declaration,
            "next": format!("nothing was sent: review it with `domicile outbox`, then `domicile approve {id}` or `domicile deny {id}`"),
        });
        domicile_sdk::view::output(&report, view_of(&id, &declaration))
    }
}

/// What waits for the resident's approval (the destination is in the
/// outbox: a view shows no addresses).
fn view_of(outbox_id: &str, declaration: &Declaration) -> View {
    let mut table = Table::new(["month", "days cycled"]).titled(format!("Your declaration for {}", declaration.year));
    for (month, days) in &declaration.months {
        table = table.row([quote(month).into(), (days.bike_days as f64).into()]);
    }
    View::new()
        .heading("Sustainable mobility allowance")
        .text(format!(
            "Nothing was sent. The declaration waits in your outbox (item {}) until you approve or deny it: \
             the days you cycled per month, and nothing else (no distances, no times, no places).",
            quote(outbox_id)
        ))
        .table(table)
}

export!(Allowance);

#[cfg(test)]
mod tests {
    use super::*;
    use domicile_sdk::testing::TestHome;
    use serde_json::json;

    #[test]
    fn declares_only_days_cycled_per_month_of_one_year() {
        let home = TestHome::new()
            .with(TRIP, json!({"date": "2025-12-30", "mode": "bike", "distance_m": 4000.0}))
            .with(TRIP, json!({"date": "2026-02-26", "mode": "bike", "distance_m": 5954.8}))
            .with(TRIP, json!({"date": "2026-02-26", "mode": "bike", "distance_m": 6000.8}))
            .with(TRIP, json!({"date": "2026-02-27", "mode": "walk", "distance_m": 1200.2}))
            .with(TRIP, json!({"date": "2026-03-02", "mode": "bike", "distance_m": 5954.7}))
            .with(TRIP, json!({"date": "2026-03-03", "mode": "car", "distance_m": 11903.5}));
        let out = home.run(|| Allowance::run("{}".into())).unwrap();
        let expected = json!({
            "declaration": "forfait-mobilites-durables",
            "year": 2026,
            "months": {"2026-02": {"bike_days": 1}, "2026-03": {"bike_days": 1}},
        });
        assert_eq!(out["payload"], expected, "two trips on one day are one day");
        assert_eq!(home.outbox(), [(PLATFORM.to_owned(), expected, PURPOSE.to_owned())]);

        let last_year = home.run(|| Allowance::run(r#"{"year": 2025}"#.into())).unwrap();
        assert_eq!(last_year["payload"]["months"], json!({"2025-12": {"bike_days": 1}}));
        let none = home.run(|| Allowance::run(r#"{"year": 2024}"#.into())).unwrap_err();
        assert_eq!(none, "no bike trips in 2024 to declare");
    }
}
