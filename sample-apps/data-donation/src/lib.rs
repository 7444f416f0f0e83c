//! Mobility survey answer: your trips and kilometres per week and transport
//! mode, computed inside your home for the mobility survey's campaign.
//!
//! Reads `io.domicile.mobility.trip` documents, and only their `date`,
//! `mode` and `distance_m`: no times, no places, no coordinates ever reach
//! the app. It counts trips and kilometres per ISO week (`2026-W10`) and
//! mode, and returns them; it sends nothing. Up to version 0.2 it asked,
//! through the outbox, to send those weekly counts to the city, which then
//! received each person's figures. Now the survey is a campaign
//! (`sample-apps/campaigns/mobility-survey.json`): a participant's answer
//! (one week's km per mode) leaves only as two Prio3 shares, one per
//! aggregator, each meaningless alone, and the city learns totals per
//! postcode of at least 10 participants.
//!
//! Input (all optional): `{"since": "2026-03-02", "until": "2026-03-08"}`,
//! both days included.

use std::collections::BTreeMap;

use domicile_sdk::data;
use domicile_sdk::time::Date;
use domicile_sdk::view::{quote, Table, View};
use serde::{Deserialize, Serialize};

domicile_sdk::generate!("service", "../../wit");

const TRIP: &str = "io.domicile.mobility.trip";
/// The survey's campaign, named to the resident who would take part.
const CAMPAIGN: &str = "fr.larochelle.mobilite-mars-2026";

#[derive(Deserialize)]
struct Fields {
    date: String,
    mode: String,
    distance_m: f64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Input {
    since: Option<String>,
    until: Option<String>,
}

#[derive(Serialize, Default, Clone, Copy)]
struct Cell {
    trips: u64,
    km: f64,
}

/// Per ISO week, per mode.
type Weeks = BTreeMap<String, BTreeMap<String, Cell>>;

fn date_of(field: &str, value: &Option<String>) -> Result<Option<Date>, String> {
    value
        .as_deref()
        .map(|s| Date::parse(s).ok_or_else(|| format!("`{field}` {s} is not a date such as 2026-03-02")))
        .transpose()
}

struct SurveyAnswer;

impl Guest for SurveyAnswer {
    fn run(input: String) -> Result<String, String> {
        let input: Input = domicile_sdk::input(&input)?;
        let (since, until) = (date_of("since", &input.since)?, date_of("until", &input.until)?);
        let mut weeks = Weeks::new();
        for item in data::query::<Fields>(TRIP, &serde_json::json!({})).map_err(|e| e.to_string())? {
            let (_, trip) = item.map_err(|e| e.to_string())?;
            let date = Date::parse(&trip.date).ok_or("a trip has a malformed date")?;
            if since.is_some_and(|s| date < s) || until.is_some_and(|u| date > u) {
                continue;
            }
            let cell = weeks.entry(date.iso_week()).or_default().entry(trip.mode).or_default();
            cell.trips += 1;
            cell.km += trip.distance_m / 1000.0;
        }
        for cell in weeks.values_mut().flat_map(|w| w.values_mut()) {
            cell.km = domicile_sdk::round(cell.km, 1);
        }
        let output = serde_json::json!({ "weeks": weeks });
        domicile_sdk::view::output(&output, view_of(&weeks))
    }
}

/// The resident's weeks, and what becomes of them.
fn view_of(weeks: &Weeks) -> View {
    let mut table = Table::new(["week", "mode", "trips", "km"]).titled("Your trips per week and mode");
    for (week, modes) in weeks {
        for (mode, cell) in modes {
            table = table.row([quote(week).into(), quote(mode).into(), (cell.trips as f64).into(), cell.km.into()]);
        }
    }
    let view = View::new().heading("Mobility survey: your weeks");
    let view = if weeks.is_empty() {
        view.text("No trips in this period: import your GPS tracks first.")
    } else {
        view.table(table)
    };
    view.text(format!(
        "This app sends nothing. To answer the survey, join its campaign ({}): one week's kilometres \
         per mode leave as two encrypted shares, one to each aggregator, each meaningless alone.",
        quote(CAMPAIGN)
    ))
}

export!(SurveyAnswer);

#[cfg(test)]
mod tests {
    use super::*;
    use domicile_sdk::testing::TestHome;
    use serde_json::json;

    #[test]
    fn counts_a_period_s_trips_per_week_and_mode_and_sends_nothing() {
        let home = TestHome::new()
            .with(TRIP, json!({"date": "2026-02-28", "mode": "train", "distance_m": 336391.6}))
            .with(TRIP, json!({"date": "2026-03-02", "mode": "bike", "distance_m": 5954.7}))
            .with(TRIP, json!({"date": "2026-03-02", "mode": "bike", "distance_m": 6000.7}))
            .with(TRIP, json!({"date": "2026-03-08", "mode": "walk", "distance_m": 1200.1}))
            .with(TRIP, json!({"date": "2026-03-09", "mode": "car", "distance_m": 11903.5}));
        let out = home.run(|| SurveyAnswer::run(r#"{"since": "2026-03-02", "until": "2026-03-08"}"#.into())).unwrap();
        assert_eq!(
            out["weeks"],
            json!({"2026-W10": {"bike": {"trips": 2, "km": 12.0}, "walk": {"trips": 1, "km": 1.2}}})
        );
        assert!(home.outbox().is_empty());

        let all = home.run(|| SurveyAnswer::run("{}".into())).unwrap();
        assert_eq!(all["weeks"].as_object().unwrap().keys().collect::<Vec<_>>(), ["2026-W09", "2026-W10", "2026-W11"]);

        let refused = home.run(|| SurveyAnswer::run(r#"{"since": "2 March"}"#.into())).unwrap_err();
        assert!(refused.contains("2026-03-02"), "{refused}");
    }
}
