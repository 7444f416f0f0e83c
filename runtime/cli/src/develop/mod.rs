//! The developer loop, outside this repository: `domicile new` creates an
//! app project (Rust, Python or JavaScript), `domicile build` builds it
//! with whichever toolchain is present, checks the result is a component
//! exporting the manifest's world and packs it with the project's
//! development key, and `domicile dev` installs it in a development home of
//! the project, runs it on fixture data, prints its output and log, and
//! does it again at every saved change.
//!
//! A project carries what it builds against: a copy of domicile's WIT and
//! of the SDK of its language (the Rust SDK as a path dependency), so it
//! builds without this repository and pins the interface it was made for.
//!
//! Here: what a project is and the toolchains that build it; each verb has
//! its file (`new.rs` and its `templates/`, `build.rs`, `dev.rs`, and
//! `runner.rs` for the runner `dev` runs Python and JavaScript sources in).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::SystemTime;

pub mod build;
pub mod dev;
pub mod new;
mod runner;

pub use build::build;
pub use dev::{dev, DevOptions};
pub use new::new;

use anyhow::{bail, Context, Result};
use domicile_manifest::{AppId, Manifest};
use domicile_package::SecretKey;
/// The toolchains' versions the SDKs are tested with.
const COMPONENTIZE_PY: &str = "0.25.1";
const COMPONENTIZE_JS: &str = "0.23.0";
const WIT_BINDGEN: &str = "=0.61.1";
/// componentize-js 0.23.0 imports it at run time without depending on it.
const PREVIEW2_SHIM: &str = "0.25.0";
/// The bundler `domicile dev` runs JavaScript sources through (the version
/// componentize-js 0.23.0 brings, through jco; named so a project keeps it).
const ROLLDOWN: &str = "1.3.3";
/// The project's own files: its key, its development home, its builds.
const PRIVATE_DIR: &str = ".domicile";
const BUILD_DIR: &str = "target";
/// Rust apps are built for WASI 0.2: its linker makes a component, and
/// `println!` and panics reach the app's log (the runtime denies the rest
/// of WASI at run time).
const GUEST_TARGET: &str = "wasm32-wasip2";

/// The language of an app project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

/// The world an app implements, as `domicile new` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
pub enum WorldArg {
    Service,
    Importer,
}

/// An app project on disk.
struct Project {
    dir: PathBuf,
    lang: Lang,
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
}

impl Project {
    fn open(dir: &Path) -> Result<Project> {
        let dir = dir.canonicalize().with_context(|| format!("no project in {}", dir.display()))?;
        let lang = if dir.join("Cargo.toml").is_file() {
            Lang::Rust
        } else if dir.join("app.py").is_file() {
            Lang::Python
        } else if dir.join("app.js").is_file() {
            Lang::Js
        } else {
            bail!(
                "{} is not an app project: it has no Cargo.toml, app.py or app.js (create one with `domicile new NAME`)",
                dir.display()
            );
        };
        let path = dir.join("manifest.toml");
        let manifest_bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = Manifest::from_bytes(&manifest_bytes).with_context(|| path.display().to_string())?;
        Ok(Project { dir, lang, manifest, manifest_bytes })
    }

    fn private(&self) -> PathBuf {
        self.dir.join(PRIVATE_DIR)
    }

    /// The project's key, made at its first build and kept in the
    /// project's `.domicile/` (which git ignores): it signs the packages of
    /// its development home, and those `domicile publish` installs in a home
    /// that trusts it.
    fn dev_key(&self) -> Result<SecretKey> {
        let path = self.private().join("dev.key");
        if !path.exists() {
            std::fs::create_dir_all(self.private())?;
            SecretKey::generate().save(&path)?;
        }
        Ok(SecretKey::load(&path)?)
    }
}

/// What a home is told of the project in `dir`: its app and version, the
/// public half of its key (made if it has none yet), and who that key is,
/// in words, for a home asked to trust it.
pub struct ProjectIdentity {
    pub app: AppId,
    pub version: semver::Version,
    pub key: domicile_package::PublicKey,
    pub publisher: String,
}

pub fn project_identity(dir: &Path) -> Result<ProjectIdentity> {
    let project = Project::open(dir)?;
    let key = project.dev_key()?.public();
    let publisher = format!("the developer of {} (the key of its project)", project.manifest.id);
    Ok(ProjectIdentity { app: project.manifest.id, version: project.manifest.version, key, publisher })
}

/// componentize-js: the project's (`npm install`), else the PATH's.
fn componentize_js(project_dir: &Path) -> std::ffi::OsString {
    let local = project_dir.join("node_modules/.bin/componentize-js");
    if local.is_file() {
        local.into_os_string()
    } else {
        "componentize-js".into()
    }
}

/// componentize-py, which builds Python apps (and their runners).
pub(crate) fn componentize_py_tool() -> Tool {
    let install = format!("run `pip install componentize-py=={COMPONENTIZE_PY}` (where pip puts programs on the PATH)");
    Tool { name: "componentize-py", install }
}

/// componentize-js, which the project's npm dependencies bring.
pub(crate) fn componentize_js_tool() -> Tool {
    let install = format!("run `npm install` in the project (it brings componentize-js {COMPONENTIZE_JS})");
    Tool { name: "componentize-js", install }
}

/// A build tool a project needs: what it is called, and how to get it.
pub(crate) struct Tool {
    pub name: &'static str,
    /// What to do when it is missing, as an imperative: `run pip install ...`.
    pub install: String,
}

/// Runs a build tool; a missing one is said once, with how to install it.
pub(crate) fn run_tool(mut command: Process, tool: Tool, doing: &str) -> Result<()> {
    // The tool's chatter goes with its errors, to stderr: stdout is ours.
    command.stdout(std::io::stderr());
    let Tool { name, install } = tool;
    let status = match command.status() {
        Ok(status) => status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{name} is needed for {doing}, and it is not installed or not on the PATH: {install}, then try again")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot start {name} for {doing}")),
    };
    if !status.success() {
        bail!("{name} failed {doing} ({status}); its messages are above");
    }
    Ok(())
}

fn crate_name(dir: &Path) -> Result<String> {
    let text = std::fs::read_to_string(dir.join("Cargo.toml"))?;
    let value: toml::Value = toml::from_str(&text).context("Cargo.toml")?;
    value
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned)
        .context("Cargo.toml has no [package] name")
}

/// Checks that rustup has the guest target (it brings its own component
/// linker, so nothing else needs setting).
fn check_rust_toolchain() -> Result<()> {
    let installed = match Process::new("rustup").args(["target", "list", "--installed"]).output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).lines().any(|l| l.trim() == GUEST_TARGET),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "rustup is not installed: install Rust from https://rustup.rs, then `rustup target add {GUEST_TARGET}`"
            )
        }
        Err(e) => return Err(e).context("cannot start rustup"),
    };
    if !installed {
        bail!("no Rust toolchain for {GUEST_TARGET}: `rustup target add {GUEST_TARGET}`");
    }
    Ok(())
}

/// The component must be a component, and export the manifest's world's
/// function (`run` or `import`): read from its export section, without
/// compiling it.
fn check_exports(bytes: &[u8], project: &Project) -> Result<()> {
    use wasmparser::{Encoding, Parser, Payload};
    let wanted = project.manifest.world.export();
    let mut depth = 0usize;
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.context("the build output is not valid WebAssembly")? {
            Payload::Version { encoding: Encoding::Module, .. } if depth == 0 => {
                bail!("the build output is a core module, not a component: the toolchain has no component linker")
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(section) if depth == 0 => {
                for export in section {
                    exports.push(export?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    if !exports.iter().any(|e| e == wanted) {
        let world = project.manifest.world;
        bail!(
            "the component exports {} but the manifest's world `{world}` needs `{wanted}`: build against wit/ with world `{world}`",
            if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") },
        );
    }
    Ok(())
}

/// The project's files whose change starts a round, with their times.
pub(super) fn sources(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            // Cargo.lock: the first Rust build writes it, which is no edit.
            if name.to_string_lossy().starts_with('.')
                || [BUILD_DIR, "node_modules", "__pycache__", "Cargo.lock"].iter().any(|n| name == *n)
            {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                // A Python virtual environment is not the project's source.
                if !entry.path().join("pyvenv.cfg").exists() {
                    stack.push(entry.path());
                }
            } else if let Ok(modified) = meta.modified() {
                found.insert(entry.path(), modified);
            }
        }
    }
    found
}
