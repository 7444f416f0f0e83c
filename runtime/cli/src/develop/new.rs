//! `domicile new NAME`: an app project made from the files of
//! `templates/` (its `{{name}}`, `{{id}}`... filled in), with a copy of
//! domicile's WIT and of the SDK of its language.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use domicile_manifest::AppId;

use crate::answer::say;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct NewArgs {
    /// The app's name (its id becomes org.example.NAME; change it in manifest.toml).
    pub name: String,
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: Lang,
    #[arg(long, value_enum, default_value = "service")]
    pub world: WorldArg,
    /// Where to create it (default ./NAME).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

use super::{Lang, WorldArg, COMPONENTIZE_JS, COMPONENTIZE_PY, GUEST_TARGET, PREVIEW2_SHIM, ROLLDOWN, WIT_BINDGEN};

const WIT: &str = include_str!("../../../../wit/domicile.wit");
const RUST_SDK_LIB: &str = include_str!("../../../../sample-apps/sdk/src/lib.rs");
const RUST_SDK_TIME: &str = include_str!("../../../../sample-apps/sdk/src/time.rs");
const RUST_SDK_VIEW: &str = include_str!("../../../../sample-apps/sdk/src/view.rs");
const RUST_SDK_TESTING: &str = include_str!("../../../../sample-apps/sdk/src/testing.rs");
const PYTHON_SDK: &str = include_str!("../../../../sample-apps/sdk-python/domicile.py");
const PYTHON_TESTING: &str = include_str!("../../../../sample-apps/sdk-python/domicile_testing.py");
const JS_SDK: &str = include_str!("../../../../sample-apps/sdk-js/domicile.js");
const JS_TESTING: &str = include_str!("../../../../sample-apps/sdk-js/domicile_testing.mjs");

/// A project's files as `domicile new` writes them, before filling in.
mod templates {
    pub const MANIFEST_SERVICE: &str = include_str!("templates/manifest-service.toml");
    pub const MANIFEST_IMPORTER: &str = include_str!("templates/manifest-importer.toml");
    pub const README: &str = include_str!("templates/README.md");
    pub const GITIGNORE: &str = include_str!("templates/gitignore");
    pub const IMPORTER_FIXTURE: &str = include_str!("templates/notes.txt");
    pub const RUST_CARGO_TOML: &str = include_str!("templates/rust/Cargo.toml");
    pub const RUST_SDK_CARGO_TOML: &str = include_str!("templates/rust/sdk-Cargo.toml");
    pub const RUST_SERVICE: &str = include_str!("templates/rust/service.rs");
    pub const RUST_IMPORTER: &str = include_str!("templates/rust/importer.rs");
    pub const PYTHON_SERVICE: &str = include_str!("templates/python/service.py");
    pub const PYTHON_SERVICE_TEST: &str = include_str!("templates/python/test_service.py");
    pub const PYTHON_IMPORTER: &str = include_str!("templates/python/importer.py");
    pub const JS_SERVICE: &str = include_str!("templates/js/service.js");
    pub const JS_SERVICE_TEST: &str = include_str!("templates/js/test_service.mjs");
    pub const JS_IMPORTER: &str = include_str!("templates/js/importer.js");
    pub const JS_PACKAGE_JSON: &str = include_str!("templates/js/package.json");
}

/// A template with each `{{key}}` replaced by its value.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |text, (key, value)| text.replace(&format!("{{{{{key}}}}}"), value))
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
    let values = [
        ("name", name),
        ("id", id.as_str()),
        ("componentize_js", COMPONENTIZE_JS),
        ("preview2_shim", PREVIEW2_SHIM),
        ("rolldown", ROLLDOWN),
        ("wit_bindgen", WIT_BINDGEN),
    ];
    let from = |template: &str| fill(template, &values);
    let service = world == WorldArg::Service;
    let manifest = if service { templates::MANIFEST_SERVICE } else { templates::MANIFEST_IMPORTER };
    let mut files: Vec<(String, String)> = vec![
        ("manifest.toml".into(), from(manifest)),
        ("wit/domicile.wit".into(), WIT.into()),
        (".gitignore".into(), templates::GITIGNORE.into()),
        ("README.md".into(), readme(&from(templates::README), lang, world)),
    ];
    if !service {
        files.push(("fixtures/notes.txt".into(), templates::IMPORTER_FIXTURE.into()));
    }
    match lang {
        Lang::Rust => {
            files.push(("Cargo.toml".into(), from(templates::RUST_CARGO_TOML)));
            let source = if service { templates::RUST_SERVICE } else { templates::RUST_IMPORTER };
            files.push(("src/lib.rs".into(), from(source)));
            files.push(("domicile-sdk/Cargo.toml".into(), from(templates::RUST_SDK_CARGO_TOML)));
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
            let source = if service { templates::PYTHON_SERVICE } else { templates::PYTHON_IMPORTER };
            files.push(("app.py".into(), from(source)));
            files.push(("domicile.py".into(), PYTHON_SDK.into()));
            files.push(("domicile_testing.py".into(), PYTHON_TESTING.into()));
            if service {
                files.push(("test_app.py".into(), templates::PYTHON_SERVICE_TEST.into()));
            }
        }
        Lang::Js => {
            let source = if service { templates::JS_SERVICE } else { templates::JS_IMPORTER };
            files.push(("app.js".into(), from(source)));
            files.push(("domicile.js".into(), JS_SDK.into()));
            files.push(("domicile_testing.mjs".into(), JS_TESTING.into()));
            if service {
                files.push(("test_app.mjs".into(), templates::JS_SERVICE_TEST.into()));
            }
            files.push(("package.json".into(), from(templates::JS_PACKAGE_JSON)));
        }
    }
    for (path, text) in &files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("project files are in a folder"))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let answer = serde_json::json!({ "project": dir, "app": id.as_str(), "lang": lang, "world": world });
    say(json, &answer, |_| {
        format!(
            "created {id} ({lang:?}, {world:?}) in {}\nnext: cd {} && domicile dev   (README.md says more)",
            dir.display(),
            dir.display()
        )
    })
}

/// The project's README: where its code is, its toolchain, and how to run
/// its tests, for its language and world.
fn readme(template: &str, lang: Lang, world: WorldArg) -> String {
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
    fill(template, &[("source", source), ("toolchain", &toolchain), ("data", data), ("tests", tests)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `{{key}}` of every template is filled in.
    #[test]
    fn no_placeholder_is_left() {
        let temp = std::env::temp_dir().join(format!("domicile-new-{}", std::process::id()));
        for lang in [Lang::Rust, Lang::Python, Lang::Js] {
            for world in [WorldArg::Service, WorldArg::Importer] {
                let dir = temp.join(format!("{lang:?}-{world:?}"));
                new("trial", lang, world, Some(&dir), true).unwrap();
                for entry in walk(&dir) {
                    let text = std::fs::read_to_string(&entry).unwrap_or_default();
                    for key in [
                        "name",
                        "id",
                        "componentize_js",
                        "preview2_shim",
                        "rolldown",
                        "wit_bindgen",
                        "source",
                        "toolchain",
                        "data",
                        "tests",
                    ] {
                        assert!(!text.contains(&format!("{{{{{key}}}}}")), "{} keeps {{{{{key}}}}}", entry.display());
                    }
                }
            }
        }
        std::fs::remove_dir_all(&temp).unwrap();
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .flat_map(|p| if p.is_dir() { walk(&p) } else { vec![p] })
            .collect()
    }
}
