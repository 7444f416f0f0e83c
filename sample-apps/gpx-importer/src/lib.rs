//! GPX importer: turns GPS tracks (GPX 1.1 or 1.0, as exported by phones,
//! sports watches and mobility apps) into `io.domicile.mobility.trip`
//! documents.
//!
//! A trip is a run of track points without a pause longer than
//! [`PAUSE_SECONDS`]; each gets its distance (haversine), duration, and a
//! transport mode inferred from its average speed. A trip's id is derived
//! from its start time, so importing the same file twice changes nothing.

pub mod gpx;

use domicile_sdk::time;
use serde::Serialize;

domicile_sdk::generate!("importer", "../../wit");

/// A stop longer than this ends a trip.
pub const PAUSE_SECONDS: i64 = 5 * 60;
/// Trips shorter than this are GPS noise, not journeys.
const MIN_TRIP_METERS: f64 = 200.0;

#[derive(Debug, Serialize, PartialEq)]
pub struct Trip {
    start: String,
    end: String,
    date: String,
    month: String,
    distance_m: f64,
    duration_s: i64,
    mode: &'static str,
    points: usize,
    source: String,
}

/// Mode from average speed (km/h): a coarse but honest first guess.
fn infer_mode(kmh: f64) -> &'static str {
    match kmh {
        k if k < 7.0 => "walk",
        k if k < 22.0 => "bike",
        k if k < 110.0 => "car",
        _ => "train",
    }
}

/// The trips of a track: runs of points split at a segment change or a pause over [`PAUSE_SECONDS`].
pub fn trips(points: &[gpx::Point], source: &str) -> Vec<Trip> {
    let mut trips = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        let split = i == points.len()
            || points[i].segment != points[i - 1].segment
            || points[i].t - points[i - 1].t > PAUSE_SECONDS;
        if !split {
            continue;
        }
        let run = &points[start..i];
        start = i;
        let distance_m: f64 = run.windows(2).map(|w| gpx::haversine_m(&w[0], &w[1])).sum();
        let duration_s = run.last().map_or(0, |p| p.t) - run[0].t;
        if run.len() < 2 || distance_m < MIN_TRIP_METERS || duration_s <= 0 {
            continue;
        }
        let kmh = distance_m / 1000.0 / (duration_s as f64 / 3600.0);
        let begin = time::format_utc(run[0].t);
        trips.push(Trip {
            date: begin[..10].to_owned(),
            month: begin[..7].to_owned(),
            start: begin,
            end: time::format_utc(run[run.len() - 1].t),
            distance_m: (distance_m * 10.0).round() / 10.0,
            duration_s,
            mode: infer_mode(kmh),
            points: run.len(),
            source: source.to_owned(),
        });
    }
    trips
}

/// The component: the WIT glue that hands a file to the parser above and
/// stores what it gives. Natively (unit tests, fuzzing) the crate is the
/// parser alone.
#[cfg(target_arch = "wasm32")]
mod component {
    use super::*;
    use domicile_sdk::{data, log};

    const TRIP: &str = "io.domicile.mobility.trip";

    struct GpxImporter;

    impl Guest for GpxImporter {
        fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
            let mut leave_out = |location: &str, reason: &str| {
                domicile_sdk::import::leave_out(crate::domicile::app::import_report::skip, location, reason)
            };
            let track = gpx::parse(&bytes, &mut leave_out).map_err(|e| format!("{file_name}: {e}"))?;
            let points = track.points;
            let trips = trips(&points, &file_name);
            for trip in &trips {
                let id = format!("gpx-{}", trip.start);
                data::put(TRIP, Some(&id), trip).map_err(|e| format!("cannot store trip {id}: {e}"))?;
            }
            log::info(&format!("{file_name}: {} points, {} trips", points.len(), trips.len()));
            if track.untimed > 0 {
                log::warn(&format!("{file_name}: {} track points have no time and belong to no trip", track.untimed));
            }
            let summary = serde_json::json!({
                "points": points.len(),
                "untimed_points": track.untimed,
                "trips": trips.len(),
                "first": points.first().map(|p| time::format_utc(p.t)),
                "last": points.last().map(|p| time::format_utc(p.t)),
            });
            Ok(summary.to_string())
        }
    }

    export!(GpxImporter);
}
