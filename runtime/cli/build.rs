//! Looks for the outside programs some integration tests need (a NATS
//! server, Chromium, the Python and JavaScript toolchains, ...): each one
//! missing sets a cfg (`missing_nats`, ...) under which its tests are
//! marked ignored, with the reason and how to install it, rather than
//! counted as passed having done nothing. Under CI (`CI` set), where
//! `.ci/run` installs them all, nothing is missing: a test whose program
//! is absent fails.

use std::path::{Path, PathBuf};

/// An outside program some tests need: the cfg its absence sets, and whether it is here.
struct Tool {
    cfg: &'static str,
    present: fn() -> bool,
}

fn runs(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program).args(args).output().is_ok_and(|o| o.status.success())
}

fn exists(variable: &str, default: &str) -> bool {
    Path::new(&std::env::var(variable).unwrap_or_else(|_| default.to_owned())).exists()
}

const TOOLS: [Tool; 8] = [
    Tool { cfg: "missing_nats", present: || runs("nats-server", &["--version"]) },
    Tool {
        cfg: "missing_browser",
        present: || exists("CHROMIUM", "/usr/bin/chromium") && exists("CHROMEDRIVER", "/usr/bin/chromedriver"),
    },
    Tool { cfg: "missing_componentize_py", present: || runs("componentize-py", &["--version"]) },
    Tool {
        cfg: "missing_componentize_js",
        present: || {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-apps/node_modules/.bin/componentize-js").is_file()
        },
    },
    Tool { cfg: "missing_python3", present: || runs("python3", &["--version"]) },
    Tool { cfg: "missing_node", present: || runs("node", &["--version"]) },
    Tool { cfg: "missing_cargo_fuzz", present: || runs("cargo", &["fuzz", "--version"]) },
    Tool {
        cfg: "missing_wasip2",
        present: || {
            std::process::Command::new("rustup")
                .args(["target", "list", "--installed"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l == "wasm32-wasip2"))
        },
    },
];

/// Sets the cfg of every tool missing here (none under CI), and has the
/// probe run again when what it looked at changes: the variables, the
/// directories of `PATH` (a program installed there changes its folder),
/// the JavaScript toolchain's folder and rustup's list of targets.
fn probe_test_tools() {
    let names: Vec<&str> = TOOLS.iter().map(|t| t.cfg).collect();
    println!("cargo::rustc-check-cfg=cfg({})", names.join(", "));
    for variable in ["CI", "PATH", "CHROMIUM", "CHROMEDRIVER"] {
        println!("cargo:rerun-if-env-changed={variable}");
    }
    let watched = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-apps/node_modules/.bin")])
        .chain(rustup_targets());
    // A missing path would make Cargo run this script on every build.
    for path in watched.filter(|p| p.is_absolute() && p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    if std::env::var_os("CI").is_some() {
        return;
    }
    for tool in TOOLS.iter().filter(|t| !(t.present)()) {
        println!("cargo:rustc-cfg={}", tool.cfg);
    }
}

/// The file rustup rewrites when a target is added to the toolchain.
fn rustup_targets() -> Option<PathBuf> {
    let sysroot = std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    Some(PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim()).join("lib/rustlib/components"))
}

fn main() {
    probe_test_tools();
}
