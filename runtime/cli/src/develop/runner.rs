//! The runner of a Python or JavaScript project under `domicile dev`.
//!
//! componentize-py and componentize-js snapshot an initialised
//! interpreter with the app inside: 10-12 s a build on a 2-core machine,
//! most of it theirs. So `domicile dev` builds, once per project, a
//! *runner*: the same interpreter and the same world, whose exported
//! function loads the app from the sources `domicile dev` hands it at
//! each run (`domicile:app/dev-source`, `develop/dev.wit`). An edit then
//! costs reading the files (Python) or bundling them (JavaScript, with
//! rolldown, which componentize-js brings), and a run.
//!
//! The runner is built again only when what it was built from changes:
//! the project's WIT, its world, or, in Python, a standard module the
//! sources import that the runner did not load (a component has no
//! standard library at run time: the runner loads, while it is built,
//! every module the sources import). `domicile build` still makes the
//! package to publish, the app snapshotted inside.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{bail, Context, Result};
use domicile_manifest::World;

use super::{check_exports, componentize_js_tool, componentize_py_tool, run_tool, Lang, Project};

const DEV_WIT: &str = include_str!("dev.wit");
/// Where the runner of a language is built, under the project's `.domicile/`.
const RUNNER_DIR: &str = "runner";
/// The file the runner reads a JavaScript app from: the project bundled.
const JS_BUNDLE: &str = "app.bundle.js";
/// What the bundle's stack traces call it (kept there for reading).
const JS_BUNDLE_URL: &str = ".domicile/runner/js/app.bundle.js";
/// Standard modules every Python runner loads, whether or not the sources
/// import them yet, so that a first `import statistics` needs no rebuild.
const PYTHON_COMMON: [&str; 24] = [
    "json",
    "math",
    "statistics",
    "datetime",
    "calendar",
    "time",
    "collections",
    "itertools",
    "functools",
    "operator",
    "re",
    "string",
    "textwrap",
    "dataclasses",
    "typing",
    "enum",
    "decimal",
    "fractions",
    "bisect",
    "heapq",
    "csv",
    "io",
    "base64",
    "linecache",
];

/// What one round runs: the runner's component and the sources it reads.
pub(super) struct Round {
    pub component_path: PathBuf,
    /// What the runner was built from, hashed: the same key, the same
    /// runner (its bytes are read only to install it).
    pub runner_key: String,
    pub files: BTreeMap<String, String>,
    /// Seconds spent building the runner this round, if it was built.
    pub built_runner_s: Option<f64>,
    /// JavaScript: where each position of the bundle comes from.
    pub bundle_map: Option<BundleMap>,
}

/// Whether this project's rounds can use a runner; why not, if not.
pub(super) fn unavailable(project: &Project) -> Option<String> {
    match project.lang {
        Lang::Rust => Some("a Rust app builds incrementally".into()),
        Lang::Python => None,
        Lang::Js => rolldown_dir(&project.dir).is_none().then(|| {
            "rolldown, which componentize-js brings, is not in the project's node_modules (`npm install`)".into()
        }),
    }
}

/// The round's sources, and the runner built if it is missing or stale.
pub(super) fn prepare(project: &Project) -> Result<Round> {
    let dir = project.private().join(RUNNER_DIR).join(lang_dir(project.lang));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut bundle_map = None;
    let (files, source) = match project.lang {
        Lang::Python => {
            let files = python_files(&project.dir)?;
            let modules = python_runner_modules(&dir, project, &files);
            (files, python_runner(project.manifest.world, &modules))
        }
        Lang::Js => {
            let (bundle, map) = bundle_js(project, &dir)?;
            bundle_map = Some(map);
            let files = BTreeMap::from([(JS_BUNDLE.to_owned(), bundle)]);
            (files, js_runner(project.manifest.world, &wit_version(project)?))
        }
        Lang::Rust => bail!("a Rust project has no runner"),
    };
    let mut wit = project_wit(project)?;
    wit.insert("dev.wit".into(), DEV_WIT.into());
    // What the runner is built from; it is built again when this changes.
    let mut inputs = format!("{:?}\n{}\n{source}\n", project.lang, project.manifest.world);
    for (name, text) in &wit {
        inputs.push_str(&format!("{name}\n{text}\n"));
    }
    let key = hex::encode(domicile_package::sha256(inputs.as_bytes()));
    let component_path = dir.join("runner.wasm");
    let built_runner_s = if std::fs::read_to_string(dir.join("key")).ok().as_deref() != Some(key.as_str())
        || !component_path.is_file()
    {
        let started = std::time::Instant::now();
        build(project, &dir, &wit, &source)?;
        domicile_package::write_atomically(&dir.join("key"), key.as_bytes())?;
        Some(started.elapsed().as_secs_f64())
    } else {
        None
    };
    Ok(Round { component_path, runner_key: key, files, built_runner_s, bundle_map })
}

fn lang_dir(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "rust",
        Lang::Python => "python",
        Lang::Js => "js",
    }
}

fn runner_world(world: World) -> String {
    format!("{world}-runner")
}

/// The project's `wit/*.wit`, by file name.
fn project_wit(project: &Project) -> Result<BTreeMap<String, String>> {
    let wit_dir = project.dir.join("wit");
    let mut wit = BTreeMap::new();
    for entry in std::fs::read_dir(&wit_dir).with_context(|| format!("no WIT in {}", wit_dir.display()))? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".wit") && name != "dev.wit" {
            wit.insert(name, std::fs::read_to_string(&path).with_context(|| path.display().to_string())?);
        }
    }
    Ok(wit)
}

/// The version of `domicile:app` the project's WIT declares: the one its
/// imports are named with.
fn wit_version(project: &Project) -> Result<String> {
    project_wit(project)?
        .values()
        .flat_map(|text| text.lines())
        .find_map(|line| line.trim().strip_prefix("package domicile:app@"))
        .map(|v| v.trim_end_matches(';').trim().to_owned())
        .context("the project's wit/ declares no `package domicile:app@VERSION;`")
}

/// Builds the runner in `dir` from `source` with the language's toolchain.
fn build(project: &Project, dir: &Path, wit: &BTreeMap<String, String>, source: &str) -> Result<()> {
    let wit_dir = dir.join("wit");
    if wit_dir.exists() {
        std::fs::remove_dir_all(&wit_dir)?;
    }
    std::fs::create_dir_all(&wit_dir)?;
    for (name, text) in wit {
        std::fs::write(wit_dir.join(name), text)?;
    }
    let world = runner_world(project.manifest.world);
    let out = dir.join("runner.wasm");
    let _ = std::fs::remove_file(&out);
    match project.lang {
        Lang::Python => {
            std::fs::write(dir.join("domicile_dev_runner.py"), source)?;
            let mut py = Process::new("componentize-py");
            py.current_dir(dir)
                .args(["-d", "wit", "-w", &world, "componentize", "-p", ".", "domicile_dev_runner", "-o"])
                .arg(&out);
            run_tool(py, componentize_py_tool(), "building the runner of the app")?;
        }
        Lang::Js => {
            std::fs::write(dir.join("runner.js"), source)?;
            let mut js = Process::new(super::componentize_js(&project.dir));
            js.current_dir(dir).args(["runner.js", "-w", "wit", "-n", &world, "-o"]).arg(&out);
            run_tool(js, componentize_js_tool(), "building the runner of the app")?;
        }
        Lang::Rust => bail!("a Rust project has no runner"),
    }
    check_exports(&std::fs::read(&out).context("the toolchain wrote no runner")?, project)
}

/// The project's Python files, by path relative to it (`/` separated):
/// what the runner may import. Tests and the native test home are left
/// out, as `componentize-py` leaves out what the app does not import.
fn python_files(project_dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for path in super::sources(project_dir).into_keys() {
        let Ok(relative) = path.strip_prefix(project_dir) else { continue };
        let name = relative.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.ends_with(".py") || name.starts_with("test_") || name == "domicile_testing.py" {
            continue;
        }
        let key = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        files.insert(key, std::fs::read_to_string(&path).with_context(|| format!("{} is not UTF-8", path.display()))?);
    }
    if !files.contains_key("app.py") {
        bail!("the project has no app.py");
    }
    Ok(files)
}

/// The modules the runner loads while it is built: the common ones, the
/// world's bindings, every module the sources import that is not one of
/// theirs, and what the previous runner loaded (a module an edit stopped
/// importing costs no rebuild; one it starts importing does).
fn python_runner_modules(dir: &Path, project: &Project, files: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut modules: BTreeSet<String> = PYTHON_COMMON.iter().map(|m| (*m).to_owned()).collect();
    modules.insert("componentize_py_types".into());
    let mut interfaces = vec!["types", "data", "log", "clock", "egress", "notify", "dev_source"];
    if project.manifest.world == World::Importer {
        interfaces.push("import_report");
    }
    modules.extend(interfaces.iter().map(|i| format!("wit_world.imports.{i}")));
    let local: BTreeSet<&str> = files.keys().filter_map(|f| f.split(['/', '.']).next()).collect();
    modules.extend(
        files
            .values()
            .flat_map(|text| python_imports(text))
            .filter(|m| !local.contains(m.split('.').next().unwrap_or(""))),
    );
    let recorded = dir.join("modules.txt");
    let before: BTreeSet<String> =
        std::fs::read_to_string(&recorded).unwrap_or_default().lines().map(str::to_owned).collect();
    if modules.is_subset(&before) {
        return before;
    }
    modules.extend(before);
    let _ = std::fs::write(&recorded, modules.iter().map(|m| format!("{m}\n")).collect::<String>());
    modules
}

/// The modules a Python text imports (`import a.b, c as d`, `from a
/// import b`: `a`, and `a.b` in case `b` is a module). Relative imports
/// are the project's own. A line-based reading: it may find too much (an
/// import in a string), which only loads a module more.
fn python_imports(text: &str) -> Vec<String> {
    let dotted = |name: &str| {
        !name.is_empty() && name.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
    };
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(rest) = line.strip_prefix("import ") {
            for item in rest.split(',') {
                let name = item.split_whitespace().next().unwrap_or("");
                if dotted(name) {
                    found.push(name.to_owned());
                }
            }
        } else if let Some(rest) = line.strip_prefix("from ") {
            let mut words = rest.splitn(3, char::is_whitespace);
            let (module, keyword, names) = (words.next().unwrap_or(""), words.next(), words.next().unwrap_or(""));
            if keyword != Some("import") || !dotted(module) {
                continue;
            }
            found.push(module.to_owned());
            for item in names.trim_matches(|c| c == '(' || c == ')').split(',') {
                let name = item.split_whitespace().next().unwrap_or("");
                if dotted(name) && !name.contains('.') {
                    found.push(format!("{module}.{name}"));
                }
            }
        }
    }
    found
}

/// The Python runner: loads, while it is built, the modules it is given;
/// at each run, imports `app` from the round's sources and calls it.
fn python_runner(world: World, modules: &BTreeSet<String>) -> String {
    let modules = modules.iter().map(|m| format!("    {m:?},\n")).collect::<String>();
    let export = match world {
        World::Service => "    def run(self, input: str) -> str:\n        return _app().run(input)\n",
        World::Importer => {
            "    def import_(self, file_name: str, bytes: bytes) -> str:\n        return _app().import_(file_name, bytes)\n"
        }
    };
    format!(
        r#""""The runner `domicile dev` builds for this project: it imports the
project's modules from the sources `domicile dev` hands it at each run
(domicile:app/dev-source), so an edit needs no build. Generated: it is built
again when the project's WIT or world changes, or its sources import a
module it did not load."""

import importlib
import importlib.abc
import importlib.util
import linecache
import sys

# A component has no standard library at run time: whatever the app
# imports is loaded now, while the runner is built (those a toolchain
# cannot load are left to fail where the app imports them).
for _name in [
{modules}]:
    try:
        importlib.import_module(_name)
    except Exception:
        pass

import wit_world
from wit_world.imports import dev_source


class _ProjectSources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The project's own modules, from the round's sources."""

    def find_spec(self, fullname, path=None, target=None):
        base = fullname.replace(".", "/")
        for file, package in ((base + ".py", False), (base + "/__init__.py", True)):
            if dev_source.read(file) is not None:
                return importlib.util.spec_from_loader(fullname, self, origin=file, is_package=package)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        file = module.__spec__.origin
        text = dev_source.read(file)
        # Tracebacks quote the lines, as they would from files.
        linecache.cache[file] = (len(text), None, text.splitlines(True), file)
        module.__file__ = file
        exec(compile(text, file, "exec"), module.__dict__)


sys.meta_path.insert(0, _ProjectSources())


def _app():
    return importlib.import_module("app").WitWorld()


class WitWorld(wit_world.WitWorld):
{export}"#
    )
}

/// The JavaScript runner: at each run, evaluates the round's bundle of
/// the project (CommonJS, its `domicile:app` imports left as `require`s
/// that the runner answers with the interfaces it imported) and calls it.
fn js_runner(world: World, version: &str) -> String {
    let mut interfaces =
        vec![("data", "data"), ("log", "log"), ("clock", "clock"), ("egress", "egress"), ("notify", "notify")];
    if world == World::Importer {
        interfaces.push(("import-report", "importReport"));
    }
    let imports: String = interfaces
        .iter()
        .map(|(name, local)| format!("import * as {local} from 'domicile:app/{name}@{version}';\n"))
        .collect();
    let table: String = interfaces.iter().map(|(name, local)| format!("  '{name}': {local},\n")).collect();
    let export = match world {
        World::Service => "export function run(input) {\n  return app().run(input);\n}\n",
        World::Importer => {
            "function importFile(fileName, bytes) {\n  return app().import(fileName, bytes);\n}\nexport { importFile as import };\n"
        }
    };
    format!(
        r#"// The runner `domicile dev` builds for this project: it evaluates the
// project, bundled, from the sources `domicile dev` hands it at each run
// (domicile:app/dev-source), so an edit needs no build. Generated: it is
// built again when the project's WIT or world changes.

{imports}import {{ read }} from 'domicile:app/dev-source@{version}';

const interfaces = {{
{table}}};

function required(specifier) {{
  const name = specifier.replace(/^domicile:app\//, '').replace(/@.*$/, '');
  if (specifier.startsWith('domicile:app/') && Object.hasOwn(interfaces, name)) return interfaces[name];
  throw new Error(`${{specifier}} is not an interface a {world} can import`);
}}

function app() {{
  const code = read('{JS_BUNDLE}');
  if (code === undefined) throw new Error('domicile dev handed the runner no {JS_BUNDLE}');
  const module = {{ exports: {{}} }};
  // Indirect eval of the bundle wrapped on its own first line, so that a
  // stack trace's line numbers are the bundle's (`new Function` adds two).
  const load = (0, eval)('(function (require, module, exports) {{' + code + '\n}})');
  load(required, module, module.exports);
  return module.exports;
}}

{export}"#
    )
}

/// The script that bundles the project with rolldown (found by path: it
/// may come with a componentize-js on the PATH rather than the project's),
/// and writes the bundle's source map.
const BUNDLE_SCRIPT: &str = r#"// Written by `domicile dev`: bundles app.js and what it imports into one
// CommonJS text for the runner, leaving the host's interfaces as requires.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [input, rolldownDir, mapPath, url] = process.argv.slice(2);
const pkg = JSON.parse(readFileSync(join(rolldownDir, 'package.json'), 'utf8'));
const dot = typeof pkg.exports === 'string' ? pkg.exports : pkg.exports['.'];
const entry = typeof dot === 'string' ? dot : (dot.import ?? dot.default);
const { rolldown } = await import(pathToFileURL(join(rolldownDir, entry)).href);
const bundle = await rolldown({ input, external: [/^domicile:/, /^wasi:/], logLevel: 'warn' });
// `file` in the project: the map names the sources relative to it.
const { output } = await bundle.generate({ format: 'cjs', sourcemap: true, file: 'app.bundle.js' });
writeFileSync(mapPath, output[0].map.toString());
const code = output[0].code.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
process.stdout.write(code + '//# sourceURL=' + url + '\n');
"#;

/// The project bundled, kept beside its map in the runner's directory
/// `dir` for reading: a stack trace's lines are the bundle's.
fn bundle_js(project: &Project, dir: &Path) -> Result<(String, BundleMap)> {
    let rolldown = rolldown_dir(&project.dir).context("rolldown is not installed (`npm install` in the project)")?;
    let script = project.private().join(RUNNER_DIR).join("bundle.mjs");
    if std::fs::read_to_string(&script).ok().as_deref() != Some(BUNDLE_SCRIPT) {
        domicile_package::write_atomically(&script, BUNDLE_SCRIPT.as_bytes())?;
    }
    let map_path = dir.join(format!("{JS_BUNDLE}.map"));
    let output = match Process::new("node")
        .current_dir(&project.dir)
        .arg(&script)
        .arg("app.js")
        .arg(&rolldown)
        .arg(&map_path)
        .arg(JS_BUNDLE_URL)
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("node is not installed (componentize-js needs it)"),
        Err(e) => return Err(e).context("cannot start node"),
    };
    if !output.status.success() {
        bail!("app.js does not bundle:\n{}", String::from_utf8_lossy(&output.stderr).trim_end());
    }
    let bundle = String::from_utf8(output.stdout).context("the bundle is not UTF-8")?;
    domicile_package::write_atomically(&dir.join(JS_BUNDLE), bundle.as_bytes())?;
    let map = std::fs::read(&map_path).with_context(|| format!("the bundler wrote no {}", map_path.display()))?;
    let map = sourcemap::SourceMap::from_slice(&map).context("the bundle's source map does not parse")?;
    Ok((bundle, BundleMap(map)))
}

/// Where each position of the JavaScript bundle comes from.
pub(super) struct BundleMap(sourcemap::SourceMap);

impl BundleMap {
    /// `text` (a stack trace) with each position in the bundle
    /// (`URL:LINE:COLUMN`, from 1) replaced by its place in the project's
    /// files; a position the map does not know is left as it is.
    pub(super) fn translate(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(JS_BUNDLE_URL) {
            out.push_str(&rest[..at]);
            let after = &rest[at + JS_BUNDLE_URL.len()..];
            match self.position(after) {
                Some((place, used)) => {
                    out.push_str(&place);
                    rest = &after[used..];
                }
                None => {
                    out.push_str(JS_BUNDLE_URL);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The source place of `:LINE:COLUMN` at the start of `text`, and the
    /// bytes it took.
    fn position(&self, text: &str) -> Option<(String, usize)> {
        let number = |s: &str| -> Option<(u32, usize)> {
            let digits = s.strip_prefix(':')?;
            let len = digits.bytes().take_while(u8::is_ascii_digit).count();
            Some((digits[..len].parse().ok()?, len + 1))
        };
        let (line, a) = number(text)?;
        let (column, b) = number(&text[a..])?;
        let token = self.0.lookup_token(line.checked_sub(1)?, column.checked_sub(1)?)?;
        // The nearest mapping before it may be lines away, in code of the
        // bundler's own: not a place of the project's.
        if token.get_dst_line() + 1 != line {
            return None;
        }
        let place = format!("{}:{}:{}", token.get_source()?, token.get_src_line() + 1, token.get_src_col() + 1);
        Some((place, a + b))
    }
}

/// rolldown's package: in the project's node_modules, else next to the
/// componentize-js on the PATH (its dependency, through jco).
fn rolldown_dir(project_dir: &Path) -> Option<PathBuf> {
    let local = project_dir.join("node_modules/rolldown");
    if local.join("package.json").is_file() {
        return Some(local);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        let modules = dir.canonicalize().ok()?.parent()?.to_owned();
        let found = modules.join("rolldown");
        (dir.join("componentize-js").is_file()
            && modules.ends_with("node_modules")
            && found.join("package.json").is_file())
        .then_some(found)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_imports_are_read_from_import_lines() {
        let text = "import json, math as m\nfrom xml.etree import (ElementTree, tostring)\nfrom . import sibling\n\
                    # import commented\nfrom wit_world.imports import data  # ours\nimportant = 1\n    import statistics\n";
        assert_eq!(
            python_imports(text),
            [
                "json",
                "math",
                "xml.etree",
                "xml.etree.ElementTree",
                "xml.etree.tostring",
                "wit_world.imports",
                "wit_world.imports.data",
                "statistics"
            ]
        );
    }

    #[test]
    fn stack_positions_in_the_bundle_are_shown_in_the_project_files() {
        // app.js line 3 `  boom();` is the bundle's line 2 `\tboom();`.
        let mut builder = sourcemap::SourceMapBuilder::new(Some("app.bundle.js"));
        let app = builder.add_source("app.js");
        builder.add_raw(1, 1, 2, 2, Some(app), None, false);
        let map = BundleMap(builder.into_sourcemap());
        let trace =
            format!("f@{JS_BUNDLE_URL}:2:2\nrun@runner.js:36:16\ng@{JS_BUNDLE_URL}:900:1 and {JS_BUNDLE_URL}:x");
        assert_eq!(
            map.translate(&trace),
            format!("f@app.js:3:3\nrun@runner.js:36:16\ng@{JS_BUNDLE_URL}:900:1 and {JS_BUNDLE_URL}:x"),
        );
    }

    #[test]
    fn runners_export_their_world_and_name_the_wit_version() {
        let service = js_runner(World::Service, "0.1.0");
        assert!(service.contains("import * as data from 'domicile:app/data@0.1.0';"));
        assert!(service.contains("export function run(input)") && !service.contains("import-report"));
        let importer = js_runner(World::Importer, "0.1.0");
        assert!(importer.contains("export { importFile as import };") && importer.contains("import-report@0.1.0"));
        let python = python_runner(World::Importer, &BTreeSet::from(["json".to_owned()]));
        assert!(python.contains("    \"json\",\n") && python.contains("def import_(self, file_name"));
    }
}
