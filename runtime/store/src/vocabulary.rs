//! The doctypes this runtime knows: a JSON Schema for each, with the fields
//! to index and the fields that identify a document naturally (a bank
//! operation's FITID, a meter reading's time). Schemas are JSON Schema
//! documents; the `x-domicile` block, ignored by validators, carries the
//! rest:
//!
//! ```json
//! "x-domicile": { "indexes": ["date"], "natural-key": ["account", "fitid"] }
//! ```
//!
//! A doctype without a schema accepts any JSON object.

use std::collections::BTreeMap;

use domicile_manifest::Doctype;
use serde::Deserialize;
use serde_json::Value;

use crate::{FieldPath, StoreError};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Extension {
    #[serde(default)]
    indexes: Vec<String>,
    #[serde(default)]
    natural_key: Vec<String>,
}

/// One doctype's schema and storage settings.
pub struct DoctypeDef {
    pub doctype: Doctype,
    /// The schema file, as shipped (exported with the resident's data).
    pub schema_text: String,
    validator: jsonschema::Validator,
    pub indexes: Vec<FieldPath>,
    pub natural_key: Vec<FieldPath>,
}

/// All known doctypes.
#[derive(Default)]
pub struct Vocabulary {
    defs: BTreeMap<Doctype, DoctypeDef>,
}

/// The namespace of the doctypes domicile defines.
const OWN_NAMESPACE: &str = "io.domicile.";

/// ` (did you mean `x`?)` for the known name closest to `word`, when one is
/// close enough to be a typo of it.
fn did_you_mean(word: &str, known: &[String]) -> String {
    let best = known
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, name)) => format!(" (did you mean `{name}`?)"),
        None => String::new(),
    }
}

fn bad_schema(name: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("doctype schema {name}: {why}"))
}

/// The schemas shipped in `manifests/doctypes/`, built into the runtime.
const BUILTIN: [(&str, &str); 10] = [
    ("io.domicile.bank.balance.json", include_str!("../../../manifests/doctypes/io.domicile.bank.balance.json")),
    ("io.domicile.bank.operation.json", include_str!("../../../manifests/doctypes/io.domicile.bank.operation.json")),
    ("io.domicile.campaign.result.json", include_str!("../../../manifests/doctypes/io.domicile.campaign.result.json")),
    ("io.domicile.energy.reading.json", include_str!("../../../manifests/doctypes/io.domicile.energy.reading.json")),
    ("io.domicile.health.care.json", include_str!("../../../manifests/doctypes/io.domicile.health.care.json")),
    (
        "io.domicile.health.reimbursement.json",
        include_str!("../../../manifests/doctypes/io.domicile.health.reimbursement.json"),
    ),
    (
        "io.domicile.learning.statement.json",
        include_str!("../../../manifests/doctypes/io.domicile.learning.statement.json"),
    ),
    (
        "io.domicile.learning.voiding.json",
        include_str!("../../../manifests/doctypes/io.domicile.learning.voiding.json"),
    ),
    ("io.domicile.mobility.trace.json", include_str!("../../../manifests/doctypes/io.domicile.mobility.trace.json")),
    ("io.domicile.mobility.trip.json", include_str!("../../../manifests/doctypes/io.domicile.mobility.trip.json")),
];

impl Vocabulary {
    /// The sample vocabulary every home knows (`manifests/doctypes/`).
    pub fn builtin() -> Vocabulary {
        Vocabulary::from_schemas(BUILTIN).expect("the built-in schemas are valid (checked by tests)")
    }

    /// Builds the vocabulary from `(file name, text)` pairs; each file is
    /// named `<doctype>.json`.
    pub fn from_schemas<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Vocabulary, StoreError> {
        let mut defs = BTreeMap::new();
        for (name, text) in files {
            let doctype: Doctype = name
                .strip_suffix(".json")
                .ok_or_else(|| bad_schema(name, "the file must be named <doctype>.json"))?
                .parse()
                .map_err(|e| bad_schema(name, e))?;
            let schema: Value = serde_json::from_str(text).map_err(|e| bad_schema(name, e))?;
            let extension: Extension = match schema.get("x-domicile") {
                Some(x) => serde_json::from_value(x.clone()).map_err(|e| bad_schema(name, e))?,
                None => Extension::default(),
            };
            let paths = |list: &[String]| list.iter().map(|f| FieldPath::parse(f)).collect::<Result<Vec<_>, _>>();
            let validator = jsonschema::validator_for(&schema).map_err(|e| bad_schema(name, e))?;
            let def = DoctypeDef {
                doctype: doctype.clone(),
                schema_text: text.to_owned(),
                validator,
                indexes: paths(&extension.indexes)?,
                natural_key: paths(&extension.natural_key)?,
            };
            defs.insert(doctype, def);
        }
        Ok(Vocabulary { defs })
    }

    /// The schema's `title`: what a document of the doctype is, in words.
    pub fn title(&self, doctype: &Doctype) -> Option<String> {
        let schema: Value = serde_json::from_str(&self.get(doctype)?.schema_text).ok()?;
        schema.get("title")?.as_str().map(str::to_owned)
    }

    /// The schema's top-level properties: the fields a grant can be narrowed to.
    pub fn fields(&self, doctype: &Doctype) -> Vec<String> {
        let Some(schema) = self.get(doctype).and_then(|d| serde_json::from_str::<Value>(&d.schema_text).ok()) else {
            return Vec::new();
        };
        schema.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default()
    }

    pub fn get(&self, doctype: &Doctype) -> Option<&DoctypeDef> {
        self.defs.get(doctype)
    }

    pub fn iter(&self) -> impl Iterator<Item = &DoctypeDef> {
        self.defs.values()
    }

    /// The indexed fields of a doctype (none without a schema).
    pub fn indexes(&self, doctype: &Doctype) -> &[FieldPath] {
        self.defs.get(doctype).map_or(&[], |d| &d.indexes)
    }

    /// Checks what a manifest asks for against the doctypes this runtime
    /// knows: a doctype of domicile's own namespace (`io.domicile.`) must
    /// exist, and the fields a read is narrowed to must be fields of its
    /// schema. An app's own doctype (another namespace) has no schema here
    /// and is accepted. The message says what was probably meant.
    pub fn check_permissions(&self, permissions: &[domicile_manifest::Permission]) -> Result<(), StoreError> {
        let mut problems = Vec::new();
        for p in permissions {
            if self.get(&p.doctype).is_none() {
                if p.doctype.as_str().starts_with(OWN_NAMESPACE) {
                    let known = self.defs.keys().map(|d| d.as_str().to_owned()).collect::<Vec<_>>();
                    problems.push(format!(
                        "`{}` is not a doctype domicile knows{}",
                        p.doctype,
                        did_you_mean(p.doctype.as_str(), &known)
                    ));
                }
                continue;
            }
            let known = self.fields(&p.doctype);
            for field in p.fields.iter().flatten() {
                if !known.iter().any(|k| k == field.as_str()) {
                    problems.push(format!(
                        "`{}` has no field `{field}`{}",
                        p.doctype,
                        did_you_mean(field.as_str(), &known)
                    ));
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(StoreError::Invalid(format!("the manifest asks for what does not exist: {}", problems.join("; "))))
    }

    /// Checks a body against its doctype's schema. The message names the
    /// field and the rule, never the value (it may be personal).
    pub fn validate(&self, doctype: &Doctype, body: &Value) -> Result<(), StoreError> {
        let Some(def) = self.defs.get(doctype) else { return Ok(()) };
        let problems: Vec<String> = def
            .validator
            .iter_errors(body)
            .take(3)
            .map(|e| {
                let at = e.instance_path().as_str().to_owned();
                let at = if at.is_empty() { "the document".to_owned() } else { format!("field `{at}`") };
                format!("{at}: {}", e.masked())
            })
            .collect();
        if problems.is_empty() {
            return Ok(());
        }
        Err(StoreError::Invalid(format!("document does not match the schema of `{doctype}`: {}", problems.join("; "))))
    }

    /// The id a document gets from its natural key, when its doctype has one
    /// and the document has every field of it: re-importing the same record
    /// then replaces it instead of duplicating it.
    pub fn natural_id(&self, doctype: &Doctype, body: &Value) -> Option<String> {
        let def = self.defs.get(doctype)?;
        if def.natural_key.is_empty() {
            return None;
        }
        let parts: Option<Vec<String>> = def
            .natural_key
            .iter()
            .map(|f| match f.lookup(body)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
            .collect();
        let id = parts?.join("|");
        (id.chars().count() <= 200 && !id.chars().any(char::is_control)).then_some(id)
    }
}
