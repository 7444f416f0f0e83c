//! A resident's documents: `import` (an export file, through an importer
//! app), `run` (a service app), `docs`, `put`, `delete` and `changes`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use domicile_home::{format_ms, Home};
use domicile_host::{ImportMode, Imported};
use domicile_manifest::Doctype;
use domicile_store::{DocId, Query, ResidentSpace, Selector, Sort};
use serde_json::json;

use crate::answer::{say, say_json_text};
use crate::terminal::{self, safe};

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct ImportArgs {
    pub importer: String,
    pub file: PathBuf,
    /// Import the valid records of a file with broken ones, and list every record left out (where and why).
    /// Without it, one broken record refuses the whole file and nothing is imported.
    #[arg(long)]
    pub partial: bool,
    /// Leave the on-change triggers this write makes due to the next
    /// `domicile triggers run-due` (or the server) instead of running
    /// them before the command ends (a script importing many files).
    #[arg(long)]
    #[serde(default)]
    pub no_triggers: bool,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct RunArgs {
    pub app: String,
    /// The app's input, as JSON.
    #[arg(long, default_value = "{}")]
    pub input: String,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct DocsArgs {
    pub doctype: String,
    /// A selector, e.g. '{"mode": "bike", "distance_m": {"$gt": 1000}}'.
    #[arg(long = "where", value_name = "JSON", default_value = "{}")]
    pub selector: String,
    /// Order by a field; prefix with `-` for descending (`--sort=-date`).
    #[arg(long, value_name = "FIELD", allow_hyphen_values = true)]
    pub sort: Option<String>,
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct PutArgs {
    pub doctype: String,
    /// The document's id (default: its natural key, or a new id).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// The document body, a JSON object.
    #[arg(required_unless_present = "jsonl", conflicts_with = "jsonl")]
    pub body: Option<String>,
    /// Read `{"id": ..., "body": {...}}` lines from stdin; print `ok ID`
    /// once each is on disk.
    #[arg(long)]
    pub jsonl: bool,
    /// Leave the on-change triggers this write makes due to the next
    /// `domicile triggers run-due` (or the server) instead of running
    /// them before the command ends (a script importing many files).
    #[arg(long)]
    #[serde(default)]
    pub no_triggers: bool,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct DeleteArgs {
    pub doctype: String,
    pub id: String,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct ChangesArgs {
    pub doctype: String,
    /// Only changes after this sequence number.
    #[arg(long, default_value_t = 0)]
    pub since: u64,
}

/// `domicile import IMPORTER FILE`: with its progress on a terminal, and
/// the on-change triggers it makes due run before the command ends.
pub async fn import(home: &Home, space: &ResidentSpace, args: ImportArgs, json: bool) -> Result<()> {
    let ImportArgs { importer, file, partial, no_triggers } = args;
    let bytes = crate::io::read_given(&file)?;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mode = if partial { ImportMode::ValidRecords } else { ImportMode::AllOrNothing };
    let progress = std::sync::Arc::new(domicile_host::ImportProgress::default());
    let watch = crate::progress::ImportWatch::start(&name, bytes.len(), progress.clone(), json);
    let imported = home.import(space, &importer.parse()?, &name, &bytes, mode, progress).await;
    drop(watch);
    let imported = imported?;
    print_import(&name, &importer, &imported, partial, json)?;
    crate::verbs::triggers::after_write(home, space, json, no_triggers).await
}

/// `domicile run APP [--input JSON]`: its view drawn, or its JSON.
pub async fn run(home: &Home, space: &ResidentSpace, args: RunArgs, json: bool) -> Result<()> {
    let RunArgs { app, input } = args;
    serde_json::from_str::<serde_json::Value>(&input).context("--input is not JSON")?;
    let output = home.run(space, &app.parse()?, &input).await?;
    say_json_text(json, &output, || terminal::service_output(&output))?;
    // What the app wrote may be another app's new data.
    crate::verbs::triggers::after_write(home, space, json, false).await
}

/// `domicile put DOCTYPE BODY` or `--jsonl` from stdin.
pub async fn put(home: &Home, space: &ResidentSpace, args: PutArgs, json: bool) -> Result<()> {
    let PutArgs { doctype, id, body, jsonl, no_triggers } = args;
    let doctype: Doctype = doctype.parse()?;
    if jsonl {
        put_lines(home, space, &doctype)?;
    } else {
        let body: serde_json::Value =
            serde_json::from_str(body.as_deref().unwrap_or_default()).context("the body is not JSON")?;
        outln!("{}", put_one(home, space, &doctype, id.as_deref(), body)?);
    }
    crate::verbs::triggers::after_write(home, space, json, no_triggers).await
}

/// `domicile delete DOCTYPE ID`.
pub async fn delete(home: &Home, space: &ResidentSpace, args: DeleteArgs, json: bool) -> Result<()> {
    let DeleteArgs { doctype, id } = args;
    home.delete_document(space, &doctype.parse()?, id.parse()?)?;
    say(json, &json!({ "deleted": id }), |_| format!("deleted {id}"))?;
    crate::verbs::triggers::after_write(home, space, json, false).await
}

/// `domicile changes DOCTYPE [--since N]`: one change per line.
pub fn changes(space: &ResidentSpace, args: ChangesArgs, json: bool) -> Result<()> {
    for c in space.changes_since(&args.doctype.parse()?, args.since, usize::MAX)? {
        say(json, &c, |c| format!("{}  {}  {:?}  {}", c.seq, format_ms(c.at_ms), c.op, safe(c.id.as_str())))?;
    }
    Ok(())
}

/// `domicile docs DOCTYPE [--where JSON] [--sort FIELD] [--limit N]`.
pub fn docs(space: &ResidentSpace, args: DocsArgs, json: bool) -> Result<()> {
    let DocsArgs { doctype, selector, sort, limit } = args;
    let doctype: Doctype = doctype.parse()?;
    let sort = sort.as_deref().map(Sort::parse).transpose()?;
    let query = Query { doctype: doctype.clone(), selector: Selector::parse(&selector)?, sort, limit };
    let mut cursor = space.query(query)?;
    // A stream for a person (each page printed as it comes), one JSON array with --json.
    let mut all = Vec::new();
    let mut shown = 0;
    loop {
        let page = space.next_page(&mut cursor, 500)?;
        if page.is_empty() {
            break;
        }
        shown += page.len();
        for doc in page {
            if json {
                all.push(json!({ "id": doc.id.as_str(), "body": doc.body, "meta": doc.meta }));
            } else {
                outln!("{}  {}", safe(doc.id.as_str()), terminal::json(&doc.body.to_string()));
            }
        }
    }
    if json {
        outln!("{}", serde_json::Value::Array(all));
    } else if shown == 0 {
        outln!("no {doctype} documents match");
    }
    Ok(())
}

/// Writes one document as the resident; returns its id once it is on disk.
fn put_one(
    home: &Home,
    space: &ResidentSpace,
    doctype: &Doctype,
    id: Option<&str>,
    body: serde_json::Value,
) -> Result<DocId> {
    let id = id.map(str::parse).transpose()?;
    Ok(home.put_document(space, doctype, id, body)?)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PutLine {
    id: Option<String>,
    body: serde_json::Value,
}

/// `put --jsonl`: one durable write per line, acknowledged on stdout.
fn put_lines(home: &Home, space: &ResidentSpace, doctype: &Doctype) -> Result<()> {
    for (n, line) in crate::io::stdin_lines().enumerate() {
        let line = line.with_context(|| format!("line {} is not text", n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let put: PutLine = serde_json::from_str(&line).with_context(|| format!("line {}", n + 1))?;
        let id =
            put_one(home, space, doctype, put.id.as_deref(), put.body).with_context(|| format!("line {}", n + 1))?;
        outln!("ok {id}");
    }
    Ok(())
}

/// An import's summary, and with `--partial` every record left out. In
/// JSON, `--partial` adds `left_out` (a list of `{location, reason}`) to the
/// importer's summary.
fn print_import(name: &str, importer: &str, imported: &Imported, partial: bool, json: bool) -> Result<()> {
    let draw = || {
        let mut text = format!("imported {} with {importer}: {}", safe(name), terminal::json(&imported.summary));
        if !imported.left_out.is_empty() {
            text += &format!("\nleft out {} broken record(s), as you asked (--partial):", imported.left_out.len());
            for record in &imported.left_out {
                text += &format!("\n  {}: {}", safe(&record.location), safe(&record.reason));
            }
        }
        text
    };
    if !partial || !json {
        return say_json_text(json, &imported.summary, draw);
    }
    let mut summary: serde_json::Value = serde_json::from_str(&imported.summary)?;
    let left_out = serde_json::to_value(&imported.left_out)?;
    match summary.as_object_mut() {
        Some(object) => {
            object.insert("left_out".into(), left_out);
        }
        None => summary = serde_json::json!({ "summary": summary, "left_out": left_out }),
    }
    say_json_text(json, &summary.to_string(), draw)
}
