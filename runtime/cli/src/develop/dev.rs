//! `domicile dev`: the project built (or, in Python and JavaScript, its
//! sources handed to its runner), installed in the project's development
//! home, run on fixture data, its output and log printed; again at every
//! saved change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use domicile_manifest::{AppId, World};
use domicile_package::{PublicKey, Role};

use super::build::build_project;
use super::{runner, sources, Lang, Project};
use crate::answer::say_json_text;
use crate::terminal;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct DevArgs {
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Export files to import as fixture data (default: the sample data; an importer imports the project's fixtures/).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The service's input (JSON).
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// One round, then exit (its status says whether it succeeded).
    #[arg(long)]
    pub once: bool,
    /// Python and JavaScript: build the whole component at every change, as `domicile build` does, instead of running the sources in the project's runner.
    #[arg(long)]
    pub full_builds: bool,
}

/// `domicile dev`'s options.
pub struct DevOptions {
    pub dir: PathBuf,
    pub data: Option<PathBuf>,
    pub input: String,
    pub once: bool,
    /// Build the whole component at every round, as `domicile build`
    /// does, rather than run the sources in the project's runner.
    pub full_builds: bool,
}

/// What `domicile dev` keeps from one round to the next.
struct Rounds {
    /// The sources the development runtime hands the project's runner.
    sources: domicile_host::DevSources,
    /// The runner package installed (the hash of its manifest and of the
    /// runner's key), to install again only when one of them changed.
    installed_runner: Option<[u8; 32]>,
}

/// Prints the app's log lines written since `before`, positions in a
/// JavaScript runner's bundle shown in the project's files.
fn print_log(
    space: &domicile_store::ResidentSpace,
    id: &AppId,
    before: usize,
    map: Option<&runner::BundleMap>,
) -> Result<()> {
    for entry in space.app_log(Some(id))?.iter().skip(before) {
        let message = map.map_or_else(|| entry.message.clone(), |map| map.translate(&entry.message));
        errln!("  log {:<6} {}", entry.level, terminal::indented(&message, "             "));
    }
    Ok(())
}

/// `domicile dev`: build, install and run, then again at every saved change.
pub async fn dev(options: DevOptions, json: bool) -> Result<()> {
    let project = Project::open(&options.dir)?;
    let home_dir = project.private().join("home");
    let fresh = !home_dir.exists();
    let home = if fresh { crate::home::create(&home_dir, &"me".parse()?)? } else { crate::home::open(&home_dir)? };
    reuse_compiled_functions(&home_dir)?;
    let mut rounds = Rounds { sources: Default::default(), installed_runner: None };
    home.start_development_runtime(rounds.sources.clone())?;
    if !options.full_builds {
        if let Some(why) = runner::unavailable(&project).filter(|_| project.lang != Lang::Rust) {
            errln!("dev: every change builds the whole component: {why}");
        }
    }
    let key = project.dev_key()?.public();
    trust_as_publisher(&home, key, "development key of this project")?;
    if fresh {
        errln!("dev: a development home in {}, trusting only this project's key", home_dir.display());
        load_fixtures(&home, &project, options.data.as_deref()).await?;
    }
    let mut seen = sources(&project.dir);
    // The first round starts now; the next ones when a file was saved.
    let mut edited = SystemTime::now();
    loop {
        let round = one_round(&home, &options, &mut rounds, json).await;
        let took = edited.elapsed().unwrap_or_default().as_secs_f64();
        let watching = if options.once { "" } else { "; watching for changes (Ctrl-C stops)" };
        match &round {
            Ok(()) => errln!("dev: result {took:.1} s after the change{watching}"),
            // With --once the error is the command's, said once, by main.
            Err(_) if options.once => {}
            Err(e) => errln!("dev: {e:#}{watching}"),
        }
        if options.once {
            return round;
        }
        // Poll: simple, and the same on every filesystem.
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = sources(&project.dir);
            if now != seen {
                edited = newest(&now).unwrap_or_else(SystemTime::now);
                seen = now;
                break;
            }
        }
    }
}

/// Sets the development home to compile again only the functions a
/// rebuild changed (`[engine] reuse-compiled-functions`), unless its
/// `config.toml` was written by someone else; read when its runtime starts.
fn reuse_compiled_functions(home_dir: &Path) -> Result<()> {
    let path = home_dir.join("config.toml");
    if !path.exists() {
        let text = "# Written by `domicile dev`: a rebuilt app compiles only the functions that changed.\n\
                    [engine]\nreuse-compiled-functions = true\n";
        domicile_package::write_atomically(&path, text.as_bytes())?;
    }
    Ok(())
}

/// Trusts `key` for app packages in the development home, once.
fn trust_as_publisher(home: &domicile_home::Home, key: PublicKey, name: &str) -> Result<()> {
    if home.trust()?.trusted_as(&key, Role::Publisher).is_none() {
        home.trust_key(key, name, &[Role::Publisher])?;
    }
    Ok(())
}

/// One round: build, (re)install, run; prints the output and the log.
async fn one_round(home: &domicile_home::Home, options: &DevOptions, rounds: &mut Rounds, json: bool) -> Result<()> {
    // Opened at each round: the manifest may have changed too.
    let project = Project::open(&options.dir)?;
    let space = home.resident(None)?;
    let runtime = home.runtime()?;
    let id = project.manifest.id.clone();
    let mut bundle_map = None;
    let package = if options.full_builds || runner::unavailable(&project).is_some() {
        rounds.installed_runner = None;
        Some(std::fs::read(build_project(&project, false)?)?)
    } else {
        let round = runner::prepare(&project)?;
        bundle_map = round.bundle_map;
        if let Some(seconds) = round.built_runner_s {
            errln!(
                "dev: built this project's runner in {seconds:.1} s: at each change it runs the sources without a build \
                 (`domicile build` makes the package to publish)"
            );
        }
        rounds.sources.replace(round.files);
        let mut both = project.manifest_bytes.clone();
        both.extend(round.runner_key.as_bytes());
        let fingerprint = domicile_package::sha256(&both);
        if rounds.installed_runner == Some(fingerprint) {
            None
        } else {
            let component = std::fs::read(&round.component_path)?;
            let (_, package) = crate::verbs::packaging::seal_checked(
                (&project.dir.join("manifest.toml"), &project.manifest_bytes),
                (&round.component_path, &component),
                &project.dev_key()?,
                false,
            )?;
            rounds.installed_runner = Some(fingerprint);
            Some(package)
        }
    };
    if let Some(package) = package {
        // In place, whatever the version: the development home is the project's.
        if space.app(&id).is_ok() {
            runtime.uninstall(&space, &id)?;
        }
        if let Err(e) = domicile_samples::install_granting_all(home, &space, package) {
            rounds.installed_runner = None;
            return Err(e);
        }
    }
    let log_before = space.app_log(Some(&id))?.len();
    let result = match project.manifest.world {
        World::Service => runtime.run_service(&space, &id, &options.input).await.map(|o| vec![("run".to_owned(), o)]),
        World::Importer => {
            let mut summaries = Vec::new();
            for (name, bytes) in fixture_files(&project, options.data.as_deref())? {
                match runtime.run_importer(&space, &id, &name, &bytes).await {
                    Ok(summary) => summaries.push((name, summary)),
                    Err(e) => return Err(e).with_context(|| name.clone()),
                }
            }
            Ok(summaries)
        }
    };
    print_log(&space, &id, log_before, bundle_map.as_ref())?;
    for (what, output) in result? {
        // What the resident will see of it, as `domicile run` draws it; the
        // JSON with --json (or when there is no view).
        say_json_text(json, &output, || format!("{what}:\n{}", terminal::service_output(&output)))?;
    }
    Ok(())
}

fn newest(files: &BTreeMap<PathBuf, SystemTime>) -> Option<SystemTime> {
    files.values().max().copied()
}

/// The files an importer under development imports at each round:
/// `--data DIR`, else the project's fixtures/.
fn fixture_files(project: &Project, data: Option<&Path>) -> Result<Vec<(String, Vec<u8>)>> {
    let dir = data.map_or_else(|| project.dir.join("fixtures"), Path::to_owned);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("no fixture files in {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            files.push((name, std::fs::read(&path)?));
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("{} has no files to import", dir.display());
    }
    Ok(files)
}

/// A service's development home gets documents to work on: the demo's
/// sample data, or the export files of `--data DIR`, each imported with
/// the sample importer of its format. (An importer imports its fixtures at
/// every round instead.)
async fn load_fixtures(home: &domicile_home::Home, project: &Project, data: Option<&Path>) -> Result<()> {
    if project.manifest.world == World::Importer {
        return Ok(());
    }
    let files: Vec<(String, Vec<u8>)> = match data {
        None => domicile_samples::SAMPLE_DATA.iter().map(|(n, b)| ((*n).to_owned(), b.to_vec())).collect(),
        Some(dir) => fixture_files(project, Some(dir))?,
    };
    let space = home.resident(None)?;
    let runtime = home.runtime()?;
    trust_as_publisher(home, domicile_samples::sample_key()?, "domicile samples")?;
    for (name, bytes) in files {
        let importer = importer_for(&name, &bytes).with_context(|| {
            format!("{name}: no sample importer reads this kind of file (GPX, Enedis CSV, bank OFX or CSV, xAPI JSON, FHIR JSON)")
        })?;
        let id: AppId = format!("io.domicile.sample.{importer}").parse()?;
        if space.app(&id).is_err() {
            domicile_samples::install_granting_all(home, &space, domicile_samples::sample_package(importer)?)?;
        }
        let summary = runtime.run_importer(&space, &id, &name, &bytes).await.with_context(|| name.clone())?;
        errln!("dev: imported {name}: {summary}");
    }
    Ok(())
}

/// The sample importer of an export file, from its name and first bytes.
fn importer_for(name: &str, bytes: &[u8]) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
    if lower.ends_with(".gpx") {
        Some("gpx-importer")
    } else if lower.ends_with(".ofx") || lower.ends_with(".qfx") {
        Some("bank-importer")
    } else if lower.ends_with(".json") && head.contains("\"resourceType\"") {
        Some("health-importer")
    } else if lower.ends_with(".json") {
        Some("learning-importer")
    } else if lower.ends_with(".csv") && (head.contains("Identifiant PRM") || head.contains("Horodate")) {
        Some("energy-importer")
    } else if lower.ends_with(".csv") {
        Some("bank-importer")
    } else {
        None
    }
}
