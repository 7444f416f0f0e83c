//! Taking a resident's data away and back, whole: `export` (one archive),
//! `restore` (a space rebuilt from one, checked whole first) and `check`
//! (the store's consistency).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use domicile_home::Home;
use domicile_store::ResidentSpace;
use serde_json::json;

use crate::answer::{lines, say};
use crate::terminal::safe;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct ExportArgs {
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct RestoreArgs {
    pub archive: PathBuf,
    /// Restore under another resident name.
    #[arg(long, value_name = "NAME")]
    pub r#as: Option<String>,
}

/// `domicile export --out FILE`.
pub fn export(home: &Home, space: &ResidentSpace, args: ExportArgs, json: bool) -> Result<()> {
    let ExportArgs { out } = args;
    if out.exists() {
        bail!("{} already exists; choose another --out", out.display());
    }
    let file = std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let summary = home.export(space, std::io::BufWriter::new(file))?;
    say(json, &summary, |summary| {
        format!(
            "exported {} documents, {} apps, {} audit entries of `{}` to {}",
            summary.documents,
            summary.apps,
            summary.audit_entries,
            space.resident(),
            out.display()
        )
    })
}

/// `domicile restore ARCHIVE [--as NAME]`: the archive is checked whole
/// (see `domicile_store::Store::restore`); its apps come back only as far
/// as this home trusts their publishers.
pub fn restore(home: &Home, args: RestoreArgs, json: bool) -> Result<()> {
    let RestoreArgs { archive, r#as: as_name } = args;
    let archive = archive.as_path();
    let file = crate::io::open_given(archive)?;
    let name = as_name.as_deref().map(str::parse).transpose()?;
    let (space, report) = home
        .restore(std::io::BufReader::new(file), name.as_ref())
        .with_context(|| format!("cannot restore {}", archive.display()))?;
    say(json, &json!({ "resident": space.resident().as_str(), "report": report }), |_| {
        let s = &report.summary;
        let mut shown = vec![format!(
            "restored `{}` into {}: {} documents, {} apps, {} audit entries",
            space.resident(),
            home.dir().display(),
            s.documents,
            s.apps - report.left_out.len() as u64,
            s.audit_entries
        )];
        for note in &report.held {
            shown.push(format!("  {} is on hold: {}", note.app, safe(&note.reason)));
        }
        for note in &report.left_out {
            shown.push(format!("  {} was not restored: {}", note.app, safe(&note.reason)));
        }
        lines(shown)
    })
}

/// `domicile check`: with --json the report is the answer, consistent or
/// not; then the failure.
pub fn check(space: &ResidentSpace, json: bool) -> Result<()> {
    let report = space.verify()?;
    if json || report.is_consistent() {
        say(json, &report, |r| format!("consistent: {} documents, {} index entries", r.documents, r.index_entries))?;
    }
    if !report.is_consistent() {
        bail!("the store is inconsistent: {}", report.problems.join("; "));
    }
    Ok(())
}
