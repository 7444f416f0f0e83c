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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant, SystemTime};

mod runner;

use crate::terminal;
use anyhow::{bail, Context, Result};
use domicile_manifest::{AppId, Manifest, World};
use domicile_package::{PublicKey, Role, SecretKey};

const WIT: &str = include_str!("../../../wit/domicile.wit");
const RUST_SDK_LIB: &str = include_str!("../../../sample-apps/sdk/src/lib.rs");
const RUST_SDK_TIME: &str = include_str!("../../../sample-apps/sdk/src/time.rs");
const RUST_SDK_VIEW: &str = include_str!("../../../sample-apps/sdk/src/view.rs");
const RUST_SDK_TESTING: &str = include_str!("../../../sample-apps/sdk/src/testing.rs");
const PYTHON_SDK: &str = include_str!("../../../sample-apps/sdk-python/domicile.py");
const PYTHON_TESTING: &str = include_str!("../../../sample-apps/sdk-python/domicile_testing.py");
const JS_SDK: &str = include_str!("../../../sample-apps/sdk-js/domicile.js");
const JS_TESTING: &str = include_str!("../../../sample-apps/sdk-js/domicile_testing.mjs");
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

/// `domicile new NAME`: a project in `NAME/` (or `--dir`).
pub fn new(name: &str, lang: Lang, world: WorldArg, dir: Option<&Path>, json: bool) -> Result<()> {
    let id: AppId = format!("org.example.{name}").parse().with_context(|| {
        format!("`{name}` cannot name an app: use lower-case letters, digits and hyphens, starting with a letter")
    })?;
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_owned);
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} already exists and is not empty; choose another name or --dir", dir.display());
    }
    let mut files: Vec<(String, String)> = vec![
        ("manifest.toml".into(), manifest(name, &id, world)),
        ("wit/domicile.wit".into(), WIT.into()),
        (".gitignore".into(), "# secret keys, development homes, builds\n*.key\n.domicile/\ntarget/\nnode_modules/\n*.dpkg\n*.wasm\n__pycache__/\n".into()),
        ("README.md".into(), readme(name, &id, lang, world)),
    ];
    match world {
        WorldArg::Service => {}
        WorldArg::Importer => files.push(("fixtures/notes.txt".into(), "first line\n\nsecond line\n".into())),
    }
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml".into(), rust_cargo_toml(name)));
            files.push(("src/lib.rs".into(), rust_source(name, &id, world)));
            files.push(("domicile-sdk/Cargo.toml".into(), rust_sdk_cargo_toml()));
            // The SDK finds the WIT beside it, in the project.
            files.push((
                "domicile-sdk/src/lib.rs".into(),
                RUST_SDK_LIB.replace("path: \"../../wit\"", "path: \"../wit\""),
            ));
            files.push(("domicile-sdk/src/time.rs".into(), RUST_SDK_TIME.into()));
            files.push(("domicile-sdk/src/view.rs".into(), RUST_SDK_VIEW.into()));
            files.push(("domicile-sdk/src/testing.rs".into(), RUST_SDK_TESTING.into()));
        }
        Lang::Python => {
            files.push(("app.py".into(), python_source(&id, world)));
            files.push(("domicile.py".into(), PYTHON_SDK.into()));
            files.push(("domicile_testing.py".into(), PYTHON_TESTING.into()));
            if world == WorldArg::Service {
                files.push(("test_app.py".into(), PYTHON_SERVICE_TEST.into()));
            }
        }
        Lang::Js => {
            files.push(("app.js".into(), js_source(&id, world)));
            files.push(("domicile.js".into(), JS_SDK.into()));
            files.push(("domicile_testing.mjs".into(), JS_TESTING.into()));
            if world == WorldArg::Service {
                files.push(("test_app.mjs".into(), JS_SERVICE_TEST.into()));
            }
            files.push(("package.json".into(), js_package_json(name)));
        }
    }
    for (path, text) in &files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("project files are in a folder"))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if json {
        outln!("{}", serde_json::json!({ "project": dir, "app": id.as_str(), "lang": lang, "world": world }));
    } else {
        outln!("created {} ({:?}, {:?}) in {}", id, lang, world, dir.display());
        outln!("next: cd {} && domicile dev   (README.md says more)", dir.display());
    }
    Ok(())
}

fn manifest(name: &str, id: &AppId, world: WorldArg) -> String {
    let (world, permission) = match world {
        WorldArg::Service => (
            "service",
            "[[permissions]]\ndoctype = \"io.domicile.mobility.trip\"\naccess = [\"read\"]\nfields = [\"mode\", \"distance_m\"]\npurpose = \"Add up the distance of your trips per transport mode\"\n".to_owned(),
        ),
        WorldArg::Importer => (
            "importer",
            format!("[[permissions]]\ndoctype = \"{id}.line\"\naccess = [\"write\"]\npurpose = \"Keep each line of the files you import\"\n"),
        ),
    };
    format!(
        "manifest-version = 1\nid = \"{id}\"\nname = \"{name}\"\nversion = \"0.1.0\"\nworld = \"{world}\"\ndescription = \"Describe what {name} does for the resident.\"\n\n{permission}\n[limits]\nmemory-mib = 128\ncpu-ms = 5000\n"
    )
}

fn readme(name: &str, id: &AppId, lang: Lang, world: WorldArg) -> String {
    let (source, toolchain) = match lang {
        Lang::Rust => (
            "src/lib.rs (the SDK is in domicile-sdk/)",
            format!("Rust's {GUEST_TARGET} target: `rustup target add {GUEST_TARGET}`"),
        ),
        Lang::Python => {
            ("app.py (the SDK is domicile.py)", format!("`pip install componentize-py=={COMPONENTIZE_PY}`"))
        }
        Lang::Js => (
            "app.js (the SDK is domicile.js)",
            "`npm install` here (componentize-js, pinned in package.json)".to_owned(),
        ),
    };
    let data = match world {
        WorldArg::Service => {
            "the sample data of `domicile demo` (trips, energy, bank, learning), or `--data DIR` of export files"
        }
        WorldArg::Importer => "every file of fixtures/, or `--data DIR`",
    };
    let tests = match (lang, world) {
        (Lang::Rust, _) => "\n`cargo test` runs the app natively on fixture documents, with no component and no home: see\nthe tests at the end of src/lib.rs and `domicile_sdk::testing`.\n",
        (Lang::Python, WorldArg::Service) => "\n`python3 test_app.py` runs the app natively on fixture documents (domicile_testing.py).\n",
        (Lang::Js, WorldArg::Service) => "\n`node --test test_app.mjs` runs the app natively on fixture documents (domicile_testing.mjs).\n",
        _ => "",
    };
    format!(
        "# {name}\n\nA domicile app ({id}). Its code is in {source}; what it may read and write, and why, in\nmanifest.toml; the interface it is built against in wit/.\n\nToolchain: {toolchain}.\n\n```sh\ndomicile dev            # build, install in .domicile/home, run on {data};\n                        # again at every saved change (Ctrl-C stops)\ndomicile dev --once     # one round, for scripts\ndomicile build          # just build and pack: target/*.dpkg, signed with .domicile/dev.key\ndomicile doctypes       # what documents exist, and `domicile doctype show DOCTYPE` for their fields\ndomicile --home HOME publish   # build, have HOME trust this project's key, install it there\n```\n{tests}\nTo publish to a catalogue, sign with your publisher key instead of the project's:\n`domicile pack --manifest manifest.toml --component target/app.wasm --key publisher.key --out {name}.dpkg`.\nKeys, homes and packages stay out of git (.gitignore).\n"
    )
}

fn rust_cargo_toml(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\ndomicile-sdk = {{ path = \"domicile-sdk\" }}\nserde = {{ version = \"1\", default-features = false, features = [\"derive\", \"std\"] }}\nserde_json = {{ version = \"1\", default-features = false, features = [\"std\"] }}\n\n[profile.release]\nopt-level = \"s\"\n\n# A project of its own, even inside another workspace.\n[workspace]\n"
    )
}

fn rust_sdk_cargo_toml() -> String {
    format!(
        "[package]\nname = \"domicile-sdk\"\ndescription = \"Write domicile apps in Rust (copied by `domicile new`)\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\nwit-bindgen = {{ version = \"{WIT_BINDGEN}\", default-features = false, features = [\"macros\", \"realloc\"] }}\nserde = {{ version = \"1\", default-features = false, features = [\"derive\", \"std\"] }}\nserde_json = {{ version = \"1\", default-features = false, features = [\"std\"] }}\n"
    )
}

fn rust_source(name: &str, id: &AppId, world: WorldArg) -> String {
    match world {
        WorldArg::Service => format!(
            r#"//! {name}: a domicile service. `domicile dev` runs it at every save.

use std::collections::BTreeMap;

use domicile_sdk::data;

// Bindings of the `service` world, with domicile's imports from the SDK.
domicile_sdk::generate!("service", "wit");

#[derive(serde::Deserialize)]
struct Trip {{
    mode: String,
    distance_m: f64,
}}

struct App;

impl Guest for App {{
    fn run(_input: String) -> Result<String, String> {{
        let mut km: BTreeMap<String, f64> = BTreeMap::new();
        let trips = data::query::<Trip>("io.domicile.mobility.trip", &serde_json::json!({{}}));
        for item in trips.map_err(|e| e.to_string())? {{
            let (_id, trip) = item.map_err(|e| e.to_string())?;
            *km.entry(trip.mode).or_default() += trip.distance_m / 1000.0;
        }}
        domicile_sdk::log::info(&format!("{{}} transport modes", km.len()));
        let km: BTreeMap<String, f64> = km.into_iter().map(|(mode, k)| (mode, domicile_sdk::round(k, 1))).collect();
        Ok(serde_json::json!({{ "km_per_mode": km }}).to_string())
    }}
}}

export!(App);

#[cfg(test)]
mod tests {{
    use super::*;
    use domicile_sdk::testing::TestHome;

    // `cargo test` runs the app natively, on these fixture documents.
    #[test]
    fn adds_up_the_km_of_each_mode() {{
        let home = TestHome::new()
            .with("io.domicile.mobility.trip", serde_json::json!({{"mode": "bike", "distance_m": 4200.0}}))
            .with("io.domicile.mobility.trip", serde_json::json!({{"mode": "bike", "distance_m": 800.0}}));
        let output = home.run(|| App::run("{{}}".into())).unwrap();
        assert_eq!(output["km_per_mode"]["bike"], 5.0);
        assert_eq!(home.logs(), ["info: 1 transport modes"]);
    }}
}}
"#
        ),
        WorldArg::Importer => format!(
            r#"//! {name}: a domicile importer. `domicile dev` imports fixtures/ at every save.

use domicile_sdk::data;

// Bindings of the `importer` world, with domicile's imports from the SDK.
domicile_sdk::generate!("importer", "wit");

struct App;

impl Guest for App {{
    fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {{
        let text = String::from_utf8(bytes).map_err(|_| format!("{{file_name}} is not UTF-8 text"))?;
        let doctype = "{id}.line";
        let mut kept = 0;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {{
            let id = format!("{{file_name}}:{{}}", n + 1);
            let body = serde_json::json!({{ "file": file_name, "line": n + 1, "text": line }});
            data::put(doctype, Some(&id), &body).map_err(|e| e.to_string())?;
            kept += 1;
        }}
        domicile_sdk::log::info(&format!("{{kept}} lines kept"));
        Ok(serde_json::json!({{ "lines": kept }}).to_string())
    }}
}}

export!(App);

#[cfg(test)]
mod tests {{
    use super::*;

    // `cargo test` runs the app natively, on an in-memory home.
    #[test]
    fn keeps_each_line() {{
        let home = domicile_sdk::testing::TestHome::new();
        let output = home.run(|| App::import("a.txt".into(), b"one\n\ntwo\n".to_vec())).unwrap();
        assert_eq!(output["lines"], 2);
        assert_eq!(home.documents("{id}.line").len(), 2);
    }}
}}
"#
        ),
    }
}

/// The Python service's own test: the app run natively on fixture documents.
const PYTHON_SERVICE_TEST: &str = r#""""The app run natively on fixture documents: `python3 test_app.py`."""

import unittest

from domicile_testing import TestHome


class App(unittest.TestCase):
    def test_adds_up_the_km_of_each_mode(self):
        home = TestHome().with_docs("io.domicile.mobility.trip", [
            {"mode": "bike", "distance_m": 4200},
            {"mode": "bike", "distance_m": 800},
        ])
        output = home.run("app.py")
        self.assertEqual(output["km_per_mode"], {"bike": 5.0})
        self.assertEqual(home.logs, ["info: 1 transport modes"])


if __name__ == "__main__":
    unittest.main()
"#;

fn python_source(id: &AppId, world: WorldArg) -> String {
    match world {
        WorldArg::Service => format!(
            r#""""{id}: a domicile service. `domicile dev` runs it at every save."""

import wit_world
import domicile


def km_per_mode(options):
    km = {{}}
    for _, trip in domicile.query("io.domicile.mobility.trip"):
        km[trip["mode"]] = km.get(trip["mode"], 0) + trip["distance_m"] / 1000
    domicile.log.info(f"{{len(km)}} transport modes")  # print() goes to the app's log too
    return {{"km_per_mode": {{mode: round(k, 1) for mode, k in sorted(km.items())}}}}


class WitWorld(wit_world.WitWorld):
    def run(self, input: str) -> str:
        return domicile.serve(input, km_per_mode)
"#
        ),
        WorldArg::Importer => format!(
            r#""""{id}: a domicile importer. `domicile dev` imports fixtures/ at every save."""

import json

import wit_world
import domicile
from componentize_py_types import Err

DOCTYPE = "{id}.line"


class WitWorld(wit_world.WitWorld):
    def import_(self, file_name: str, bytes: bytes) -> str:
        try:
            text = bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise Err(f"{{file_name}} is not UTF-8 text")
        kept = 0
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                domicile.put(DOCTYPE, {{"file": file_name, "line": n, "text": line}}, id=f"{{file_name}}:{{n}}")
                kept += 1
        domicile.log.info(f"{{kept}} lines kept")
        return json.dumps({{"lines": kept}})
"#
        ),
    }
}

/// The JavaScript service's own test: the app run natively on fixture documents.
const JS_SERVICE_TEST: &str = r#"// The app run natively on fixture documents: `node --test test_app.mjs`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestHome } from './domicile_testing.mjs';

test('adds up the km of each mode', async () => {
  const home = new TestHome().withDocs('io.domicile.mobility.trip', [
    { mode: 'bike', distance_m: 4200 },
    { mode: 'bike', distance_m: 800 },
  ]);
  const output = await home.run(new URL('./app.js', import.meta.url));
  assert.deepEqual(output.km_per_mode, { bike: 5 });
  assert.deepEqual(home.logs, ['info: 1 transport modes']);
});
"#;

fn js_source(id: &AppId, world: WorldArg) -> String {
    match world {
        WorldArg::Service => format!(
            r#"// {id}: a domicile service. `domicile dev` runs it at every save.

import {{ query, log, service }} from './domicile.js';

function kmPerMode(options) {{
  const km = {{}};
  for (const {{ body }} of query('io.domicile.mobility.trip')) {{
    km[body.mode] = (km[body.mode] ?? 0) + body.distance_m / 1000;
  }}
  log.info(`${{Object.keys(km).length}} transport modes`); // console.log goes to the app's log too
  const rounded = Object.fromEntries(Object.entries(km).sort().map(([mode, k]) => [mode, Math.round(k * 10) / 10]));
  return {{ km_per_mode: rounded }};
}}

export const run = service(kmPerMode);
"#
        ),
        WorldArg::Importer => format!(
            r#"// {id}: a domicile importer. `domicile dev` imports fixtures/ at every save.

import {{ put, log }} from './domicile.js';

const DOCTYPE = '{id}.line';

function importFile(fileName, bytes) {{
  const text = new TextDecoder('utf-8', {{ fatal: true }}).decode(bytes);
  let kept = 0;
  text.split(/\r?\n/).forEach((line, i) => {{
    if (line.trim()) {{
      put(DOCTYPE, {{ file: fileName, line: i + 1, text: line }}, `${{fileName}}:${{i + 1}}`);
      kept += 1;
    }}
  }});
  log.info(`${{kept}} lines kept`);
  return JSON.stringify({{ lines: kept }});
}}

export {{ importFile as import }};
"#
        ),
    }
}

fn js_package_json(name: &str) -> String {
    format!(
        "{{\n  \"name\": \"{name}\",\n  \"private\": true,\n  \"type\": \"module\",\n  \"devDependencies\": {{\n    \"@bytecodealliance/componentize-js\": \"{COMPONENTIZE_JS}\",\n    \"@bytecodealliance/preview2-shim\": \"{PREVIEW2_SHIM}\",\n    \"rolldown\": \"{ROLLDOWN}\"\n  }}\n}}\n"
    )
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

/// `domicile build`: the project's component, checked, and its package
/// signed with the development key. Returns the package's path.
pub fn build(dir: &Path, json: bool) -> Result<PathBuf> {
    build_project(&Project::open(dir)?, json)
}

fn build_project(project: &Project, json: bool) -> Result<PathBuf> {
    let started = Instant::now();
    let component_path = compile(project)?;
    let component = std::fs::read(&component_path)?;
    check_exports(&component, project)?;
    let key = project.dev_key()?;
    let manifest_path = project.dir.join("manifest.toml");
    let (_, package) = crate::commands::seal_checked(
        (&manifest_path, &project.manifest_bytes),
        (&component_path, &component),
        &key,
        false,
    )?;
    let out = project.dir.join(BUILD_DIR).join(format!("{}-{}.dpkg", project.manifest.id, project.manifest.version));
    domicile_package::write_atomically(&out, &package)?;
    if json {
        outln!(
            "{}",
            serde_json::json!({ "package": out, "component_bytes": component.len(), "build_ms": started.elapsed().as_millis() as u64 })
        );
    } else {
        outln!(
            "built {} {} ({:?}, {} bytes of component) in {:.1} s: {}",
            project.manifest.id,
            project.manifest.version,
            project.lang,
            component.len(),
            started.elapsed().as_secs_f64(),
            out.display()
        );
    }
    Ok(out)
}

/// Runs the language's toolchain; returns the component's path.
fn compile(project: &Project) -> Result<PathBuf> {
    let out_dir = project.dir.join(BUILD_DIR);
    std::fs::create_dir_all(&out_dir)?;
    let app_wasm = out_dir.join("app.wasm");
    match project.lang {
        Lang::Rust => {
            check_rust_toolchain()?;
            let mut cargo = Process::new("cargo");
            cargo.current_dir(&project.dir).args(["build", "--release", "--target", GUEST_TARGET]);
            run_tool(
                cargo,
                Tool { name: "cargo", install: "install Rust with rustup (https://rustup.rs)".into() },
                "building the app",
            )?;
            let crate_name = crate_name(&project.dir)?;
            let built =
                out_dir.join(GUEST_TARGET).join("release").join(format!("{}.wasm", crate_name.replace('-', "_")));
            std::fs::copy(&built, &app_wasm).with_context(|| format!("the build left no {}", built.display()))?;
        }
        Lang::Python => {
            let mut py = Process::new("componentize-py");
            py.current_dir(&project.dir)
                .args(["-d", "wit", "-w", project.manifest.world.as_str(), "componentize", "-p", ".", "app", "-o"])
                .arg(&app_wasm);
            run_tool(py, componentize_py_tool(), "building the app")?;
        }
        Lang::Js => {
            let mut js = Process::new(componentize_js(&project.dir));
            js.current_dir(&project.dir)
                .args(["app.js", "-w", "wit", "-n", project.manifest.world.as_str(), "-o"])
                .arg(&app_wasm);
            run_tool(js, componentize_js_tool(), "building the app")?;
        }
    }
    Ok(app_wasm)
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
    let mut trust = home.trust()?;
    if trust.trusted_as(&key, Role::Publisher).is_none() {
        trust.add(key, name, &[Role::Publisher])?;
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
            let (_, package) = crate::commands::seal_checked(
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
        if let Err(e) = crate::home::install_granting_all(home, &space, package) {
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
        if json {
            outln!("{output}");
        } else {
            // What the resident will see of it, as `domicile run` draws it;
            // the JSON with --json (or when there is no view).
            outln!("{what}:\n{}", terminal::service_output(&output));
        }
    }
    Ok(())
}

/// The project's files whose change starts a round, with their times.
fn sources(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
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
        None => crate::demo::SAMPLE_DATA.iter().map(|(n, b)| ((*n).to_owned(), b.to_vec())).collect(),
        Some(dir) => fixture_files(project, Some(dir))?,
    };
    let space = home.resident(None)?;
    let runtime = home.runtime()?;
    trust_as_publisher(home, crate::demo::sample_key()?, "domicile samples")?;
    for (name, bytes) in files {
        let importer = importer_for(&name, &bytes).with_context(|| {
            format!("{name}: no sample importer reads this kind of file (GPX, Enedis CSV, bank OFX or CSV, xAPI JSON, FHIR JSON)")
        })?;
        let id: AppId = format!("io.domicile.sample.{importer}").parse()?;
        if space.app(&id).is_err() {
            crate::home::install_granting_all(home, &space, crate::demo::sample_package(importer)?)?;
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
