//! Write domicile apps in Rust.
//!
//! This crate wraps the guest bindings of domicile's WIT imports (`data`,
//! `log`, `clock`, `egress`, `notify`) in a small typed API: documents are serde values, queries
//! are iterators that fetch documents in batches, errors implement
//! `Display`, a panic's message and location go to the app's log, and
//! [`view`] builds what domicile draws next to a service's output. An app crate generates its own world's exports with
//! `wit_bindgen::generate!` and points the imports at [`bindings`] (see the
//! sample apps, or "Write an app" in docs/developer.md).

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "imports",
    });
}

/// The bindings generator, re-exported so apps need no other dependency.
pub use wit_bindgen;

/// Generates an app's bindings: the trait of its world's export (`Guest`)
/// and the `export!` macro, with domicile's imports taken from this SDK.
///
/// ```ignore
/// domicile_sdk::generate!("service", "../../wit");   // or "importer"
/// ```
///
/// The path is the folder holding domicile's WIT, relative to the app's
/// `Cargo.toml`. Components that also import WASI pass the name of a world
/// that includes it and a third argument, `generate_all`.
#[macro_export]
macro_rules! generate {
    ($world:literal, $path:literal $(, $option:ident)?) => {
        $crate::wit_bindgen::generate!({
            path: $path,
            world: $world,
            runtime_path: "domicile_sdk::wit_bindgen::rt",
            with: {
                "domicile:app/types@0.1.0": domicile_sdk::bindings::domicile::app::types,
                "domicile:app/data@0.1.0": domicile_sdk::bindings::domicile::app::data,
                "domicile:app/log@0.1.0": domicile_sdk::bindings::domicile::app::log,
                "domicile:app/clock@0.1.0": domicile_sdk::bindings::domicile::app::clock,
                "domicile:app/egress@0.1.0": domicile_sdk::bindings::domicile::app::egress,
                "domicile:app/notify@0.1.0": domicile_sdk::bindings::domicile::app::notify,
            },
            $($option,)?
        });

        // Runs before the app's export (wit-bindgen calls the module's
        // constructors first): from then on a panic's message and location
        // go to the app's log, and a crash's error quotes them.
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[link_section = ".init_array"]
        static __DOMICILE_SDK_START: extern "C" fn() = $crate::__start;
    };
}

#[doc(hidden)]
pub extern "C" fn __start() {
    std::panic::set_hook(Box::new(|panic| {
        let payload = panic.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let at = panic.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
        log::error(&format!("panic{at}: {message}"));
    }));
}

// In a component the host answers; compiled natively (`cargo test`), the
// test home of [`testing`] does.
#[cfg(target_arch = "wasm32")]
use bindings::domicile::app::{clock, data as wit_data, egress as wit_egress, log as wit_log, notify as wit_notify};
use serde::de::DeserializeOwned;
use serde::Serialize;
#[cfg(not(target_arch = "wasm32"))]
use testing::host::{clock, data as wit_data, egress as wit_egress, log as wit_log, notify as wit_notify};

use bindings::domicile::app::types::Error as WitError;

/// Why the host refused a data call. The app decides what to do with it:
/// a refusal is an ordinary result, never a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The resident did not grant this, or the manifest did not declare it.
    Denied(String),
    NotFound(String),
    /// The request was malformed (bad doctype, JSON, selector), or a
    /// document did not have the shape the app expected.
    Invalid(String),
    /// A limit of the invocation or of the resident's space.
    Limit(String),
}

impl From<WitError> for Error {
    fn from(e: WitError) -> Error {
        match e {
            WitError::Denied(m) => Error::Denied(m),
            WitError::NotFound(m) => Error::NotFound(m),
            WitError::Invalid(m) => Error::Invalid(m),
            WitError::Limit(m) => Error::Limit(m),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Denied(m) => write!(f, "denied: {m}"),
            Error::NotFound(m) => write!(f, "not found: {m}"),
            Error::Invalid(m) => write!(f, "invalid: {m}"),
            Error::Limit(m) => write!(f, "limit: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Typed access to the resident's documents.
pub mod data {
    use super::*;

    /// How many documents one host call fetches.
    pub const BATCH: u32 = 256;

    /// Reads one document; `Ok(None)` when it does not exist.
    pub fn get<T: DeserializeOwned>(doctype: &str, id: &str) -> Result<Option<T>, Error> {
        match wit_data::get(doctype, id) {
            Ok(doc) => decode(&doc.body).map(Some),
            Err(WitError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates (`id: None`) or replaces a document; returns its id.
    pub fn put<T: Serialize>(doctype: &str, id: Option<&str>, body: &T) -> Result<String, Error> {
        let body = serde_json::to_string(body).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(wit_data::put(doctype, id, &body)?)
    }

    pub fn delete(doctype: &str, id: &str) -> Result<(), Error> {
        Ok(wit_data::delete(doctype, id)?)
    }

    /// Documents of `doctype` matching `selector` (`serde_json::json!({})`
    /// for all), as `(id, body)` pairs.
    pub fn query<T: DeserializeOwned>(doctype: &str, selector: &serde_json::Value) -> Result<Query<T>, Error> {
        query_with(doctype, selector, None, None)
    }

    /// Like [`query`], ordered by `sort` (`("date", false)`: ascending) and
    /// returning at most `limit` documents.
    pub fn query_with<T: DeserializeOwned>(
        doctype: &str,
        selector: &serde_json::Value,
        sort: Option<(&str, bool)>,
        limit: Option<u32>,
    ) -> Result<Query<T>, Error> {
        let sort = sort.map(|(field, descending)| wit_data::SortOrder { field: field.to_owned(), descending });
        let cursor = wit_data::query(doctype, &selector.to_string(), &wit_data::QueryOptions { limit, sort })?;
        Ok(Query { cursor, batch: Vec::new().into_iter(), done: false, _t: std::marker::PhantomData })
    }

    /// An iterator over a query's results, fetched [`BATCH`] at a time.
    pub struct Query<T> {
        cursor: wit_data::Cursor,
        batch: std::vec::IntoIter<super::bindings::domicile::app::types::Doc>,
        done: bool,
        _t: std::marker::PhantomData<T>,
    }

    impl<T: DeserializeOwned> Iterator for Query<T> {
        type Item = Result<(String, T), Error>;
        fn next(&mut self) -> Option<Self::Item> {
            loop {
                if let Some(doc) = self.batch.next() {
                    return Some(decode(&doc.body).map(|body| (doc.id, body)));
                }
                if self.done {
                    return None;
                }
                match self.cursor.next(BATCH) {
                    Ok(docs) if docs.is_empty() => self.done = true,
                    Ok(docs) => self.batch = docs.into_iter(),
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e.into()));
                    }
                }
            }
        }
    }

    fn decode<T: DeserializeOwned>(body: &str) -> Result<T, Error> {
        serde_json::from_str(body).map_err(|e| Error::Invalid(shape_error(&e.to_string())))
    }

    /// What a decode error means for an app: a missing field is often one
    /// the app may not see, which serde alone cannot tell.
    pub(crate) fn shape_error(serde: &str) -> String {
        let mut message = format!("document does not have the expected shape: {serde}");
        if let Some(field) = serde.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
            message.push_str(&format!(
                "; if documents of this doctype have `{field}`, it is withheld from this app: declare it in the \
                 manifest's `fields` and ask the resident to grant it, or make it an `Option` if it may be absent"
            ));
        }
        message
    }
}

/// The app's log, which the resident can read (`domicile logs`), with a
/// level per line (or the [`info!`] family of macros). What `println!` and
/// `eprintln!` print reaches the log too, as `stdout` and `stderr` lines
/// (apps are built for `wasm32-wasip2`, whose standard output the runtime
/// captures).
pub mod log {
    use super::wit_log::{write, Level};
    pub fn debug(message: &str) {
        write(Level::Debug, message)
    }
    pub fn info(message: &str) {
        write(Level::Info, message)
    }
    pub fn warn(message: &str) {
        write(Level::Warn, message)
    }
    pub fn error(message: &str) {
        write(Level::Error, message)
    }
}

/// Writes a formatted line to the app's log at level info: `info!("{n} readings")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::info(&format!($($arg)*)) };
}

/// Writes a formatted line to the app's log at level debug.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::debug(&format!($($arg)*)) };
}

/// Writes a formatted line to the app's log at level warn.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::warn(&format!($($arg)*)) };
}

/// Writes a formatted line to the app's log at level error.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::error(&format!($($arg)*)) };
}

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;
pub mod view;

/// Why a service runs on its own: the `trigger` of its input when one of
/// the manifest's `[[triggers]]` started it (absent when the resident ran
/// it). Put `trigger: Option<domicile_sdk::Trigger>` in the input type.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Trigger {
    /// A schedule's slot came: `slot` is its start (RFC 3339, UTC), `since`
    /// the start of the slot it last ran for.
    Schedule { schedule: String, slot: String, since: String },
    /// Documents of `doctype` were added, changed or deleted by someone
    /// else: `changes` of them (`at_least` when there were more to count)
    /// since `since`.
    OnChange {
        doctype: String,
        changes: u64,
        #[serde(default)]
        at_least: bool,
        since: String,
    },
}

/// Parses a service's JSON input into its input type; an empty input is
/// the type's default. The error says what was wrong, for the resident.
pub fn input<T: DeserializeOwned + Default>(input: &str) -> Result<T, String> {
    if input.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(input).map_err(|e| format!("bad input: {e}"))
}

/// `x` rounded to `places` decimals, for figures shown to people.
pub fn round(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}

/// Milliseconds since the Unix epoch, from the host (there is no other clock).
pub fn now_ms() -> u64 {
    clock::now_ms()
}

/// Asking to send data out of the resident's space. Nothing is sent by the
/// app: the request waits in the resident's outbox until they approve it.
pub mod egress {
    use super::*;

    /// Queues `payload` (serialised to JSON) for `destination`, which the
    /// manifest must declare under `[egress]`; returns the request's id.
    pub fn request<T: Serialize>(destination: &str, payload: &T, purpose: &str) -> Result<String, Error> {
        let payload = serde_json::to_string(payload).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(wit_egress::request(destination, &payload, purpose)?)
    }
}

/// For importers: what becomes of a broken record of a file. By default a
/// broken record fails the whole file; when the resident chose to import the
/// valid records, the host lists it for them and the import goes on.
///
/// ```ignore
/// // In an importer, with its generated bindings:
/// let mut on_broken = |location: &str, reason: &str| {
///     domicile_sdk::import::leave_out(domicile::app::import_report::skip, location, reason)
/// };
/// ```
pub mod import {
    use super::WitError;

    /// Decides about one broken record (where it is, what is wrong): `Ok`
    /// leaves it out and goes on, `Err` fails the file with that message.
    pub type OnBroken<'a> = dyn FnMut(&str, &str) -> Result<(), String> + 'a;

    /// A broken record fails the file; the message says where and why (for
    /// parsers used outside domicile, and for tests).
    pub fn refuse(location: &str, reason: &str) -> Result<(), String> {
        Err(format!("{location}: {reason}"))
    }

    /// Reads a whole JSON export. One that ends before its JSON does (a
    /// transfer cut off) is refused as such, saying where it ends; anything
    /// else that is not JSON says what the parser found.
    pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| {
            if e.is_eof() {
                format!(
                    "the file ends (line {}) before its JSON is complete: it is cut off; export or download it again",
                    e.line()
                )
            } else {
                format!("not JSON: {e}")
            }
        })
    }

    /// Asks the host to leave the record out (the importer's generated
    /// `import_report::skip`); when the resident imports whole files, the
    /// record fails the file as [`refuse`] says.
    pub fn leave_out(skip: fn(&str, &str) -> Result<(), WitError>, location: &str, reason: &str) -> Result<(), String> {
        match skip(location, reason) {
            Ok(()) => Ok(()),
            Err(WitError::Limit(why)) => Err(format!("{location}: {reason} ({why})")),
            Err(_) => refuse(location, reason),
        }
    }
}

/// Leaves a message for the resident (`domicile notifications`).
pub fn notify(title: &str, body: &str) -> Result<(), Error> {
    Ok(wit_notify::send(title, body)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_missing_field_says_it_may_be_withheld() {
        let err = serde_json::from_str::<std::collections::BTreeMap<String, f64>>("[]").unwrap_err();
        assert!(!super::data::shape_error(&err.to_string()).contains("withheld"));
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Reading {
            kwh: f64,
        }
        let err = serde_json::from_str::<Reading>(r#"{"at": "x"}"#).unwrap_err();
        let message = super::data::shape_error(&err.to_string());
        assert!(message.contains("missing field `kwh`"), "{message}");
        assert!(message.contains("`kwh`, it is withheld from this app"), "{message}");
    }
}
