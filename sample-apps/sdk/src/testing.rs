//! Test an app natively with `cargo test`, on fixture documents, without
//! building a component or a home: compiled for the machine (not for
//! `wasm32`), this SDK's `data`, `log`, `notify`, `egress` and `now_ms` use
//! an in-memory home of the current test's thread instead of the host.
//!
//! ```ignore
//! use domicile_sdk::testing::TestHome;
//!
//! #[test]
//! fn adds_up_bike_trips() {
//!     let home = TestHome::new()
//!         .with("io.domicile.mobility.trip", serde_json::json!({"mode": "bike", "distance_m": 4200.0}))
//!         .with_jsonl("io.domicile.mobility.trip", include_str!("../fixtures/trips.jsonl"));
//!     let output = home.run(|| BikeKm::run("{}".into())).unwrap();
//!     assert_eq!(output["bike_km"], 5.4);
//!     assert_eq!(home.logs(), ["info: 5.4 km by bike"]);
//! }
//! ```
//!
//! What differs from a real home: every document is readable and writable
//! (no grants, no field projection: test those with `domicile dev`); a
//! selector matches fields (dotted paths too) by equality or with `$gt`,
//! `$gte`, `$lt`, `$lte`, `$ne` and `$in`; documents get ids `doc-1`,
//! `doc-2`, ...; the clock is fixed (2026-03-01T12:00:00Z unless `at`).

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::bindings::domicile::app::types::{Doc, Error};

#[derive(Default)]
struct State {
    /// Per doctype, documents by id.
    docs: BTreeMap<String, BTreeMap<String, Value>>,
    logs: Vec<String>,
    notifications: Vec<(String, String)>,
    outbox: Vec<(String, Value, String)>,
    now_ms: u64,
    next_id: u64,
}

thread_local! {
    static HOME: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    HOME.with(|home| {
        let mut home = home.borrow_mut();
        let state = home.as_mut().expect(
            "this app called domicile outside a test home: create one with domicile_sdk::testing::TestHome::new()",
        );
        f(state)
    })
}

/// The in-memory home of this thread's test (a new one replaces the last).
pub struct TestHome(());

impl TestHome {
    pub fn new() -> TestHome {
        HOME.with(|h| *h.borrow_mut() = Some(State { now_ms: 1_772_366_400_000, ..State::default() }));
        TestHome(())
    }

    /// Adds a document (its id is `doc-N`).
    pub fn with(self, doctype: &str, body: Value) -> TestHome {
        with_state(|s| {
            s.next_id += 1;
            let id = format!("doc-{}", s.next_id);
            s.docs.entry(doctype.to_owned()).or_default().insert(id, body);
        });
        self
    }

    /// Adds one document per non-empty line of JSON (a fixture file).
    pub fn with_jsonl(self, doctype: &str, lines: &str) -> TestHome {
        let mut home = self;
        for (n, line) in lines.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let body = serde_json::from_str(line).unwrap_or_else(|e| panic!("fixture line {}: {e}", n + 1));
            home = home.with(doctype, body);
        }
        home
    }

    /// Fixes the time the app sees (Unix milliseconds).
    pub fn at(self, now_ms: u64) -> TestHome {
        with_state(|s| s.now_ms = now_ms);
        self
    }

    /// Runs a service's `run` (or anything) and parses its JSON output.
    pub fn run(&self, run: impl FnOnce() -> Result<String, String>) -> Result<Value, String> {
        let output = run()?;
        serde_json::from_str(&output).map_err(|e| format!("the output is not JSON: {e}"))
    }

    /// The documents of a doctype now, as `(id, body)`.
    pub fn documents(&self, doctype: &str) -> Vec<(String, Value)> {
        with_state(|s| s.docs.get(doctype).map(|d| d.clone().into_iter().collect()).unwrap_or_default())
    }

    /// What the app logged, as `level: message`.
    pub fn logs(&self) -> Vec<String> {
        with_state(|s| s.logs.clone())
    }

    /// The notifications the app left, as `(title, body)`.
    pub fn notifications(&self) -> Vec<(String, String)> {
        with_state(|s| s.notifications.clone())
    }

    /// What the app asked to send, as `(destination, payload, purpose)`.
    pub fn outbox(&self) -> Vec<(String, Value, String)> {
        with_state(|s| s.outbox.clone())
    }
}

impl Default for TestHome {
    fn default() -> TestHome {
        TestHome::new()
    }
}

/// The host's interfaces, as the SDK calls them, on the test home.
pub(crate) mod host {
    use super::*;

    pub mod data {
        use super::*;
        pub use crate::bindings::domicile::app::data::{QueryOptions, SortOrder};

        pub fn get(doctype: &str, id: &str) -> Result<Doc, Error> {
            with_state(|s| s.docs.get(doctype).and_then(|d| d.get(id)).cloned())
                .map(|body| Doc { id: id.to_owned(), body: body.to_string() })
                .ok_or_else(|| Error::NotFound(format!("no {doctype} document {id}")))
        }

        pub fn put(doctype: &str, id: Option<&str>, body: &str) -> Result<String, Error> {
            let body: Value = serde_json::from_str(body).map_err(|e| Error::Invalid(e.to_string()))?;
            if !body.is_object() {
                return Err(Error::Invalid("a document is a JSON object".into()));
            }
            Ok(with_state(|s| {
                let id = id.map(str::to_owned).unwrap_or_else(|| {
                    s.next_id += 1;
                    format!("doc-{}", s.next_id)
                });
                s.docs.entry(doctype.to_owned()).or_default().insert(id.clone(), body);
                id
            }))
        }

        pub fn delete(doctype: &str, id: &str) -> Result<(), Error> {
            with_state(|s| s.docs.get_mut(doctype).and_then(|d| d.remove(id)))
                .map(drop)
                .ok_or_else(|| Error::NotFound(format!("no {doctype} document {id}")))
        }

        pub fn query(doctype: &str, selector: &str, options: &QueryOptions) -> Result<Cursor, Error> {
            let selector: Value = serde_json::from_str(selector).map_err(|e| Error::Invalid(e.to_string()))?;
            let conditions =
                selector.as_object().ok_or_else(|| Error::Invalid("a selector is a JSON object".into()))?;
            let mut found: Vec<(String, Value)> = with_state(|s| {
                s.docs
                    .get(doctype)
                    .map(|d| d.iter().filter(|(_, b)| conditions.iter().all(|(f, c)| matches(field(b, f), c))))
                    .into_iter()
                    .flatten()
                    .map(|(i, b)| (i.clone(), b.clone()))
                    .collect()
            });
            if let Some(sort) = &options.sort {
                found.sort_by(|(_, a), (_, b)| compare(field(a, &sort.field), field(b, &sort.field)));
                if sort.descending {
                    found.reverse();
                }
            }
            if let Some(limit) = options.limit {
                found.truncate(limit as usize);
            }
            Ok(Cursor(RefCell::new(found.into_iter().map(|(id, b)| Doc { id, body: b.to_string() }).collect())))
        }

        /// A query's results, handed out in batches.
        pub struct Cursor(RefCell<std::collections::VecDeque<Doc>>);

        impl Cursor {
            pub fn next(&self, max: u32) -> Result<Vec<Doc>, Error> {
                let mut left = self.0.borrow_mut();
                let n = (max as usize).min(left.len());
                Ok(left.drain(..n).collect())
            }
        }

        fn field<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
            path.split('.').try_fold(body, |v, key| v.get(key))
        }

        fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
            match (a, b) {
                (Some(Value::Number(x)), Some(Value::Number(y))) => {
                    x.as_f64().unwrap_or(0.0).total_cmp(&y.as_f64().unwrap_or(0.0))
                }
                (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
                (a, b) => a.is_some().cmp(&b.is_some()),
            }
        }

        fn matches(value: Option<&Value>, condition: &Value) -> bool {
            use std::cmp::Ordering::*;
            let Some(ops) = condition.as_object().filter(|o| o.keys().all(|k| k.starts_with('$'))) else {
                return value == Some(condition);
            };
            ops.iter().all(|(op, operand)| match op.as_str() {
                "$gt" => value.is_some() && compare(value, Some(operand)) == Greater,
                "$gte" => value.is_some() && compare(value, Some(operand)) != Less,
                "$lt" => value.is_some() && compare(value, Some(operand)) == Less,
                "$lte" => value.is_some() && compare(value, Some(operand)) != Greater,
                "$ne" => value != Some(operand),
                "$in" => operand.as_array().is_some_and(|options| value.is_some_and(|v| options.contains(v))),
                other => panic!("the test home does not know the selector operator {other}"),
            })
        }
    }

    pub mod log {
        use super::*;
        pub use crate::bindings::domicile::app::log::Level;

        pub fn write(level: Level, message: &str) {
            let level = match level {
                Level::Debug => "debug",
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            };
            // A panic's message may be logged outside a test home: keep it on stderr then.
            let logged =
                HOME.with(|h| h.borrow_mut().as_mut().map(|s| s.logs.push(format!("{level}: {message}"))).is_some());
            if !logged {
                eprintln!("{level}: {message}");
            }
        }
    }

    pub mod clock {
        use super::*;

        pub fn now_ms() -> u64 {
            with_state(|s| s.now_ms)
        }
    }

    pub mod notify {
        use super::*;

        pub fn send(title: &str, body: &str) -> Result<(), Error> {
            with_state(|s| s.notifications.push((title.to_owned(), body.to_owned())));
            Ok(())
        }
    }

    pub mod egress {
        use super::*;

        pub fn request(destination: &str, payload: &str, purpose: &str) -> Result<String, Error> {
            let payload: Value = serde_json::from_str(payload).map_err(|e| Error::Invalid(e.to_string()))?;
            Ok(with_state(|s| {
                s.outbox.push((destination.to_owned(), payload, purpose.to_owned()));
                s.outbox.len().to_string()
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use serde_json::json;

    #[test]
    fn the_sdk_reads_and_writes_the_test_home() {
        let home = TestHome::new()
            .with("io.domicile.mobility.trip", json!({"mode": "bike", "distance_m": 4200.0, "start": {"h": 8}}))
            .with_jsonl(
                "io.domicile.mobility.trip",
                "{\"mode\": \"car\", \"distance_m\": 12000}\n\n{\"mode\": \"bike\", \"distance_m\": 1200}\n",
            );
        let bikes: Vec<(String, Value)> = data::query::<Value>("io.domicile.mobility.trip", &json!({"mode": "bike"}))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(bikes.len(), 2);
        let long = data::query_with::<Value>(
            "io.domicile.mobility.trip",
            &json!({"distance_m": {"$gte": 4200}, "mode": {"$in": ["car", "bike"]}}),
            Some(("distance_m", true)),
            None,
        )
        .unwrap()
        .map(|r| r.unwrap().1["distance_m"].as_f64().unwrap())
        .collect::<Vec<_>>();
        assert_eq!(long, [12000.0, 4200.0]);
        let nested = data::query::<Value>("io.domicile.mobility.trip", &json!({"start.h": 8})).unwrap().count();
        assert_eq!(nested, 1);
        let id = data::put("io.domicile.note", None, &json!({"text": "hi"})).unwrap();
        assert_eq!(data::get::<Value>("io.domicile.note", &id).unwrap(), Some(json!({"text": "hi"})));
        data::delete("io.domicile.note", &id).unwrap();
        assert!(data::get::<Value>("io.domicile.note", &id).unwrap().is_none());
        crate::info!("{} bikes", bikes.len());
        crate::notify("Done", "2 bikes").unwrap();
        crate::egress::request("https://survey.example", &json!({"n": 2}), "count").unwrap();
        assert_eq!(home.logs(), ["info: 2 bikes"]);
        assert_eq!(home.notifications(), [("Done".to_owned(), "2 bikes".to_owned())]);
        assert_eq!(home.outbox()[0].1, json!({"n": 2}));
        assert_eq!(crate::now_ms(), 1_772_366_400_000);
    }
}
