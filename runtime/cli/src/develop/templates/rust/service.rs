//! {{name}}: a domicile service. `domicile dev` runs it at every save.

use std::collections::BTreeMap;

use domicile_sdk::data;

// Bindings of the `service` world, with domicile's imports from the SDK.
domicile_sdk::generate!("service", "wit");

#[derive(serde::Deserialize)]
struct Trip {
    mode: String,
    distance_m: f64,
}

struct App;

impl Guest for App {
    fn run(_input: String) -> Result<String, String> {
        let mut km: BTreeMap<String, f64> = BTreeMap::new();
        let trips = data::query::<Trip>("io.domicile.mobility.trip", &serde_json::json!({}));
        for item in trips.map_err(|e| e.to_string())? {
            let (_id, trip) = item.map_err(|e| e.to_string())?;
            *km.entry(trip.mode).or_default() += trip.distance_m / 1000.0;
        }
        domicile_sdk::log::info(&format!("{} transport modes", km.len()));
        let km: BTreeMap<String, f64> = km.into_iter().map(|(mode, k)| (mode, domicile_sdk::round(k, 1))).collect();
        Ok(serde_json::json!({ "km_per_mode": km }).to_string())
    }
}

export!(App);

#[cfg(test)]
mod tests {
    use super::*;
    use domicile_sdk::testing::TestHome;

    // `cargo test` runs the app natively, on these fixture documents.
    #[test]
    fn adds_up_the_km_of_each_mode() {
        let home = TestHome::new()
            .with("io.domicile.mobility.trip", serde_json::json!({"mode": "bike", "distance_m": 4200.0}))
            .with("io.domicile.mobility.trip", serde_json::json!({"mode": "bike", "distance_m": 800.0}));
        let output = home.run(|| App::run("{}".into())).unwrap();
        assert_eq!(output["km_per_mode"]["bike"], 5.0);
        assert_eq!(home.logs(), ["info: 1 transport modes"]);
    }
}
