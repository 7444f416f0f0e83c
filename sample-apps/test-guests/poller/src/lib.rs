//! Test guest: queries trips again and again, until a call is refused or
//! `max_ms` (input, default 20000) have passed, and reports how many calls
//! succeeded, the sets of fields it saw (in the order they changed) and the
//! refusal that stopped it. It shows grants changing under a running app.

domicile_sdk::generate!("service", "../../../wit");

use domicile_sdk::data;

struct Poller;

impl Guest for Poller {
    fn run(input: String) -> Result<String, String> {
        let input: serde_json::Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        let max_ms = input["max_ms"].as_u64().unwrap_or(20_000);
        let started = domicile_sdk::now_ms();
        let mut calls = 0u64;
        let mut field_sets: Vec<Vec<String>> = Vec::new();
        let mut stopped_by = None;
        'polling: while domicile_sdk::now_ms().saturating_sub(started) < max_ms {
            let query = match data::query::<serde_json::Map<String, serde_json::Value>>(
                "io.domicile.mobility.trip",
                &serde_json::json!({}),
            ) {
                Ok(q) => q,
                Err(e) => {
                    stopped_by = Some(e.to_string());
                    break;
                }
            };
            for item in query {
                match item {
                    Ok((_, body)) => {
                        let fields: Vec<String> = body.keys().cloned().collect();
                        if field_sets.last() != Some(&fields) {
                            field_sets.push(fields);
                        }
                    }
                    Err(e) => {
                        stopped_by = Some(e.to_string());
                        break 'polling;
                    }
                }
            }
            calls += 1;
        }
        Ok(serde_json::json!({ "calls": calls, "field_sets": field_sets, "stopped_by": stopped_by }).to_string())
    }
}

export!(Poller);
