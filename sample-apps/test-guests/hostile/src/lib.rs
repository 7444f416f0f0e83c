//! Test guest: one hostile behaviour per input `{"attack": ...}`, each of
//! which the host must stop with the right error while carrying on:
//! `spin` (never returns; stopped by the wall-clock or CPU limit),
//! `recursion` (overflows the stack), `host-call-flood`, `document-flood`,
//! `huge-output`, `huge-log` (the log is bounded; the run succeeds),
//! `stale-cursor` (uses a cursor handle after dropping it), `panic`, and
//! views domicile must refuse: `view-script`, `view-link`, `view-huge`
//! (5,000 bars) and `view-deep` (nested 10,000 deep).

domicile_sdk::generate!("service", "../../../wit");

use domicile_sdk::bindings::domicile::app::data::{self as raw, Cursor};

struct Hostile;

#[inline(never)]
#[allow(unconditional_recursion)] // the point of the attack
fn recurse(depth: u64, trail: &mut [u8; 256]) -> u64 {
    trail[(depth % 256) as usize] = depth as u8;
    let below = recurse(std::hint::black_box(depth + 1), trail);
    below.wrapping_add(trail[(depth % 7) as usize] as u64)
}

fn all_trips() -> raw::Cursor {
    raw::query("io.domicile.mobility.trip", "{}", &raw::QueryOptions { limit: None, sort: None })
        .expect("trips are granted")
}

impl Guest for Hostile {
    fn run(input: String) -> Result<String, String> {
        let input: serde_json::Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        match input["attack"].as_str().unwrap_or_default() {
            "spin" => {
                let mut x: u64 = 1;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "recursion" => Ok(recurse(0, &mut [0; 256]).to_string()),
            "host-call-flood" => loop {
                std::hint::black_box(domicile_sdk::now_ms());
            },
            "document-flood" => loop {
                let cursor = all_trips();
                while !cursor.next(1000).map_err(|e| format!("{e:?}"))?.is_empty() {}
            },
            "huge-output" => Ok(serde_json::json!({ "padding": "x".repeat(4 * 1024 * 1024) }).to_string()),
            "huge-log" => {
                let line = "y".repeat(10_000);
                for _ in 0..10_000 {
                    domicile_sdk::log::info(&line);
                }
                Ok("{\"logged\": true}".into())
            }
            "stale-cursor" => {
                let cursor = all_trips();
                let handle = cursor.handle();
                drop(cursor);
                // SAFETY: deliberately not safe: a forged handle to a dropped resource.
                let forged = unsafe { Cursor::from_handle(handle) };
                Ok(format!("{{\"batch\": {}}}", forged.next(10).map(|b| b.len()).unwrap_or(0)))
            }
            "panic" => panic!("the hostile guest panics on purpose"),
            // Views domicile must refuse to draw, whatever shows them.
            "view-script" => Ok(serde_json::json!({ "view": [
                { "heading": "Your results" },
                { "text": "<script>document.title = 'owned'</script><img src=x onerror=\"document.title = 'owned'\">" },
            ] })
            .to_string()),
            "view-link" => Ok(serde_json::json!({ "view": [
                { "text": "Your data is at risk: sign in again at https://domicile-login.example" },
            ] })
            .to_string()),
            "view-huge" => {
                let x: Vec<String> = (0..5_000).map(|i| i.to_string()).collect();
                let values = vec![1.0; x.len()];
                let chart = serde_json::json!({ "kind": "bar", "title": "t", "x": x, "series": [{ "name": "s", "values": values }] });
                Ok(serde_json::json!({ "view": [{ "chart": chart }] }).to_string())
            }
            "view-deep" => {
                let depth = 10_000;
                Ok(format!(r#"{{"view": [{{"text": {}"x"{}}}]}}"#, "[".repeat(depth), "]".repeat(depth)))
            }
            other => Err(format!("unknown attack `{other}`")),
        }
    }
}

export!(Hostile);
