//! Mobility footprint: the CO2 of your trips, per month and transport mode.
//!
//! Reads `io.domicile.mobility.trip` documents (only `month`, `mode` and
//! `distance_m`: the manifest asks for nothing else) and multiplies each
//! trip's distance by an emission factor in kg CO2e per passenger-km, in
//! the order of magnitude of ADEME's Base Carbone. The input may override
//! factors: `{"factors": {"car": 0.21}}`, and ask what switching a class of
//! trips to another mode would save:
//! `{"switch": {"from": "car", "to": "bike", "max_km": 10}}` (every car trip
//! of at most 10 km made by bike instead).

use std::collections::{BTreeMap, BTreeSet};

use domicile_sdk::view::{quote, Chart, View};
use domicile_sdk::{data, log, round};
use serde::{Deserialize, Serialize};

domicile_sdk::generate!("service", "../../wit");

const TRIP: &str = "io.domicile.mobility.trip";

/// kg CO2e per passenger-km.
const DEFAULT_FACTORS: [(&str, f64); 7] =
    [("walk", 0.0), ("bike", 0.0), ("car", 0.193), ("bus", 0.113), ("tram", 0.004), ("train", 0.025), ("plane", 0.23)];

#[derive(Deserialize)]
struct TripFields {
    month: String,
    mode: String,
    distance_m: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    factors: BTreeMap<String, f64>,
    switch: Option<Switch>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
struct Switch {
    from: String,
    to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_km: Option<f64>,
}

#[derive(Serialize)]
struct Saving {
    #[serde(flatten)]
    switch: Switch,
    trips: u64,
    km: f64,
    kg_co2e_saved: f64,
}

#[derive(Serialize, Default)]
struct ModeTotal {
    trips: u64,
    km: f64,
    kg_co2e: f64,
}

#[derive(Serialize)]
struct Report {
    months: BTreeMap<String, BTreeMap<String, ModeTotal>>,
    total_km: f64,
    total_kg_co2e: f64,
    factors_kg_per_km: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    switch: Option<Saving>,
}

struct Footprint;

impl Guest for Footprint {
    fn run(input: String) -> Result<String, String> {
        let input: Input = domicile_sdk::input(&input)?;
        let mut factors: BTreeMap<String, f64> = DEFAULT_FACTORS.iter().map(|(m, f)| (m.to_string(), *f)).collect();
        if let Some((mode, factor)) = input.factors.iter().find(|(_, f)| **f < 0.0) {
            return Err(format!(
                "the factor for `{mode}` is {factor}: an emission factor is a number of kg CO2e per km, 0 or more"
            ));
        }
        factors.extend(input.factors);

        let mut saving = match &input.switch {
            Some(sw) => {
                for mode in [&sw.from, &sw.to] {
                    if !factors.contains_key(mode) {
                        return Err(format!("no emission factor for mode `{mode}`: give one in `factors`"));
                    }
                }
                Some(Saving { switch: sw.clone(), trips: 0, km: 0.0, kg_co2e_saved: 0.0 })
            }
            None => None,
        };
        let mut months: BTreeMap<String, BTreeMap<String, ModeTotal>> = BTreeMap::new();
        let (mut total_km, mut total_kg) = (0.0, 0.0);
        for item in data::query::<TripFields>(TRIP, &serde_json::json!({})).map_err(|e| e.to_string())? {
            let (_, trip) = item.map_err(|e| e.to_string())?;
            let km = trip.distance_m / 1000.0;
            let Some(factor) = factors.get(&trip.mode) else {
                log::warn(&format!("no emission factor for mode `{}`; trip counted as 0", trip.mode));
                continue;
            };
            if let Some(s) = saving.as_mut() {
                if s.switch.from == trip.mode && s.switch.max_km.is_none_or(|max| km <= max) {
                    s.trips += 1;
                    s.km += km;
                    s.kg_co2e_saved += km * (factor - factors[&s.switch.to]);
                }
            }
            let t = months.entry(trip.month).or_default().entry(trip.mode).or_default();
            t.trips += 1;
            t.km += km;
            t.kg_co2e += km * factor;
            total_km += km;
            total_kg += km * factor;
        }
        for t in months.values_mut().flat_map(|m| m.values_mut()) {
            t.km = round(t.km, 3);
            t.kg_co2e = round(t.kg_co2e, 3);
        }
        if let Some(s) = saving.as_mut() {
            s.km = round(s.km, 3);
            s.kg_co2e_saved = round(s.kg_co2e_saved, 3);
        }
        let report = Report {
            switch: saving,
            months,
            total_km: round(total_km, 3),
            total_kg_co2e: round(total_kg, 3),
            factors_kg_per_km: factors,
        };
        domicile_sdk::view::output(&report, view_of(&report))
    }
}

/// The report drawn: the totals, CO2 per month stacked by mode, and what a
/// switch would save.
fn view_of(report: &Report) -> View {
    let mut view = View::new()
        .heading("Mobility footprint")
        .number("CO2 of all trips", round(report.total_kg_co2e, 1), "kg CO2e")
        .number("Distance", round(report.total_km, 1), "km");
    let modes: BTreeSet<&String> = report.months.values().flat_map(|m| m.keys()).collect();
    if !modes.is_empty() {
        let series = modes
            .into_iter()
            .map(|mode| (quote(mode), report.months.values().map(|m| m.get(mode).map(|t| t.kg_co2e)).collect()))
            .collect();
        let chart = Chart::stacked_bar("CO2 per month and mode", "kg CO2e", report.months.keys().cloned());
        view = view.chart(chart.top_series(series, "modes"));
    }
    if let Some(s) = &report.switch {
        let which = s.switch.max_km.map(|km| format!(" of at most {km} km")).unwrap_or_default();
        view = view.number(
            quote(&format!("Saved by making the {} {} trips{which} by {}", s.trips, s.switch.from, s.switch.to)),
            s.kg_co2e_saved,
            "kg CO2e",
        );
    }
    view
}

export!(Footprint);

#[cfg(test)]
mod tests {
    use super::*;
    use domicile_sdk::testing::TestHome;
    use serde_json::json;

    /// The service, run natively on fixture trips through the SDK's test home.
    #[test]
    fn the_footprint_of_fixture_trips() {
        let home = TestHome::new()
            .with(TRIP, json!({"month": "2026-03", "mode": "car", "distance_m": 10000.0}))
            .with(TRIP, json!({"month": "2026-03", "mode": "bike", "distance_m": 5000.0}))
            .with(TRIP, json!({"month": "2026-04", "mode": "train", "distance_m": 100000.0}))
            .with(TRIP, json!({"month": "2026-04", "mode": "rocket", "distance_m": 1.0}));
        let out = home.run(|| Footprint::run(r#"{"switch": {"from": "car", "to": "bike"}}"#.into())).unwrap();
        assert_eq!(out["total_km"], 115.0, "{out}");
        assert_eq!(out["months"]["2026-03"]["car"]["kg_co2e"], 1.93);
        assert_eq!(out["total_kg_co2e"], 4.43);
        assert_eq!(out["switch"]["kg_co2e_saved"], 1.93);
        assert_eq!(home.logs(), ["warn: no emission factor for mode `rocket`; trip counted as 0"]);
        let chart = &out["view"][3]["chart"];
        assert_eq!(chart["x"], json!(["2026-03", "2026-04"]));
        assert_eq!(chart["series"][0], json!({"name": "train", "values": [null, 2.5]}), "the largest first");

        let refused = home.run(|| Footprint::run(r#"{"factors": {"car": -1}}"#.into())).unwrap_err();
        assert!(refused.contains("0 or more"), "{refused}");
    }
}
