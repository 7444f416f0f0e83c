//! `domicile build`: the project built by its language's toolchain, checked
//! to be a component exporting the manifest's world, and packed with the
//! project's development key.

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::answer::say;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct BuildArgs {
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

use super::{
    check_exports, check_rust_toolchain, componentize_js, componentize_js_tool, componentize_py_tool, crate_name,
    run_tool, Lang, Project, Tool, BUILD_DIR, GUEST_TARGET,
};

/// `domicile build`: the project's component, checked, and its package
/// signed with the development key. Returns the package's path.
pub fn build(dir: &Path, json: bool) -> Result<PathBuf> {
    build_project(&Project::open(dir)?, json)
}

pub(super) fn build_project(project: &Project, json: bool) -> Result<PathBuf> {
    let started = Instant::now();
    let component_path = compile(project)?;
    let component = std::fs::read(&component_path)?;
    check_exports(&component, project)?;
    let key = project.dev_key()?;
    let manifest_path = project.dir.join("manifest.toml");
    let (_, package) = crate::verbs::packaging::seal_checked(
        (&manifest_path, &project.manifest_bytes),
        (&component_path, &component),
        &key,
        false,
    )?;
    let out = project.dir.join(BUILD_DIR).join(format!("{}-{}.dpkg", project.manifest.id, project.manifest.version));
    domicile_package::write_atomically(&out, &package)?;
    let took = started.elapsed();
    let answer =
        serde_json::json!({ "package": out, "component_bytes": component.len(), "build_ms": took.as_millis() as u64 });
    say(json, &answer, |_| {
        format!(
            "built {} {} ({:?}, {} bytes of component) in {:.1} s: {}",
            project.manifest.id,
            project.manifest.version,
            project.lang,
            component.len(),
            took.as_secs_f64(),
            out.display()
        )
    })?;
    Ok(out)
}

/// Runs the language's toolchain; returns the component's path.
pub(super) fn compile(project: &Project) -> Result<PathBuf> {
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
