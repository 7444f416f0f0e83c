//! Data donation: contributes an anonymised summary of your trips to your
//! city's mobility survey, if and when you approve it.
//!
//! Reads `io.domicile.mobility.trip` documents, and only their `date`,
//! `mode` and `distance_m`: no times, no places, no coordinates ever reach
//! the app. It counts trips and kilometres per transport mode and ISO week
//! (`2026-W10`; nothing finer than a week leaves), rounds distances to
//! 5 km, and asks, through `egress`, to send that to the survey. The request
//! waits in your outbox, where you see the exact payload before approving
//! or denying it.
//!
//! Input (all optional): `{"destination": "...", "since": "2026-01-01"}`;
//! the destination must be one the manifest declares.

use std::collections::BTreeMap;

use domicile_sdk::time::Date;
use domicile_sdk::view::{quote, Table, View};
use domicile_sdk::{data, egress};
use serde::{Deserialize, Serialize};

domicile_sdk::generate!("service", "../../wit");

const TRIP: &str = "io.domicile.mobility.trip";
pub const SURVEY: &str = "https://enquete-mobilite.nantesmetropole.example/api/contributions";
const PURPOSE: &str =
    "Your trips per transport mode and week (distances rounded to 5 km), for the city's mobility survey";

#[derive(Deserialize)]
struct Fields {
    date: String,
    mode: String,
    distance_m: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Input {
    destination: Option<String>,
    since: Option<String>,
}

#[derive(Serialize, Default, Clone, Copy)]
struct Cell {
    trips: u64,
    km: f64,
}

#[derive(Serialize)]
struct Contribution {
    survey: &'static str,
    weeks: BTreeMap<String, BTreeMap<String, Cell>>,
}

/// Rounds to the nearest multiple of 5 km.
pub fn coarse_km(km: f64) -> f64 {
    (km / 5.0).round() * 5.0
}

struct Donation;

impl Guest for Donation {
    fn run(input: String) -> Result<String, String> {
        let input: Input = domicile_sdk::input(&input)?;
        let since = match &input.since {
            Some(s) => Some(Date::parse(s).ok_or_else(|| format!("`since` {s} is not a date such as 2026-01-01"))?),
            None => None,
        };
        let mut weeks: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
        for item in data::query::<Fields>(TRIP, &serde_json::json!({})).map_err(|e| e.to_string())? {
            let (_, trip) = item.map_err(|e| e.to_string())?;
            let date = Date::parse(&trip.date).ok_or("a trip has a malformed date")?;
            if since.is_some_and(|s| date < s) {
                continue;
            }
            let cell = weeks.entry(date.iso_week()).or_default().entry(trip.mode).or_default();
            cell.trips += 1;
            cell.km += trip.distance_m / 1000.0;
        }
        if weeks.is_empty() {
            return Err("no trips to contribute: import some first".into());
        }
        for cell in weeks.values_mut().flat_map(|w| w.values_mut()) {
            cell.km = coarse_km(cell.km);
        }
        let contribution = Contribution { survey: "mobility-2026", weeks };
        let destination = input.destination.as_deref().unwrap_or(SURVEY);
        let id = egress::request(destination, &contribution, PURPOSE).map_err(|e| e.to_string())?;
        let report = serde_json::json!({
            "outbox_id": id,
            "destination": destination,
            "payload": contribution,
            "next": format!("nothing was sent: review it with `domicile outbox`, then `domicile approve {id}` or `domicile deny {id}`"),
        });
        domicile_sdk::view::output(&report, view_of(&id, &contribution))
    }
}

/// What is waiting for the resident's approval, in words and per mode (the
/// destination is in the outbox: a view shows no addresses).
fn view_of(outbox_id: &str, contribution: &Contribution) -> View {
    let mut modes: BTreeMap<&str, (u64, f64)> = BTreeMap::new();
    for (mode, cell) in contribution.weeks.values().flat_map(|w| w.iter()) {
        let (trips, km) = modes.entry(mode).or_default();
        *trips += cell.trips;
        *km += cell.km;
    }
    let mut table = Table::new(["mode", "trips", "km (rounded per week)"]).titled("What the contribution holds");
    for (mode, (trips, km)) in modes {
        table = table.row([quote(mode).into(), (trips as f64).into(), domicile_sdk::round(km, 1).into()]);
    }
    View::new()
        .heading("Mobility survey contribution")
        .text(format!(
            "Nothing was sent. The contribution waits in your outbox (item {}) until you approve or deny it: \
             {} weeks of trips, counted per week and mode, distances rounded.",
            quote(outbox_id),
            contribution.weeks.len()
        ))
        .table(table)
}

export!(Donation);
