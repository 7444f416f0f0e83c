//! Packages without a home: `domicile keygen` (a publisher's key pair),
//! `domicile pack` (a manifest and a component signed into a package, both
//! checked first) and `domicile verify` (a package's signature, against a
//! key or a home's trust store).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use domicile_home::Home;
use domicile_manifest::Manifest;
use domicile_package::{PublicKey, SecretKey};
use serde_json::json;

use crate::answer::say;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct KeygenArgs {
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct PackArgs {
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub component: PathBuf,
    /// The publisher's secret key (from `domicile keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Pack a core WebAssembly module anyway (no domicile will install it: apps are components).
    #[arg(long)]
    pub force: bool,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct VerifyArgs {
    pub package: PathBuf,
    /// Verify against this public key (hex or .pub file) instead of the home's trust store.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

pub fn keygen(args: &KeygenArgs, json: bool) -> Result<()> {
    let prefix = args.out.as_path();
    let key = SecretKey::generate();
    let secret = with_extension(prefix, "key");
    let public = with_extension(prefix, "pub");
    if public.exists() {
        bail!("{} already exists; choose another --out", public.display());
    }
    key.save(&secret)?;
    std::fs::write(&public, format!("{}\n", key.public()))
        .with_context(|| format!("cannot write {}", public.display()))?;
    let answer =
        json!({ "public_key": key.public().to_string(), "secret_key_file": secret, "public_key_file": public });
    say(json, &answer, |_| {
        format!(
            "secret key: {} (keep it private)\npublic key: {}\n  {}",
            secret.display(),
            public.display(),
            key.public()
        )
    })
}

fn with_extension(prefix: &Path, ext: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

/// The 4 bytes after `\0asm`: a core module's version, or a component's
/// version and layer.
const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];

pub fn pack(args: &PackArgs, json: bool) -> Result<()> {
    let PackArgs { manifest, component, key, out, force } = args;
    let (manifest, component, key, out, force) =
        (manifest.as_path(), component.as_path(), key.as_path(), out.as_path(), *force);
    let manifest_bytes = crate::io::read_given(manifest)?;
    let component_bytes = crate::io::read_given(component)?;
    let key = SecretKey::load(key)?;
    let (parsed, package) = seal_checked((manifest, &manifest_bytes), (component, &component_bytes), &key, force)?;
    if out.exists() {
        bail!("{} already exists; remove it or choose another --out", out.display());
    }
    std::fs::write(out, &package).with_context(|| format!("cannot write {}", out.display()))?;
    let answer = json!({ "app": parsed.id.as_str(), "version": parsed.version.to_string(), "publisher": key.public().to_string(), "out": out });
    say(json, &answer, |_| {
        format!("packed {} {} signed by {} into {}", parsed.id, parsed.version, key.public(), out.display())
    })
}

/// Checks what is about to be signed (the manifest parses and names only
/// doctypes and fields that exist; the component is one, not a core
/// module, unless `force`), then signs it into a package. Each part comes
/// with the path its errors name. Returns the parsed manifest too.
pub(crate) fn seal_checked(
    (manifest_path, manifest_bytes): (&Path, &[u8]),
    (component_path, component_bytes): (&Path, &[u8]),
    key: &SecretKey,
    force: bool,
) -> Result<(Manifest, Vec<u8>)> {
    // Catch a bad manifest now rather than at every resident's install.
    let shown = || manifest_path.display().to_string();
    let parsed = Manifest::from_bytes(manifest_bytes).with_context(shown)?;
    domicile_store::Vocabulary::builtin().check_permissions(&parsed.permissions).with_context(shown)?;
    if !component_bytes.starts_with(b"\0asm") {
        bail!("{}: not a WebAssembly file", component_path.display());
    }
    // A core module packs fine and fails only at install: say it now.
    if component_bytes.get(4..8) == Some(&CORE_MODULE[..]) && !force {
        bail!(
            "{}: a core WebAssembly module, not a component: domicile runs components (the WIT worlds in wit/). Build with a component linker (Rust: the wasm32-wasip2 target, or `wasm-tools component new` on the module), or pass --force to pack it anyway",
            component_path.display()
        );
    }
    let package = domicile_package::seal(manifest_bytes, component_bytes, key)
        .with_context(|| component_path.display().to_string())?;
    Ok((parsed, package))
}

/// `domicile verify PACKAGE`: against `--key`, or else the home's trust store.
pub fn verify(home: Option<&Home>, args: &VerifyArgs, json: bool) -> Result<()> {
    let (package, key) = (args.package.as_path(), args.key.as_deref());
    let bytes = crate::io::read_given(package)?;
    let sealed = domicile_package::unseal(&bytes)?;
    let verified = match (key, home) {
        (Some(key), _) => sealed.verify_with(&PublicKey::from_text_or_file(key)?)?,
        (None, Some(home)) => sealed.verify(&home.trust()?)?,
        (None, None) => bail!("verify against what? pass --key KEY, or --home DIR to use its trust store"),
    };
    let manifest = Manifest::from_bytes(verified.manifest_bytes())?;
    let answer = json!({ "valid": true, "app": manifest.id.as_str(), "version": manifest.version.to_string(), "publisher": verified.publisher().to_string(), "component_sha256": verified.component_digest_hex() });
    say(json, &answer, |_| {
        format!(
            "{}: valid signature by {} on {} {}",
            package.display(),
            verified.publisher(),
            manifest.id,
            manifest.version
        )
    })
}
