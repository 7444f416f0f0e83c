//! `domicile publish`: the one road from an app project to a home. The
//! project (here, or `--dir`) is built and packed as `domicile build` does,
//! signed with the project's own key (made at its first build, kept in
//! `.domicile/`, which git ignores); the home is asked to trust that key as
//! a publisher, with the resident's consent; then the app is installed, or
//! updated when the home has an earlier version, with the usual consent to
//! what it asks for.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use domicile_home::Home;
use domicile_package::{PublicKey, Role};
use domicile_store::ResidentSpace;

/// What `publish` is told besides the project.
struct PublishOptions<'a> {
    dir: &'a Path,
    /// The resident agrees to trust the project's key (else they are asked).
    trust_key: bool,
    /// As `install --grant`: without it, the resident is asked.
    grant: &'a [String],
    json: bool,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct PublishArgs {
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Trust the project's key as a publisher without being asked.
    #[arg(long)]
    pub trust_key: bool,
    /// What to grant: `all`, `none`, or DOCTYPE:ACCESS[,ACCESS][:FIELD[,FIELD]] (repeatable). Without it, you are asked.
    #[arg(long, value_name = "GRANT")]
    pub grant: Vec<String>,
}

/// `domicile publish [--dir DIR] [--trust-key] [--grant ...]`.
pub fn publish(home: &Home, space: &ResidentSpace, args: PublishArgs, json: bool) -> Result<()> {
    let options = PublishOptions { dir: &args.dir, trust_key: args.trust_key, grant: &args.grant, json };
    publish_project(home, space, &options)
}

fn publish_project(home: &Home, space: &ResidentSpace, options: &PublishOptions<'_>) -> Result<()> {
    let crate::develop::ProjectIdentity { app: id, version, key, publisher } =
        crate::develop::project_identity(options.dir)?;
    let installed = space.apps()?.into_iter().find(|app| app.id() == &id).map(|app| app.manifest.version);
    if let Some(installed) = installed.as_ref().filter(|installed| **installed >= version) {
        bail!(
            "{id} {installed} is installed in this home already; raise `version` in manifest.toml (now {version}) to publish a new one"
        );
    }
    let package = crate::develop::build(options.dir, options.json)?;
    if home.trust()?.trusted_as(&key, Role::Publisher).is_none() {
        consent_to_trust(&key, &publisher, options)?;
        home.trust_key(key, &publisher, &[Role::Publisher])?;
        if !options.json {
            outln!("trusted {key} as a publisher: {publisher}");
        }
    }
    if installed.is_some() {
        crate::verbs::apps::update_apps(home, space, Some(id.as_str()), Some(&package), options.grant, options.json)
    } else {
        crate::verbs::apps::install_package(
            home,
            space,
            &package.display().to_string(),
            None,
            options.grant,
            options.json,
        )
    }
}

/// The resident's yes to trusting the project's key: `--trust-key`, or an
/// answer on a terminal.
fn consent_to_trust(key: &PublicKey, publisher: &str, options: &PublishOptions<'_>) -> Result<()> {
    if options.trust_key {
        return Ok(());
    }
    let question = format!(
        "This home does not trust the key of {publisher} ({key}).\nTrust it as a publisher, for the apps it signs? [y/N] "
    );
    if !crate::io::stdin_is_terminal() {
        bail!(
            "this home does not trust the key of {publisher} ({key}); say --trust-key to trust it as a publisher, or add it yourself with `domicile trust add`"
        );
    }
    errln!("{}", question.trim_end());
    match crate::io::stdin_line()? {
        Some(answer) if matches!(answer.trim(), "y" | "Y" | "yes" | "oui") => Ok(()),
        _ => bail!("nothing was installed: the home does not trust the key of {publisher}"),
    }
}
