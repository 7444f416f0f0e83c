//! The verbs of trust and consent: catalogues, installing, updating, and
//! revoking a key.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use domicile_host::PreparedUpdate;
use domicile_manifest::{AppId, Grants};
use domicile_package::{update_offer, Catalogue, CatalogueSources, PublicKey, SecretKey, UpdateOffer};
use domicile_store::{Hold, InstalledApp, ResidentSpace};
use serde_json::json;

use crate::commands::{app_json, format_ms, prompt_grants};
use crate::home::{clock_from_env, Home};
use crate::terminal::{indented, safe};
use crate::CatalogueCommand;

fn sources(home: &Home) -> Result<CatalogueSources> {
    Ok(CatalogueSources::open(home.catalogues_path())?)
}

/// `domicile install PACKAGE|APP`.
pub fn install(
    home: &Home,
    space: &ResidentSpace,
    app: &str,
    version: Option<&semver::Version>,
    grant: &[String],
    json: bool,
) -> Result<()> {
    let trust = home.trust()?;
    let runtime = home.runtime()?;
    let path = Path::new(app);
    // Anything that looks like a path is one: a typo must not fall through
    // to a catalogue lookup.
    let looks_like_a_file = path.is_file() || app.contains(std::path::MAIN_SEPARATOR) || app.ends_with(".dpkg");
    let (prepared, origin) = if looks_like_a_file {
        if version.is_some() {
            bail!("--version chooses among a catalogue's versions; a package file has one");
        }
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let prepared = runtime
            .prepare_install(space, &trust, bytes, None)
            .with_context(|| format!("cannot install {}", path.display()))?;
        (prepared, path.display().to_string())
    } else {
        let id: AppId = app.parse().with_context(|| format!("no package file {app}, and not an app id either"))?;
        let catalogue = sources(home)?.find(&trust, &id).with_context(|| format!("no package file `{id}`"))?;
        let fetched = catalogue.fetch(&id, version, &trust)?;
        let prepared = runtime
            .prepare_install(space, &trust, fetched.bytes, Some(&fetched.app.publisher))
            .with_context(|| format!("cannot install {id} from the catalogue {}", catalogue.index().name))?;
        (prepared, format!("the catalogue {}", catalogue.index().name))
    };
    let manifest = prepared.manifest().clone();
    if !json {
        println!(
            "{} {} ({}) from {origin}\n  {}\n  signed by {}\nIt asks for:\n{}",
            safe(&manifest.name),
            manifest.version,
            manifest.id,
            indented(&manifest.description, "  "),
            prepared.publisher(),
            domicile_manifest::describe_asks(
                &manifest.permissions,
                manifest.scratch.as_ref(),
                manifest.egress.as_ref()
            )
            .trim_end()
        );
    }
    let grants = if grant.is_empty() { prompt_grants(&manifest)? } else { Grants::from_specs(&manifest, grant)? };
    let app = runtime.install(space, prepared, grants)?;
    if json {
        println!("{}", app_json(&app));
    } else {
        println!("installed {} {}; granted: {}", app.manifest.id, app.manifest.version, app.grants);
    }
    Ok(())
}

/// The newest version each app's catalogue offers, when it is newer than
/// the installed one and from the same publisher.
pub fn available_updates(home: &Home, apps: &[InstalledApp]) -> BTreeMap<AppId, semver::Version> {
    let (Ok(trust), Ok(sources)) = (home.trust(), sources(home)) else { return BTreeMap::new() };
    let catalogues = sources.verified(&trust);
    apps.iter()
        .filter_map(|app| match update_offer(&catalogues, app.id(), &app.publisher, &app.manifest.version) {
            UpdateOffer::Newer { version, .. } => Some((app.id().clone(), version)),
            _ => None,
        })
        .collect()
}

/// `domicile update [APP] [--package FILE] [--grant ...]`.
pub fn update(
    home: &Home,
    space: &ResidentSpace,
    app: Option<&str>,
    package: Option<&Path>,
    grant: &[String],
    json: bool,
) -> Result<()> {
    let trust = home.trust()?;
    let runtime = home.runtime()?;
    let ids: Vec<AppId> = match app {
        Some(app) => vec![app.parse()?],
        None => space.apps()?.into_iter().map(|a| a.manifest.id).collect(),
    };
    let catalogues = if package.is_none() { sources(home)?.verified(&trust) } else { Vec::new() };
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for id in ids {
        let current = space.app(&id)?;
        let bytes = match package {
            Some(path) => std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            None => match update_offer(&catalogues, &id, &current.publisher, &current.manifest.version) {
                UpdateOffer::Newer { version, catalogue } => catalogue.fetch(&id, Some(&version), &trust)?.bytes,
                UpdateOffer::UpToDate => {
                    reports.push(json!({ "app": id.as_str(), "status": "up-to-date", "version": current.manifest.version.to_string() }));
                    if !json {
                        println!("{id} {} is up to date", current.manifest.version);
                    }
                    continue;
                }
                UpdateOffer::OtherPublisher { catalogue, key, version } => {
                    failures.push(format!(
                        "{id}: the catalogue {catalogue} offers {version} signed by {key}, but {id} was installed from {}: an app's publisher cannot change",
                        current.publisher
                    ));
                    continue;
                }
            },
        };
        let prepared = match runtime.prepare_update(space, &trust, &id, bytes) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{id}: {e}"));
                continue;
            }
        };
        reports.push(apply_or_wait(runtime, space, prepared, grant, json)?);
    }
    if json {
        println!("{}", serde_json::Value::Array(reports));
    }
    if !failures.is_empty() {
        bail!("not updated: {}", failures.join("; "));
    }
    Ok(())
}

/// Applies an update, unless the new version asks for more than the old
/// one and the resident has not said what to grant: then it waits and the
/// installed version keeps working.
fn apply_or_wait(
    runtime: &domicile_host::Runtime,
    space: &ResidentSpace,
    prepared: PreparedUpdate,
    grant: &[String],
    json: bool,
) -> Result<serde_json::Value> {
    let id = prepared.current().manifest.id.clone();
    let (from, to) = (prepared.current().manifest.version.clone(), prepared.manifest().version.clone());
    if !prepared.new_asks().is_empty() && grant.is_empty() {
        if !json {
            println!("{id} {to} is available, but it asks for more than {from} did:");
            for ask in prepared.new_asks() {
                println!("  - {ask}");
            }
            println!(
                "It waits for your decision; {from} keeps working meanwhile.\n  to grant it: domicile update {id} --grant all   (or --grant DOCTYPE:ACCESS, ...)\n  to update without granting it: domicile update {id} --grant none"
            );
        }
        return Ok(
            json!({ "app": id.as_str(), "status": "waiting-for-grant", "installed": from.to_string(), "available": to.to_string(), "asks": prepared.new_asks() }),
        );
    }
    let added = Grants::from_specs(prepared.manifest(), grant)?;
    let app = runtime.apply_update(space, prepared, &added)?;
    if !json {
        println!("updated {id} from {from} to {to}; granted: {}", app.grants);
    }
    Ok(
        json!({ "app": id.as_str(), "status": "updated", "from": from.to_string(), "to": to.to_string(), "grants": app.grants }),
    )
}

/// `domicile trust revoke KEY`: the key is trusted for nothing from now
/// on, and every resident's apps signed by it are held.
pub fn revoke_key(home: &Home, key: &str) -> Result<()> {
    let key = PublicKey::from_text_or_file(key)?;
    let now = clock_from_env()?.now_ms();
    home.trust()?.revoke(&key, now)?;
    println!("revoked key {key}");
    let hold = Hold { reason: format!("its publisher key {key} was revoked on {}", format_ms(now)), since_ms: now };
    for resident in home.store.residents()? {
        let space = home.store.resident(&resident)?;
        for app in space.hold_apps_of(&key.to_string(), &hold)? {
            println!(
                "  {app} of resident `{resident}` is on hold: uninstall it, or keep it with `domicile --resident {resident} enable {app}`"
            );
        }
    }
    Ok(())
}

/// `domicile restore ARCHIVE [--as NAME]`: the archive is checked whole
/// (see `domicile_store::Store::restore`); its apps come back only as far
/// as this home trusts their publishers.
pub fn restore(home: &Home, archive: &Path, as_name: Option<&str>, json: bool) -> Result<()> {
    let file = std::fs::File::open(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let name = as_name.map(str::parse).transpose()?;
    let trust = home.trust()?;
    let catalogues = sources(home)?.verified(&trust);
    let vetting = domicile_host::ArchiveVetting {
        runtime: home.runtime()?,
        trust: &trust,
        catalogues: &catalogues,
        now_ms: clock_from_env()?.now_ms(),
    };
    let (space, report) = home
        .store
        .restore(std::io::BufReader::new(file), name.as_ref(), &vetting)
        .with_context(|| format!("cannot restore {}", archive.display()))?;
    if json {
        println!("{}", json!({ "resident": space.resident().as_str(), "report": report }));
        return Ok(());
    }
    let s = &report.summary;
    println!(
        "restored `{}` into {}: {} documents, {} apps, {} audit entries",
        space.resident(),
        home.dir.display(),
        s.documents,
        s.apps - report.left_out.len() as u64,
        s.audit_entries
    );
    for note in &report.held {
        println!("  {} is on hold: {}", note.app, crate::terminal::safe(&note.reason));
    }
    for note in &report.left_out {
        println!("  {} was not restored: {}", note.app, crate::terminal::safe(&note.reason));
    }
    Ok(())
}

/// `domicile catalogue ...`.
pub fn catalogue(home: &Home, command: CatalogueCommand, json: bool) -> Result<()> {
    match command {
        CatalogueCommand::Build { .. } => unreachable!("built without a home"),
        CatalogueCommand::AddSource { dir } => {
            let catalogue = Catalogue::open(&dir, &home.trust()?)?;
            sources(home)?.add(&catalogue)?;
            println!(
                "added the catalogue {} ({} apps), signed by {}",
                catalogue.index().name,
                catalogue.index().apps.len(),
                catalogue.key()
            );
        }
        CatalogueCommand::List => {
            let trust = home.trust()?;
            let all = sources(home)?.open_all(&trust);
            if all.is_empty() && !json {
                println!("no catalogues: add one with `domicile catalogue add-source DIR`");
            }
            let mut listed = Vec::new();
            for (source, catalogue) in all {
                match catalogue {
                    Err(e) => eprintln!("domicile: catalogue {} cannot be used: {e}", source.dir.display()),
                    Ok(c) => {
                        if !json {
                            println!("{} ({})", safe(&c.index().name), source.dir.display());
                        }
                        for app in &c.index().apps {
                            if json {
                                listed.push(json!({ "catalogue": c.index().name, "id": app.id.as_str(), "name": app.name, "latest": app.latest().version.to_string(), "world": app.world.to_string(), "publisher": app.publisher.to_string(), "description": app.description }));
                            } else {
                                println!(
                                    "  {}  {}  {}\n      {}",
                                    app.id,
                                    app.latest().version,
                                    safe(&app.name),
                                    indented(&app.description, "      ")
                                );
                            }
                        }
                    }
                }
            }
            if json {
                println!("{}", serde_json::Value::Array(listed));
            }
        }
        CatalogueCommand::Show { app } => {
            let trust = home.trust()?;
            let id: AppId = app.parse()?;
            let catalogue = sources(home)?.find(&trust, &id).with_context(|| format!("no package file `{id}`"))?;
            let listed = catalogue.app(&id).expect("found above");
            if json {
                println!("{}", serde_json::to_string(listed)?);
                return Ok(());
            }
            let latest = listed.latest();
            let publisher = match trust.find(&listed.publisher) {
                Some(k) if !k.name.is_empty() => format!("{} ({})", listed.publisher, k.name),
                _ => format!("{} (vouched for by the catalogue {})", listed.publisher, catalogue.index().name),
            };
            println!(
                "{} ({}), a {} app\n  {}\n  publisher: {publisher}",
                safe(&listed.name),
                listed.id,
                listed.world,
                indented(&listed.description, "  ")
            );
            println!(
                "  versions: {}",
                listed.versions.iter().map(|v| v.version.to_string()).collect::<Vec<_>>().join(", ")
            );
            // The latest version's permissions, as its signed package says them.
            let m = catalogue.fetch(&id, Some(&latest.version), &trust)?.manifest;
            let asks = domicile_manifest::describe_asks(&m.permissions, m.scratch.as_ref(), m.egress.as_ref());
            println!("{} {} asks for:\n{}", safe(&m.name), m.version, asks.trim_end());
        }
    }
    Ok(())
}

/// `domicile catalogue build DIR --key K`: needs no home.
pub fn build(dir: &Path, key: &Path, name: &str, json: bool) -> Result<()> {
    let key = SecretKey::load(key)?;
    let index = domicile_package::build_catalogue(dir, name, &key)?;
    if json {
        println!("{}", serde_json::to_string(&index)?);
    } else {
        println!("signed the catalogue {name} in {} with {}:", dir.display(), key.public());
        for app in &index.apps {
            let versions: Vec<String> = app.versions.iter().map(|v| v.version.to_string()).collect();
            println!("  {}  {}", app.id, versions.join(", "));
        }
    }
    Ok(())
}
