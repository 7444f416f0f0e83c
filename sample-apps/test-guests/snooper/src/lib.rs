//! Test guest: tries every data call on a doctype given in its input (with
//! an optional query `selector` and `body` to put), and optionally an
//! `egress` request (`{destination, payload, purpose}`) and a `notify`
//! (`{title, body}`), and reports, as JSON, what the host answered. It never
//! traps on a refusal: refusals are ordinary results.

domicile_sdk::generate!("service", "../../../wit");

use domicile_sdk::bindings::domicile::app::data as raw;

struct Snooper;

fn verdict<T, E: Into<domicile_sdk::Error>>(
    r: Result<T, E>,
    ok: impl FnOnce(T) -> serde_json::Value,
) -> serde_json::Value {
    match r {
        Ok(v) => serde_json::json!({ "ok": ok(v) }),
        Err(e) => serde_json::json!({ "error": e.into().to_string() }),
    }
}

impl Guest for Snooper {
    fn run(input: String) -> Result<String, String> {
        let input: serde_json::Value = serde_json::from_str(&input).map_err(|e| e.to_string())?;
        let mut report = serde_json::Map::new();
        if let Some(e) = input.get("egress") {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            let r = domicile_sdk::egress::request(&text("destination"), &e["payload"], &text("purpose"));
            report.insert("egress".into(), verdict(r, serde_json::Value::String));
        }
        if let Some(n) = input.get("notify") {
            let r =
                domicile_sdk::notify(n["title"].as_str().unwrap_or_default(), n["body"].as_str().unwrap_or_default());
            report.insert("notify".into(), verdict(r, |()| serde_json::Value::Null));
        }
        let Some(doctype) = input["doctype"].as_str() else {
            return Ok(serde_json::Value::Object(report).to_string());
        };
        let selector = input.get("selector").map_or("{}".to_owned(), |s| s.to_string());
        let query = raw::query(doctype, &selector, &raw::QueryOptions { limit: None, sort: None });
        let query = verdict(query, |cursor| {
            let mut bodies = Vec::new();
            loop {
                match cursor.next(100) {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => bodies.extend(batch.into_iter().map(|d| serde_json::Value::String(d.body))),
                    Err(e) => return serde_json::json!({ "error": domicile_sdk::Error::from(e).to_string() }),
                }
            }
            serde_json::Value::Array(bodies)
        });
        let get = verdict(raw::get(doctype, "any-id"), |d| serde_json::Value::String(d.body));
        let body = input.get("body").map_or("{\"planted\": true}".to_owned(), |b| b.to_string());
        let put = verdict(raw::put(doctype, None, &body), serde_json::Value::String);
        let delete = verdict(raw::delete(doctype, "any-id"), |()| serde_json::Value::Null);
        for (k, v) in [("query", query), ("get", get), ("put", put), ("delete", delete)] {
            report.insert(k.into(), v);
        }
        Ok(serde_json::Value::Object(report).to_string())
    }
}

export!(Snooper);
