//! Benchmark guest for `domicile bench`: `{}` returns at once (the cost of
//! an invocation), `{"spin": N}` runs N rounds of arithmetic (the cost of
//! epoch interruption), `{"scan": true}` reads every trip and adds up the
//! distance per mode (the cost of reading through the host).

domicile_sdk::generate!("service", "../../../wit");

use std::collections::BTreeMap;

struct Bench;

#[derive(serde::Deserialize)]
struct Trip {
    mode: String,
    distance_m: f64,
}

impl Guest for Bench {
    fn run(input: String) -> Result<String, String> {
        if input == "{}" {
            return Ok(input);
        }
        let input: serde_json::Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        if let Some(rounds) = input["spin"].as_u64() {
            let mut x: u64 = 1;
            for _ in 0..rounds {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407));
            }
            return Ok(format!("{{\"x\": {}}}", x % 1000));
        }
        let mut km: BTreeMap<String, f64> = BTreeMap::new();
        let trips = domicile_sdk::data::query::<Trip>("io.domicile.mobility.trip", &serde_json::json!({}));
        for item in trips.map_err(|e| e.to_string())? {
            let (_, trip) = item.map_err(|e| e.to_string())?;
            *km.entry(trip.mode).or_default() += trip.distance_m / 1000.0;
        }
        serde_json::to_string(&km).map_err(|e| e.to_string())
    }
}

export!(Bench);
