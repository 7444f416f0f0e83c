//! The keys a home trusts and the catalogues it installs from: `trust
//! add|list|revoke` (revoking holds the apps the key signed) and `catalogue
//! build|add-source|list|show`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use domicile_home::{format_ms, HeldApp, Home};
use domicile_manifest::AppId;
use domicile_package::{PublicKey, SecretKey};
use serde_json::json;

use crate::answer::{lines, say, try_say};
use crate::terminal::{indented, safe};

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum TrustCommand {
    /// Trust a key (64 hex characters, or a .pub file); a revoked key is trusted again.
    Add {
        key: String,
        /// A label to remember whose key it is.
        #[arg(long, default_value = "")]
        name: String,
        /// What the key may sign: `publisher` (packages, the default) and/or `catalogue` (catalogue indexes).
        #[arg(long = "role", value_name = "ROLE", value_parser = parse_role)]
        roles: Vec<domicile_package::Role>,
    },
    /// List trusted and revoked keys.
    List,
    /// Stop trusting a key; the apps it signed are held until you decide.
    Revoke { key: String },
}

fn parse_role(s: &str) -> Result<domicile_package::Role, String> {
    match s {
        "publisher" => Ok(domicile_package::Role::Publisher),
        "catalogue" => Ok(domicile_package::Role::Catalogue),
        "campaign" => Ok(domicile_package::Role::Campaign),
        _ => Err("expected `publisher`, `catalogue` or `campaign`".into()),
    }
}

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum CatalogueCommand {
    /// Index and sign the packages in DIR/packages (writes DIR/index.json and DIR/index.sig).
    Build {
        dir: PathBuf,
        /// The catalogue's secret key (from `domicile keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[arg(long, default_value = "domicile catalogue")]
        name: String,
    },
    /// Install from this catalogue from now on (its key must be trusted with --role catalogue).
    AddSource { dir: PathBuf },
    /// The apps of your catalogues.
    List,
    /// Everything about one app: publisher, versions, each permission and its purpose.
    Show { app: String },
}

/// `domicile trust add|list|revoke`.
pub fn trust(home: &Home, command: TrustCommand, json: bool) -> Result<()> {
    match command {
        TrustCommand::Add { key, name, roles } => {
            let trusted = home.trust_key(PublicKey::from_text_or_file(&key)?, &name, &roles)?;
            say(json, &trusted, |trusted| {
                let roles = trusted.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(" and ");
                format!("trusted key {} as {roles}", trusted.key)
            })
        }
        TrustCommand::List => {
            let trust = home.trust()?;
            say(json, trust.keys(), |keys| {
                if keys.is_empty() {
                    return "no trusted keys: add one with `domicile trust add KEY`".into();
                }
                lines(keys.iter().map(|k| {
                    let roles = k.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", ");
                    let state = match k.revoked_at_ms {
                        Some(at) => format!("REVOKED {}", format_ms(at)),
                        None => roles,
                    };
                    format!("{}  {}  ({state})", k.key, k.name)
                }))
            })
        }
        TrustCommand::Revoke { key } => revoke_key(home, &key, json),
    }
}

/// `domicile trust revoke KEY`: the key is trusted for nothing from now
/// on, and every resident's apps signed by it are held.
fn revoke_key(home: &Home, key: &str, json: bool) -> Result<()> {
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
pub fn build_catalogue(dir: &Path, key: &Path, name: &str, json: bool) -> Result<()> {
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
