//! A resident's apps and what they may do: `install` and `update` (each
//! with its consent to what the app asks), `apps`, `grant`, `revoke`,
//! `enable` (keep an app whose key was revoked) and `uninstall`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use domicile_home::{Home, HomeError, PackageSource, UpdateOutcome};
use domicile_manifest::{AppId, Grants, Manifest};
use domicile_store::{InstalledApp, ResidentSpace};
use serde_json::json;

use crate::answer::{lines, say};
use crate::terminal::{indented, safe};

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct InstallArgs {
    /// A package file (.dpkg), or an app id listed in one of your catalogues.
    pub app: String,
    /// With an app id: this version rather than the latest.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<semver::Version>,
    /// What to grant: `all`, `none`, or DOCTYPE:ACCESS[,ACCESS][:FIELD[,FIELD]] (repeatable). Without it, you are asked.
    #[arg(long, value_name = "GRANT")]
    pub grant: Vec<String>,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct UpdateArgs {
    /// Only this app (default: every installed app).
    pub app: Option<String>,
    /// Update from this package file instead of a catalogue.
    #[arg(long, value_name = "FILE", requires = "app")]
    pub package: Option<PathBuf>,
    /// Grant what the new version newly asks for (`all`, `none`, or DOCTYPE:ACCESS[:FIELDS]).
    #[arg(long, value_name = "GRANT", requires = "app")]
    pub grant: Vec<String>,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct EnableArgs {
    pub app: String,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct GrantArgs {
    pub app: String,
    /// `all`, or DOCTYPE:ACCESS[,ACCESS][:FIELD[,FIELD]] (fields narrow a read).
    #[arg(required = true)]
    pub grants: Vec<String>,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct RevokeArgs {
    pub app: String,
    pub grants: Vec<String>,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct UninstallArgs {
    pub app: String,
    /// Also delete every document the app created.
    #[arg(long)]
    pub purge_data: bool,
}

/// `domicile install PACKAGE|APP`.
pub fn install(home: &Home, space: &ResidentSpace, args: InstallArgs, json: bool) -> Result<()> {
    let InstallArgs { app, version, grant } = args;
    install_package(home, space, &app, version.as_ref(), &grant, json)
}

/// Installs `app` (a package file, or an app id of a catalogue) with the
/// resident's consent: `grant`, or asked on a terminal.
pub fn install_package(
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
pub fn update(home: &Home, space: &ResidentSpace, args: UpdateArgs, json: bool) -> Result<()> {
    let UpdateArgs { app, package, grant } = args;
    update_apps(home, space, app.as_deref(), package.as_deref(), &grant, json)
}

/// Updates `app` (or every app), from `package` or the catalogues.
pub fn update_apps(
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

/// `domicile enable APP`: keep an app held since its key was revoked.
pub fn enable(home: &Home, space: &ResidentSpace, args: EnableArgs, json: bool) -> Result<()> {
    let id: AppId = args.app.parse()?;
    home.keep_held_app(space, &id)?;
    say(json, &json!({ "app": id.as_str(), "held": false }), |_| {
        format!("{id} can run again: you chose to keep it although its publisher key was revoked")
    })
}

/// `domicile uninstall APP [--purge-data]`.
pub fn uninstall(home: &Home, space: &ResidentSpace, args: UninstallArgs, json: bool) -> Result<()> {
    let UninstallArgs { app, purge_data } = args;
    let id: AppId = app.parse()?;
    let n = home.uninstall(space, &id, purge_data)?;
    say(json, &json!({ "app": id.as_str(), "purged_documents": purge_data.then_some(n) }), |_| match purge_data {
        true => format!("uninstalled {app} and deleted the {n} documents it had created"),
        false => format!("uninstalled {app}; the documents it wrote are still yours"),
    })
}

/// `domicile grant APP GRANT...`.
pub fn grant(home: &Home, space: &ResidentSpace, args: GrantArgs, json: bool) -> Result<()> {
    change_grants(home, space, &args.app, &args.grants, true, json)
}

/// `domicile revoke APP [GRANT...]`.
pub fn revoke(home: &Home, space: &ResidentSpace, args: RevokeArgs, json: bool) -> Result<()> {
    change_grants(home, space, &args.app, &args.grants, false, json)
}

pub fn apps(home: &Home, space: &ResidentSpace, json: bool) -> Result<()> {
    let apps = space.apps()?;
    let updates = home.available_updates(&apps);
    let list: Vec<serde_json::Value> = apps
        .iter()
        .map(|app| {
            let mut v = app_json(app);
            v["update_available"] = json!(updates.get(app.id()).map(|v| v.to_string()));
            v
        })
        .collect();
    say(json, &list, |_| {
        if apps.is_empty() {
            return "no apps installed".into();
        }
        lines(apps.iter().map(|app| {
            let mut text = format!(
                "{}  {}  {}  ({})\n  granted: {}",
                app.manifest.id,
                app.manifest.version,
                safe(&app.manifest.name),
                app.manifest.world,
                app.grants
            );
            if let Some(hold) = &app.held {
                text += &format!(
                    "\n  ON HOLD: {} (`domicile uninstall {}` or `domicile enable {}`)",
                    safe(&hold.reason),
                    app.id(),
                    app.id()
                );
            }
            if let Some(version) = updates.get(app.id()) {
                text += &format!("\n  update available: {version} (`domicile update {}`)", app.id());
            }
            text
        }))
    })
}

fn change_grants(home: &Home, space: &ResidentSpace, app: &str, specs: &[String], add: bool, json: bool) -> Result<()> {
    let id: AppId = app.parse()?;
    let grants = home.change_grants(space, &id, specs, add)?;
    say(json, &json!({ "app": id.as_str(), "grants": grants }), |_| format!("{id} is now granted: {grants}"))
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
