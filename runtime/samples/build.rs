//! Embeds the signed sample catalogue (`sample-apps/catalogue`) in the
//! crate: every file of it, whatever the apps' versions.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sample-apps/catalogue");
    let root = root.canonicalize().expect("sample-apps/catalogue exists");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut code = String::from("/// The sample catalogue, file by file: (path inside it, bytes).\npub const SAMPLE_CATALOGUE: &[(&str, &[u8])] = &[\n");
    for path in all {
        let relative = path.strip_prefix(&root).expect("below the root").to_string_lossy().replace('\\', "/");
        code.push_str(&format!("    ({relative:?}, include_bytes!({:?})),\n", path.display().to_string()));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("sample_catalogue.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
