//! Learning records importer: turns xAPI statements, as exported from a
//! Learning Record Store (a school's digital workspace, a MOOC, a music
//! school), into `io.domicile.learning.statement` documents.
//!
//! Accepts an LRS answer (`{"statements": [...], "more": ...}`), a JSON
//! array of statements (each possibly wrapped as `{"statement": {...}}`),
//! or a single statement. Each statement needs an `id`, an `actor`
//! (identified by `mbox`, `mbox_sha1sum`, `openid`, `account` or `name`),
//! a `verb.id`, an object (an activity's `id`, an agent's identifier, or a
//! sub-statement's object) and a `timestamp` (else its `stored` time). The
//! subject is the last part of the first `context.contextActivities.category`
//! id (`.../subjects/maths` gives `maths`), else `other`. The same statement imported twice is one
//! document (its id is the statement's). A malformed statement is an error
//! naming it, and nothing is written.
//!
//! A statement id names one statement for good: a statement that reuses
//! the id of another with different content (in the same file, or one
//! imported earlier) is refused, as a Learning Record Store answers
//! `409 Conflict`, instead of silently replacing it.
//!
//! Voiding, as the xAPI specification (part 2, 2.3.2) has it: a statement
//! whose verb is `http://adlnet.gov/expapi/verbs/voided` and whose object
//! is a `StatementRef` withdraws the statement it names. It is not a
//! learning record: it is kept as an `io.domicile.learning.voiding`, the
//! statement it voids is not stored (or is deleted, when an earlier import
//! stored it) and is not stored by any later import either. A voiding
//! statement cannot itself be voided: a voiding of one is ignored.

use std::collections::BTreeSet;

use domicile_sdk::import::OnBroken;
use domicile_sdk::time::parse_rfc3339;
use serde::Serialize;
use serde_json::Value;

domicile_sdk::generate!("importer", "../../wit");

/// The xAPI verb that withdraws a statement.
pub const VOIDED: &str = "http://adlnet.gov/expapi/verbs/voided";

#[derive(Debug, Serialize, PartialEq)]
pub struct Statement {
    pub statement_id: String,
    pub actor: String,
    pub verb: String,
    pub object: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    pub timestamp: String,
    pub date: String,
}

impl Statement {
    /// Whether a stored record says what this statement says: the same
    /// actor, verb, object, time and result (what an LRS compares; fields
    /// derived by an older importer do not count).
    pub fn says_what(&self, stored: &Value) -> bool {
        let text = |key: &str| stored.get(key).and_then(Value::as_str);
        text("actor") == Some(self.actor.as_str())
            && text("verb") == Some(self.verb.as_str())
            && text("object") == Some(self.object.as_str())
            && text("timestamp") == Some(self.timestamp.as_str())
            && stored.get("result") == self.result.as_ref()
    }
}

/// A voiding statement: `voided_by` withdraws `voids`.
#[derive(Debug, Serialize, PartialEq)]
pub struct Voiding {
    pub voids: String,
    pub voided_by: String,
    pub timestamp: String,
}

/// What a file holds.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// The learning records, less those the file itself voids.
    pub statements: Vec<Statement>,
    pub voidings: Vec<Voiding>,
    /// Statements of the file that a voiding in the file withdrew.
    pub voided_here: u64,
    /// Voidings of a voiding statement, which the specification forbids.
    pub ignored_voidings: u64,
}

enum Item {
    Record(Statement),
    Voiding(Voiding),
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str().filter(|s| !s.trim().is_empty())
}

/// When a statement happened: its `timestamp`, else (as the specification
/// has the LRS do) the time it was `stored`.
fn when(v: &Value) -> Result<String, String> {
    let time = text(v, &["timestamp"]).or_else(|| text(v, &["stored"])).ok_or("no timestamp (nor stored)")?;
    if parse_rfc3339(time).is_none() {
        return Err(format!("timestamp `{time}` is not an RFC 3339 time"));
    }
    Ok(time.to_owned())
}

/// An agent's or group's identifier: one of the xAPI inverse functional
/// identifiers, else its name.
fn identify(agent: &Value) -> Option<String> {
    let field = |k: &str| agent.get(k).and_then(Value::as_str).filter(|s| !s.trim().is_empty());
    field("mbox")
        .or_else(|| field("mbox_sha1sum"))
        .or_else(|| field("openid"))
        .or_else(|| text(agent, &["account", "name"]))
        .or_else(|| field("name"))
        .map(str::to_owned)
}

fn item(v: &Value) -> Result<Item, String> {
    let need = |path: &[&str]| text(v, path).map(str::to_owned).ok_or_else(|| format!("no {}", path.join(".")));
    if text(v, &["verb", "id"]) == Some(VOIDED) {
        if text(v, &["object", "objectType"]) != Some("StatementRef") {
            return Err("a voiding statement's object must be a StatementRef (the statement it voids)".into());
        }
        let timestamp = when(v)?;
        return Ok(Item::Voiding(Voiding { voids: need(&["object", "id"])?, voided_by: need(&["id"])?, timestamp }));
    }
    let actor = v.get("actor").and_then(identify).ok_or("no actor (mbox, mbox_sha1sum, openid, account or name)")?;
    let timestamp = when(v)?;
    // An activity or statement has an id; an agent or group object its identifier; a sub-statement its own object.
    let object = v.get("object").map(|o| match o.get("objectType").and_then(Value::as_str) {
        Some("Agent" | "Group") => identify(o),
        Some("SubStatement") => text(o, &["object", "id"]).map(str::to_owned),
        _ => text(o, &["id"]).map(str::to_owned),
    });
    let object = object.flatten().ok_or("no object.id")?;
    // `category` is a list, or a single activity in statements of older LRSs.
    let category = v.pointer("/context/contextActivities/category");
    let first = category.and_then(|c| c.get(0).or(Some(c))).and_then(|c| c.get("id")).and_then(Value::as_str);
    let subject = first
        .and_then(|id| id.trim_end_matches('/').rsplit(['/', '#']).next())
        .filter(|s| !s.is_empty())
        .unwrap_or("other")
        .to_lowercase();
    Ok(Item::Record(Statement {
        statement_id: need(&["id"])?,
        actor,
        verb: need(&["verb", "id"])?,
        object,
        subject,
        result: v.get("result").filter(|r| r.is_object()).cloned(),
        date: timestamp[..10].to_owned(),
        timestamp,
    }))
}

/// One statement of the file, read as the parser reaches it: how to name
/// it (its id, when it has one) and what it says, or what is wrong with it.
struct Read {
    id: String,
    item: Result<Item, String>,
}

fn read(v: &Value) -> Read {
    // Some LRS exports wrap each statement with their own bookkeeping: `{"statement": {...}, ...}`.
    let v = match v.get("statement") {
        Some(inner) if v.get("verb").is_none() && inner.is_object() => inner,
        _ => v,
    };
    Read { id: text(v, &["id"]).map(|id| format!(" ({id})")).unwrap_or_default(), item: item(v) }
}

/// What a file holds, its statements read one at a time as the JSON
/// parser reaches them, each statement's tree dropped once read: the tree of
/// a whole 15 MB export of 20,000 statements is more than the importer's
/// 64 MiB, its records a few MB.
enum Export {
    Statements(Vec<Read>),
    /// An LRS answer whose `statements` is not a list.
    NotAList,
    NotXapi,
}

/// A JSON value that should be a list of statements: `None` when it is not
/// a list (the value is skipped).
struct StatementList(Option<Vec<Read>>);

/// Answers `$answer` to every JSON value that is neither a list nor an
/// object (what is not xAPI).
macro_rules! not_a_collection {
    ($answer:expr) => {
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($answer)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok($answer)
        }
    };
}

impl<'de> serde::de::Visitor<'de> for StatementList {
    type Value = StatementList;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of xAPI statements")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = Vec::new();
        while let Some(statement) = seq.next_element::<Value>()? {
            list.push(read(&statement));
        }
        Ok(StatementList(Some(list)))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
        Ok(StatementList(None))
    }

    not_a_collection!(StatementList(None));
}

impl<'de> serde::Deserialize<'de> for StatementList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StatementList(None))
    }
}

struct ExportVisitor;

impl<'de> serde::de::Visitor<'de> for ExportVisitor {
    type Value = Export;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("xAPI statements")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Export, A::Error> {
        let list = serde::de::Visitor::visit_seq(StatementList(None), seq)?;
        Ok(list.0.map_or(Export::NotAList, Export::Statements))
    }

    /// An LRS answer (`statements`, `more`) or a single statement: the
    /// fields other than `statements` are kept until it is known which.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Export, A::Error> {
        let (mut statements, mut fields) = (None, serde_json::Map::new());
        while let Some(key) = map.next_key::<String>()? {
            if key == "statements" {
                statements = Some(map.next_value::<StatementList>()?.0);
            } else {
                fields.insert(key, map.next_value()?);
            }
        }
        Ok(match statements {
            Some(Some(list)) => Export::Statements(list),
            Some(None) => Export::NotAList,
            None if fields.contains_key("verb") => Export::Statements(vec![read(&Value::Object(fields))]),
            None => Export::NotXapi,
        })
    }

    not_a_collection!(Export::NotXapi);
}

impl<'de> serde::Deserialize<'de> for Export {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ExportVisitor)
    }
}

/// Reads an LRS export. A malformed statement goes to `on_broken` with
/// which it is and what is wrong: it fails the file
/// (`domicile_sdk::import::refuse`) or is left out. A file that is not
/// xAPI at all fails.
pub fn parse(bytes: &[u8], on_broken: &mut OnBroken<'_>) -> Result<Parsed, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let list = match domicile_sdk::import::json::<Export>(bytes)? {
        Export::Statements(list) => list,
        Export::NotAList => return Err("`statements` is not a list".into()),
        Export::NotXapi => {
            return Err("expected xAPI statements: a list, an LRS answer with `statements`, or one statement".into())
        }
    };
    if list.is_empty() {
        return Err("the file holds no statement".into());
    }
    let mut parsed = Parsed::default();
    // Each record's id, with its number in the file and where it is in `parsed.statements`.
    let mut numbered: std::collections::HashMap<String, (usize, usize)> = std::collections::HashMap::new();
    for (i, Read { id, item }) in list.into_iter().enumerate() {
        match item {
            Ok(Item::Record(s)) => match numbered.get(&s.statement_id) {
                Some(&(n, at)) if parsed.statements[at] != s => {
                    let reason = format!(
                        "reuses the id of statement {n} with other content (a Learning Record Store answers 409 Conflict): ask the school or app for a corrected export"
                    );
                    on_broken(&format!("statement {}{id}", i + 1), &reason)?;
                }
                Some(_) => parsed.statements.push(s),
                None => {
                    numbered.insert(s.statement_id.clone(), (i + 1, parsed.statements.len()));
                    parsed.statements.push(s);
                }
            },
            Ok(Item::Voiding(v)) => parsed.voidings.push(v),
            Err(reason) => on_broken(&format!("statement {}{id}", i + 1), &reason)?,
        }
    }
    let voiding_ids: BTreeSet<String> = parsed.voidings.iter().map(|v| v.voided_by.clone()).collect();
    let before = parsed.voidings.len();
    parsed.voidings.retain(|v| !voiding_ids.contains(&v.voids));
    parsed.ignored_voidings = (before - parsed.voidings.len()) as u64;
    let voided: BTreeSet<&str> = parsed.voidings.iter().map(|v| v.voids.as_str()).collect();
    let before = parsed.statements.len();
    parsed.statements.retain(|s| !voided.contains(s.statement_id.as_str()));
    parsed.voided_here = (before - parsed.statements.len()) as u64;
    Ok(parsed)
}

/// The component: the WIT glue that hands a file to the parser above and
/// stores what it gives. Natively (unit tests, fuzzing) the crate is the
/// parser alone.
#[cfg(target_arch = "wasm32")]
mod component {
    use super::*;
    use domicile_sdk::{data, log};

    const STATEMENT: &str = "io.domicile.learning.statement";
    const VOIDING: &str = "io.domicile.learning.voiding";

    /// What the importer reads of a voiding it kept earlier.
    #[derive(serde::Deserialize)]
    struct Withdrawn {
        voids: String,
    }

    /// Deletes a document when it is there; `true` when it was.
    fn delete_if_present(doctype: &str, id: &str) -> Result<bool, domicile_sdk::Error> {
        match data::delete(doctype, id) {
            Ok(()) => Ok(true),
            Err(domicile_sdk::Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    struct LearningImporter;

    impl Guest for LearningImporter {
        fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
            let mut leave_out = |location: &str, reason: &str| {
                domicile_sdk::import::leave_out(crate::domicile::app::import_report::skip, location, reason)
            };
            let parsed = parse(&bytes, &mut leave_out).map_err(|e| format!("{file_name}: {e}"))?;
            // A record imported earlier under the same id with other content is a conflict: refused before anything is written.
            let mut unchecked = false;
            for s in &parsed.statements {
                match data::get::<serde_json::Value>(STATEMENT, &s.statement_id) {
                    Ok(Some(stored)) if !s.says_what(&stored) => {
                        return Err(format!(
                            "{file_name}: statement {} reuses the id of a record imported earlier, with other content (a Learning Record Store answers 409 Conflict); nothing was imported: ask the school or app for a corrected export",
                            s.statement_id
                        ));
                    }
                    Ok(_) => {}
                    Err(domicile_sdk::Error::Denied(_)) => {
                        unchecked = true;
                        break;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            if unchecked {
                log::warn(&format!(
                    "{file_name}: not allowed to read {STATEMENT}: a record reusing the id of one imported earlier cannot be recognised"
                ));
            }
            let mut voided = parsed.voided_here;
            for voiding in &parsed.voidings {
                let withdraw = || -> Result<bool, domicile_sdk::Error> {
                    data::put(VOIDING, None, voiding)?;
                    // Importer 0.1 kept voiding statements as learning records.
                    delete_if_present(STATEMENT, &voiding.voided_by)?;
                    delete_if_present(STATEMENT, &voiding.voids)
                };
                match withdraw() {
                    Ok(deleted) => voided += u64::from(deleted),
                    Err(domicile_sdk::Error::Denied(why)) => {
                        return Err(format!(
                            "{file_name}: the file withdraws {} record(s) (xAPI voiding), and this importer may not record that ({why}): allow it to write {VOIDING} and delete {STATEMENT}, then import again; nothing was imported",
                            parsed.voidings.len()
                        ))
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            // The records earlier files withdrew (one query: voidings are few). Without the grant to
            // read them, they cannot be recognised, and the log says so.
            let mut withdrawn = BTreeSet::new();
            match data::query::<Withdrawn>(VOIDING, &serde_json::json!({})) {
                Ok(voidings) => {
                    for item in voidings {
                        withdrawn.insert(item.map_err(|e| e.to_string())?.1.voids);
                    }
                }
                Err(domicile_sdk::Error::Denied(_)) => log::warn(&format!(
                    "{file_name}: not allowed to read {VOIDING}: records withdrawn by an earlier import are not recognised"
                )),
                Err(e) => return Err(e.to_string()),
            }
            let (mut ids, mut stored) = (BTreeSet::new(), 0);
            for s in &parsed.statements {
                if withdrawn.contains(&s.statement_id) {
                    voided += 1;
                    continue;
                }
                data::put(STATEMENT, None, s).map_err(|e| e.to_string())?;
                ids.insert(s.statement_id.clone());
                stored += 1;
            }
            let summary = serde_json::json!({
                "statements": ids.len(),
                "repeated": stored - ids.len(),
                "voidings": parsed.voidings.len(),
                "voided": voided,
                "ignored_voidings": parsed.ignored_voidings,
            });
            Ok(summary.to_string())
        }
    }

    export!(LearningImporter);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Parsed, String> {
        super::parse(bytes, &mut domicile_sdk::import::refuse)
    }

    const ONE: &str = r#"{"id": "s1", "actor": {"mbox": "mailto:lea@example.org"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "https://lyon.example/activities/fractions"}, "result": {"score": {"scaled": 0.8}},
        "context": {"contextActivities": {"category": [{"id": "https://lyon.example/subjects/Maths"}]}},
        "timestamp": "2026-03-02T16:05:00+01:00"}"#;

    #[test]
    fn reads_the_three_shapes() {
        let single = parse(ONE.as_bytes()).unwrap().statements;
        assert_eq!(single[0].subject, "maths");
        assert_eq!(single[0].date, "2026-03-02");
        let lrs = format!(r#"{{"statements": [{ONE}, {ONE}], "more": ""}}"#);
        assert_eq!(parse(lrs.as_bytes()).unwrap().statements.len(), 2);
        assert_eq!(parse(format!("[{ONE}]").as_bytes()).unwrap().statements, single);
    }

    #[test]
    fn identifiers_objects_times_and_wrappers_as_lrss_write_them() {
        let variant = |from: &str, to: &str| {
            let text = ONE.replacen(from, to, 1);
            assert_ne!(text, ONE, "{from}");
            parse(text.as_bytes()).map(|p| p.statements.into_iter().next().unwrap())
        };
        let hashed = r#""actor": {"mbox_sha1sum": "ebd31e95054c018b10727ccffd2ef2ec3a016ee9"}"#;
        assert_eq!(variant(r#""actor": {"mbox": "mailto:lea@example.org"}"#, hashed).unwrap().actor.len(), 40);
        let agent = r#""object": {"objectType": "Agent", "mbox": "mailto:tutor@example.org"}"#;
        assert_eq!(
            variant(r#""object": {"id": "https://lyon.example/activities/fractions"}"#, agent).unwrap().object,
            "mailto:tutor@example.org"
        );
        let sub = r#""object": {"objectType": "SubStatement", "actor": {"name": "x"}, "verb": {"id": "v"}, "object": {"id": "https://a.example/b"}}"#;
        assert_eq!(
            variant(r#""object": {"id": "https://lyon.example/activities/fractions"}"#, sub).unwrap().object,
            "https://a.example/b"
        );
        let stored = variant(r#""timestamp""#, r#""stored""#).unwrap();
        assert_eq!(stored.timestamp, "2026-03-02T16:05:00+01:00");
        let single_category = variant(
            r#""category": [{"id": "https://lyon.example/subjects/Maths"}]"#,
            r#""category": {"id": "https://lyon.example/subjects#physique"}"#,
        );
        assert_eq!(single_category.unwrap().subject, "physique");
        let wrapped = parse(format!(r#"[{{"statement": {ONE}, "_id": "5f1", "active": true}}]"#).as_bytes()).unwrap();
        assert_eq!(wrapped.statements[0].statement_id, "s1");
        assert_eq!(
            variant(r#""actor": {"mbox": "mailto:lea@example.org"}"#, r#""actor": {}"#).unwrap_err(),
            "statement 1 (s1): no actor (mbox, mbox_sha1sum, openid, account or name)"
        );
        assert!(variant(r#""timestamp": "2026-03-02T16:05:00+01:00""#, r#""timestamp": "02/03/2026""#)
            .unwrap_err()
            .contains("not an RFC 3339 time"));
    }

    /// An id names one statement: the same statement again is one record,
    /// another statement under its id is refused (409 Conflict for an LRS).
    #[test]
    fn a_statement_reusing_an_id_with_other_content_is_refused() {
        let again = format!("[{ONE}, {ONE}]");
        assert_eq!(parse(again.as_bytes()).unwrap().statements.len(), 2, "the same statement twice");
        let other = ONE.replace("\"scaled\": 0.8", "\"scaled\": 0.3");
        let conflict = format!("[{ONE}, {other}]");
        assert_eq!(
            parse(conflict.as_bytes()).unwrap_err(),
            "statement 2 (s1): reuses the id of statement 1 with other content (a Learning Record Store answers 409 Conflict): ask the school or app for a corrected export"
        );
        let mut left_out = Vec::new();
        let kept = super::parse(conflict.as_bytes(), &mut |location, _| {
            left_out.push(location.to_owned());
            Ok(())
        })
        .unwrap();
        assert_eq!((kept.statements.len(), left_out.as_slice()), (1, ["statement 2 (s1)".to_owned()].as_slice()));
        let stored = serde_json::to_value(&parse(ONE.as_bytes()).unwrap().statements[0]).unwrap();
        let different = parse(other.as_bytes()).unwrap().statements.remove(0);
        assert!(!different.says_what(&stored));
        assert!(parse(ONE.as_bytes()).unwrap().statements[0].says_what(&stored));
        let cut = parse(&again.as_bytes()[..again.len() - 3]).unwrap_err();
        assert!(cut.contains("before its JSON is complete: it is cut off"), "{cut}");
    }

    #[test]
    fn errors_name_the_statement() {
        let bad = format!(
            "[{ONE}, {}]",
            ONE.replace(r#""verb": {"id": "http://adlnet.gov/expapi/verbs/completed"}"#, r#""verb": {}"#)
        );
        assert_eq!(parse(bad.as_bytes()).unwrap_err(), "statement 2 (s1): no verb.id");
        assert!(parse(b"[]").unwrap_err().contains("no statement"));
        assert!(parse(b"{oops").unwrap_err().starts_with("not JSON"));
        assert_eq!(parse(br#"{"statements": {"id": "s1"}, "more": ""}"#).unwrap_err(), "`statements` is not a list");
        for not_xapi in [&b"\"statements\""[..], b"12", b"null", br#"{"more": "", "id": "s1"}"#] {
            assert!(parse(not_xapi).unwrap_err().starts_with("expected xAPI statements"));
        }
    }

    fn voiding(id: &str, voids: &str) -> String {
        format!(
            r#"{{"id": "{id}", "actor": {{"mbox": "mailto:teacher@example.org"}}, "verb": {{"id": "{VOIDED}"}},
                "object": {{"objectType": "StatementRef", "id": "{voids}"}}, "timestamp": "2026-03-03T08:00:00+01:00"}}"#
        )
    }

    #[test]
    fn voided_statements_do_not_count_and_voidings_are_not_records() {
        let two = format!("[{ONE}, {}, {}]", ONE.replace("\"s1\"", "\"s2\""), voiding("v1", "s1"));
        let parsed = parse(two.as_bytes()).unwrap();
        let kept: Vec<&str> = parsed.statements.iter().map(|s| s.statement_id.as_str()).collect();
        assert_eq!(kept, ["s2"]);
        assert_eq!(parsed.voided_here, 1);
        assert_eq!(
            parsed.voidings,
            [Voiding { voids: "s1".into(), voided_by: "v1".into(), timestamp: "2026-03-03T08:00:00+01:00".into() }]
        );
        // The voiding may come first; a voiding of a voiding is ignored (it cannot be voided).
        let reordered = format!("[{}, {}, {ONE}]", voiding("v1", "s1"), voiding("v2", "v1"));
        let parsed = parse(reordered.as_bytes()).unwrap();
        assert!(parsed.statements.is_empty());
        assert_eq!((parsed.voidings.len(), parsed.ignored_voidings), (1, 1));
        // A voiding that names an activity, not a statement, is malformed.
        let bad = voiding("v3", "s1").replace("StatementRef", "Activity");
        assert!(parse(bad.as_bytes())
            .unwrap_err()
            .starts_with("statement 1 (v3): a voiding statement's object must be"));
    }
}
