//! The verbs of trust and consent: catalogues, installing, updating, and
//! revoking a key.

use std::path::Path;

use anyhow::{bail, Context, Result};
use domicile_home::{HeldApp, Home, HomeError, PackageSource, UpdateOutcome};
use domicile_manifest::{AppId, Grants, Manifest};
use domicile_package::{PublicKey, SecretKey};
use domicile_store::{InstalledApp, ResidentSpace};
use serde_json::json;

use crate::answer::{lines, say, try_say};
use crate::cli::CatalogueCommand;
use crate::terminal::{indented, safe};

/// `domicile install PACKAGE|APP`.
pub fn install(
    home: &Home,
    space: &ResidentSpace,
    app: &str,
    version: Option<&semver::Version>,
    grant: &[String],
    json: bool,
) -> Result<()> {
    let path = Path::new(app);
    // Anything that looks like a path is one: a typo must not fall through
    // to a catalogue lookup.
    let looks_like_a_file = path.is_file() || app.contains(std::path::MAIN_SEPARATOR) || app.ends_with(".dpkg");
    let source = if looks_like_a_file {
        if version.is_some() {
            return Err(HomeError::VersionOfAFile.into());
        }
        let bytes = crate::io::read_given(path)?;
        PackageSource::File { bytes, label: path.display().to_string() }
    } else {
        let id: AppId = app.parse().with_context(|| format!("no package file {app}, and not an app id either"))?;
        PackageSource::Catalogue { app: id, version: version.cloned() }
    };
    let installing = home.prepare_install(space, source).with_context(|| format!("cannot install {app}"))?;
    let manifest = installing.manifest().clone();
    if !json {
        outln!(
            "{} {} ({}) from {}\n  {}\n  signed by {}\nIt asks for:\n{}",
            safe(&manifest.name),
            manifest.version,
            manifest.id,
            installing.origin,
            indented(&manifest.description, "  "),
            installing.publisher(),
            manifest.describe_asks().trim_end()
        );
    }
    let grants = if grant.is_empty() { prompt_grants(&manifest)? } else { Grants::from_specs(&manifest, grant)? };
    let app = home.install(space, installing, grants)?;
    say(json, &app_json(&app), |_| {
        format!("installed {} {}; granted: {}", app.manifest.id, app.manifest.version, app.grants)
    })
}

/// `domicile update [APP] [--package FILE] [--grant ...]`: each app in
/// turn; one that cannot be updated does not stop the others.
pub fn update(
    home: &Home,
    space: &ResidentSpace,
    app: Option<&str>,
    package: Option<&Path>,
    grant: &[String],
    json: bool,
) -> Result<()> {
    let ids: Vec<AppId> = match app {
        Some(app) => vec![app.parse()?],
        None => space.apps()?.into_iter().map(|a| a.manifest.id).collect(),
    };
    let package = package.map(crate::io::read_given).transpose()?;
    // No --grant: an update that asks for more waits for the resident.
    let grants = (!grant.is_empty()).then_some(grant);
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for id in ids {
        match home.update(space, &id, package.clone(), grants) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => failures.push(format!("{id}: {}", crate::hints::render(&e.into()))),
        }
    }
    // What could be updated is said, then what could not.
    say(json, &outcomes, |outcomes| lines(outcomes.iter().map(update_text)))?;
    if !failures.is_empty() {
        bail!("not updated: {}", failures.join("; "));
    }
    Ok(())
}

fn update_text(outcome: &UpdateOutcome) -> String {
    match outcome {
        UpdateOutcome::UpToDate { app, version } => format!("{app} {version} is up to date"),
        UpdateOutcome::WaitingForGrant { app, installed, available, asks } => {
            let mut text = format!("{app} {available} is available, but it asks for more than {installed} did:");
            for ask in asks {
                text += &format!("\n  - {ask}");
            }
            text + &format!(
                "\nIt waits for your decision; {installed} keeps working meanwhile.\n  to grant it: domicile update {app} --grant all   (or --grant DOCTYPE:ACCESS, ...)\n  to update without granting it: domicile update {app} --grant none"
            )
        }
        UpdateOutcome::Updated { app, from, to, grants } => {
            format!("updated {app} from {from} to {to}; granted: {grants}")
        }
    }
}

/// `domicile trust revoke KEY`: the key is trusted for nothing from now
/// on, and every resident's apps signed by it are held.
pub fn revoke_key(home: &Home, key: &str, json: bool) -> Result<()> {
    let key = PublicKey::from_text_or_file(key)?;
    let held = home.revoke_key(&key)?;
    let on_hold: Vec<_> = held
        .iter()
        .map(|HeldApp { resident, app }| json!({ "resident": resident.as_str(), "app": app.as_str() }))
        .collect();
    say(json, &json!({ "revoked": key.to_string(), "on_hold": on_hold }), |_| {
        let mut shown = vec![format!("revoked key {key}")];
        for HeldApp { resident, app } in &held {
            shown.push(format!(
                "  {app} of resident `{resident}` is on hold: uninstall it, or keep it with `domicile --resident {resident} enable {app}`"
            ));
        }
        lines(shown)
    })
}

/// `domicile restore ARCHIVE [--as NAME]`: the archive is checked whole
/// (see `domicile_store::Store::restore`); its apps come back only as far
/// as this home trusts their publishers.
pub fn restore(home: &Home, archive: &Path, as_name: Option<&str>, json: bool) -> Result<()> {
    let file = crate::io::open_given(archive)?;
    let name = as_name.map(str::parse).transpose()?;
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

/// `domicile catalogue ...`.
pub fn catalogue(home: &Home, command: CatalogueCommand, json: bool) -> Result<()> {
    match command {
        CatalogueCommand::Build { .. } => unreachable!("built without a home"),
        CatalogueCommand::AddSource { dir } => {
            let catalogue = home.add_catalogue_source(&dir)?;
            let (index, key) = (catalogue.index(), catalogue.key());
            let answer = json!({ "catalogue": index.name, "apps": index.apps.len(), "key": key.to_string() });
            say(json, &answer, |_| {
                format!("added the catalogue {} ({} apps), signed by {key}", index.name, index.apps.len())
            })?;
        }
        CatalogueCommand::List => {
            let trust = home.trust()?;
            let (mut listed, mut shown) = (Vec::new(), Vec::new());
            let all = home.catalogue_sources()?.open_all(&trust);
            if all.is_empty() {
                shown.push("no catalogues: add one with `domicile catalogue add-source DIR`".to_owned());
            }
            for (source, catalogue) in all {
                match catalogue {
                    Err(e) => errln!("domicile: catalogue {} cannot be used: {e}", source.dir.display()),
                    Ok(c) => {
                        shown.push(format!("{} ({})", safe(&c.index().name), source.dir.display()));
                        for app in &c.index().apps {
                            listed.push(json!({ "catalogue": c.index().name, "id": app.id.as_str(), "name": app.name, "latest": app.latest().version.to_string(), "world": app.world.to_string(), "publisher": app.publisher.to_string(), "description": app.description }));
                            shown.push(format!(
                                "  {}  {}  {}\n      {}",
                                app.id,
                                app.latest().version,
                                safe(&app.name),
                                indented(&app.description, "      ")
                            ));
                        }
                    }
                }
            }
            say(json, &listed, |_| lines(shown))?;
        }
        CatalogueCommand::Show { app } => {
            let trust = home.trust()?;
            let id: AppId = app.parse()?;
            let catalogue =
                home.catalogue_sources()?.find(&trust, &id).with_context(|| format!("no package file `{id}`"))?;
            let listed = catalogue.app(&id).expect("found above");
            try_say(json, listed, |listed| {
                let latest = listed.latest();
                let publisher = match trust.find(&listed.publisher) {
                    Some(k) if !k.name.is_empty() => format!("{} ({})", listed.publisher, k.name),
                    _ => format!("{} (vouched for by the catalogue {})", listed.publisher, catalogue.index().name),
                };
                let mut shown = vec![format!(
                    "{} ({}), a {} app\n  {}\n  publisher: {publisher}",
                    safe(&listed.name),
                    listed.id,
                    listed.world,
                    indented(&listed.description, "  ")
                )];
                shown.push(format!(
                    "  versions: {}",
                    listed.versions.iter().map(|v| v.version.to_string()).collect::<Vec<_>>().join(", ")
                ));
                // The latest version's permissions, as its signed package says them.
                let m = catalogue.fetch(&id, Some(&latest.version), &trust)?.manifest;
                let asks = m.describe_asks();
                shown.push(format!("{} {} asks for:\n{}", safe(&m.name), m.version, asks.trim_end()));
                Ok(lines(shown))
            })?;
        }
    }
    Ok(())
}

/// `domicile catalogue build DIR --key K`: needs no home.
pub fn build(dir: &Path, key: &Path, name: &str, json: bool) -> Result<()> {
    let key = SecretKey::load(key)?;
    let index = domicile_package::build_catalogue(dir, name, &key)?;
    say(json, &index, |index| {
        let mut shown = vec![format!("signed the catalogue {name} in {} with {}:", dir.display(), key.public())];
        for app in &index.apps {
            let versions: Vec<String> = app.versions.iter().map(|v| v.version.to_string()).collect();
            shown.push(format!("  {}  {}", app.id, versions.join(", ")));
        }
        lines(shown)
    })
}

/// Asks, for each permission, whether to grant it.
pub fn prompt_grants(manifest: &Manifest) -> Result<Grants> {
    if !crate::io::stdin_is_terminal() {
        bail!("no grants given and no terminal to ask on: pass --grant all, or --grant DOCTYPE:ACCESS for each permission to grant");
    }
    let mut grants = Grants::default();
    let mut lines = crate::io::stdin_lines();
    for p in &manifest.permissions {
        for access in p.access.iter() {
            out!("Allow {} to {access} your {}? ({})  [y/N] ", safe(&manifest.name), p.doctype, p.purpose);
            let answer = lines.next().transpose()?.unwrap_or_default();
            if matches!(answer.trim(), "y" | "Y" | "yes") {
                grants.extend(&Grants::from_specs(manifest, &[format!("{}:{access}", p.doctype)])?);
            }
        }
    }
    Ok(grants)
}

pub fn app_json(app: &InstalledApp) -> serde_json::Value {
    json!({
        "id": app.manifest.id.as_str(),
        "name": app.manifest.name,
        "version": app.manifest.version.to_string(),
        "world": app.manifest.world.to_string(),
        "publisher": app.publisher,
        "grants": app.grants,
        "held": app.held,
    })
}
