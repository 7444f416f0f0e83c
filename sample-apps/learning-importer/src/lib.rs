//! Learning records importer: turns xAPI statements, as exported from a
//! Learning Record Store (a school's digital workspace, a MOOC, a music
//! school), into `io.domicile.learning.statement` documents.
//!
//! Accepts an LRS answer (`{"statements": [...], "more": ...}`), a JSON
//! array of statements, or a single statement. Each statement needs an
//! `id`, an `actor` (identified by `mbox`, `account` or `name`), a
//! `verb.id`, an `object.id` and a `timestamp`. The subject is the last part
//! of the first `context.contextActivities.category` id (`.../subjects/maths`
//! gives `maths`), else `other`. The same statement imported twice is one
//! document (its id is the statement's). A malformed statement is an error
//! naming it, and nothing is written.

use domicile_sdk::data;
use domicile_sdk::time::parse_rfc3339;
use serde::Serialize;
use serde_json::Value;

domicile_sdk::generate!("importer", "../../wit");

const STATEMENT: &str = "io.domicile.learning.statement";

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

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str().filter(|s| !s.trim().is_empty())
}

fn statement(v: &Value) -> Result<Statement, String> {
    let need = |path: &[&str]| text(v, path).map(str::to_owned).ok_or_else(|| format!("no {}", path.join(".")));
    let actor = text(v, &["actor", "mbox"])
        .or_else(|| text(v, &["actor", "account", "name"]))
        .or_else(|| text(v, &["actor", "name"]))
        .ok_or("no actor (mbox, account or name)")?
        .to_owned();
    let timestamp = need(&["timestamp"])?;
    if parse_rfc3339(&timestamp).is_none() {
        return Err(format!("timestamp `{timestamp}` is not an RFC 3339 time"));
    }
    let subject = v
        .pointer("/context/contextActivities/category/0/id")
        .and_then(Value::as_str)
        .and_then(|id| id.trim_end_matches('/').rsplit('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("other")
        .to_lowercase();
    Ok(Statement {
        statement_id: need(&["id"])?,
        actor,
        verb: need(&["verb", "id"])?,
        object: need(&["object", "id"])?,
        subject,
        result: v.get("result").filter(|r| r.is_object()).cloned(),
        date: timestamp[..10].to_owned(),
        timestamp,
    })
}

pub fn parse(bytes: &[u8]) -> Result<Vec<Statement>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let json: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let list = match &json {
        Value::Array(list) => list.as_slice(),
        Value::Object(o) if o.contains_key("statements") => {
            o["statements"].as_array().map(Vec::as_slice).ok_or("`statements` is not a list")?
        }
        Value::Object(o) if o.contains_key("verb") => std::slice::from_ref(&json),
        _ => return Err("expected xAPI statements: a list, an LRS answer with `statements`, or one statement".into()),
    };
    if list.is_empty() {
        return Err("the file holds no statement".into());
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            statement(v).map_err(|e| {
                let id = text(v, &["id"]).map(|id| format!(" ({id})")).unwrap_or_default();
                format!("statement {}{id}: {e}", i + 1)
            })
        })
        .collect()
}

struct LearningImporter;

impl Guest for LearningImporter {
    fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
        let statements = parse(&bytes).map_err(|e| format!("{file_name}: {e}"))?;
        let mut ids = std::collections::BTreeSet::new();
        for s in &statements {
            data::put(STATEMENT, None, s).map_err(|e| e.to_string())?;
            ids.insert(s.statement_id.clone());
        }
        let summary = serde_json::json!({ "statements": ids.len(), "repeated": statements.len() - ids.len() });
        Ok(summary.to_string())
    }
}

export!(LearningImporter);

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"id": "s1", "actor": {"mbox": "mailto:lea@example.org"}, "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "https://lyon.example/activities/fractions"}, "result": {"score": {"scaled": 0.8}},
        "context": {"contextActivities": {"category": [{"id": "https://lyon.example/subjects/Maths"}]}},
        "timestamp": "2026-03-02T16:05:00+01:00"}"#;

    #[test]
    fn reads_the_three_shapes() {
        let single = parse(ONE.as_bytes()).unwrap();
        assert_eq!(single[0].subject, "maths");
        assert_eq!(single[0].date, "2026-03-02");
        let lrs = format!(r#"{{"statements": [{ONE}, {ONE}], "more": ""}}"#);
        assert_eq!(parse(lrs.as_bytes()).unwrap().len(), 2);
        assert_eq!(parse(format!("[{ONE}]").as_bytes()).unwrap(), single);
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
    }
}
