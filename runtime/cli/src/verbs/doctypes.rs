//! `domicile doctypes` and `domicile doctype show NAME`: what each doctype
//! holds, read from the JSON Schemas the runtime ships
//! (`manifests/doctypes/`), so that an app developer knows what a field
//! means (is a load-curve `at` the start or the end of its interval?)
//! without reading an importer's source.

use anyhow::{Context, Result};
use domicile_store::Vocabulary;
use serde_json::{json, Value};

use crate::answer::{lines, say};
use crate::terminal::safe;

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum DoctypeCommand {
    /// Each field of DOCTYPE: type, unit or allowed values, meaning; `--json` prints its JSON Schema.
    Show { doctype: String },
}

pub fn list(json: bool) -> Result<()> {
    let vocabulary = Vocabulary::builtin();
    let rows: Vec<(String, String)> = vocabulary
        .iter()
        .map(|def| (def.doctype.to_string(), vocabulary.title(&def.doctype).unwrap_or_default()))
        .collect();
    let list: Vec<Value> = rows.iter().map(|(d, t)| json!({ "doctype": d, "title": t })).collect();
    say(json, &list, |_| {
        let width = rows.iter().map(|(d, _)| d.len()).max().unwrap_or(0);
        let mut shown: Vec<String> =
            rows.iter().map(|(doctype, title)| format!("{doctype:width$}  {}", safe(title))).collect();
        shown.push("\n`domicile doctype show DOCTYPE` lists a doctype's fields and what they mean".into());
        lines(shown)
    })
}

/// A field's type in words: `string (YYYY-MM-DD)`, `one of: W, Wh`, ...
fn type_of(field: &Value) -> String {
    if let Some(values) = field.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| v.as_str().map_or(v.to_string(), str::to_owned)).collect();
        return format!("one of: {}", values.join(", "));
    }
    let kind = field.get("type").and_then(Value::as_str).unwrap_or("any");
    match field.get("pattern").and_then(Value::as_str) {
        Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}$") => "date (YYYY-MM-DD)".into(),
        Some("^[0-9]{4}-[0-9]{2}$") => "month (YYYY-MM)".into(),
        Some("^[A-Z]{3}$") => "currency code (3 letters)".into(),
        _ => match (field.get("minimum").and_then(Value::as_f64), kind) {
            (Some(min), "number" | "integer") => format!("{kind} ≥ {min}"),
            _ => kind.to_owned(),
        },
    }
}

pub fn show(doctype: String, json: bool) -> Result<()> {
    let vocabulary = Vocabulary::builtin();
    let name = doctype.parse().with_context(|| format!("`{doctype}` is not a doctype name"))?;
    let def = vocabulary.get(&name).with_context(|| {
        let known: Vec<String> = vocabulary.iter().map(|d| d.doctype.to_string()).collect();
        format!("domicile has no doctype `{doctype}`; it knows {}", known.join(", "))
    })?;
    let schema: Value = serde_json::from_str(&def.schema_text).context("the doctype's schema is not JSON")?;
    // Its JSON is the doctype's JSON Schema.
    say(json, &schema, |schema| {
        let mut shown = vec![format!("{}: {}", def.doctype, safe(schema["title"].as_str().unwrap_or_default()))];
        let required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let fields = schema["properties"].as_object().cloned().unwrap_or_default();
        let width = fields.keys().map(String::len).max().unwrap_or(0);
        for (field, spec) in &fields {
            let must = if required.contains(&field.as_str()) { "required" } else { "optional" };
            shown.push(format!("  {field:width$}  {}, {must}", type_of(spec)));
            if let Some(meaning) = spec.get("description").and_then(Value::as_str) {
                shown.push(format!("  {:width$}  {}", "", safe(meaning)));
            }
        }
        let names =
            |paths: &[domicile_store::FieldPath]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
        if !def.indexes.is_empty() {
            shown.push(format!("indexed (fast selectors and sorts): {}", names(&def.indexes)));
        }
        if !def.natural_key.is_empty() {
            shown.push(format!(
                "identified by: {} (a document with the same values replaces the one stored)",
                names(&def.natural_key)
            ));
        }
        lines(shown)
    })
}
